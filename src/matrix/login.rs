//! Logging the bot in: with the password, a login token (`m.login.token`, as a homeserver
//! issues after single sign-on or for linking a new device) or an existing access token. The
//! E2EE store is created, the keys uploaded and the device signed, through the recovery key
//! when the account has one ([`super::recovery`]); credentials.json is written last, so that
//! a login that fails leaves nothing behind (a device it made is logged out again). Also the
//! credentials for MMRelay's legacy `matrix.access_token` config.

use std::path::PathBuf;

use log::info;
use matrix_sdk::ruma::OwnedUserId;
use matrix_sdk::Client;

use super::credentials::{self, Credentials, MatrixPaths};
use super::cross_signing::{
    cross_signing_state, refresh_own_identity, setup_cross_signing, sign_own_device, CrossSigning,
};
use super::recovery;
use super::session::{
    chain, explain, explain_transport, matrix_session, normalize_homeserver, open_client,
    server_has_device_keys, upload_keys, DEVICE_NAME,
};

/// Login parameters ([`LoginParams::default`]: nothing given).
#[derive(Clone, Default)]
pub struct LoginParams {
    pub homeserver: String,
    /// Localpart or full `@user:server` (with a token: optional, checked when given).
    pub username: String,
    /// Empty when logging in without one.
    pub password: String,
    pub reset_cross_signing: bool,
    /// Log in with this login token instead of the password.
    pub login_token: Option<String>,
    /// Adopt this access token instead of logging in.
    pub access_token: Option<String>,
    /// Set up a recovery key when the account has none (`auth login`; not the legacy config
    /// login at start, whose output goes to the journal).
    pub set_up_recovery: bool,
    /// Where the recovery key is kept: read when the account has recovery, written (new file,
    /// 0600) when it gets one now.
    pub recovery_key_file: Option<PathBuf>,
    /// Asks for the recovery key when the account has one and no file is given (a prompt).
    pub ask_recovery_key: Option<fn() -> Option<String>>,
}

impl std::fmt::Debug for LoginParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginParams")
            .field("homeserver", &self.homeserver)
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .field(
                "login_token",
                &self.login_token.as_ref().map(|_| "<hidden>"),
            )
            .field(
                "access_token",
                &self.access_token.as_ref().map(|_| "<hidden>"),
            )
            .field("recovery_key_file", &self.recovery_key_file)
            .finish()
    }
}

/// What a login did, line by line.
#[derive(Debug, Default)]
pub struct LoginReport {
    pub lines: Vec<String>,
    pub device_id: String,
    pub cross_signing: Option<CrossSigning>,
}

/// How the client got its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Password,
    Token,
    Adopted,
}

/// The session a login got.
struct SignedIn {
    user_id: OwnedUserId,
    device_id: String,
    access_token: String,
    method: Method,
}

/// Whether `user` (localpart or full id) names `id`.
fn names_user(user: &str, id: &str) -> bool {
    id == user || id.trim_start_matches('@').split(':').next() == Some(user)
}

