//! The sync loop and what it hands to the relay: the minimal sync filter, one `/sync` at a
//! time from a token the relay saves itself (with the messages it accepted from that sync, in
//! one transaction, so that a crash can neither skip nor repeat an event), backfill of the
//! messages a limited (gapped) sync left out, and undecryptable events kept until their keys
//! arrive.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use log::{debug, info, warn};
use matrix_sdk::config::SyncSettings;
use matrix_sdk::deserialized_responses::{TimelineEvent, TimelineEventKind};
use matrix_sdk::room::MessagesOptions;
use matrix_sdk::ruma::api::client::filter::{
    FilterDefinition, LazyLoadOptions, RoomEventFilter, RoomFilter,
};
use matrix_sdk::ruma::events::room::encrypted::OriginalSyncRoomEncryptedEvent;
use matrix_sdk::ruma::serde::Raw;
use matrix_sdk::ruma::{uint, OwnedRoomId, UserId};
use matrix_sdk::store::{StateStoreDataKey, StateStoreDataValue};
use matrix_sdk::{Client, Room, RoomState};
use serde_json::Value;
use tokio::sync::mpsc;

use super::content::{parse_event, Incoming};
use super::event::{MatrixEvent, Undecryptable};
use crate::clock::now_ms;

/// The sync filter: only `rooms`, a short timeline without the bot's own messages, lazy-loaded
/// members, and nothing of presence, account data, typing or receipts.
///
/// Leaving out the bot's own messages matters on a busy mesh: the relay never acts on them, yet
/// each echo woke the long-poll, cost a store transaction and filled the timeline limit (a
/// burst of mesh messages could push a human's message out of the sync).
pub fn sync_filter(rooms: &[OwnedRoomId], own: &UserId, timeline_limit: u32) -> FilterDefinition {
    let mut f = FilterDefinition::default();
    f.presence = matrix_sdk::ruma::api::client::filter::Filter::ignore_all();
    f.account_data = matrix_sdk::ruma::api::client::filter::Filter::ignore_all();
    let mut room = RoomFilter::default();
    room.rooms = Some(rooms.to_vec());
    room.include_leave = false;
    room.account_data = RoomEventFilter::ignore_all();
    room.ephemeral = RoomEventFilter::ignore_all();
    let mut timeline = RoomEventFilter::default();
    timeline.limit = Some(timeline_limit.into());
    timeline.not_senders = vec![own.to_owned()];
    room.timeline = timeline;
    let mut state = RoomEventFilter::default();
    state.lazy_load_options = LazyLoadOptions::Enabled {
        include_redundant_members: false,
    };
    room.state = state;
    f.room = room;
    f
}

/// An undecryptable event waiting for its key.
pub(super) struct Waiting {
    pub room: OwnedRoomId,
    pub event_id: String,
    pub session_id: String,
    pub raw: Raw<OriginalSyncRoomEncryptedEvent>,
}

impl Waiting {
    /// When the homeserver received it (`origin_server_ts`), if the event says.
    pub fn sent_ms(&self) -> Option<u64> {
        self.raw.get_field::<u64>("origin_server_ts").ok().flatten()
    }

    /// One the relay kept from an earlier run.
    pub fn from_kept(u: &Undecryptable) -> Option<Waiting> {
        Some(Waiting {
            room: OwnedRoomId::try_from(u.room_id.as_str()).ok()?,
            event_id: u.event_id.clone(),
            session_id: u.session_id.clone(),
            raw: Raw::from_json_string(u.event.clone()).ok()?,
        })
    }
}

/// Everything the sync loop shares with the key-arrival tasks.
pub(super) struct SyncShared {
    pub rooms: HashSet<OwnedRoomId>,
    pub tx: mpsc::Sender<MatrixEvent>,
    /// Undecryptable events, oldest first (also kept by the relay, see [`Undecryptable`]).
    pub pending: Mutex<VecDeque<Waiting>>,
    pub pending_cap: usize,
    /// `matrix.e2ee.enabled`: when false, nothing from encrypted rooms is relayed.
    pub e2ee: bool,
}

/// How far back a gap is filled.
#[derive(Debug, Clone, Copy)]
pub(super) struct Backfill {
    /// Events older than this are not fetched (the relay would not send them anyway).
    pub max_age: Duration,
    /// At most this many events per room and gap.
    pub max_events: usize,
}

/// One `/sync` after another, from a token the relay controls.
pub(super) struct Syncer {
    client: Client,
    settings: SyncSettings,
    /// `since` of the next sync; `None` only before the first sync of a new store.
    token: Option<String>,
    /// Rooms joined before the response being read: a limited timeline there is a gap (for a
    /// room just joined it is only older history).
    seen: HashSet<OwnedRoomId>,
    shared: Arc<SyncShared>,
    backfill: Backfill,
}

