//! The running Matrix client the relay drives: restores the session, runs the sync loop
//! ([`super::sync`]) with retries, joins the configured rooms, hands incoming messages and
//! reactions to a bounded channel, retries undecryptable events when their keys arrive (also
//! those the relay kept from an earlier run), and starts the sender ([`super::sender`]).

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use log::{debug, error, info, warn};
use matrix_sdk::config::SyncSettings;
use matrix_sdk::ruma::events::room::member::StrippedRoomMemberEvent;
use matrix_sdk::ruma::{OwnedRoomId, OwnedUserId, RoomId, RoomOrAliasId};
use matrix_sdk::{Client, Room, RoomState};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::credentials::MatrixPaths;
use super::cross_signing;
use super::event::{MatrixEvent, Undecryptable};
use super::sender::{self, Sender};
use super::session::{self, RestoreError};
use super::stores::HeldBack;
use super::sync::{
    is_encrypted, is_joined, retry_pending, sync_filter, wait_for_key, Backfill, Retry, SyncShared,
    Syncer, Waiting,
};
use crate::clock::Backoff;

/// How the client behaves; [`MatrixOptions::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct MatrixOptions {
    /// Room ids (`!id:server`) or aliases (`#alias:server`) to bridge.
    pub rooms: Vec<String>,
    /// Events per room in each sync response.
    pub timeline_limit: u32,
    /// Capacity of the event channel to the relay.
    pub event_queue: usize,
    /// Undecryptable events kept while waiting for their keys.
    pub pending_undecrypted: usize,
    /// Long-poll time of each sync.
    pub sync_timeout: Duration,
    /// MMRelay's legacy config login (`matrix.homeserver`, `bot_user_id`, `password`): used
    /// once, when credentials.json does not exist yet.
    pub legacy_login: Option<session::LoginParams>,
    /// MMRelay's older `matrix.access_token` config (with `homeserver` and `bot_user_id`):
    /// turned into credentials.json once, when that file does not exist yet.
    pub legacy_token: Option<(String, String, String)>,
    /// The sync token the relay saved with the last messages it accepted; the first sync
    /// starts there (without one, from the SDK's own token).
    pub since: Option<String>,
    /// How far back the gap of a limited sync is filled.
    pub backfill_max_age: Duration,
    /// At most this many events fetched per room and gap.
    pub backfill_max_events: usize,
    /// `matrix.e2ee.enabled`: when false, encrypted rooms are not bridged (as in MMRelay).
    pub e2ee: bool,
    /// Events the sender holds at most.
    pub send_queue: usize,
    /// Undecryptable events the relay kept from an earlier run (oldest first): they wait for
    /// their keys again.
    pub undecryptable: Vec<Undecryptable>,
}

impl MatrixOptions {
    pub fn new(rooms: Vec<String>) -> Self {
        MatrixOptions {
            rooms,
            // Generous: a limited (gapped) timeline would skip messages.
            timeline_limit: 50,
            event_queue: 100,
            pending_undecrypted: 100,
            sync_timeout: Duration::from_secs(30),
            legacy_login: None,
            legacy_token: None,
            since: None,
            backfill_max_age: Duration::from_secs(600),
            backfill_max_events: 500,
            e2ee: true,
            send_queue: 1000,
            undecryptable: Vec::new(),
        }
    }
}

/// The relay's handle on the running client.
#[derive(Clone)]
pub struct MatrixHandle {
    client: Client,
    sender: Sender,
    /// Taken by the first `stop`.
    sender_task: Arc<Mutex<Option<JoinHandle<()>>>>,
    rooms: Arc<Vec<OwnedRoomId>>,
    user_id: OwnedUserId,
    blocked: Arc<Vec<OwnedRoomId>>,
    held: HeldBack,
    /// Kept undecryptable events given up at start (too old, of a room no longer bridged, or
    /// beyond what the client waits for).
    dropped: Arc<Vec<String>>,
}

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Resolves ids and aliases to room ids.
async fn resolve_rooms(client: &Client, rooms: &[String]) -> Result<Vec<OwnedRoomId>, String> {
    let mut out = Vec::new();
    for r in rooms {
        let id = <&RoomOrAliasId>::try_from(r.as_str())
            .map_err(|e| format!("matrix_rooms: '{r}' is not a room id or alias: {e}"))?;
        if id.is_room_id() {
            out.push(<&RoomId>::try_from(r.as_str()).expect("checked").to_owned());
        } else {
            let alias = <&matrix_sdk::ruma::RoomAliasId>::try_from(r.as_str()).expect("checked");
            let resp = client
                .resolve_room_alias(alias)
                .await
                .map_err(|e| format!("cannot resolve room alias {r}: {e}"))?;
            out.push(resp.room_id);
        }
    }
    Ok(out)
}

