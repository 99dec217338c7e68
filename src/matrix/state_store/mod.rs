//! The SDK's SQLite state store as mmrelay gives it to matrix-sdk ([`SdkStateStore`]): what
//! matrix-sdk reads again and again is kept in memory, and a save that only brings a new sync
//! token or new unread counts waits for the next save that matters, or the clean stop.
//!
//! Before each message it encrypts, matrix-sdk asks the state store for the room's members (to
//! know whose devices get the room key); for each message it receives, it reads the push rules,
//! the ignored-users list, the power levels, the sender's member event, profile, presence and
//! display-name holders, several of them more than once. From SQLite each read is a statement
//! built and compiled anew, a blocking-thread hand-off and a decoding: about twenty per received
//! message. All of these change only through `save_changes` (a sync) or `remove_room`. A write
//! that can change them empties the caches; the save after each received message, which
//! carries only the room's info and the token, cannot, and keeps them.
//!
//! That save is also held in memory ([`Held`](super::state_changes::Held)). Each message received changed the room's info
//! (its unread counts, read receipts, latest event) and the token: ten 1 KiB pages and an fsync
//! per message, for figures the relay never reads. A sync that brings nothing (the long-poll
//! timing out on a quiet relay) leaves only a new token: ten pages twice a minute. mmrelay
//! resumes from the token in its own database, and the SDK's is only read when that is missing
//! (the first start after MMRelay). A room info waits only while its
//! [`Standing`](super::state_changes::Standing) (joined or
//! not, encrypted or not, member list complete or not) is the one last written: a change of
//! standing is written at once, since after a crash the SDK must not believe it is in a room it
//! left, or that it knows a member list it must fetch again. What waits goes with the next save
//! that is written, or at the clean stop. After a crash the SDK's token and unread counts are
//! older, which nothing uses.

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
use super::state_changes::{changes_reads, Held, Standing};

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
    /// What waits for the next save that is written, or the clean stop.
    held: Mutex<Held>,
    /// The standing of each room's info on disk (as last written or read).
    standing: Mutex<HashMap<OwnedRoomId, Standing>>,
}

impl SdkStateStore {
    pub fn new(inner: Arc<DynStateStore>) -> Self {
        Self {
            inner,
            reads: Reads::new(),
            held: Mutex::new(Held::default()),
            standing: Mutex::new(HashMap::new()),
        }
    }

    /// Writes what is held back, if anything. Call it once syncing has stopped.
    pub async fn save_at_stop(&self) -> Result<()> {
        if self.held.lock().unwrap().is_empty() {
            return Ok(());
        }
        self.save_with_held(&StateChanges::default()).await
    }

    /// Saves `changes` with what is held added; if that fails, what was held waits again.
    async fn save_with_held(&self, changes: &StateChanges) -> Result<()> {
        let held = std::mem::take(&mut *self.held.lock().unwrap());
        if held.is_empty() {
            return self.save(changes).await;
        }
        let mut with_held = changes.clone();
        held.clone().add_to(&mut with_held);
        let r = self.save(&with_held).await;
        if r.is_err() {
            self.held.lock().unwrap().restore(held);
        }
        r
    }

    /// Whether `changes` may wait (then they are held): they carry no more than a sync token
    /// and room infos whose standing is the one on disk.
    fn hold(&self, changes: &StateChanges) -> bool {
        if changes_reads(changes) || !changes.receipts.is_empty() {
            return false;
        }
        let standing = self.standing.lock().unwrap();
        let same = changes
            .room_infos
            .iter()
            .all(|(room, info)| standing.get(room) == Some(&Standing::of(info)));
        drop(standing);
        if same {
            self.held.lock().unwrap().take_in(changes);
        }
        same
    }

    /// Runs the write `w` with the caches emptied before and after it.
    async fn write<T>(&self, w: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        self.reads.invalidate();
        let r = w.await;
        self.reads.invalidate();
        r
    }

    /// Saves `changes`: a write, unless they change nothing the caches hold. Notes the standing
    /// of the room infos written.
    async fn save(&self, changes: &StateChanges) -> Result<()> {
        if changes_reads(changes) {
            self.write(self.inner.save_changes(changes)).await?;
        } else {
            self.inner.save_changes(changes).await?;
        }
        let mut standing = self.standing.lock().unwrap();
        for (room, info) in &changes.room_infos {
            standing.insert(room.clone(), Standing::of(info));
        }
        Ok(())
    }
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
        if self.hold(changes) {
            return Ok(());
        }
        self.save_with_held(changes).await
    }

    async fn remove_room(&self, room_id: &RoomId) -> Result<()> {
        self.held.lock().unwrap().room_infos.remove(room_id);
        self.standing.lock().unwrap().remove(room_id);
        self.write(self.inner.remove_room(room_id)).await
    }

    async fn reopen(&self) -> Result<()> {
        self.write(self.inner.reopen()).await
    }

    // Below: the cached reads (through `read_through` or `reads.names`) and the rest, passed
    // through unchanged.

    async fn get_kv_data(&self, key: StateStoreDataKey<'_>) -> Result<Option<StateStoreDataValue>> {
        if let StateStoreDataKey::SyncToken = key {
            if let Some(t) = self.held.lock().unwrap().token.clone() {
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
        // A token set here replaces the one held: the held one must not overwrite it later.
        if let StateStoreDataKey::SyncToken = key {
            self.held.lock().unwrap().token = None;
        }
        self.inner.set_kv_data(key, value).await
    }

    async fn remove_kv_data(&self, key: StateStoreDataKey<'_>) -> Result<()> {
        if let StateStoreDataKey::SyncToken = key {
            self.held.lock().unwrap().token = None;
        }
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
        let mut infos = self.inner.get_room_infos(settings).await?;
        let held = self.held.lock().unwrap();
        let mut standing = self.standing.lock().unwrap();
        for info in &mut infos {
            let room = info.room_id().to_owned();
            match held.room_infos.get(&room) {
                // What is held is newer, and has the standing on disk.
                Some(newer) => *info = newer.clone(),
                None => {
                    standing.insert(room, Standing::of(info));
                }
            }
        }
        Ok(infos)
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
mod tests;