impl Syncer {
    /// `since`: the token the relay saved; without one, the SDK's own (an older mmrelay or a
    /// first start), and without that a first sync.
    pub async fn new(
        client: Client,
        settings: SyncSettings,
        since: Option<String>,
        shared: Arc<SyncShared>,
        backfill: Backfill,
    ) -> Syncer {
        let token = match since {
            Some(t) => Some(t),
            None => match client
                .state_store()
                .get_kv_data(StateStoreDataKey::SyncToken)
                .await
            {
                Ok(Some(StateStoreDataValue::SyncToken(t))) => Some(t),
                _ => None,
            },
        };
        let seen = client
            .joined_rooms()
            .into_iter()
            .map(|r| r.room_id().to_owned())
            .collect();
        Syncer {
            client,
            settings,
            token,
            seen,
            shared,
            backfill,
        }
    }

    /// The settings of the syncs that follow (the first one does not long-poll).
    pub fn set_settings(&mut self, settings: SyncSettings) {
        self.settings = settings;
    }

    /// One sync: hands its messages (with what a gap left out, oldest first) to the relay,
    /// then [`MatrixEvent::Synced`] with the token that follows them.
    pub async fn once(&mut self) -> Result<(), matrix_sdk::Error> {
        let settings = match &self.token {
            Some(t) => self.settings.clone().token(t.clone()),
            None => self.settings.clone(),
        };
        let resp = self.client.sync_once(settings).await?;
        for (room_id, update) in &resp.rooms.joined {
            if !self.shared.rooms.contains(room_id) {
                continue;
            }
            let Some(room) = self.client.get_room(room_id) else {
                continue;
            };
            let known = !self.seen.insert(room_id.clone());
            if update.timeline.limited && known {
                self.fill_gap(&room, update.timeline.prev_batch.as_deref())
                    .await;
            }
            for ev in &update.timeline.events {
                on_timeline_event(&self.shared, &room, ev).await;
            }
        }
        self.token = Some(resp.next_batch.clone());
        let _ = self
            .shared
            .tx
            .send(MatrixEvent::Synced {
                token: Some(resp.next_batch),
            })
            .await;
        Ok(())
    }

    /// The sync left out messages between our token and `prev_batch` (more arrived than its
    /// timeline limit, e.g. during an outage): fetch them with `/messages`, newest first, back
    /// to our token or to the age limit, and deliver them oldest first.
    async fn fill_gap(&self, room: &Room, prev_batch: Option<&str>) {
        let Some(mut from) = prev_batch.map(str::to_owned) else {
            warn!(
                "Matrix skipped older messages in {} and gave no way to fetch them",
                room.room_id()
            );
            return;
        };
        let cutoff = now_ms().saturating_sub(self.backfill.max_age.as_millis() as u64);
        let mut found: Vec<TimelineEvent> = Vec::new();
        let mut why_stopped = "";
        'pages: loop {
            let mut opts = MessagesOptions::backward().from(from.as_str());
            opts.to = self.token.clone();
            opts.limit = uint!(50);
            let page = match room.messages(opts).await {
                Ok(p) => p,
                Err(e) => {
                    why_stopped = "fetching them failed";
                    warn!(
                        "Fetching skipped messages in {} failed: {e}",
                        room.room_id()
                    );
                    break;
                }
            };
            for ev in page.chunk {
                let ts = ev.timestamp_raw().map(|t| u64::from(t.get())).unwrap_or(0);
                if ts < cutoff {
                    break 'pages;
                }
                if found.len() >= self.backfill.max_events {
                    why_stopped = "too many";
                    break 'pages;
                }
                found.push(ev);
            }
            match page.end {
                Some(end) if end != from => from = end,
                _ => break,
            }
        }
        info!(
            "Fetched {} message(s) that the sync skipped in {}{}",
            found.len(),
            room.room_id(),
            if why_stopped.is_empty() {
                String::new()
            } else {
                format!(" (stopped: {why_stopped}; older ones are not relayed)")
            }
        );
        for ev in found.iter().rev() {
            on_timeline_event(&self.shared, room, ev).await;
        }
    }
}

async fn deliver(s: &SyncShared, room: &Room, mut incoming: Incoming) {
    let sender = incoming.sender().to_string();
    if let Ok(uid) = <&UserId>::try_from(sender.as_str()) {
        if let Ok(Some(member)) = room.get_member_no_sync(uid).await {
            incoming.set_sender_name(member.name().to_string());
        }
    }
    if s.tx.send(MatrixEvent::Incoming(incoming)).await.is_err() {
        debug!("Matrix events are no longer read");
    }
}