impl MatrixHandle {
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn user_id(&self) -> &OwnedUserId {
        &self.user_id
    }

    /// The bridged rooms, by id.
    pub fn rooms(&self) -> &[OwnedRoomId] {
        &self.rooms
    }

    /// Bridged rooms that are encrypted while `matrix.e2ee.enabled` is false (not bridged).
    pub fn blocked_rooms(&self) -> &[OwnedRoomId] {
        &self.blocked
    }

    /// The undecryptable events kept from an earlier run that were given up at start (see
    /// `dropped`): the relay forgets them.
    pub fn dropped_undecryptable(&self) -> &[String] {
        &self.dropped
    }

    /// Where events to send go (in order, retried until the homeserver answers).
    pub fn sender(&self) -> &Sender {
        &self.sender
    }

    /// Stops sending, then saves what the stores held back (the outbound Megolm sessions for
    /// the next start, a sync token); what the sender still held is the caller's to keep.
    pub async fn stop(&self) {
        let Some(task) = self.sender_task.lock().unwrap().take() else {
            return;
        };
        task.abort();
        // Nothing may be encrypted after the sessions are saved: wait for the abort to land.
        if let Err(e) = task.await {
            if e.is_panic() {
                error!("The Matrix sender had panicked: {e}");
            }
        }
        match self.held.save_at_stop().await {
            Ok(n) if n > 0 => debug!("Saved {n} outbound Megolm session(s) for the next start"),
            Ok(_) => {}
            Err(e) => warn!(
                "Saving the outbound Megolm sessions failed (new ones at the next start): {e}"
            ),
        }
    }
}

