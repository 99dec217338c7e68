//! The Matrix session: building a client on the SDK's stores ([`super::stores`]), logging in (with
//! cross-signing), restoring a session from credentials.json with the store's identity checked,
//! status and logout. The `auth` commands and the running client are built on these.

use std::path::Path;
use std::time::Duration;

use log::info;
use matrix_sdk::authentication::matrix::MatrixSession;
use matrix_sdk::config::{RequestConfig, SyncSettings};
use matrix_sdk::encryption::{BackupDownloadStrategy, EncryptionSettings};
use matrix_sdk::ruma::api::client::filter::{FilterDefinition, RoomFilter};
use matrix_sdk::ruma::api::client::keys::get_keys;
use matrix_sdk::ruma::api::client::uiaa::{
    AuthData, MatrixUserIdentifier, Password, UserIdentifier,
};
use matrix_sdk::ruma::{OwnedDeviceId, OwnedUserId};
use matrix_sdk::{Client, SessionMeta, SessionTokens};

use super::credentials::{self, Credentials, MatrixPaths};
use super::stores::{self, HeldBack};

// Logging in lives in `super::login`; its entry points are reachable from here too.
pub use super::login::{credentials_from_token, login, LoginParams, LoginReport};

/// The display name of mmrelay's devices.
pub const DEVICE_NAME: &str = "mmrelay";

/// The SDK's session for a user, device and access token (no refresh token).
pub fn matrix_session(user_id: OwnedUserId, device_id: &str, access_token: &str) -> MatrixSession {
    MatrixSession {
        meta: SessionMeta {
            user_id,
            device_id: device_id.into(),
        },
        tokens: SessionTokens {
            access_token: access_token.to_string(),
            refresh_token: None,
        },
    }
}

/// A client with an in-memory store using `creds`' token: for calls that need no E2EE store
/// (whoami, deleting the device).
pub async fn token_client(creds: &Credentials) -> Result<Client, String> {
    let user: OwnedUserId = creds
        .user_id
        .parse()
        .map_err(|e| format!("user_id '{}': {e}", creds.user_id))?;
    let client = Client::builder()
        .homeserver_url(&creds.homeserver)
        .build()
        .await
        .map_err(|e| explain_transport(&chain(&e), &creds.homeserver))?;
    client
        .restore_session(matrix_session(user, &creds.device_id, &creds.access_token))
        .await
        .map_err(|e| format!("cannot use the credentials: {e}"))?;
    Ok(client)
}

/// Adds `https://` when the user gave a bare host name.
pub fn normalize_homeserver(input: &str) -> String {
    let s = input.trim().trim_end_matches('/');
    if s.starts_with("http://") || s.starts_with("https://") {
        s.to_string()
    } else {
        format!("https://{s}")
    }
}

/// Explains a Matrix error in words an operator can act on.
pub fn explain(e: &matrix_sdk::Error, homeserver: &str) -> String {
    use matrix_sdk::ruma::api::error::ErrorKind;
    if let Some(kind) = e.client_api_error_kind() {
        return match kind {
            ErrorKind::Forbidden => "wrong user name or password".into(),
            ErrorKind::LimitExceeded(data) => match &data.retry_after {
                Some(r) => format!("rate limited by the homeserver; try again later ({r:?})"),
                None => "rate limited by the homeserver; try again in a minute".into(),
            },
            ErrorKind::UnknownToken(_) => {
                "the access token is no longer valid; run `mmrelay auth login`".into()
            }
            _ => format!("the homeserver refused: {e}"),
        };
    }
    explain_transport(&chain(e), homeserver)
}

/// An error with its causes, "outer: inner: root".
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let c_s = c.to_string();
        if !s.contains(&c_s) {
            s.push_str(": ");
            s.push_str(&c_s);
        }
        cur = c.source();
    }
    s
}

/// Whether restoring failed because the crypto store holds another device's account.
fn is_mismatched_account(e: &matrix_sdk::Error) -> bool {
    use matrix_sdk_crypto::{store::CryptoStoreError, OlmError};
    let mismatched = |c: &CryptoStoreError| matches!(c, CryptoStoreError::MismatchedAccount { .. });
    match e {
        matrix_sdk::Error::CryptoStoreError(c) => mismatched(c),
        matrix_sdk::Error::OlmError(o) => matches!(&**o, OlmError::Store(c) if mismatched(c)),
        _ => false,
    }
}

pub(super) fn explain_transport(msg: &str, homeserver: &str) -> String {
    let lower = msg.to_lowercase();
    if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
        format!("TLS failure talking to {homeserver}: {msg} (check the URL and the system clock)")
    } else if lower.contains("connect") || lower.contains("dns") || lower.contains("resolve") {
        format!("cannot reach the homeserver at {homeserver}: {msg}")
    } else {
        format!("{homeserver}: {msg}")
    }
}

/// Password auth for user-interactive endpoints.
pub fn password_auth(user: &str, password: &str, session: Option<String>) -> AuthData {
    let mut p = Password::new(
        UserIdentifier::Matrix(MatrixUserIdentifier::new(user.to_owned())),
        password.to_owned(),
    );
    p.session = session;
    AuthData::Password(p)
}

