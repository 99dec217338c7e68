//! What a save of the SDK's crypto state carries, as [`super::SdkCryptoStore`] judges it:
//! whether anything is left to write ([`nothing_to_write`]), the sync token and outbound
//! sessions it holds back ([`hold_token`], [`hold_outbound`]), and whether the account
//! changed ([`account_digest`]). Plain functions; the wrapper's module doc says why each rule
//! holds.

use std::collections::HashMap;

use matrix_sdk::ruma::OwnedRoomId;
use matrix_sdk_crypto::olm::OutboundGroupSession;
use matrix_sdk_crypto::store::types::{Changes, DeviceChanges, IdentityChanges};
use matrix_sdk_crypto::Account;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// The digest that tells whether `account` differs from the one on disk (`None` if its pickle
/// cannot be serialized: then it is always written).
pub(super) fn account_digest(account: &Account) -> Option<[u8; 32]> {
    let pickle = Zeroizing::new(serde_json::to_vec(&account.pickle()).ok()?);
    Some(Sha256::digest(&*pickle).into())
}

/// Whether `changes` carries nothing the store would write. The pattern names every field (the
/// SDK's own `Changes::is_empty` leaves some out), so that a field added by a newer matrix-sdk
/// stops the build instead of being dropped. Unchanged identities are named and left out: the
/// SQLite store writes only new and changed ones.
pub(super) fn nothing_to_write(changes: &Changes) -> bool {
    let Changes {
        private_identity,
        backup_version,
        backup_decryption_key,
        dehydrated_device_pickle_key,
        sessions,
        message_hashes,
        inbound_group_sessions,
        outbound_group_sessions,
        key_requests,
        identities,
        devices,
        withheld_session_info,
        room_settings,
        secrets,
        next_batch_token,
        received_room_key_bundles,
        room_key_backups_fully_downloaded,
        rooms_pending_key_bundle,
    } = changes;
    let IdentityChanges {
        new: new_identities,
        changed: changed_identities,
        unchanged: _,
    } = identities;
    let DeviceChanges {
        new: new_devices,
        changed: changed_devices,
        deleted: deleted_devices,
    } = devices;
    private_identity.is_none()
        && backup_version.is_none()
        && backup_decryption_key.is_none()
        && dehydrated_device_pickle_key.is_none()
        && sessions.is_empty()
        && message_hashes.is_empty()
        && inbound_group_sessions.is_empty()
        && outbound_group_sessions.is_empty()
        && key_requests.is_empty()
        && new_identities.is_empty()
        && changed_identities.is_empty()
        && new_devices.is_empty()
        && changed_devices.is_empty()
        && deleted_devices.is_empty()
        && withheld_session_info.is_empty()
        && room_settings.is_empty()
        && secrets.is_empty()
        && next_batch_token.is_none()
        && received_room_key_bundles.is_empty()
        && room_key_backups_fully_downloaded.is_empty()
        && rooms_pending_key_bundle.is_empty()
}

/// Holds `changes`' sync token in `held` when it is all they carry (returns `None`: nothing to
/// write); otherwise returns them with the newest token, held or theirs.
pub(super) fn hold_token(mut changes: Changes, held: &mut Option<String>) -> Option<Changes> {
    let token = changes.next_batch_token.take();
    if nothing_to_write(&changes) {
        if token.is_some() {
            *held = token;
        }
        return None;
    }
    changes.next_batch_token = token.or_else(|| held.take());
    *held = None;
    Some(changes)
}

/// Moves `changes`' outbound sessions into `latest`; returns the rest, `None` when nothing
/// else is left to save.
pub(super) fn hold_outbound(
    mut changes: Changes,
    latest: &mut HashMap<OwnedRoomId, OutboundGroupSession>,
) -> Option<Changes> {
    for s in changes.outbound_group_sessions.drain(..) {
        latest.insert(s.room_id().to_owned(), s);
    }
    (!nothing_to_write(&changes)).then_some(changes)
}
