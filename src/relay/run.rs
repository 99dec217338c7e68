//! The running relay: one task that owns the store and the rules, between the radio link's
//! events and the Matrix client's events. Every message is saved before it is handed on:
//! Matrix -> mesh messages (with the sync token they came with) leave the outbox when the radio
//! has taken them; mesh -> Matrix messages (with their transaction id) when the homeserver has
//! them. Bookkeeping that loses nothing if a crash skips it (sent messages' removal, the message
//! map, the last packet time, a sync token that brought nothing) waits for the next write or a
//! minute, to spare the flash. Every queue is bounded; a full one drops with a counted warning.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use log::{debug, info, warn};

use tokio::time::Instant;

use super::rules::{MapEntry, MeshText, Names, Rules, Skip};
use crate::config::relay::{format_problems, load_relay_config, RelayConfig};
use crate::matrix::client::{self as mxclient, MatrixEvent, MatrixHandle, MatrixOptions};
use crate::matrix::credentials::MatrixPaths;
use crate::matrix::sender::Outgoing;
use crate::matrix::session::LoginParams;
use crate::mesh::link::{self, LinkEvent, LinkOptions, PendingSend, SendOutcome};
use crate::mesh::proto::{text, PortNum, BROADCAST};
use crate::mesh::session::{node_id, TextMessage};
use crate::store::{Changes, MatrixOutItem, OutItem, Store};

/// Packet ids remembered to drop duplicates.
const RECENT_IDS: usize = 256;
/// Messages to Matrix queued but not yet on the homeserver, at most (the queue in front of
/// the Matrix client).
const PENDING_SENDS: usize = 1000;

/// The Matrix sync token, saved with the messages from Matrix it follows.
const SYNC_TOKEN: &str = "sync_token";
/// The last relayed packet's time (packets the radio replays that are older were relayed).
const LAST_RX_TIME: &str = "last_rx_time";
/// Bookkeeping waits at most this long for a write it can join.
const DEFER: Duration = Duration::from_secs(60);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Reads and checks the config; logs one warning per ignored key.
pub fn load_config(file: &Path, home: &Path) -> Result<RelayConfig, String> {
    let text = crate::config::read_text(file)?;
    let loaded = load_relay_config(&text, home, &crate::config::process_env)
        .map_err(|p| format_problems(file, &p))?;
    for key in &loaded.ignored {
        warn!(
            "{}: '{key}' is not used by mmrelay; ignoring it",
            file.display()
        );
    }
    Ok(loaded.config)
}

/// Counters an operator reads in the log at shutdown.
#[derive(Debug, Default)]
struct Counters {
    to_matrix: u64,
    to_mesh: u64,
    dropped_full: u64,
    refused: u64,
    skipped_old: u64,
    duplicates: u64,
}

struct InFlight {
    outbox_id: i64,
    pending: PendingSend,
}

/// Writes that can wait (see the module doc): saved with the next write that cannot, or when
/// `due`.
#[derive(Default)]
struct Deferred {
    done: Vec<i64>,
    maps: Vec<MapEntry>,
    last_rx_time: Option<i64>,
    token: Option<String>,
    due: Option<Instant>,
}

impl Deferred {
    fn arm(&mut self) {
        self.due.get_or_insert_with(|| Instant::now() + DEFER);
    }
}

/// The relay's state between events.
struct Relay {
    store: Store,
    rules: Rules,
    mx: MatrixHandle,
    meshnet: String,
    mesh_queue: usize,
    interactions: bool,
    /// Packets older than this were relayed before (or predate the very first start).
    threshold: i64,
    recent: VecDeque<u32>,
    my_node: u32,
    /// Matrix -> mesh, saved, not yet taken by the radio.
    outbox: VecDeque<(i64, OutItem)>,
    /// Matrix -> mesh from the sync being read, saved with its token when it ends.
    from_sync: Vec<OutItem>,
    /// Mesh -> Matrix, saved, not yet on the homeserver.
    to_matrix: HashMap<i64, MatrixOutItem>,
    deferred: Deferred,
    saved_token: Option<String>,
    /// Ids (negative, never in the tables) of messages that could not be saved.
    unsaved_id: i64,
    n: Counters,
}

