//! The SDK's SQLite crypto store as mmrelay gives it to matrix-sdk ([`SdkCryptoStore`]): fewer
//! writes and fewer reads than matrix-sdk would make of it, for the same keys on disk.
//!
//! Outbound Megolm sessions (the keys this device encrypts room messages with) are saved only
//! at a clean shutdown. matrix-sdk saves the outbound session after every message it encrypts,
//! to persist the ratchet's new index: a 2 KB row and a committed transaction per relayed
//! message, once the largest share of our flash writes. Here the latest session of each room
//! is kept in memory, and written once when mmrelay stops cleanly, together with a mark that
//! says the saved sessions are current. The next start may continue them only if that mark is
//! there, and it removes the mark (durably) before using one. After a crash the sessions on disk
//! may be behind the ratchet, so they are never used again: each room begins a new session, as a
//! key rotation would, and shares it with the room's devices. No crash can thus make mmrelay
//! reuse a message index.
//!
//! The devices, cross-signing identities and tracked users it has read are kept
//! ([`Reads`]). Before each message it encrypts, the SDK reads the tracked users and looks
//! up every device and identity of the room's members; from SQLite each lookup meant a
//! blocking-thread hand-off, a query, a decryption and a MessagePack decoding: a fifth of
//! mmrelay's CPU per relayed message. So are the secret requests not sent yet, which the SDK
//! reads twice after each sync. They change only through `save_changes`, `save_tracked_users`
//! and `delete_outgoing_secret_requests`, and each write empties the cache.
//!
//! Two writes per sync are left out because they change nothing: matrix-sdk saves its Olm
//! account after every sync (about 7 KB), changed or not, and only a save whose account differs
//! from the one on disk (compared by a SHA-256 digest of its pickle) is written; and a save
//! that carries nothing but the sync token (which the crypto store keeps for no reader in
//! matrix-sdk) waits in memory for the next real save or the clean stop. Everything else (the
//! account when it changed, Olm sessions, inbound sessions, devices, identities) is saved
//! exactly when the SDK asks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use matrix_sdk::cross_process_lock::CrossProcessLockGeneration;
use matrix_sdk::ruma::events::secret::request::SecretName;
use matrix_sdk::ruma::{
    DeviceId, OwnedDeviceId, OwnedRoomId, OwnedUserId, RoomId, TransactionId, UserId,
};
use matrix_sdk_crypto::olm::{
    InboundGroupSession, OlmMessageHash, OutboundGroupSession, PrivateCrossSigningIdentity,
    SenderDataType, Session, StaticAccountData,
};
use matrix_sdk_crypto::store::types::{
    BackupKeys, Changes, DehydratedDeviceKey, PendingChanges, RoomKeyCounts, RoomKeyWithheldEntry,
    RoomPendingKeyBundleDetails, RoomSettings, StoredRoomKeyBundleData, TrackedUser,
};
use matrix_sdk_crypto::store::{CryptoStore, CryptoStoreError, DynCryptoStore};
use matrix_sdk_crypto::vodozemac::Curve25519PublicKey;
use matrix_sdk_crypto::{Account, DeviceData, GossipRequest, SecretInfo, UserIdentityData};
use zeroize::Zeroizing;

use super::read_cache::{read_through, ReadCache};

type Result<T, E = CryptoStoreError> = std::result::Result<T, E>;

/// The custom value that marks the outbound sessions on disk as saved by a clean shutdown.
const SAVED_AT_STOP: &str = "mmrelay_outbound_sessions_saved_at_stop";

/// The SDK's crypto store with fewer writes and reads (see the module doc). Clones share one
/// state: what one holds back, another saves at the clean stop.
#[derive(Debug, Clone)]
pub struct SdkCryptoStore {
    inner: Arc<DynCryptoStore>,
    /// The latest outbound session of each room (shared with the SDK's own copy).
    latest: Arc<Mutex<HashMap<OwnedRoomId, OutboundGroupSession>>>,
    /// Whether the sessions on disk may be continued: decided (and the mark removed) when the
    /// SDK first asks for one.
    resume: Arc<tokio::sync::OnceCell<bool>>,
    /// Devices, identities and tracked users read from `inner`.
    read: Arc<Reads>,
    /// The digest of the account as on disk (once read or written).
    account_on_disk: Arc<Mutex<Option<[u8; 32]>>>,
    /// A sync token not written yet.
    token: Arc<Mutex<Option<String>>>,
    /// The account's ids and identity keys, once loaded or saved.
    static_account: Arc<Mutex<Option<StaticAccountData>>>,
}

/// How many users' devices (and as many identities) are kept.
const READ_CACHE_USERS: usize = 256;