/// Logs in, creates the store, uploads the keys, signs the device (and sets up or uses the
/// recovery key), then writes credentials.json. `say` receives each step as it happens.
pub async fn login(
    paths: &MatrixPaths,
    params: &LoginParams,
    say: &mut dyn FnMut(&str),
) -> Result<LoginReport, String> {
    let mut report = LoginReport::default();
    let homeserver = normalize_homeserver(&params.homeserver);
    let wanted_user = params.username.trim().to_string();
    // Reuse the device of earlier credentials for the same user, with its store.
    let previous = Credentials::load(&paths.credentials).ok().flatten();
    let reuse = previous
        .as_ref()
        .filter(|c| {
            params.access_token.is_none()
                && !wanted_user.is_empty()
                && names_user(&wanted_user, &c.user_id)
                && credentials::store_exists(&paths.store)
        })
        .cloned();
    if reuse.is_none() && credentials::store_exists(&paths.store) {
        std::fs::remove_dir_all(&paths.store).map_err(|e| {
            format!(
                "{}: cannot remove the old store: {e}",
                paths.store.display()
            )
        })?;
        let line = format!(
            "Removed the store of the previous device: {}",
            paths.store.display()
        );
        say(&line);
        report.lines.push(line);
    }
    let had_passphrase = paths.passphrase.exists();
    let passphrase = credentials::ensure_passphrase(paths)?;
    let undo_files = |paths: &MatrixPaths| {
        if reuse.is_none() {
            let _ = std::fs::remove_dir_all(&paths.store);
            if !had_passphrase {
                let _ = std::fs::remove_file(&paths.passphrase);
            }
        }
    };
    let (client, _) = match open_client(&homeserver, true, &paths.store, &passphrase).await {
        Ok(c) => c,
        Err(e) => {
            undo_files(paths);
            return Err(e);
        }
    };
    let signed = match sign_in(&client, params, &wanted_user, reuse.as_ref(), &homeserver).await {
        Ok(s) => s,
        Err(e) => {
            undo_files(paths);
            return Err(e);
        }
    };
    let mut step = |s: String| {
        say(&s);
        report.lines.push(s);
    };
    step(format!(
        "Logged in as {} on {}",
        signed.user_id,
        client.homeserver().as_str().trim_end_matches('/')
    ));
    step(format!(
        "Device ID: {}{}",
        signed.device_id,
        if reuse.is_some() { " (reused)" } else { "" }
    ));
    let finished = finish(&client, params, &signed, &mut step).await;
    let cs = match finished {
        Ok(done) => done,
        Err(e) => {
            // A device made by this login goes again; an adopted token stays the owner's.
            let left = if signed.method != Method::Adopted && reuse.is_none() {
                log_out_again(&client, &signed.device_id).await
            } else {
                String::new()
            };
            undo_files(paths);
            return Err(format!("{e}; nothing was written{left}"));
        }
    };
    let creds = Credentials {
        homeserver: client
            .homeserver()
            .to_string()
            .trim_end_matches('/')
            .to_string(),
        user_id: signed.user_id.to_string(),
        access_token: signed.access_token.clone(),
        device_id: signed.device_id.clone(),
        extra: previous.map(|p| p.extra).unwrap_or_default(),
    };
    creds.save(&paths.credentials)?;
    step(format!(
        "Credentials written to {}",
        paths.credentials.display()
    ));
    if signed.method != Method::Password {
        step(
            "Logged in without a password: replacing the cross-signing identity \
             (--reset-cross-signing) needs one; `mmrelay auth logout` works without it"
                .into(),
        );
    }
    report.device_id = signed.device_id;
    report.cross_signing = Some(cs);
    Ok(report)
}

/// Logs out the device a failed login made; what to add to its error when that fails too.
async fn log_out_again(client: &Client, device: &str) -> String {
    match client.matrix_auth().logout().await {
        Ok(_) => String::new(),
        Err(e) => format!(
            "; device {device} that it made could not be logged out ({e}): remove it from \
             another client"
        ),
    }
}

/// Gets a session on `client`: a password or token login, or the adopted access token.
async fn sign_in(
    client: &Client,
    params: &LoginParams,
    wanted_user: &str,
    reuse: Option<&Credentials>,
    homeserver: &str,
) -> Result<SignedIn, String> {
    if let Some(token) = &params.access_token {
        return adopt(client, token, wanted_user).await;
    }
    let (method, req) = match &params.login_token {
        Some(t) => (Method::Token, client.matrix_auth().login_token(t)),
        None => {
            if wanted_user.is_empty() || params.password.is_empty() {
                return Err("a password login needs the username and the password".into());
            }
            let req = client
                .matrix_auth()
                .login_username(wanted_user, &params.password);
            (Method::Password, req)
        }
    };
    let mut req = req.initial_device_display_name(DEVICE_NAME);
    if let Some(prev) = reuse {
        req = req.device_id(&prev.device_id);
    }
    let resp = req.send().await.map_err(|e| match method {
        Method::Token => format!(
            "the login token was refused ({}); a login token works once and for a few \
             minutes: get a new one",
            explain(&e, homeserver)
        ),
        _ => format!("login failed: {}", explain(&e, homeserver)),
    })?;
    if !wanted_user.is_empty() && !names_user(wanted_user, resp.user_id.as_str()) {
        let left = log_out_again(client, resp.device_id.as_str()).await;
        return Err(format!(
            "the login token is for {}, not {wanted_user}{left}",
            resp.user_id
        ));
    }
    Ok(SignedIn {
        user_id: resp.user_id,
        device_id: resp.device_id.to_string(),
        access_token: resp.access_token,
        method,
    })
}