impl Relay {
    /// Saves `c` with whatever bookkeeping waits (`all`: all of it; else only the removal of
    /// sent messages, which shares the pages of `c`). On an error the bookkeeping is kept for
    /// the next try and the caller gets the error.
    fn save(&mut self, mut c: Changes, all: bool) -> Result<crate::store::Saved, String> {
        let d = &mut self.deferred;
        c.to_matrix_done = std::mem::take(&mut d.done);
        let mut token = None;
        if all {
            c.maps = std::mem::take(&mut d.maps);
            if let Some(t) = d.last_rx_time.take() {
                c.ints.push((LAST_RX_TIME, t));
            }
            if c.text.is_none() {
                token = d.token.take();
                c.text = token.clone().map(|t| (SYNC_TOKEN, t));
            }
            d.due = None;
        }
        match self.store.save(&c) {
            Ok(saved) => {
                if let Some((_, t)) = c.text {
                    self.saved_token = Some(t);
                }
                Ok(saved)
            }
            Err(e) => {
                let d = &mut self.deferred;
                d.done.extend(c.to_matrix_done);
                d.maps.extend(c.maps);
                if let Some((_, t)) = c.ints.iter().find(|(k, _)| *k == LAST_RX_TIME) {
                    d.last_rx_time.get_or_insert(*t);
                }
                if token.is_some() {
                    d.token = d.token.take().or(token);
                }
                d.arm();
                Err(e)
            }
        }
    }

    fn map_by_mesh(&self, id: u32) -> Option<MapEntry> {
        let d = self.deferred.maps.iter().rev().find(|e| e.mesh_id == id);
        d.cloned().or_else(|| self.store.map_by_mesh(id))
    }

    fn map_by_event(&self, ev: &str) -> Option<MapEntry> {
        let d = self.deferred.maps.iter().rev().find(|e| e.event_id == ev);
        d.cloned().or_else(|| self.store.map_by_event(ev))
    }

    fn next_unsaved_id(&mut self) -> i64 {
        self.unsaved_id -= 1;
        self.unsaved_id
    }

    /// A packet from the radio.
    fn on_packet(&mut self, p: &crate::mesh::proto::MeshPacket) {
        let Some(d) = p.decoded() else { return };
        let port = d.portnum;
        if port != PortNum::TextMessageApp as i32 && port != PortNum::DetectionSensorApp as i32 {
            return;
        }
        debug!(
            "packet {:#010x} from {} on channel {}",
            p.id,
            node_id(p.from),
            p.channel
        );
        if self.recent.contains(&p.id) {
            self.n.duplicates += 1;
            return;
        }
        if self.recent.len() == RECENT_IDS {
            self.recent.pop_front();
        }
        self.recent.push_back(p.id);
        if p.rx_time != 0 && (p.rx_time as i64) < self.threshold {
            self.n.skipped_old += 1;
            debug!(
                "skipping packet {:#010x} from before the last relayed one",
                p.id
            );
            return;
        }
        let m = MeshText {
            id: p.id,
            from: p.from,
            to: p.to,
            channel: p.channel,
            portnum: port,
            text: text(&d.payload).into_owned(),
            reply_id: d.reply_id,
            emoji: d.emoji != 0,
        };
        let names = self
            .store
            .names(p.from)
            .unwrap_or_else(|| Names::unknown(p.from));
        let out = match self
            .rules
            .mesh_to_matrix(&m, &names, self.my_node, &|id| self.map_by_mesh(id))
        {
            Ok(out) => out,
            Err(Skip::OwnNode) | Err(Skip::NotMapped) | Err(Skip::PortNotRelayed) => return,
            Err(skip) => {
                debug!(
                    "not relaying packet {:#010x} from {}: {skip:?}",
                    p.id,
                    node_id(p.from)
                );
                return;
            }
        };
        let mut items = Vec::new();
        for o in out {
            if self.to_matrix.len() + items.len() >= PENDING_SENDS {
                self.n.dropped_full += 1;
                warn!(
                    "{} messages wait for the homeserver; dropped one from {} ({} dropped so far)",
                    self.to_matrix.len(),
                    node_id(p.from),
                    self.n.dropped_full
                );
                continue;
            }
            items.push(MatrixOutItem {
                room_id: o.room_id,
                txn_id: format!("mmrelay-{:016x}", fastrand::u64(..)),
                event_type: "m.room.message".into(),
                content: o.content.to_string(),
                mesh_id: m.id,
                text: o.text,
            });
        }
        if items.is_empty() {
            return;
        }
        if p.rx_time != 0 && (p.rx_time as i64) > self.threshold {
            self.threshold = p.rx_time as i64;
            self.deferred.last_rx_time = Some(self.threshold);
            self.deferred.arm();
        }
        let ids = match self.save(
            Changes {
                to_matrix: items.clone(),
                ..Default::default()
            },
            false,
        ) {
            Ok(saved) => saved.to_matrix,
            Err(e) => {
                warn!(
                    "Could not save a message for Matrix: {e} (it is sent, but would be lost \
                     if mmrelay stopped first)"
                );
                items.iter().map(|_| self.next_unsaved_id()).collect()
            }
        };
        for (id, item) in ids.into_iter().zip(items) {
            self.queue_to_matrix(id, item);
        }
    }