async fn on_timeline_event(s: &SyncShared, room: &Room, ev: &TimelineEvent) {
    let json = match serde_json::from_str::<Value>(ev.raw().json().get()) {
        Ok(json) => json,
        Err(e) => {
            debug!("skipping an unreadable event in {}: {e}", room.room_id());
            return;
        }
    };
    let utd =
        ev.kind.is_utd() || json.get("type").and_then(Value::as_str) == Some("m.room.encrypted");
    let encrypted =
        utd || matches!(ev.kind, TimelineEventKind::Decrypted(_)) || is_encrypted(room).await;
    if !s.e2ee && encrypted {
        debug!(
            "not relaying an event of encrypted {} (matrix.e2ee.enabled is false)",
            room.room_id()
        );
        return;
    }
    let event_id = json.get("event_id").and_then(Value::as_str).unwrap_or("");
    if utd {
        // The SDK could not decrypt it: keep it until its key arrives.
        let session_id = json
            .pointer("/content/session_id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let kept = Undecryptable {
            room_id: room.room_id().to_string(),
            event_id: event_id.to_string(),
            session_id: session_id.clone(),
            event: ev.raw().json().get().to_string(),
        };
        let waiting = Waiting {
            room: room.room_id().to_owned(),
            event_id: event_id.to_string(),
            session_id,
            raw: ev.raw().clone().cast_unchecked(),
        };
        let Some(given_up) = wait_for_key(s, waiting) else {
            return; // already waiting (seen again after a restart)
        };
        warn!(
            "Failed to decrypt event {event_id} in {}, requesting keys",
            room.room_id()
        );
        let _ = s.tx.send(MatrixEvent::Undecryptable(kept)).await;
        if let Some(old) = given_up {
            warn!("Gave up waiting for the key of event {old} (too many undecryptable events)");
            let _ =
                s.tx.send(MatrixEvent::UndecryptableDone { event_id: old })
                    .await;
        }
        return;
    }
    if let Some(incoming) = parse_event(room.room_id().as_str(), &json, encrypted) {
        deliver(s, room, incoming).await;
    }
    // An event kept from an earlier run that decrypts now (its key came while mmrelay was
    // stopped, and the sync brought it again): it no longer waits.
    if encrypted && forget_waiting(s, event_id) {
        let _ =
            s.tx.send(MatrixEvent::UndecryptableDone {
                event_id: event_id.to_string(),
            })
            .await;
    }
}

/// Adds `w` to the events waiting for their keys: `None` if it waits already, else the id of
/// the oldest one given up to make room, if any.
pub(super) fn wait_for_key(s: &SyncShared, w: Waiting) -> Option<Option<String>> {
    let mut pending = s.pending.lock().unwrap();
    if pending.iter().any(|p| p.event_id == w.event_id) {
        return None;
    }
    let given_up = if pending.len() >= s.pending_cap {
        pending.pop_front().map(|old| old.event_id)
    } else {
        None
    };
    pending.push_back(w);
    Some(given_up)
}

/// Removes `event_id` from the events waiting; whether it was there.
fn forget_waiting(s: &SyncShared, event_id: &str) -> bool {
    let mut pending = s.pending.lock().unwrap();
    let before = pending.len();
    pending.retain(|p| p.event_id != event_id);
    pending.len() != before
}

/// Which undecryptable events to try again.
pub(super) enum Retry {
    /// Those of these megolm sessions (their keys just arrived).
    Sessions(HashSet<String>),
    /// All of this room (a history bundle was imported).
    Room(OwnedRoomId),
    /// All (at start: keys may have come with the first sync).
    All,
}

/// Decrypts what waited for `which` and hands it to the relay, each followed by
/// [`MatrixEvent::UndecryptableDone`], then a token-less [`MatrixEvent::Synced`] so the relay
/// saves them at once.
pub(super) async fn retry_pending(s: &SyncShared, client: &Client, which: &Retry) {
    let ready: Vec<Waiting> = {
        let mut pending = s.pending.lock().unwrap();
        let (ready, keep): (Vec<_>, Vec<_>) = pending.drain(..).partition(|w| match which {
            Retry::Sessions(set) => set.contains(&w.session_id),
            Retry::Room(r) => *r == w.room,
            Retry::All => true,
        });
        pending.extend(keep);
        ready
    };
    let mut decrypted = false;
    for w in ready {
        let Some(room) = client.get_room(&w.room) else {
            s.pending.lock().unwrap().push_back(w);
            continue;
        };
        match room.decrypt_event(&w.raw, None).await {
            Ok(ev) if !ev.kind.is_utd() => {
                info!(
                    "Decrypted event {} in {} now that its key arrived",
                    w.event_id, w.room
                );
                on_timeline_event(s, &room, &ev).await;
                let done = MatrixEvent::UndecryptableDone {
                    event_id: w.event_id,
                };
                let _ = s.tx.send(done).await;
                decrypted = true;
            }
            _ => {
                debug!(
                    "event {} still does not decrypt (session {})",
                    w.event_id, w.session_id
                );
                let mut pending = s.pending.lock().unwrap();
                if !pending.iter().any(|p| p.event_id == w.event_id) {
                    pending.push_back(w);
                }
            }
        }
    }
    if decrypted {
        let _ = s.tx.send(MatrixEvent::Synced { token: None }).await;
    }
}

/// Whether `room` is joined.
pub(super) fn is_joined(client: &Client, room: &OwnedRoomId) -> bool {
    client
        .get_room(room)
        .is_some_and(|r| r.state() == RoomState::Joined)
}

/// Whether `room` is encrypted (asking the server if the store does not know).
pub(super) async fn is_encrypted(room: &Room) -> bool {
    room.latest_encryption_state()
        .await
        .is_ok_and(|s| s.is_encrypted())
}
