//! MMRelay's Matrix files: `matrix/credentials.json` (`homeserver`, `user_id`, `access_token`,
//! `device_id`), the E2EE store folder, and the store passphrase kept next to the credentials
//! (or given by systemd in `$CREDENTIALS_DIRECTORY`). Files are written 0600 in 0700 folders.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Name of the passphrase file, next to credentials.json or in `$CREDENTIALS_DIRECTORY`.
pub const PASSPHRASE_FILE: &str = "store_passphrase";

/// Where the Matrix side keeps its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatrixPaths {
    /// `HOME/matrix`
    pub dir: PathBuf,
    pub credentials: PathBuf,
    /// The E2EE store folder (`matrix.e2ee.store_path`, default `HOME/matrix/store`).
    pub store: PathBuf,
    pub passphrase: PathBuf,
}

impl MatrixPaths {
    pub fn new(home: &Path, store_path: Option<&Path>) -> Self {
        let dir = home.join("matrix");
        MatrixPaths {
            credentials: dir.join("credentials.json"),
            store: store_path
                .map(Path::to_path_buf)
                .unwrap_or_else(|| dir.join("store")),
            passphrase: dir.join(PASSPHRASE_FILE),
            dir,
        }
    }
}

/// The contents of credentials.json. Fields we do not know are kept as they are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Credentials {
    pub homeserver: String,
    pub user_id: String,
    pub access_token: String,
    pub device_id: String,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Credentials {
    /// Reads credentials.json; `Ok(None)` when it does not exist.
    pub fn load(path: &Path) -> Result<Option<Credentials>, String> {
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: cannot read: {e}", path.display())),
        };
        let creds: Credentials = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{}: not valid credentials ({e}); run `mmrelay auth login` to write new ones",
                path.display()
            )
        })?;
        for (name, value) in [
            ("homeserver", &creds.homeserver),
            ("user_id", &creds.user_id),
            ("access_token", &creds.access_token),
            ("device_id", &creds.device_id),
        ] {
            if value.trim().is_empty() {
                return Err(format!(
                    "{}: '{name}' is empty; run `mmrelay auth login`",
                    path.display()
                ));
            }
        }
        Ok(Some(creds))
    }

    /// Writes credentials.json atomically with mode 0600, its folder 0700.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let json = serde_json::to_string_pretty(self).expect("credentials serialise");
        write_private(path, json.as_bytes())
    }
}

/// Creates `dir` (and parents) with mode 0700, tightening an existing one.
pub fn private_dir(dir: &Path) -> Result<(), String> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("{}: cannot create: {e}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("{}: cannot set mode 0700: {e}", dir.display()))
}

/// Writes a file with mode 0600 through a temporary file and a rename.
pub fn write_private(path: &Path, data: &[u8]) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        private_dir(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let res = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    res.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        format!("{}: cannot write: {e}", path.display())
    })
}

/// Writes a new file with mode 0600; never replaces one (`AlreadyExists` then).
pub fn create_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

/// 32 random bytes from the kernel, hex-encoded.
pub fn random_secret() -> Result<String, String> {
    let mut buf = [0u8; 32];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    let hex: String = buf.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{KEY_PREFIX}{hex}"))
}

/// A store secret written as `key:` and 64 hex digits is a random key used as it is. Anything
/// else is a passphrase, from which matrix-sdk derives the key with PBKDF2 (200 000 rounds,
/// once per database at every start: about a second of CPU on a Pi Zero per database).
/// mmrelay writes new secrets as keys; passphrases written by older versions or by hand keep
/// working.
pub const KEY_PREFIX: &str = "key:";

/// How the store is unlocked.
#[derive(Debug, PartialEq, Eq)]
pub enum StoreSecret<'a> {
    Key([u8; 32]),
    Passphrase(&'a str),
}

/// Reads a store secret (see [`KEY_PREFIX`]).
pub fn store_secret(s: &str) -> StoreSecret<'_> {
    let parse = |hex: &str| -> Option<[u8; 32]> {
        if hex.len() != 64 || !hex.is_ascii() {
            return None;
        }
        let mut key = [0u8; 32];
        for (i, b) in key.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(key)
    };
    match s.strip_prefix(KEY_PREFIX).and_then(parse) {
        Some(k) => StoreSecret::Key(k),
        None => StoreSecret::Passphrase(s),
    }
}

/// Where the store passphrase comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassphraseSource {
    File(PathBuf),
    /// `$CREDENTIALS_DIRECTORY/store_passphrase` (systemd `LoadCredential=`).
    Systemd(PathBuf),
}

