//! The SDK's SQLite state store as mmrelay gives it to matrix-sdk ([`SdkStateStore`]): what
//! matrix-sdk reads again and again is kept in memory, and a sync token that is all a save
//! carries waits for the next save or the clean stop.
//!
//! Before each message it encrypts, matrix-sdk asks the state store for the room's members (to
//! know whose devices get the room key); for each message it receives, it reads the push rules,
//! the ignored-users list, the power levels, the sender's member event, profile, presence and
//! display-name holders, several of them more than once. From SQLite each read is a statement
//! built and compiled anew, a blocking-thread hand-off and a decoding: about twenty per received
//! message. All of these change only through `save_changes` (a sync) or `remove_room`. A write
//! that can change them empties the caches; the save after each received message, which
//! carries only the room's info (its unread counts) and the token, cannot, and keeps them.
//!
//! A sync that brings nothing (the long-poll timing out on a quiet relay) leaves matrix-sdk
//! with only a new sync token to save: ten 1 KiB pages, twice a minute, on a relay with
//! nothing to do. mmrelay resumes from the token in its own database, and the SDK's is only
//! read when that is missing (the first start after MMRelay), so such a token is held in
//! memory until the next save that carries something, or the clean stop. After a crash the SDK's
//! token is older, which nothing uses.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use matrix_sdk::deserialized_responses::{DisplayName, RawAnySyncOrStrippedState};
use matrix_sdk::ruma::events::presence::PresenceEvent;
use matrix_sdk::ruma::events::receipt::{Receipt, ReceiptThread, ReceiptType};
use matrix_sdk::ruma::events::{
    AnyGlobalAccountDataEvent, AnyRoomAccountDataEvent, GlobalAccountDataEventType,
    RoomAccountDataEventType, StateEventType,
};
use matrix_sdk::ruma::serde::Raw;
use matrix_sdk::ruma::{
    EventId, MilliSecondsSinceUnixEpoch, OwnedEventId, OwnedRoomId, OwnedTransactionId,
    OwnedUserId, RoomId, TransactionId, UserId,
};
use matrix_sdk::store::{
    ChildTransactionId, DependentQueuedRequest, DependentQueuedRequestKind, DynStateStore,
    QueueWedgeError, QueuedRequest, QueuedRequestKind, RoomLoadSettings, SentRequestKey,
    StateStoreDataKey, StateStoreDataValue, StoredThreadSubscription,
};
use matrix_sdk::{RoomInfo, RoomMemberships, StateChanges, StateStore, StoreError};
use matrix_sdk_base::MinimalRoomMemberEvent;

use super::read_cache::{read_through, ReadCache};

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// How many member lists (room and membership filter) are kept.
const MEMBER_LISTS: usize = 64;
/// How many state events, profiles, presence events and display-name lookups are kept (each).
const ROOM_READS: usize = 64;
/// How many global account-data events are kept.
const ACCOUNT_DATA: usize = 16;

type Cache<K, V> = Mutex<ReadCache<K, V>>;

/// What the wrapper keeps of its reads (each bounded; see the module doc).
#[derive(Debug)]
struct Reads {
    /// By room and membership filter.
    members: Cache<(OwnedRoomId, RoomMemberships), Vec<OwnedUserId>>,
    /// By room, event type and state key.
    state: Cache<(OwnedRoomId, StateEventType, String), Option<RawAnySyncOrStrippedState>>,
    account_data: Cache<GlobalAccountDataEventType, Option<Raw<AnyGlobalAccountDataEvent>>>,
    profiles: Cache<(OwnedRoomId, OwnedUserId), Option<MinimalRoomMemberEvent>>,
    presence: Cache<OwnedUserId, Option<Raw<PresenceEvent>>>,
    /// Who holds a display name in a room (`None`: the store answered without that name).
    names: Cache<(OwnedRoomId, DisplayName), Option<BTreeSet<OwnedUserId>>>,
}

impl Reads {
    fn new() -> Self {
        Self {
            members: Mutex::new(ReadCache::new(MEMBER_LISTS)),
            state: Mutex::new(ReadCache::new(ROOM_READS)),
            account_data: Mutex::new(ReadCache::new(ACCOUNT_DATA)),
            profiles: Mutex::new(ReadCache::new(ROOM_READS)),
            presence: Mutex::new(ReadCache::new(ROOM_READS)),
            names: Mutex::new(ReadCache::new(ROOM_READS)),
        }
    }

    fn invalidate(&self) {
        self.members.lock().unwrap().invalidate();
        self.state.lock().unwrap().invalidate();
        self.account_data.lock().unwrap().invalidate();
        self.profiles.lock().unwrap().invalidate();
        self.presence.lock().unwrap().invalidate();
        self.names.lock().unwrap().invalidate();
    }
}