/// Devices, identities, the own device and tracked users as last read from the store, valid
/// until the next write (see [`super::read_cache`]).
#[derive(Debug)]
pub struct Reads {
    devices: Mutex<ReadCache<OwnedUserId, HashMap<OwnedDeviceId, DeviceData>>>,
    identities: Mutex<ReadCache<OwnedUserId, Option<UserIdentityData>>>,
    own_device: Mutex<ReadCache<(), DeviceData>>,
    /// All tracked users (read before each message sent, by matrix-sdk's key query check).
    tracked: Mutex<ReadCache<(), Vec<TrackedUser>>>,
    /// Secret requests not sent yet (read twice after each sync, for the outgoing requests).
    unsent: Mutex<ReadCache<(), Vec<GossipRequest>>>,
}

impl Reads {
    fn new() -> Self {
        Self {
            devices: Mutex::new(ReadCache::new(READ_CACHE_USERS)),
            identities: Mutex::new(ReadCache::new(READ_CACHE_USERS)),
            own_device: Mutex::new(ReadCache::new(1)),
            tracked: Mutex::new(ReadCache::new(1)),
            unsent: Mutex::new(ReadCache::new(1)),
        }
    }

    fn invalidate(&self) {
        self.devices.lock().unwrap().invalidate();
        self.identities.lock().unwrap().invalidate();
        self.own_device.lock().unwrap().invalidate();
        self.tracked.lock().unwrap().invalidate();
        self.unsent.lock().unwrap().invalidate();
    }
}

impl SdkCryptoStore {
    pub fn new(inner: Arc<DynCryptoStore>) -> Self {
        Self {
            inner,
            latest: Arc::default(),
            resume: Arc::default(),
            read: Arc::new(Reads::new()),
            account_on_disk: Arc::default(),
            token: Arc::default(),
            static_account: Arc::default(),
        }
    }

    /// The account's user and device ids and identity keys, once the SDK has loaded or saved
    /// it through this store.
    pub fn get_static_account(&self) -> Option<StaticAccountData> {
        self.static_account.lock().unwrap().clone()
    }

    /// Runs the write `w` with the read caches emptied before and after it.
    async fn write<T>(&self, w: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        self.read.invalidate();
        let r = w.await;
        self.read.invalidate();
        r
    }

    /// Saves the current outbound sessions (and a sync token not written yet) and marks the
    /// sessions as current; returns how many sessions. Call it once nothing will be encrypted
    /// any more.
    pub async fn save_at_stop(&self) -> Result<usize> {
        let sessions: Vec<_> = self.latest.lock().unwrap().values().cloned().collect();
        let token = self.token.lock().unwrap().take();
        if sessions.is_empty() && token.is_none() {
            return Ok(0);
        }
        let n = sessions.len();
        let changes = Changes {
            outbound_group_sessions: sessions,
            next_batch_token: token,
            ..Default::default()
        };
        self.write(self.inner.save_changes(changes)).await?;
        if n > 0 {
            self.inner.set_custom_value(SAVED_AT_STOP, vec![1]).await?;
        }
        Ok(n)
    }

    async fn may_resume(&self) -> Result<bool> {
        let inner = &self.inner;
        self.resume
            .get_or_try_init(|| async move {
                let marked = inner.get_custom_value(SAVED_AT_STOP).await?.is_some();
                if marked {
                    inner.remove_custom_value(SAVED_AT_STOP).await?;
                }
                Ok(marked)
            })
            .await
            .copied()
    }
}

#[async_trait]
impl CryptoStore for SdkCryptoStore {
    type Error = CryptoStoreError;

    async fn save_changes(&self, changes: Changes) -> Result<()> {
        let Some(rest) = hold_outbound(changes, &mut self.latest.lock().unwrap()) else {
            return Ok(());
        };
        let Some(rest) = hold_token(rest, &mut self.token.lock().unwrap()) else {
            return Ok(());
        };
        self.write(self.inner.save_changes(rest)).await
    }

    async fn save_pending_changes(&self, changes: PendingChanges) -> Result<()> {
        let Some(account) = &changes.account else {
            return self.inner.save_pending_changes(changes).await;
        };
        // The same for an account's life: taken once, not at every save (one per sync).
        self.static_account
            .lock()
            .unwrap()
            .get_or_insert_with(|| account.static_data().clone());
        let digest = account_digest(account);
        if digest.is_some() && *self.account_on_disk.lock().unwrap() == digest {
            return Ok(());
        }
        *self.account_on_disk.lock().unwrap() = None;
        self.inner.save_pending_changes(changes).await?;
        *self.account_on_disk.lock().unwrap() = digest;
        Ok(())
    }