/// Adopts an existing access token: whoami tells its user and device, which must have no
/// encryption keys on the server yet (another program's store would hold them).
async fn adopt(client: &Client, token: &str, wanted_user: &str) -> Result<SignedIn, String> {
    let hs = client.homeserver().to_string();
    let (probe, who) = whoami(&hs, token)
        .await
        .map_err(|e| format!("the access token was refused: {e}"))?;
    if !wanted_user.is_empty() && !names_user(wanted_user, who.user_id.as_str()) {
        return Err(format!(
            "the access token belongs to {}, not {wanted_user}",
            who.user_id
        ));
    }
    let device = who
        .device_id
        .ok_or("the homeserver names no device for this access token")?;
    if server_has_device_keys(&probe, &who.user_id, &device).await? {
        return Err(format!(
            "device {device} of this access token already has encryption keys on the server, \
             kept in another program's store; log in with the password or a login token to \
             make a device for mmrelay"
        ));
    }
    client
        .restore_session(matrix_session(who.user_id.clone(), device.as_str(), token))
        .await
        .map_err(|e| format!("cannot use the access token: {e}"))?;
    Ok(SignedIn {
        user_id: who.user_id,
        device_id: device.to_string(),
        access_token: token.to_string(),
        method: Method::Adopted,
    })
}

/// Asks the homeserver whose `token` is (whoami), from a client without a store; returns that
/// client (usable for requests that need no E2EE store) and the answer.
async fn whoami(
    homeserver: &str,
    token: &str,
) -> Result<
    (
        Client,
        matrix_sdk::ruma::api::client::account::whoami::v3::Response,
    ),
    String,
> {
    let probe = Client::builder()
        .homeserver_url(homeserver)
        .build()
        .await
        .map_err(|e| explain_transport(&chain(&e), homeserver))?;
    // whoami needs a session; the user and device are placeholders until the server names them.
    let placeholder: OwnedUserId = "@unknown:localhost".parse().expect("valid");
    probe
        .restore_session(matrix_session(placeholder, "UNKNOWN", token))
        .await
        .map_err(|e| e.to_string())?;
    let who = probe
        .whoami()
        .await
        .map_err(|e| explain(&matrix_sdk::Error::from(e), homeserver))?;
    Ok((probe, who))
}