/// The SDK's state store with its frequent reads cached (see the module doc).
#[derive(Debug)]
pub struct SdkStateStore {
    inner: Arc<DynStateStore>,
    reads: Reads,
    /// A sync token not written yet.
    token: Mutex<Option<String>>,
}

impl SdkStateStore {
    pub fn new(inner: Arc<DynStateStore>) -> Self {
        Self {
            inner,
            reads: Reads::new(),
            token: Mutex::new(None),
        }
    }

    /// Writes the sync token held back, if any. Call it once syncing has stopped.
    pub async fn save_at_stop(&self) -> Result<()> {
        let token = self.token.lock().unwrap().take();
        match token {
            Some(t) => {
                self.write(self.inner.save_changes(&StateChanges::new(t)))
                    .await
            }
            None => Ok(()),
        }
    }

    /// Runs the write `w` with the caches emptied before and after it.
    async fn write<T>(&self, w: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        self.reads.invalidate();
        let r = w.await;
        self.reads.invalidate();
        r
    }

    /// Saves `changes`: a write, unless they change nothing the caches hold.
    async fn save(&self, changes: &StateChanges) -> Result<()> {
        if changes_reads(changes) {
            self.write(self.inner.save_changes(changes)).await
        } else {
            self.inner.save_changes(changes).await
        }
    }
}

/// Whether `changes` may change what [`Reads`] keeps: everything but the room infos, the read
/// receipts and the sync token may. (The pattern names every field, so that a field added by a
/// newer matrix-sdk stops the build instead of being missed.)
pub fn changes_reads(changes: &StateChanges) -> bool {
    let StateChanges {
        sync_token: _,
        room_infos: _,
        receipts: _,
        account_data,
        presence,
        profiles,
        profiles_to_delete,
        state,
        room_account_data,
        redactions,
        stripped_state,
        ambiguity_maps,
    } = changes;
    !(account_data.is_empty()
        && presence.is_empty()
        && profiles.is_empty()
        && profiles_to_delete.is_empty()
        && state.is_empty()
        && room_account_data.is_empty()
        && redactions.is_empty()
        && stripped_state.is_empty()
        && ambiguity_maps.is_empty())
}

/// The sync token of `changes`, and whether they carry anything else: what the caches
/// depend on ([`changes_reads`], which names every field), room infos or receipts.
pub fn carries(changes: &StateChanges) -> (Option<&str>, bool) {
    let anything =
        changes_reads(changes) || !changes.room_infos.is_empty() || !changes.receipts.is_empty();
    (changes.sync_token.as_deref(), anything)
}

#[async_trait]
impl StateStore for SdkStateStore {
    type Error = StoreError;

    async fn get_user_ids(
        &self,
        room_id: &RoomId,
        memberships: RoomMemberships,
    ) -> Result<Vec<OwnedUserId>> {
        read_through(
            &self.reads.members,
            &(room_id.to_owned(), memberships),
            self.inner.get_user_ids(room_id, memberships),
        )
        .await
    }

    async fn save_changes(&self, changes: &StateChanges) -> Result<()> {
        // matrix-sdk follows each sync's save with an empty one.
        if let (token, false) = carries(changes) {
            if let Some(t) = token {
                *self.token.lock().unwrap() = Some(t.to_owned());
            }
            return Ok(());
        }
        let held = self.token.lock().unwrap().take();
        match held {
            Some(t) if changes.sync_token.is_none() => {
                let mut with_token = changes.clone();
                with_token.sync_token = Some(t);
                self.save(&with_token).await
            }
            _ => self.save(changes).await,
        }
    }

    async fn remove_room(&self, room_id: &RoomId) -> Result<()> {
        self.write(self.inner.remove_room(room_id)).await
    }

    async fn reopen(&self) -> Result<()> {
        self.write(self.inner.reopen()).await
    }

    // Below: the cached reads (through `read_through` or `reads.names`) and the rest, passed
    // through unchanged.

    async fn get_kv_data(&self, key: StateStoreDataKey<'_>) -> Result<Option<StateStoreDataValue>> {
        if let StateStoreDataKey::SyncToken = key {
            if let Some(t) = self.token.lock().unwrap().clone() {
                return Ok(Some(StateStoreDataValue::SyncToken(t)));
            }
        }
        self.inner.get_kv_data(key).await
    }

    async fn set_kv_data(
        &self,
        key: StateStoreDataKey<'_>,
        value: StateStoreDataValue,
    ) -> Result<()> {
        self.inner.set_kv_data(key, value).await
    }

    async fn remove_kv_data(&self, key: StateStoreDataKey<'_>) -> Result<()> {
        self.inner.remove_kv_data(key).await
    }

