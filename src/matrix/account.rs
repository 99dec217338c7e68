//! Managing the bot's Matrix account from the command line: `auth status` (credentials, token,
//! store, cross-signing) and `auth logout` (the device deleted on the server, then the files).

use matrix_sdk::ruma::{OwnedDeviceId, OwnedUserId};
use matrix_sdk::Client;

use super::credentials::{self, Credentials, MatrixPaths};
use super::cross_signing::{cross_signing_state, CrossSigning};
use super::session::{explain, password_auth, restore, token_client};

/// What `mmrelay auth status` reports.
#[derive(Debug, Default)]
pub struct StatusReport {
    pub lines: Vec<String>,
    /// Credentials, a valid token and a store holding this device's keys.
    pub usable: bool,
}

/// Checks credentials, token, store and cross-signing, without changing anything on the
/// server (no keys are uploaded for a device whose store is missing).
pub async fn status(paths: &MatrixPaths) -> StatusReport {
    let mut r = StatusReport::default();
    let creds = match Credentials::load(&paths.credentials) {
        Ok(Some(c)) => c,
        Ok(None) => {
            r.lines.push(format!(
                "Credentials: none at {} (run `mmrelay auth login`)",
                paths.credentials.display()
            ));
            return r;
        }
        Err(e) => {
            r.lines.push(format!("Credentials: {e}"));
            return r;
        }
    };
    r.lines
        .push(format!("Credentials: {}", paths.credentials.display()));
    r.lines.push(format!("Homeserver:  {}", creds.homeserver));
    r.lines.push(format!("User:        {}", creds.user_id));
    r.lines.push(format!("Device ID:   {}", creds.device_id));
    if !credentials::store_exists(&paths.store) {
        r.lines.push(format!(
            "Store:       none at {} (mmrelay creates it at start, if the server has no keys for this device yet)",
            paths.store.display()
        ));
        // Check the token with a throwaway in-memory client.
        match token_client(&creds).await {
            Ok(client) => r.usable = token_line(&client, &creds, &mut r.lines).await,
            Err(e) => r.lines.push(format!("Token:       cannot check ({e})")),
        }
        return r;
    }
    match restore(paths).await {
        Ok(restored) => {
            let client = restored.client;
            r.lines.push(format!(
                "Store:       {} (holds the keys of device {})",
                paths.store.display(),
                creds.device_id
            ));
            let token_ok = token_line(&client, &creds, &mut r.lines).await;
            let cs = if token_ok {
                let _ = client
                    .encryption()
                    .wait_for_e2ee_initialization_tasks()
                    .await;
                let user: OwnedUserId = creds.user_id.parse().expect("parsed by restore");
                let _ = client.encryption().request_user_identity(&user).await;
                cross_signing_state(&client).await
            } else {
                cross_signing_state(&client).await
            };
            r.lines.push(format!("Cross-signing: {}", cs.describe()));
            if token_ok {
                r.lines.push(format!(
                    "Recovery:    {}",
                    match super::recovery::on_account(&client).await {
                        Ok(true) => "set up (secret storage and key backup on the server)".into(),
                        Ok(false) => "not set up (`mmrelay auth login --recovery-key-file FILE` \
                                      makes a recovery key)"
                            .to_string(),
                        Err(e) => format!("cannot tell ({e})"),
                    }
                ));
            }
            r.usable = token_ok;
        }
        Err(e) => r.lines.push(format!("Store:       {e}")),
    }
    r
}

/// The device's cross-signing as its E2EE store knows it, read without asking the homeserver
/// (for `config check`).
pub async fn store_cross_signing(paths: &MatrixPaths) -> Result<CrossSigning, String> {
    let restored = restore(paths).await.map_err(|e| e.to_string())?;
    Ok(cross_signing_state(&restored.client).await)
}

/// Checks the token with whoami; adds a line; true when valid and for the right user.
async fn token_line(client: &Client, creds: &Credentials, lines: &mut Vec<String>) -> bool {
    match client.whoami().await {
        Ok(w) if w.user_id.as_str() == creds.user_id => {
            lines.push("Token:       valid".into());
            true
        }
        Ok(w) => {
            lines.push(format!(
                "Token:       belongs to {}, not {}",
                w.user_id, creds.user_id
            ));
            false
        }
        Err(e) => {
            let e = matrix_sdk::Error::from(e);
            lines.push(format!(
                "Token:       not usable: {}",
                explain(&e, &creds.homeserver)
            ));
            false
        }
    }
}

/// Logs the device out on the server (deleting it, so its token and keys go) after checking
/// the password, then removes credentials.json, the store and the passphrase file. With stale
/// or incomplete credentials it still cleans up locally and says so. A wrong password stops it
/// before anything is removed.
pub async fn logout(paths: &MatrixPaths, password: Option<&str>) -> Result<Vec<String>, String> {
    let mut lines = Vec::new();
    match Credentials::load(&paths.credentials) {
        Ok(Some(creds)) => {
            let client = token_client(&creds).await?;
            let device: OwnedDeviceId = creds.device_id.as_str().into();
            let result = match password {
                Some(password) => {
                    let first = client
                        .delete_devices(std::slice::from_ref(&device), None)
                        .await;
                    match first {
                        Ok(_) => Ok(()),
                        Err(e) => match e.as_uiaa_response() {
                            Some(uiaa) => {
                                let auth =
                                    password_auth(&creds.user_id, password, uiaa.session.clone());
                                client
                                    .delete_devices(std::slice::from_ref(&device), Some(auth))
                                    .await
                                    .map(|_| ())
                            }
                            None => Err(e),
                        },
                    }
                }
                // Without a password: the access token is logged out; the homeserver ends
                // its device with it.
                None => client.matrix_auth().logout().await.map(|_| ()),
            };
            match result {
                Ok(()) => lines.push(format!(
                    "Logged out device {} on {}: its access token no longer works",
                    creds.device_id, creds.homeserver
                )),
                Err(e) => {
                    let uiaa_forbidden = e
                        .as_uiaa_response()
                        .and_then(|u| u.auth_error.as_ref())
                        .is_some();
                    let e = matrix_sdk::Error::from(e);
                    use matrix_sdk::ruma::api::error::ErrorKind;
                    match e.client_api_error_kind() {
                        Some(ErrorKind::UnknownToken(_)) => lines.push(
                            "The access token was already invalid on the server; cleaning up locally".into(),
                        ),
                        _ if uiaa_forbidden || matches!(e.client_api_error_kind(), Some(ErrorKind::Forbidden)) => {
                            return Err("wrong password; nothing was removed".into());
                        }
                        _ => lines.push(format!(
                            "Could not log out on the server ({}); the device may still exist there: \
                             remove it from another client. Cleaning up locally",
                            explain(&e, &creds.homeserver)
                        )),
                    }
                }
            }
        }
        Ok(None) => lines.push(format!(
            "No credentials at {}; cleaning up locally",
            paths.credentials.display()
        )),
        Err(e) => lines.push(format!("{e}; cleaning up locally")),
    }
    for (what, path) in [
        ("credentials", &paths.credentials),
        ("store passphrase", &paths.passphrase),
    ] {
        match std::fs::remove_file(path) {
            Ok(()) => lines.push(format!("Removed {what}: {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: cannot remove: {e}", path.display())),
        }
    }
    match std::fs::remove_dir_all(&paths.store) {
        Ok(()) => lines.push(format!("Removed E2EE store: {}", paths.store.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{}: cannot remove: {e}", paths.store.display())),
    }
    Ok(lines)
}
