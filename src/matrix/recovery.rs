//! The bot's recovery key: secret storage and server-side key backup (matrix-sdk's recovery),
//! so that a new device on a new store (after a dead SD card) is signed by the same
//! cross-signing identity, without a reset. The key file is written 0600 and never
//! overwritten. Old room keys are never downloaded from the backup (the relay does not need
//! them): the client is built with a manual backup download strategy.

use std::path::Path;

use matrix_sdk::Client;

/// Whether the account has secret storage (a recovery key made by mmrelay or another client).
pub async fn on_account(client: &Client) -> Result<bool, String> {
    client
        .encryption()
        .secret_storage()
        .is_enabled()
        .await
        .map_err(|e| format!("cannot tell whether the account has a recovery key: {e}"))
}

/// Reads the recovery key from `path` (surrounding white space ignored).
pub fn read_key_file(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--recovery-key-file {}: {e}", path.display()))?;
    let key = text.trim().to_string();
    if key.is_empty() {
        return Err(format!("--recovery-key-file {}: empty", path.display()));
    }
    Ok(key)
}

/// Writes `key` to a new file `path`, readable by its owner only; never replaces a file.
pub fn write_key_file(path: &Path, key: &str) -> Result<(), String> {
    super::credentials::create_private(path, format!("{key}\n").as_bytes()).map_err(|e| {
        match e.kind() {
            std::io::ErrorKind::AlreadyExists => format!(
                "--recovery-key-file {}: exists; it was not overwritten",
                path.display()
            ),
            _ => format!("--recovery-key-file {}: cannot write: {e}", path.display()),
        }
    })
}

/// Opens the account's secret storage with `key` and imports the cross-signing keys (and the
/// backup key) into the store.
pub async fn restore(client: &Client, key: &str) -> Result<(), String> {
    client
        .encryption()
        .recovery()
        .recover(key)
        .await
        .map_err(|e| {
            format!(
                "the recovery key does not open this account's secret storage (is it complete, \
                 and this account's?): {e}"
            )
        })
}

/// Sets up secret storage and key backup with a new recovery key (replacing the account's
/// key when `replace`); returns the key.
pub async fn create(client: &Client, replace: bool) -> Result<String, String> {
    let recovery = client.encryption().recovery();
    let key = if replace {
        recovery.reset_key().await
    } else {
        recovery.enable().await
    };
    key.map_err(|e| format!("setting up the recovery key failed: {e}"))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_key_file_is_private_never_overwritten_and_read_back_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recovery-key");
        write_key_file(&path, "EsTj 3yST y93F").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let err = write_key_file(&path, "another").unwrap_err();
        assert!(err.contains("exists; it was not overwritten"), "{err}");
        assert_eq!(read_key_file(&path).unwrap(), "EsTj 3yST y93F");
        std::fs::write(&path, "\n").unwrap();
        assert!(read_key_file(&path).unwrap_err().ends_with("empty"));
    }
}