    fn queue_to_matrix(&mut self, id: i64, item: MatrixOutItem) {
        let o = Outgoing {
            id,
            room_id: item.room_id.clone(),
            txn_id: item.txn_id.clone(),
            event_type: item.event_type.clone(),
            content: item.content.clone(),
        };
        match self.mx.sender().try_queue(o) {
            Ok(()) => {
                debug!("packet {:#010x} queued for {}", item.mesh_id, item.room_id);
                self.to_matrix.insert(id, item);
            }
            // Cannot happen (the relay counts what it queued); kept for the next start.
            Err(_) => warn!("The Matrix sender is full; message kept for the next start"),
        }
    }

    /// The homeserver has (or refused) a message for Matrix.
    fn on_sent(&mut self, id: i64, event_id: Option<String>) {
        let Some(item) = self.to_matrix.remove(&id) else {
            return;
        };
        self.deferred.done.push(id);
        self.deferred.arm();
        match event_id {
            Some(event_id) => {
                self.n.to_matrix += 1;
                if self.interactions {
                    self.deferred.maps.push(MapEntry {
                        mesh_id: item.mesh_id,
                        event_id,
                        room_id: item.room_id,
                        text: item.text,
                        meshnet: self.meshnet.clone(),
                    });
                }
            }
            None => self.n.refused += 1,
        }
    }

    /// A message or reaction from Matrix.
    fn on_incoming(&mut self, ev: &crate::matrix::content::Incoming) {
        let (event_id, room_id) = match ev {
            crate::matrix::content::Incoming::Message(m) => (&m.event_id, &m.room_id),
            crate::matrix::content::Incoming::Reaction(r) => (&r.event_id, &r.room_id),
        };
        match self
            .rules
            .matrix_to_mesh(ev, now_ms(), &|e| self.map_by_event(e))
        {
            Ok(out) => {
                if self.outbox.len() + self.from_sync.len() >= self.mesh_queue {
                    self.n.dropped_full += 1;
                    warn!(
                        "The queue to the mesh is full ({} messages); dropped a message from \
                         {room_id} ({} dropped so far)",
                        self.outbox.len(),
                        self.n.dropped_full
                    );
                    return;
                }
                // The packet id is chosen now and saved with the message, so a resend after a
                // crash carries the same id and the mesh drops the repeat.
                self.from_sync.push(OutItem {
                    channel: out.channel,
                    text: out.text,
                    reply_id: out.reply_id,
                    event_id: Some(event_id.clone()),
                    room_id: Some(room_id.clone()),
                    packet_id: crate::mesh::session::random_packet_id(),
                });
            }
            Err(Skip::TooOld) => {
                self.n.skipped_old += 1;
                info!(
                    "Not sending an old Matrix message to the mesh ({} skipped so far)",
                    self.n.skipped_old
                );
            }
            Err(Skip::OwnUser) | Err(Skip::OwnMeshnet) | Err(Skip::NotMapped) => {}
            Err(skip) => debug!("not relaying {event_id} to the mesh: {skip:?}"),
        }
    }