/// Reads the store passphrase: systemd's credential first, then the file next to
/// credentials.json. `Ok(None)` when neither exists.
pub fn read_passphrase(paths: &MatrixPaths) -> Result<Option<(String, PassphraseSource)>, String> {
    if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
        let p = Path::new(&dir).join(PASSPHRASE_FILE);
        if p.exists() {
            let s = fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            return Ok(Some((s.trim().to_string(), PassphraseSource::Systemd(p))));
        }
    }
    match fs::read_to_string(&paths.passphrase) {
        Ok(s) => Ok(Some((
            s.trim().to_string(),
            PassphraseSource::File(paths.passphrase.clone()),
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: cannot read: {e}", paths.passphrase.display())),
    }
}

/// The passphrase for a new store: an existing one is reused, else a new one is written.
pub fn ensure_passphrase(paths: &MatrixPaths) -> Result<String, String> {
    if let Some((p, _)) = read_passphrase(paths)? {
        if !p.is_empty() {
            return Ok(p);
        }
    }
    let p = random_secret()?;
    write_private(&paths.passphrase, p.as_bytes())?;
    Ok(p)
}

/// Whether the store folder holds an E2EE store: a crypto database the SDK has set up (an empty
/// one, created with small pages before the SDK's first open, does not count). A database that
/// cannot be read counts as existing, so nothing is thrown away on a doubt.
pub fn store_exists(store: &Path) -> bool {
    let db = store.join("matrix-sdk-crypto.sqlite3");
    if !db.exists() {
        return false;
    }
    let flags =
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    rusqlite::Connection::open_with_flags(&db, flags)
        .and_then(|c| {
            c.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })
        })
        .map_or(true, |tables| tables > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_secrets_are_keys_and_other_text_is_a_passphrase() {
        let s = random_secret().unwrap();
        assert!(matches!(store_secret(&s), StoreSecret::Key(_)));
        assert_ne!(random_secret().unwrap(), s);
        let k = format!("key:{}", "0f".repeat(32));
        assert_eq!(store_secret(&k), StoreSecret::Key([0x0f; 32]));
        // Older random secrets (bare hex) and hand-written ones stay passphrases.
        let old = "ab".repeat(32);
        assert_eq!(store_secret(&old), StoreSecret::Passphrase(&old));
        assert_eq!(
            store_secret("key:tooshort"),
            StoreSecret::Passphrase("key:tooshort")
        );
        let bad = format!("key:{}", "zz".repeat(32));
        assert_eq!(store_secret(&bad), StoreSecret::Passphrase(&bad));
    }

    #[test]
    fn an_empty_precreated_database_is_not_a_store() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!store_exists(dir.path()));
        let db = dir.path().join("matrix-sdk-crypto.sqlite3");
        crate::store::create_with_small_pages(&db).unwrap();
        assert!(db.exists());
        assert!(!store_exists(dir.path()));
        rusqlite::Connection::open(&db)
            .unwrap()
            .execute_batch("CREATE TABLE kv(key, value);")
            .unwrap();
        assert!(store_exists(dir.path()));
    }

    #[test]
    fn credentials_round_trip_with_private_modes_and_extra_fields() {
        let dir = tempfile::tempdir().unwrap();
        let paths = MatrixPaths::new(dir.path(), None);
        assert_eq!(Credentials::load(&paths.credentials), Ok(None));
        let json = r#"{"homeserver":"https://m.org","user_id":"@bot:m.org",
            "access_token":"syt_x","device_id":"ABC","mmrelay_version":"1.2"}"#;
        let c: Credentials = serde_json::from_str(json).unwrap();
        c.save(&paths.credentials).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&paths.credentials), 0o600);
        assert_eq!(mode(&paths.dir), 0o700);
        let back = Credentials::load(&paths.credentials).unwrap().unwrap();
        assert_eq!(back, c);
        assert_eq!(back.extra["mmrelay_version"], "1.2");
    }

    #[test]
    fn broken_credentials_say_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("credentials.json");
        fs::write(&p, "{\"homeserver\": 1}").unwrap();
        assert!(Credentials::load(&p)
            .unwrap_err()
            .contains("run `mmrelay auth login`"));
        fs::write(
            &p,
            r#"{"homeserver":"h","user_id":"@u:h","access_token":"","device_id":"D"}"#,
        )
        .unwrap();
        assert!(Credentials::load(&p)
            .unwrap_err()
            .contains("'access_token' is empty"));
    }

    #[test]
    fn passphrase_is_created_once() {
        let dir = tempfile::tempdir().unwrap();
        let paths = MatrixPaths::new(dir.path(), Some(&dir.path().join("e2ee")));
        assert_eq!(paths.store, dir.path().join("e2ee"));
        let a = ensure_passphrase(&paths).unwrap();
        assert!(matches!(store_secret(&a), StoreSecret::Key(_)), "{a}");
        assert_eq!(ensure_passphrase(&paths).unwrap(), a);
        let mode = fs::metadata(&paths.passphrase)
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);

        // systemd's LoadCredential= wins over the file (the only test touching this variable).
        let creds = tempfile::tempdir().unwrap();
        fs::write(creds.path().join(PASSPHRASE_FILE), "from-systemd\n").unwrap();
        std::env::set_var("CREDENTIALS_DIRECTORY", creds.path());
        let got = read_passphrase(&paths);
        std::env::remove_var("CREDENTIALS_DIRECTORY");
        let (p, source) = got.unwrap().unwrap();
        assert_eq!(p, "from-systemd");
        assert_eq!(
            source,
            PassphraseSource::Systemd(creds.path().join(PASSPHRASE_FILE))
        );
        assert_eq!(read_passphrase(&paths).unwrap().unwrap().0, a);
    }
}