/// Restores the session, runs the initial sync, joins the rooms and starts syncing.
pub async fn start(
    paths: &MatrixPaths,
    opts: MatrixOptions,
) -> Result<(MatrixHandle, mpsc::Receiver<MatrixEvent>, JoinHandle<()>), String> {
    if let Some(params) = &opts.legacy_login {
        if !paths.credentials.exists() {
            info!(
                "No credentials at {}; logging in once with the password from config.yaml",
                paths.credentials.display()
            );
            session::login(paths, params, &mut |line| info!("{line}")).await?;
            info!("You can now remove matrix.password from config.yaml");
        }
    }
    if let Some((homeserver, user, token)) = &opts.legacy_token {
        if !paths.credentials.exists() && opts.legacy_login.is_none() {
            info!(
                "No credentials at {}; writing them from matrix.access_token in config.yaml",
                paths.credentials.display()
            );
            session::credentials_from_token(paths, homeserver, user, token).await?;
        }
    }
    info!("Found credentials at {}", paths.credentials.display());
    let restored = session::restore(paths).await.map_err(|e| match e {
        RestoreError::NoCredentials(s)
        | RestoreError::WrongDevice(s)
        | RestoreError::DeviceKeysElsewhere(s)
        | RestoreError::Other(s) => s,
    })?;
    let client = restored.client;
    let user_id = client.user_id().expect("restored").to_owned();
    info!("Using device ID: {}", restored.credentials.device_id);
    info!("Setting up End-to-End Encryption...");

    let rooms = resolve_rooms(&client, &opts.rooms).await?;
    let (tx, rx) = mpsc::channel(opts.event_queue.max(1));
    let shared = Arc::new(SyncShared {
        rooms: rooms.iter().cloned().collect(),
        tx: tx.clone(),
        pending: Mutex::new(VecDeque::new()),
        pending_cap: opts.pending_undecrypted.max(1),
        e2ee: opts.e2ee,
    });

    // What waited for its key in an earlier run waits again, before the first sync: if that
    // sync brings one of them decrypted, it is not delivered twice.
    let mut dropped = Vec::new();
    let too_old = crate::clock::now_ms().saturating_sub(opts.backfill_max_age.as_millis() as u64);
    for kept in &opts.undecryptable {
        match Waiting::from_kept(kept) {
            // Older than the relay would send (`matrix.max_event_age`): no key can bring it
            // back to the mesh.
            Some(w) if w.sent_ms().is_some_and(|t| t < too_old) => {
                info!(
                    "Forgetting event {} that waited for its key: it is older than \
                     matrix.max_event_age now",
                    kept.event_id
                );
                dropped.push(kept.event_id.clone());
            }
            Some(w) if shared.rooms.contains(&w.room) => {
                // More kept than the client waits for: the oldest go, as during a run.
                if let Some(Some(old)) = wait_for_key(&shared, w) {
                    dropped.push(old);
                }
            }
            Some(_) => {
                warn!(
                    "Forgetting event {} that waited for its key: its room {} is no longer \
                     bridged",
                    kept.event_id, kept.room_id
                );
                dropped.push(kept.event_id.clone());
            }
            None => {
                warn!(
                    "Forgetting event {} that waited for its key: it could not be read back",
                    kept.event_id
                );
                dropped.push(kept.event_id.clone());
            }
        }
    }
    let still_waiting = shared.pending.lock().unwrap().len();
    if still_waiting > 0 {
        info!("{still_waiting} event(s) from an earlier run still wait for their keys");
    }

    // Invites: accepted for configured rooms only.
    let s = shared.clone();
    client.add_event_handler(
        move |ev: StrippedRoomMemberEvent, room: Room, client: Client| {
            let s = s.clone();
            async move { on_invite(&s, ev, room, client).await }
        },
    );

    info!("Performing initial sync...");
    let filter = sync_filter(&rooms, &user_id, opts.timeline_limit);
    let settings = SyncSettings::new()
        .filter(filter.into())
        .set_presence(matrix_sdk::ruma::presence::PresenceState::Offline);
    let backfill = Backfill {
        max_age: opts.backfill_max_age,
        max_events: opts.backfill_max_events,
    };
    let mut syncer = Syncer::new(
        client.clone(),
        settings.clone().timeout(Duration::ZERO),
        opts.since.clone(),
        shared.clone(),
        backfill,
    )
    .await;
    // An unreachable homeserver at start (a router whose uplink comes up after it) is waited
    // for, with backoff; a refusal (token revoked, forbidden) stops mmrelay with the reason.
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    loop {
        match syncer.once().await {
            Ok(()) => break,
            Err(e) => {
                let why = session::explain(&e, &restored.credentials.homeserver);
                if e.client_api_error_kind().is_some() {
                    return Err(format!("initial sync failed: {why}"));
                }
                let delay = backoff.failed();
                warn!(
                    "Initial sync failed: {why}; retrying in {}s",
                    delay.as_secs()
                );
                tokio::time::sleep(delay).await;
            }
        }
    }
    syncer.set_settings(settings.timeout(opts.sync_timeout));
    if restored.new_store {
        info!("Encryption keys uploaded successfully");
    }
    for (rid, name) in rooms.iter().zip(&opts.rooms) {
        if !is_joined(&client, rid) {
            info!("Joining room {name}");
            if let Err(e) = client.join_room_by_id(rid).await {
                warn!("Could not join room {name}: {e} (invite the bot, or check the room id)");
            }
        }
    }
    if opts.e2ee {
        let (warn, line) = cross_signing::at_start_line(&cross_signing::at_start(&client).await);
        if warn {
            warn!("{line}");
        } else {
            info!("{line}");
        }
    }
    let joined = rooms.iter().filter(|r| is_joined(&client, r)).count();
    // E2EE turned off: encrypted rooms are not bridged; say so once, naming the key.
    let mut blocked = Vec::new();
    if !opts.e2ee {
        for (rid, name) in rooms.iter().zip(&opts.rooms) {
            let Some(room) = client.get_room(rid) else {
                continue;
            };
            if is_encrypted(&room).await {
                warn!(
                    "Room {name} is encrypted, but matrix.e2ee.enabled is false in config.yaml: \
                     it is not bridged (set matrix.e2ee.enabled: true to bridge it)"
                );
                blocked.push(rid.clone());
            }
        }
    }
    info!(
        "Initial sync completed. Found {joined} rooms.{}",
        rss_kib()
            .map(|k| format!(" (memory: {:.1} MiB resident)", k as f64 / 1024.0))
            .unwrap_or_default()
    );

    let (sender, sender_task) =
        sender::spawn(client.clone(), opts.send_queue, opts.e2ee, tx.clone());

    // Late room keys: retry the undecryptable events they unlock.
    let keys_task = match client.encryption().room_keys_received_stream().await {
        Some(mut stream) => {
            let s = shared.clone();
            let c3 = client.clone();
            Some(tokio::spawn(async move {
                while let Some(batch) = stream.next().await {
                    let Ok(keys) = batch else { continue };
                    let sessions: HashSet<String> =
                        keys.into_iter().map(|k| k.session_id).collect();
                    retry_pending(&s, &c3, &Retry::Sessions(sessions)).await;
                }
            }))
        }
        None => None,
    };

    // History shared with an invite (MSC4268) is imported after the join; retry what waits in
    // that room a few times while the import runs.
    let history_task = match client.encryption().historic_room_key_stream().await {
        Some(mut stream) => {
            let s = shared.clone();
            let c5 = client.clone();
            Some(tokio::spawn(async move {
                while let Some(info) = stream.next().await {
                    debug!("room key bundle for {} from {}", info.room_id, info.sender);
                    for secs in [1, 3, 10] {
                        tokio::time::sleep(Duration::from_secs(secs)).await;
                        retry_pending(&s, &c5, &Retry::Room(info.room_id.clone())).await;
                    }
                }
            }))
        }
        None => None,
    };

    // Keys that came while mmrelay was stopped arrived with the first sync, before the key
    // stream above was listened to: try everything kept once now.
    if still_waiting > 0 {
        let s = shared.clone();
        let c = client.clone();
        tokio::spawn(async move { retry_pending(&s, &c, &Retry::All).await });
    }

    let homeserver = restored.credentials.homeserver.clone();
    let sync_task = tokio::spawn(async move {
        let mut backoff = Backoff::new(Duration::from_secs(5), Duration::from_secs(60));
        loop {
            match syncer.once().await {
                Ok(()) => backoff.reset(),
                Err(e) => {
                    use matrix_sdk::ruma::api::error::ErrorKind;
                    if let Some(ErrorKind::UnknownToken(_)) = e.client_api_error_kind() {
                        error!("The Matrix access token was revoked; run `mmrelay auth login`");
                        break;
                    }
                    let delay = backoff.failed();
                    warn!(
                        "Matrix sync failed: {}; retrying in {}s",
                        session::explain(&e, &homeserver),
                        delay.as_secs()
                    );
                    tokio::time::sleep(delay).await;
                }
            }
        }
        for t in [keys_task, history_task].into_iter().flatten() {
            t.abort();
        }
    });

    Ok((
        MatrixHandle {
            client,
            sender,
            sender_task: Arc::new(Mutex::new(Some(sender_task))),
            rooms: Arc::new(rooms),
            user_id,
            blocked: Arc::new(blocked),
            held: restored.held.clone(),
            dropped: Arc::new(dropped),
        },
        rx,
        sync_task,
    ))
}

async fn on_invite(s: &SyncShared, ev: StrippedRoomMemberEvent, room: Room, client: Client) {
    if Some(ev.state_key.as_ref()) != client.user_id() || room.state() != RoomState::Invited {
        return;
    }
    if !s.rooms.contains(room.room_id()) {
        info!(
            "Ignoring invite to {} (not a configured room)",
            room.room_id()
        );
        return;
    }
    info!("Accepting invite to {}", room.room_id());
    let mut backoff = Backoff::new(Duration::from_secs(2), Duration::from_secs(64));
    while backoff.failures() < 6 {
        match room.join().await {
            Ok(_) => return,
            Err(e) => {
                let delay = backoff.failed();
                warn!(
                    "Joining {} failed: {e}; retrying in {}s",
                    room.room_id(),
                    delay.as_secs()
                );
                tokio::time::sleep(delay).await;
            }
        }
    }
}