    /// A sync ended (`token`), or late-decrypted events were delivered (`None`): what it
    /// brought for the mesh is saved with its token, so that after a crash the next start
    /// resumes at the token and nothing is skipped or sent twice. A token that brought nothing
    /// waits (a restart from an older one only reads those syncs again).
    fn on_synced(&mut self, token: Option<String>) {
        let token = token.filter(|t| self.saved_token.as_ref() != Some(t));
        if self.from_sync.is_empty() {
            if let Some(t) = token {
                self.deferred.token = Some(t);
                self.deferred.arm();
            }
            return;
        }
        let items = std::mem::take(&mut self.from_sync);
        let maps: Vec<MapEntry> = if self.interactions {
            items
                .iter()
                .filter_map(|i| {
                    Some(MapEntry {
                        mesh_id: i.packet_id,
                        event_id: i.event_id.clone()?,
                        room_id: i.room_id.clone()?,
                        text: i.text.clone(),
                        meshnet: self.meshnet.clone(),
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        if token.is_some() {
            self.deferred.token = None;
        }
        let c = Changes {
            to_mesh: items.clone(),
            maps,
            text: token.map(|t| (SYNC_TOKEN, t)),
            ..Default::default()
        };
        match self.save(c, false) {
            Ok(saved) => self.outbox.extend(saved.to_mesh.into_iter().zip(items)),
            Err(e) => {
                // Still sent in this run; only a restart before then would lose them.
                warn!(
                    "Could not save {} message(s) for the mesh: {e}",
                    items.len()
                );
                for item in items {
                    let id = self.next_unsaved_id();
                    self.outbox.push_back((id, item));
                }
            }
        }
    }

    /// Saves all bookkeeping now.
    fn flush(&mut self) {
        if let Err(e) = self.save(Changes::default(), true) {
            warn!("Saving the relay's state failed: {e}; will retry");
        }
    }
}

/// Runs the relay until SIGTERM or SIGINT.
pub async fn run(home: &Path, config_file: &Path) -> Result<(), String> {
    let cfg = load_config(config_file, home)?;
    info!("Config: {}", config_file.display());
    let store = Store::open(&cfg.db_path, cfg.msgs_to_keep)?;
    info!("Database: {}", cfg.db_path.display());

    let mpaths = MatrixPaths::new(home, cfg.store_path.as_deref());
    let mut room_ids: Vec<String> = cfg.rooms.iter().map(|r| r.id.clone()).collect();
    if let Some(dm) = &cfg.dm_room {
        room_ids.push(dm.clone());
    }
    let mut mopts = MatrixOptions::new(room_ids.clone());
    mopts.since = store.text(SYNC_TOKEN);
    mopts.backfill_max_age = cfg.max_event_age;
    if let (Some(hs), Some(user), Some(pw)) = (&cfg.homeserver, &cfg.bot_user_id, &cfg.password) {
        mopts.legacy_login = Some(LoginParams {
            homeserver: hs.clone(),
            username: user.clone(),
            password: pw.clone(),
            reset_cross_signing: false,
        });
    }
    if let (Some(hs), Some(user), Some(token)) =
        (&cfg.homeserver, &cfg.bot_user_id, &cfg.access_token)
    {
        mopts.legacy_token = Some((hs.clone(), user.clone(), token.clone()));
    }
    mopts.e2ee = cfg.e2ee_enabled;
    mopts.send_queue = PENDING_SENDS;
    let since_at_start = mopts.since.clone();
    let (mx, mut mx_events, mx_task) = mxclient::start(&mpaths, mopts).await?;
    let resolved: Vec<String> = mx.rooms().iter().map(|r| r.to_string()).collect();
    let rules = Rules {
        meshnet_name: cfg.meshnet_name.clone(),
        bot_user_id: mx.user_id().to_string(),
        rooms: cfg
            .rooms
            .iter()
            .zip(&resolved)
            .filter(|(_, id)| !mx.blocked_rooms().iter().any(|b| b.as_str() == id.as_str()))
            .map(|(r, id)| (id.clone(), r.channel))
            .collect(),
        dm_room: cfg
            .dm_room
            .as_ref()
            .and_then(|_| resolved.get(cfg.rooms.len()).cloned()),
        matrix_prefix: cfg.matrix_prefix.clone(),
        mesh_prefix: cfg.mesh_prefix.clone(),
        broadcast_enabled: cfg.broadcast_enabled,
        detection_sensor: cfg.detection_sensor,
        reactions: cfg.reactions,
        replies: cfg.replies,
        max_event_age_ms: cfg.max_event_age.as_millis() as u64,
    };

    let mut lopts = LinkOptions::new(cfg.endpoint.clone());
    lopts.send_spacing = cfg.message_delay;
    lopts.send_queue = 4;
    let (radio, mut link_events, link_task) = link::spawn(lopts);

    let start_secs = (now_ms() / 1000) as i64;
    let threshold = store.state(LAST_RX_TIME).unwrap_or(start_secs);
    let outbox: VecDeque<(i64, OutItem)> = store.outbox().into();
    if !outbox.is_empty() {
        info!(
            "{} message(s) from Matrix still waiting for the radio",
            outbox.len()
        );
    }
    let waiting = store.to_matrix();
    let mut r = Relay {
        store,
        rules,
        mx: mx.clone(),
        meshnet: cfg.meshnet_name.clone(),
        mesh_queue: cfg.mesh_queue,
        interactions: cfg.reactions || cfg.replies,
        threshold,
        recent: VecDeque::with_capacity(RECENT_IDS),
        my_node: 0,
        outbox,
        from_sync: Vec::new(),
        to_matrix: HashMap::new(),
        deferred: Deferred::default(),
        saved_token: since_at_start,
        unsaved_id: 0,
        n: Counters::default(),
    };
    // What an earlier run saved for Matrix goes first (its transaction ids make the
    // homeserver recognise what it already has).
    if !waiting.is_empty() {
        info!(
            "{} message(s) from the mesh still waiting for the homeserver",
            waiting.len()
        );
    }
    for (id, item) in waiting {
        r.queue_to_matrix(id, item);
    }

    let mut inflight: Option<InFlight> = None;
    let mut radio_ready = false;
    let stop = crate::cli::radio::shutdown_signal();
    tokio::pin!(stop);
    // systemd: READY once both links are up, WATCHDOG from this loop, STOPPING at the end.
    let notifier = crate::service::notify::Notifier::from_env();
    let mut announced = false;
    let mut watchdog = notifier
        .watchdog_interval()
        .map(|d| tokio::time::interval(d.max(Duration::from_millis(100))));

    loop {
        // Hand the next outbox message to the radio when it can take one.
        if inflight.is_none() && radio_ready {
            if let Some((id, item)) = r.outbox.front().cloned() {
                let msg = TextMessage {
                    channel: item.channel,
                    to: BROADCAST,
                    text: item.text.clone(),
                    reply_id: item.reply_id,
                    emoji: false,
                };
                let packet_id = (item.packet_id != 0).then_some(item.packet_id);
                match radio.send_text_with_id(msg, packet_id).await {
                    Ok(p) => {
                        inflight = Some(InFlight {
                            outbox_id: id,
                            pending: p,
                        })
                    }
                    Err(e) => {
                        warn!("Dropping a message for the mesh: {e}");
                        r.outbox.pop_front();
                        let _ = r.store.outbox_delete(id);
                    }
                }
            }
        }
        if radio_ready && !announced {
            announced = true;
            notifier.ready("Relaying between the radio and Matrix");
            info!("Relaying: the radio and Matrix are both connected");
        }
        let due = r.deferred.due;
        tokio::select! {
            _ = &mut stop => break,
            _ = async { watchdog.as_mut().expect("guarded").tick().await }, if watchdog.is_some() => {
                notifier.watchdog();
            }
            _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                r.flush();
            }
            taken = async { inflight.as_mut().expect("guarded").pending.taken().await }, if inflight.is_some() => {
                // The message leaves the outbox as soon as the radio has queued it; the mesh's
                // answer comes later and is only logged.
                let f = inflight.take().expect("guarded");
                let delivered = match taken {
                    Ok(()) => {
                        let pending = f.pending;
                        tokio::spawn(async move {
                            let id = pending.packet_id;
                            match pending.outcome().await {
                                SendOutcome::Acked => debug!("packet {id:#010x} acknowledged by the mesh"),
                                other => warn!("Message {id:#010x} was sent to the mesh, but {other}"),
                            }
                        });
                        true
                    }
                    Err(outcome @ (SendOutcome::LinkLost { accepted: false } | SendOutcome::Rejected { .. })) => {
                        debug!("message for the mesh not taken by the radio ({outcome}); will retry");
                        false
                    }
                    Err(outcome) => {
                        if !matches!(outcome, SendOutcome::Acked) {
                            warn!("Message sent to the mesh, but {outcome}");
                        }
                        true
                    }
                };
                if delivered {
                    r.outbox.pop_front();
                    if let Err(e) = r.store.outbox_delete(f.outbox_id) {
                        warn!("outbox: {e}");
                    }
                    r.n.to_mesh += 1;
                }
            }
            ev = link_events.recv() => match ev {
                None => break,
                Some(LinkEvent::Ready(info)) => {
                    radio_ready = true;
                    r.my_node = info.my_node_num;
                    for node in info.nodes.sorted() {
                        if let Err(e) = r.store.save_names(node.num, &node.long_name, &node.short_name) {
                            warn!("saving node names: {e}");
                        }
                    }
                }
                Some(LinkEvent::Disconnected { .. }) => radio_ready = false,
                Some(LinkEvent::NodeUpdated(node)) => {
                    if let Err(e) = r.store.save_names(node.num, &node.long_name, &node.short_name) {
                        warn!("saving node names: {e}");
                    }
                }
                Some(LinkEvent::Packet(p)) => r.on_packet(&p),
            },
            ev = mx_events.recv() => match ev {
                None => break,
                Some(MatrixEvent::Sent { id, event_id, .. }) => r.on_sent(id, Some(event_id)),
                Some(MatrixEvent::SendFailed { id, .. }) => r.on_sent(id, None),
                Some(MatrixEvent::Synced { token }) => r.on_synced(token),
                Some(MatrixEvent::Incoming(ev)) => r.on_incoming(&ev),
            },
        }
    }

    notifier.stopping();
    // Messages of a sync that did not finish are not saved: the next start reads it again.
    r.deferred.last_rx_time = Some(r.threshold);
    r.flush();
    let n = &r.n;
    info!(
        "Shutting down: {} message(s) relayed to Matrix, {} to the mesh, {} dropped (queue full), \
         {} refused by the homeserver, {} skipped as old, {} duplicates; {} waiting for the radio, \
         {} for the homeserver",
        n.to_matrix,
        n.to_mesh,
        n.dropped_full,
        n.refused,
        n.skipped_old,
        n.duplicates,
        r.outbox.len(),
        r.to_matrix.len()
    );
    radio.stop();
    mx.stop().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), link_task).await;
    mx_task.abort();
    Ok(())
}