    async fn get_presence_event(&self, user_id: &UserId) -> Result<Option<Raw<PresenceEvent>>> {
        read_through(
            &self.reads.presence,
            user_id,
            self.inner.get_presence_event(user_id),
        )
        .await
    }

    async fn get_presence_events(
        &self,
        user_ids: &[OwnedUserId],
    ) -> Result<Vec<Raw<PresenceEvent>>> {
        self.inner.get_presence_events(user_ids).await
    }

    async fn get_state_event(
        &self,
        room_id: &RoomId,
        event_type: StateEventType,
        state_key: &str,
    ) -> Result<Option<RawAnySyncOrStrippedState>> {
        read_through(
            &self.reads.state,
            &(room_id.to_owned(), event_type.clone(), state_key.to_owned()),
            self.inner.get_state_event(room_id, event_type, state_key),
        )
        .await
    }

    async fn get_state_events(
        &self,
        room_id: &RoomId,
        event_type: StateEventType,
    ) -> Result<Vec<RawAnySyncOrStrippedState>> {
        self.inner.get_state_events(room_id, event_type).await
    }

    async fn get_state_events_for_keys(
        &self,
        room_id: &RoomId,
        event_type: StateEventType,
        state_keys: &[&str],
    ) -> Result<Vec<RawAnySyncOrStrippedState>> {
        self.inner
            .get_state_events_for_keys(room_id, event_type, state_keys)
            .await
    }

    async fn get_profile(
        &self,
        room_id: &RoomId,
        user_id: &UserId,
    ) -> Result<Option<MinimalRoomMemberEvent>> {
        read_through(
            &self.reads.profiles,
            &(room_id.to_owned(), user_id.to_owned()),
            self.inner.get_profile(room_id, user_id),
        )
        .await
    }