/// Opens a client on the SQLite stores in `store` (see [`stores::open`]). With `discover`,
/// `homeserver` may be a server name (resolved through .well-known). Also returns what the
/// stores hold back until a clean stop.
pub async fn open_client(
    homeserver: &str,
    discover: bool,
    store: &Path,
    passphrase: &str,
) -> Result<(Client, HeldBack), String> {
    let (stores, held) = stores::open(store, passphrase).await?;
    let builder = Client::builder()
        .store_config(stores)
        .with_encryption_settings(EncryptionSettings {
            auto_enable_cross_signing: false,
            backup_download_strategy: BackupDownloadStrategy::Manual,
            auto_enable_backups: false,
        })
        .request_config(RequestConfig::new().timeout(Duration::from_secs(60)));
    let builder = if discover {
        builder.server_name_or_homeserver_url(homeserver)
    } else {
        builder.homeserver_url(homeserver)
    };
    let client = builder
        .build()
        .await
        .map_err(|e| explain_transport(&chain(&e), homeserver))?;
    Ok((client, held))
}

/// A filter that syncs nothing but to-device and key traffic (for uploading keys).
fn nothing_filter() -> FilterDefinition {
    let mut f = FilterDefinition::ignore_all();
    f.room = RoomFilter::ignore_all();
    f
}

/// One short sync that sends our device keys and one-time keys to the server.
pub async fn upload_keys(client: &Client) -> Result<(), String> {
    let settings = SyncSettings::new()
        .filter(nothing_filter().into())
        .timeout(Duration::ZERO);
    client
        .sync_once(settings)
        .await
        .map(|_| ())
        .map_err(|e| format!("uploading encryption keys failed: {e}"))
}

/// Whether the server holds device keys for `device`.
pub async fn server_has_device_keys(
    client: &Client,
    user: &OwnedUserId,
    device: &OwnedDeviceId,
) -> Result<bool, String> {
    let mut req = get_keys::v3::Request::new();
    req.device_keys.insert(user.clone(), vec![device.clone()]);
    let resp = client
        .send(req)
        .await
        .map_err(|e| format!("querying the server's keys failed: {e}"))?;
    Ok(resp
        .device_keys
        .get(user)
        .is_some_and(|d| d.contains_key(device)))
}

/// Why a session cannot be restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreError {
    NoCredentials(String),
    /// The store holds another device's keys.
    WrongDevice(String),
    /// The store is missing and the server already has keys for the device.
    DeviceKeysElsewhere(String),
    Other(String),
}

impl std::fmt::Display for RestoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RestoreError::NoCredentials(s)
            | RestoreError::WrongDevice(s)
            | RestoreError::DeviceKeysElsewhere(s)
            | RestoreError::Other(s) => f.write_str(s),
        }
    }
}

/// A restored session.
pub struct Restored {
    pub client: Client,
    pub credentials: Credentials,
    /// True when the store was created now (a login made elsewhere).
    pub new_store: bool,
    /// What the stores hold back, to save at a clean stop.
    pub held: HeldBack,
}

/// Restores the session of credentials.json on its store. Refuses a store that belongs to
/// another device; creates a store for a login made elsewhere unless the server already holds
/// keys for that device.
pub async fn restore(paths: &MatrixPaths) -> Result<Restored, RestoreError> {
    let creds = Credentials::load(&paths.credentials)
        .map_err(RestoreError::Other)?
        .ok_or_else(|| {
            RestoreError::NoCredentials(format!(
                "no Matrix credentials at {}; run `mmrelay auth login`",
                paths.credentials.display()
            ))
        })?;
    let user: OwnedUserId = creds.user_id.parse().map_err(|e| {
        RestoreError::Other(format!(
            "{}: user_id '{}': {e}",
            paths.credentials.display(),
            creds.user_id
        ))
    })?;
    let device: OwnedDeviceId = creds.device_id.as_str().into();
    let new_store = !credentials::store_exists(&paths.store);
    let passphrase = match credentials::read_passphrase(paths).map_err(RestoreError::Other)? {
        Some((p, _)) => p,
        None if new_store => credentials::ensure_passphrase(paths).map_err(RestoreError::Other)?,
        None => {
            return Err(RestoreError::Other(format!(
                "the E2EE store at {} exists but its passphrase file {} is missing",
                paths.store.display(),
                paths.passphrase.display()
            )))
        }
    };
    let (client, held) = open_client(&creds.homeserver, false, &paths.store, &passphrase)
        .await
        .map_err(RestoreError::Other)?;
    let session = matrix_session(user.clone(), device.as_str(), &creds.access_token);
    if let Err(e) = client.restore_session(session).await {
        let msg = e.to_string();
        if is_mismatched_account(&e) {
            return Err(RestoreError::WrongDevice(format!(
                "the E2EE store at {} belongs to another device than {} in {} ({msg}); \
                 run `mmrelay auth login` to log in again, or point matrix.e2ee.store_path at \
                 this device's store",
                paths.store.display(),
                creds.device_id,
                paths.credentials.display()
            )));
        }
        return Err(RestoreError::Other(format!(
            "restoring the Matrix session failed: {msg}"
        )));
    }
    if new_store {
        match server_has_device_keys(&client, &user, &device).await {
            Ok(true) => {
                drop(client);
                let _ = std::fs::remove_dir_all(&paths.store);
                return Err(RestoreError::DeviceKeysElsewhere(format!(
                    "device {} already has encryption keys on the server, but there is no \
                     E2EE store for it at {} (was it made by another program, such as MMRelay?); \
                     run `mmrelay auth login` to create a fresh device for mmrelay",
                    creds.device_id,
                    paths.store.display()
                )));
            }
            Ok(false) => info!(
                "Created a new E2EE store for device {} at {}",
                creds.device_id,
                paths.store.display()
            ),
            Err(e) => return Err(RestoreError::Other(e)),
        }
    }
    Ok(Restored {
        client,
        credentials: creds,
        new_store,
        held,
    })
}