    async fn get_outbound_group_session(
        &self,
        room_id: &RoomId,
    ) -> Result<Option<OutboundGroupSession>> {
        if let Some(s) = self.latest.lock().unwrap().get(room_id) {
            return Ok(Some(s.clone()));
        }
        if self.may_resume().await? {
            self.inner.get_outbound_group_session(room_id).await
        } else {
            Ok(None)
        }
    }

    // Everything below is passed through unchanged.

    async fn load_account(&self) -> Result<Option<Account>> {
        let account = self.inner.load_account().await?;
        *self.account_on_disk.lock().unwrap() = account.as_ref().and_then(account_digest);
        if let Some(a) = &account {
            *self.static_account.lock().unwrap() = Some(a.static_data().clone());
        }
        Ok(account)
    }

    async fn load_identity(&self) -> Result<Option<PrivateCrossSigningIdentity>> {
        self.inner.load_identity().await
    }

    async fn save_inbound_group_sessions(
        &self,
        sessions: Vec<InboundGroupSession>,
        backed_up_to_version: Option<&str>,
    ) -> Result<()> {
        self.inner
            .save_inbound_group_sessions(sessions, backed_up_to_version)
            .await
    }

    async fn get_sessions(&self, sender_key: &str) -> Result<Option<Vec<Session>>> {
        self.inner.get_sessions(sender_key).await
    }

    async fn get_inbound_group_session(
        &self,
        room_id: &RoomId,
        session_id: &str,
    ) -> Result<Option<InboundGroupSession>> {
        self.inner
            .get_inbound_group_session(room_id, session_id)
            .await
    }

    async fn get_withheld_info(
        &self,
        room_id: &RoomId,
        session_id: &str,
    ) -> Result<Option<RoomKeyWithheldEntry>> {
        self.inner.get_withheld_info(room_id, session_id).await
    }

    async fn get_withheld_sessions_by_room_id(
        &self,
        room_id: &RoomId,
    ) -> Result<Vec<RoomKeyWithheldEntry>> {
        self.inner.get_withheld_sessions_by_room_id(room_id).await
    }

    async fn get_inbound_group_sessions(&self) -> Result<Vec<InboundGroupSession>> {
        self.inner.get_inbound_group_sessions().await
    }

    async fn inbound_group_session_counts(
        &self,
        backup_version: Option<&str>,
    ) -> Result<RoomKeyCounts> {
        self.inner
            .inbound_group_session_counts(backup_version)
            .await
    }

    async fn get_inbound_group_sessions_by_room_id(
        &self,
        room_id: &RoomId,
    ) -> Result<Vec<InboundGroupSession>> {
        self.inner
            .get_inbound_group_sessions_by_room_id(room_id)
            .await
    }

    async fn get_inbound_group_sessions_for_device_batch(
        &self,
        curve_key: Curve25519PublicKey,
        sender_data_type: SenderDataType,
        after_session_id: Option<String>,
        limit: usize,
    ) -> Result<Vec<InboundGroupSession>> {
        self.inner
            .get_inbound_group_sessions_for_device_batch(
                curve_key,
                sender_data_type,
                after_session_id,
                limit,
            )
            .await
    }

    async fn inbound_group_sessions_for_backup(
        &self,
        backup_version: &str,
        limit: usize,
    ) -> Result<Vec<InboundGroupSession>> {
        self.inner
            .inbound_group_sessions_for_backup(backup_version, limit)
            .await
    }

    async fn mark_inbound_group_sessions_as_backed_up(
        &self,
        backup_version: &str,
        room_and_session_ids: &[(&RoomId, &str)],
    ) -> Result<()> {
        self.inner
            .mark_inbound_group_sessions_as_backed_up(backup_version, room_and_session_ids)
            .await
    }

    async fn reset_backup_state(&self) -> Result<()> {
        self.inner.reset_backup_state().await
    }

    async fn load_backup_keys(&self) -> Result<BackupKeys> {
        self.inner.load_backup_keys().await
    }

    async fn load_dehydrated_device_pickle_key(&self) -> Result<Option<DehydratedDeviceKey>> {
        self.inner.load_dehydrated_device_pickle_key().await
    }

    async fn delete_dehydrated_device_pickle_key(&self) -> Result<()> {
        self.inner.delete_dehydrated_device_pickle_key().await
    }

    async fn load_tracked_users(&self) -> Result<Vec<TrackedUser>> {
        read_through(&self.read.tracked, &(), self.inner.load_tracked_users()).await
    }

    async fn save_tracked_users(&self, users: &[(&UserId, bool)]) -> Result<()> {
        self.write(self.inner.save_tracked_users(users)).await
    }