    async fn get_profiles<'a>(
        &self,
        room_id: &RoomId,
        user_ids: &'a [OwnedUserId],
    ) -> Result<BTreeMap<&'a UserId, MinimalRoomMemberEvent>> {
        self.inner.get_profiles(room_id, user_ids).await
    }

    async fn get_room_infos(&self, settings: &RoomLoadSettings) -> Result<Vec<RoomInfo>> {
        self.inner.get_room_infos(settings).await
    }

    async fn get_users_with_display_name(
        &self,
        room_id: &RoomId,
        display_name: &DisplayName,
    ) -> Result<BTreeSet<OwnedUserId>> {
        self.inner
            .get_users_with_display_name(room_id, display_name)
            .await
    }

    async fn get_users_with_display_names<'a>(
        &self,
        room_id: &RoomId,
        display_names: &'a [DisplayName],
    ) -> Result<HashMap<&'a DisplayName, BTreeSet<OwnedUserId>>> {
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        let generation = {
            let c = self.reads.names.lock().unwrap();
            for name in display_names {
                match c.get(&(room_id.to_owned(), name.clone())) {
                    Some(Some(users)) => {
                        found.insert(name, users.clone());
                    }
                    Some(None) => {}
                    None => missing.push(name.clone()),
                }
            }
            c.generation()
        };
        if missing.is_empty() {
            return Ok(found);
        }
        let read = self
            .inner
            .get_users_with_display_names(room_id, &missing)
            .await?;
        let mut c = self.reads.names.lock().unwrap();
        for name in &missing {
            let users = read.get(name).cloned();
            c.keep(generation, (room_id.to_owned(), name.clone()), &users);
            if let (Some(users), Some(asked)) = (users, display_names.iter().find(|n| *n == name)) {
                found.insert(asked, users);
            }
        }
        Ok(found)
    }

    async fn get_account_data_event(
        &self,
        event_type: GlobalAccountDataEventType,
    ) -> Result<Option<Raw<AnyGlobalAccountDataEvent>>> {
        read_through(
            &self.reads.account_data,
            &event_type,
            self.inner.get_account_data_event(event_type.clone()),
        )
        .await
    }

    async fn get_room_account_data_event(
        &self,
        room_id: &RoomId,
        event_type: RoomAccountDataEventType,
    ) -> Result<Option<Raw<AnyRoomAccountDataEvent>>> {
        self.inner
            .get_room_account_data_event(room_id, event_type)
            .await
    }

    async fn get_user_room_receipt_event(
        &self,
        room_id: &RoomId,
        receipt_type: ReceiptType,
        thread: ReceiptThread,
        user_id: &UserId,
    ) -> Result<Option<(OwnedEventId, Receipt)>> {
        self.inner
            .get_user_room_receipt_event(room_id, receipt_type, thread, user_id)
            .await
    }

    async fn get_event_room_receipt_events(
        &self,
        room_id: &RoomId,
        receipt_type: ReceiptType,
        thread: ReceiptThread,
        event_id: &EventId,
    ) -> Result<Vec<(OwnedUserId, Receipt)>> {
        self.inner
            .get_event_room_receipt_events(room_id, receipt_type, thread, event_id)
            .await
    }

    async fn get_custom_value(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.inner.get_custom_value(key).await
    }

    async fn set_custom_value(&self, key: &[u8], value: Vec<u8>) -> Result<Option<Vec<u8>>> {
        self.inner.set_custom_value(key, value).await
    }

    async fn set_custom_value_no_read(&self, key: &[u8], value: Vec<u8>) -> Result<()> {
        self.inner.set_custom_value_no_read(key, value).await
    }

    async fn remove_custom_value(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.inner.remove_custom_value(key).await
    }

    async fn save_send_queue_request(
        &self,
        room_id: &RoomId,
        transaction_id: OwnedTransactionId,
        created_at: MilliSecondsSinceUnixEpoch,
        request: QueuedRequestKind,
        priority: usize,
    ) -> Result<()> {
        self.inner
            .save_send_queue_request(room_id, transaction_id, created_at, request, priority)
            .await
    }

    async fn update_send_queue_request(
        &self,
        room_id: &RoomId,
        transaction_id: &TransactionId,
        content: QueuedRequestKind,
    ) -> Result<bool> {
        self.inner
            .update_send_queue_request(room_id, transaction_id, content)
            .await
    }

    async fn remove_send_queue_request(
        &self,
        room_id: &RoomId,
        transaction_id: &TransactionId,
    ) -> Result<bool> {
        self.inner
            .remove_send_queue_request(room_id, transaction_id)
            .await
    }

    async fn load_send_queue_requests(&self, room_id: &RoomId) -> Result<Vec<QueuedRequest>> {
        self.inner.load_send_queue_requests(room_id).await
    }

    async fn update_send_queue_request_status(
        &self,
        room_id: &RoomId,
        transaction_id: &TransactionId,
        error: Option<QueueWedgeError>,
    ) -> Result<()> {
        self.inner
            .update_send_queue_request_status(room_id, transaction_id, error)
            .await
    }

    async fn load_rooms_with_unsent_requests(&self) -> Result<Vec<OwnedRoomId>> {
        self.inner.load_rooms_with_unsent_requests().await
    }

    async fn save_dependent_queued_request(
        &self,
        room_id: &RoomId,
        parent_txn_id: &TransactionId,
        own_txn_id: ChildTransactionId,
        created_at: MilliSecondsSinceUnixEpoch,
        content: DependentQueuedRequestKind,
    ) -> Result<()> {
        self.inner
            .save_dependent_queued_request(room_id, parent_txn_id, own_txn_id, created_at, content)
            .await
    }

    async fn mark_dependent_queued_requests_as_ready(
        &self,
        room_id: &RoomId,
        parent_txn_id: &TransactionId,
        sent_parent_key: SentRequestKey,
    ) -> Result<usize> {
        self.inner
            .mark_dependent_queued_requests_as_ready(room_id, parent_txn_id, sent_parent_key)
            .await
    }

    async fn update_dependent_queued_request(
        &self,
        room_id: &RoomId,
        own_transaction_id: &ChildTransactionId,
        new_content: DependentQueuedRequestKind,
    ) -> Result<bool> {
        self.inner
            .update_dependent_queued_request(room_id, own_transaction_id, new_content)
            .await
    }

    async fn remove_dependent_queued_request(
        &self,
        room: &RoomId,
        own_txn_id: &ChildTransactionId,
    ) -> Result<bool> {
        self.inner
            .remove_dependent_queued_request(room, own_txn_id)
            .await
    }

    async fn load_dependent_queued_requests(
        &self,
        room: &RoomId,
    ) -> Result<Vec<DependentQueuedRequest>> {
        self.inner.load_dependent_queued_requests(room).await
    }

    async fn upsert_thread_subscriptions(
        &self,
        updates: Vec<(&RoomId, &EventId, StoredThreadSubscription)>,
    ) -> Result<()> {
        self.inner.upsert_thread_subscriptions(updates).await
    }

    async fn remove_thread_subscription(&self, room: &RoomId, thread_id: &EventId) -> Result<()> {
        self.inner.remove_thread_subscription(room, thread_id).await
    }

    async fn load_thread_subscription(
        &self,
        room: &RoomId,
        thread_id: &EventId,
    ) -> Result<Option<StoredThreadSubscription>> {
        self.inner.load_thread_subscription(room, thread_id).await
    }

    async fn close(&self) -> Result<()> {
        self.inner.close().await
    }

    async fn optimize(&self) -> Result<()> {
        self.inner.optimize().await
    }

    async fn get_size(&self) -> Result<Option<usize>> {
        self.inner.get_size().await
    }
}

#[cfg(test)]
#[path = "state_store_tests.rs"]
mod tests;
