//! The device's cross-signing: what the store knows of it ([`cross_signing_state`]), setting
//! it up at login with the password ([`setup_cross_signing`]), and signing the device at start
//! where no password is needed ([`at_start`]).

use matrix_sdk::Client;

use super::session::password_auth;

/// What to say about cross-signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrossSigning {
    /// The device is signed by its owner's self-signing key.
    Signed,
    /// The account has an identity whose private keys are not here.
    IdentityElsewhere,
    NotSetUp,
}

impl CrossSigning {
    /// What `auth status` and `config check` say of it.
    pub fn describe(&self) -> &'static str {
        match self {
            CrossSigning::Signed => "this device is verified by its owner",
            CrossSigning::IdentityElsewhere => {
                "not signed: the account's identity keys are not on this device (run \
                 `mmrelay auth login --recovery-key-file FILE`, or `--reset-cross-signing` if \
                 the recovery key is lost too)"
            }
            CrossSigning::NotSetUp => {
                "not signed yet (mmrelay sets it up at start; if the homeserver asks for a \
                 password, run `mmrelay auth login`)"
            }
        }
    }
}

/// The device's cross-signing state as the store knows it.
pub async fn cross_signing_state(client: &Client) -> CrossSigning {
    match client.encryption().get_own_device().await {
        Ok(Some(d)) if d.is_cross_signed_by_owner() => CrossSigning::Signed,
        _ => match client.encryption().cross_signing_status().await {
            Some(s) if s.has_self_signing => CrossSigning::NotSetUp,
            _ => {
                let user = client.user_id().map(ToOwned::to_owned);
                match user {
                    Some(u) => match client.encryption().get_user_identity(&u).await {
                        Ok(Some(_)) => CrossSigning::IdentityElsewhere,
                        _ => CrossSigning::NotSetUp,
                    },
                    None => CrossSigning::NotSetUp,
                }
            }
        },
    }
}

/// Sets up cross-signing so that the device is verified by its owner. Uses the password when
/// the server asks for it (and says so when there is none); `reset` replaces an identity
/// whose keys are lost.
pub async fn setup_cross_signing(
    client: &Client,
    user: &str,
    password: Option<&str>,
    reset: bool,
) -> Result<CrossSigning, String> {
    let needs_password = |what: &str| {
        format!(
            "{what} needs the account's password, and this login has none: log in once with \
             the password (`mmrelay auth login --password-file FILE`)"
        )
    };
    let enc = client.encryption();
    if reset {
        let handle = enc
            .reset_cross_signing()
            .await
            .map_err(|e| format!("resetting cross-signing failed: {e}"))?;
        if let Some(handle) = handle {
            let session = match handle.auth_type() {
                matrix_sdk::encryption::CrossSigningResetAuthType::Uiaa(u) => u.session.clone(),
                _ => None,
            };
            let password =
                password.ok_or_else(|| needs_password("replacing the cross-signing identity"))?;
            handle
                .auth(Some(password_auth(user, password, session)))
                .await
                .map_err(|e| format!("resetting cross-signing failed: {e}"))?;
        }
    } else {
        if let Err(e) = enc.bootstrap_cross_signing_if_needed(None).await {
            let Some(uiaa) = e.as_uiaa_response() else {
                return Err(format!("setting up cross-signing failed: {e}"));
            };
            let password =
                password.ok_or_else(|| needs_password("setting up cross-signing here"))?;
            let auth = password_auth(user, password, uiaa.session.clone());
            enc.bootstrap_cross_signing_if_needed(Some(auth))
                .await
                .map_err(|e| format!("setting up cross-signing failed: {e}"))?;
        }
        sign_own_device(client).await?;
    }
    refresh_own_identity(client).await;
    Ok(cross_signing_state(client).await)
}

/// Signs this device with the self-signing key when the store holds it and the device is not
/// signed yet (an identity made earlier by this store, or restored from the recovery key).
pub(super) async fn sign_own_device(client: &Client) -> Result<(), String> {
    let enc = client.encryption();
    if let Ok(Some(device)) = enc.get_own_device().await {
        if !device.is_cross_signed_by_owner()
            && enc
                .cross_signing_status()
                .await
                .is_some_and(|s| s.has_self_signing)
        {
            device
                .verify()
                .await
                .map_err(|e| format!("signing this device failed: {e}"))?;
        }
    }
    Ok(())
}

/// Learns the account's public identity as the server now has it, so that a signature just
/// uploaded is seen by [`cross_signing_state`].
pub(super) async fn refresh_own_identity(client: &Client) {
    if let Some(u) = client.user_id().map(ToOwned::to_owned) {
        if let Err(e) = client.encryption().request_user_identity(&u).await {
            log::debug!("reading the account's identity back failed: {e}");
        }
    }
}

/// At start: signs this device when that needs no password (credentials made elsewhere give an
/// unsigned device). An account without a cross-signing identity gets one (the first upload
/// of cross-signing keys needs no password on current homeservers), and the device is signed
/// with it; a device already signed costs no request. The caller logs the outcome
/// ([`at_start_line`]); nothing here stops the relay.
pub async fn at_start(client: &Client) -> Result<CrossSigning, String> {
    if cross_signing_state(client).await == CrossSigning::Signed {
        return Ok(CrossSigning::Signed);
    }
    let user = client.user_id().map(|u| u.to_string()).unwrap_or_default();
    setup_cross_signing(client, &user, None, false).await
}

/// The log line for [`at_start`]'s outcome: whether it is a warning, and the text.
pub fn at_start_line(outcome: &Result<CrossSigning, String>) -> (bool, String) {
    match outcome {
        Ok(CrossSigning::Signed) => (
            false,
            "Cross-signing: this device is verified by its owner".into(),
        ),
        Ok(CrossSigning::IdentityElsewhere) => (
            true,
            "Cross-signing: this device is not signed: the account's cross-signing keys are not \
             in this E2EE store, so other users see the relay's messages as sent by an \
             unverified device; run `mmrelay auth login --recovery-key-file FILE` (or \
             `mmrelay auth login --reset-cross-signing` if the recovery key is lost too). \
             Relaying goes on."
                .into(),
        ),
        Ok(CrossSigning::NotSetUp) => (
            true,
            "Cross-signing: this device is not signed and cross-signing could not be set up; \
             run `mmrelay auth login`. Relaying goes on."
                .into(),
        ),
        Err(e) => (
            true,
            format!("Cross-signing: this device is not signed: {e}. Relaying goes on."),
        ),
    }
}