    async fn get_device(
        &self,
        user_id: &UserId,
        device_id: &DeviceId,
    ) -> Result<Option<DeviceData>> {
        if let Some(d) = self.read.devices.lock().unwrap().get(user_id) {
            return Ok(d.get(device_id).cloned());
        }
        Ok(self.get_user_devices(user_id).await?.remove(device_id))
    }

    async fn get_user_devices(
        &self,
        user_id: &UserId,
    ) -> Result<HashMap<OwnedDeviceId, DeviceData>> {
        read_through(
            &self.read.devices,
            user_id,
            self.inner.get_user_devices(user_id),
        )
        .await
    }

    async fn get_own_device(&self) -> Result<DeviceData> {
        read_through(&self.read.own_device, &(), self.inner.get_own_device()).await
    }

    async fn get_user_identity(&self, user_id: &UserId) -> Result<Option<UserIdentityData>> {
        read_through(
            &self.read.identities,
            user_id,
            self.inner.get_user_identity(user_id),
        )
        .await
    }

    async fn is_message_known(&self, message_hash: &OlmMessageHash) -> Result<bool> {
        self.inner.is_message_known(message_hash).await
    }

    async fn get_outgoing_secret_requests(
        &self,
        request_id: &TransactionId,
    ) -> Result<Option<GossipRequest>> {
        self.inner.get_outgoing_secret_requests(request_id).await
    }

    async fn get_secret_request_by_info(
        &self,
        secret_info: &SecretInfo,
    ) -> Result<Option<GossipRequest>> {
        self.inner.get_secret_request_by_info(secret_info).await
    }

    async fn get_unsent_secret_requests(&self) -> Result<Vec<GossipRequest>> {
        read_through(
            &self.read.unsent,
            &(),
            self.inner.get_unsent_secret_requests(),
        )
        .await
    }

    async fn delete_outgoing_secret_requests(&self, request_id: &TransactionId) -> Result<()> {
        self.write(self.inner.delete_outgoing_secret_requests(request_id))
            .await
    }

    async fn get_secrets_from_inbox(
        &self,
        secret_name: &SecretName,
    ) -> Result<Vec<Zeroizing<String>>> {
        self.inner.get_secrets_from_inbox(secret_name).await
    }

    async fn delete_secrets_from_inbox(&self, secret_name: &SecretName) -> Result<()> {
        self.inner.delete_secrets_from_inbox(secret_name).await
    }

    async fn get_room_settings(&self, room_id: &RoomId) -> Result<Option<RoomSettings>> {
        self.inner.get_room_settings(room_id).await
    }

    async fn get_received_room_key_bundle_data(
        &self,
        room_id: &RoomId,
        user_id: &UserId,
    ) -> Result<Option<StoredRoomKeyBundleData>> {
        self.inner
            .get_received_room_key_bundle_data(room_id, user_id)
            .await
    }

    async fn get_pending_key_bundle_details_for_room(
        &self,
        room_id: &RoomId,
    ) -> Result<Option<RoomPendingKeyBundleDetails>> {
        self.inner
            .get_pending_key_bundle_details_for_room(room_id)
            .await
    }

    async fn get_all_rooms_pending_key_bundles(&self) -> Result<Vec<RoomPendingKeyBundleDetails>> {
        self.inner.get_all_rooms_pending_key_bundles().await
    }

    async fn has_downloaded_all_room_keys(&self, room_id: &RoomId) -> Result<bool> {
        self.inner.has_downloaded_all_room_keys(room_id).await
    }

    async fn get_custom_value(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.inner.get_custom_value(key).await
    }

    async fn set_custom_value(&self, key: &str, value: Vec<u8>) -> Result<()> {
        self.inner.set_custom_value(key, value).await
    }

    async fn remove_custom_value(&self, key: &str) -> Result<()> {
        self.inner.remove_custom_value(key).await
    }

    async fn try_take_leased_lock(
        &self,
        lease_duration_ms: u32,
        key: &str,
        holder: &str,
    ) -> Result<Option<CrossProcessLockGeneration>> {
        self.inner
            .try_take_leased_lock(lease_duration_ms, key, holder)
            .await
    }

    async fn next_batch_token(&self) -> Result<Option<String>> {
        if let Some(t) = self.token.lock().unwrap().clone() {
            return Ok(Some(t));
        }
        self.inner.next_batch_token().await
    }

    async fn close(&self) -> Result<()> {
        self.inner.close().await
    }

    async fn reopen(&self) -> Result<()> {
        self.write(self.inner.reopen()).await
    }

    async fn get_size(&self) -> Result<Option<usize>> {
        self.inner.get_size().await
    }
}

mod changes;
use changes::{account_digest, hold_outbound, hold_token};

#[cfg(test)]
mod tests;