/// Uploads the keys and signs the device: through the recovery key when the account has
/// one, else with a new identity (and a new recovery key, when asked for).
async fn finish(
    client: &Client,
    params: &LoginParams,
    signed: &SignedIn,
    step: &mut dyn FnMut(String),
) -> Result<CrossSigning, String> {
    upload_keys(client).await?;
    step("Encryption keys uploaded".to_string());
    let has_recovery = recovery::on_account(client).await?;
    let file = params.recovery_key_file.as_deref();
    let password = (!params.password.is_empty()).then_some(params.password.as_str());
    let user = signed.user_id.as_str();
    if has_recovery && !params.reset_cross_signing {
        let key = match file {
            Some(f) => Some(recovery::read_key_file(f)?),
            None => params.ask_recovery_key.and_then(|ask| ask()),
        };
        let Some(key) = key else {
            let cs = setup_cross_signing(client, user, password, false).await?;
            step(describe(&cs).into());
            if cs != CrossSigning::Signed {
                step(
                    "The account has a recovery key: give it with --recovery-key-file to sign \
                     this device with the bot's identity"
                        .into(),
                );
            }
            return Ok(cs);
        };
        recovery::restore(client, &key).await?;
        sign_own_device(client).await?;
        refresh_own_identity(client).await;
        let cs = cross_signing_state(client).await;
        step(format!(
            "Recovery key accepted: {}",
            match cs {
                CrossSigning::Signed => "this device is signed by the bot's identity",
                _ => "but this device could not be signed",
            }
        ));
        return Ok(cs);
    }
    if let Some(f) = file.filter(|f| f.exists()) {
        return Err(format!(
            "--recovery-key-file {}: exists, but the account has no recovery key to read \
             from it; it was not overwritten (name a new file to create one)",
            f.display()
        ));
    }
    let cs = setup_cross_signing(client, user, password, params.reset_cross_signing).await?;
    step(describe(&cs).into());
    if cs != CrossSigning::Signed || !params.set_up_recovery {
        return Ok(cs);
    }
    let key = recovery::create(client, has_recovery).await?;
    match file {
        Some(f) => {
            recovery::write_key_file(f, &key)?;
            step(format!(
                "Recovery key written to {}: keep a copy away from this gateway; with it a new \
                 store gets the bot's identity back (`mmrelay auth login --recovery-key-file`)",
                f.display()
            ));
        }
        None => step(format!(
            "Recovery key (shown once): {key}\nKeep it away from this gateway, in a password \
             manager: with it a new store gets the bot's identity back (`mmrelay auth login \
             --recovery-key-file`)"
        )),
    }
    Ok(cs)
}

fn describe(cs: &CrossSigning) -> &'static str {
    match cs {
        CrossSigning::Signed => "Cross-signing set up: this device is verified by its owner",
        CrossSigning::IdentityElsewhere => {
            "Cross-signing: the account already has an identity whose keys are not on this \
             device; give its recovery key (--recovery-key-file), or run `mmrelay auth login \
             --reset-cross-signing` to replace it"
        }
        CrossSigning::NotSetUp => "Cross-signing could not be set up",
    }
}

/// Writes credentials.json for an access token from MMRelay's legacy config: the device id
/// comes from the server (whoami).
pub async fn credentials_from_token(
    paths: &MatrixPaths,
    homeserver: &str,
    user: &str,
    token: &str,
) -> Result<Credentials, String> {
    let homeserver = normalize_homeserver(homeserver);
    let user_id: OwnedUserId = user
        .parse()
        .map_err(|e| format!("matrix.bot_user_id '{user}': {e}"))?;
    let (_, who) = whoami(&homeserver, token)
        .await
        .map_err(|e| format!("matrix.access_token: {e}"))?;
    let device = who.device_id.ok_or_else(|| {
        "matrix.access_token: the server names no device for this token; run `mmrelay auth login`".to_string()
    })?;
    if who.user_id != user_id {
        return Err(format!(
            "matrix.access_token belongs to {}, not matrix.bot_user_id {user}",
            who.user_id
        ));
    }
    let creds = Credentials {
        homeserver,
        user_id: user_id.to_string(),
        access_token: token.to_string(),
        device_id: device.to_string(),
        extra: Default::default(),
    };
    creds.save(&paths.credentials)?;
    info!(
        "Credentials written to {} (device {device})",
        paths.credentials.display()
    );
    Ok(creds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_username_names_a_user_id_by_localpart_or_in_full() {
        assert!(names_user("bot", "@bot:example.org"));
        assert!(names_user("@bot:example.org", "@bot:example.org"));
        assert!(!names_user("bo", "@bot:example.org"));
        assert!(!names_user("@bot:other.org", "@bot:example.org"));
    }

    #[test]
    fn tokens_and_the_password_never_show_in_debug_output() {
        let p = LoginParams {
            password: "hunter2".into(),
            login_token: Some("syt_login".into()),
            access_token: Some("syt_access".into()),
            ..Default::default()
        };
        let d = format!("{p:?}");
        assert!(!d.contains("hunter2") && !d.contains("syt_"), "{d}");
    }
}
