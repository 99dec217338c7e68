//! The running relay: one task that owns the store and the rules, between the radio link's
//! events and the Matrix client's events. Matrix -> mesh messages go through the durable outbox
//! (SQLite) and leave it only when the radio has taken them; mesh -> Matrix messages go into
//! matrix-sdk's persistent send queue. Every queue is bounded; a full one drops with a counted
//! warning.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use log::{debug, info, warn};

use super::rules::{MapEntry, MeshText, Names, Rules, Skip};
use crate::config::relay::{format_problems, load_relay_config, RelayConfig};
use crate::matrix::client::{self as mxclient, MatrixEvent, MatrixOptions};
use crate::matrix::credentials::MatrixPaths;
use crate::matrix::session::LoginParams;
use crate::mesh::link::{self, LinkEvent, LinkOptions, PendingSend, SendOutcome};
use crate::mesh::proto::{text, PortNum, BROADCAST};
use crate::mesh::session::{node_id, TextMessage};
use crate::store::{OutItem, Store};

/// Packet ids remembered to drop duplicates.
const RECENT_IDS: usize = 256;
/// Messages to Matrix queued but not yet on the homeserver, at most (the queue in front of
/// the Matrix client).
const PENDING_SENDS: usize = 1000;

/// The Matrix sync token, saved with the messages from Matrix it follows.
const SYNC_TOKEN: &str = "sync_token";
/// A sync token that brought nothing to relay is saved at most this often (a restart from an
/// older token only reads those syncs again).
const TOKEN_SAVE_INTERVAL: Duration = Duration::from_secs(300);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Reads and checks the config; logs one warning per ignored key.
pub fn load_config(file: &Path, home: &Path) -> Result<RelayConfig, String> {
    let text = std::fs::read_to_string(file).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!(
            "{}: not found; create it with `mmrelay config generate`, or pass --config",
            file.display()
        ),
        _ => format!("{}: cannot read: {e}", file.display()),
    })?;
    let env = |k: &str| std::env::var(k).ok();
    let loaded = load_relay_config(&text, home, &env).map_err(|p| format_problems(file, &p))?;
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
    skipped_old: u64,
    duplicates: u64,
}

struct InFlight {
    outbox_id: i64,
    pending: PendingSend,
}

/// Runs the relay until SIGTERM or SIGINT.
pub async fn run(home: &Path, config_file: &Path) -> Result<(), String> {
    let cfg = load_config(config_file, home)?;
    info!("Config: {}", config_file.display());
    let mut store = Store::open(&cfg.db_path, cfg.msgs_to_keep)?;
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
    // Packets older than this were relayed before (or predate the very first start).
    let mut threshold = store.state("last_rx_time").unwrap_or(start_secs);
    let mut recent: VecDeque<u32> = VecDeque::with_capacity(RECENT_IDS);
    let mut my_node: u32 = 0;
    let mut radio_ready = false;
    let mut pending: HashMap<String, MapEntry> = HashMap::new();
    let mut outbox: VecDeque<(i64, OutItem)> = store.outbox().into();
    if !outbox.is_empty() {
        info!(
            "{} message(s) from Matrix still waiting for the radio",
            outbox.len()
        );
    }
    let mut inflight: Option<InFlight> = None;
    // Messages for the mesh from the sync being read, saved with its token when it ends.
    let mut mx_batch: Vec<OutItem> = Vec::new();
    let mut saved_token = since_at_start;
    let mut synced_token: Option<String> = None;
    let mut token_saved_at = std::time::Instant::now();
    // Ids (negative, never in the table) of messages that could not be saved.
    let mut unsaved_id: i64 = 0;
    let mut n = Counters::default();
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
            if let Some((id, mut item)) = outbox.front().cloned() {
                if item.packet_id == 0 {
                    // Chosen once and saved before the first try, so a resend after a crash
                    // uses the same id and the radio drops the repeat.
                    item.packet_id = crate::mesh::session::random_packet_id();
                    if let Err(e) = store.outbox_update(id, &item) {
                        warn!("outbox: {e}");
                    }
                    if let Some(front) = outbox.front_mut() {
                        front.1.packet_id = item.packet_id;
                    }
                    // Mapped now, so that a mesh reply arriving right after the radio took the
                    // message finds it.
                    if let (Some(ev), Some(room)) = (&item.event_id, &item.room_id) {
                        let e = MapEntry {
                            mesh_id: item.packet_id,
                            event_id: ev.clone(),
                            room_id: room.clone(),
                            text: item.text.clone(),
                            meshnet: cfg.meshnet_name.clone(),
                        };
                        if let Err(e) = store.map_insert(&e) {
                            warn!("message map: {e}");
                        }
                    }
                }
                let msg = TextMessage {
                    channel: item.channel,
                    to: BROADCAST,
                    text: item.text.clone(),
                    reply_id: item.reply_id,
                    emoji: false,
                };
                match radio.send_text_with_id(msg, Some(item.packet_id)).await {
                    Ok(p) => {
                        inflight = Some(InFlight {
                            outbox_id: id,
                            pending: p,
                        })
                    }
                    Err(e) => {
                        warn!("Dropping a message for the mesh: {e}");
                        outbox.pop_front();
                        let _ = store.outbox_delete(id);
                    }
                }
            }
        }
        if radio_ready && !announced {
            announced = true;
            notifier.ready("Relaying between the radio and Matrix");
            info!("Relaying: the radio and Matrix are both connected");
        }
        tokio::select! {
            _ = &mut stop => break,
            _ = async { watchdog.as_mut().expect("guarded").tick().await }, if watchdog.is_some() => {
                notifier.watchdog();
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
                    outbox.pop_front();
                    if let Err(e) = store.outbox_delete(f.outbox_id) {
                        warn!("outbox: {e}");
                    }
                    n.to_mesh += 1;
                }
            }
            ev = link_events.recv() => match ev {
                None => break,
                Some(LinkEvent::Ready(info)) => {
                    radio_ready = true;
                    my_node = info.my_node_num;
                    for node in info.nodes.sorted() {
                        if let Err(e) = store.save_names(node.num, &node.long_name, &node.short_name) {
                            warn!("saving node names: {e}");
                        }
                    }
                }
                Some(LinkEvent::Disconnected { .. }) => radio_ready = false,
                Some(LinkEvent::NodeUpdated(node)) => {
                    if let Err(e) = store.save_names(node.num, &node.long_name, &node.short_name) {
                        warn!("saving node names: {e}");
                    }
                }
                Some(LinkEvent::Packet(p)) => {
                    let Some(d) = p.decoded() else { continue };
                    let port = d.portnum;
                    if port != PortNum::TextMessageApp as i32 && port != PortNum::DetectionSensorApp as i32 {
                        continue;
                    }
                    debug!("packet {:#010x} from {} on channel {}", p.id, node_id(p.from), p.channel);
                    if recent.contains(&p.id) {
                        n.duplicates += 1;
                        continue;
                    }
                    if recent.len() == RECENT_IDS {
                        recent.pop_front();
                    }
                    recent.push_back(p.id);
                    if p.rx_time != 0 && (p.rx_time as i64) < threshold {
                        n.skipped_old += 1;
                        debug!("skipping packet {:#010x} from before the last relayed one", p.id);
                        continue;
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
                    let names = store.names(p.from).unwrap_or_else(|| Names::unknown(p.from));
                    match rules.mesh_to_matrix(&m, &names, my_node, &|id| store.map_by_mesh(id)) {
                        Ok(out) => {
                            for o in out {
                                if pending.len() >= PENDING_SENDS {
                                    n.dropped_full += 1;
                                    warn!(
                                        "{} messages wait for the homeserver; dropped one from {} ({} dropped so far)",
                                        pending.len(), node_id(p.from), n.dropped_full
                                    );
                                    continue;
                                }
                                match mx.send(&o.room_id, "m.room.message", &o.content).await {
                                    Ok(txn) => {
                                        debug!("packet {:#010x} from {} queued for {}", m.id, node_id(m.from), o.room_id);
                                        n.to_matrix += 1;
                                        pending.insert(txn, MapEntry {
                                            mesh_id: m.id,
                                            event_id: String::new(),
                                            room_id: o.room_id.clone(),
                                            text: o.text.clone(),
                                            meshnet: cfg.meshnet_name.clone(),
                                        });
                                    }
                                    Err(e) => warn!("Could not queue a message for Matrix: {e}"),
                                }
                            }
                            // Saved with the message map entry when matrix-sdk reports the
                            // send (one transaction instead of two), and when stopping.
                            if p.rx_time != 0 {
                                threshold = threshold.max(p.rx_time as i64);
                            }
                        }
                        Err(Skip::OwnNode) | Err(Skip::NotMapped) | Err(Skip::PortNotRelayed) => {}
                        Err(skip) => debug!("not relaying packet {:#010x} from {}: {skip:?}", p.id, node_id(p.from)),
                    }
                }
            },
            ev = mx_events.recv() => match ev {
                None => break,
                Some(MatrixEvent::Sent { transaction_id, event_id, .. }) => {
                    if let Some(mut e) = pending.remove(&transaction_id) {
                        e.event_id = event_id;
                        if let Err(err) = store.map_insert_with_state(&e, "last_rx_time", threshold) {
                            warn!("message map: {err}");
                        }
                    }
                }
                Some(MatrixEvent::Synced { token }) => {
                    // What this sync brought is saved with its token in one transaction: after
                    // a crash the next start resumes at the token, so nothing is skipped or sent
                    // twice. A token alone is saved only now and then (flash).
                    if let Some(t) = &token {
                        synced_token = Some(t.clone());
                    }
                    let save_token = token.filter(|t| {
                        saved_token.as_ref() != Some(t)
                            && (!mx_batch.is_empty() || token_saved_at.elapsed() >= TOKEN_SAVE_INTERVAL)
                    });
                    if mx_batch.is_empty() && save_token.is_none() {
                        continue;
                    }
                    let items = std::mem::take(&mut mx_batch);
                    match store.outbox_push_with_text(&items, save_token.as_deref().map(|t| (SYNC_TOKEN, t))) {
                        Ok(ids) => {
                            outbox.extend(ids.into_iter().zip(items));
                            if save_token.is_some() {
                                saved_token = save_token;
                                token_saved_at = std::time::Instant::now();
                            }
                        }
                        Err(e) => {
                            // Still sent in this run; only a restart before then would lose them.
                            warn!("Could not save {} message(s) for the mesh: {e}", items.len());
                            for item in items {
                                unsaved_id -= 1;
                                outbox.push_back((unsaved_id, item));
                            }
                        }
                    }
                }
                Some(MatrixEvent::Incoming(ev)) => {
                    let (event_id, room_id) = match &ev {
                        crate::matrix::content::Incoming::Message(m) => (m.event_id.clone(), m.room_id.clone()),
                        crate::matrix::content::Incoming::Reaction(r) => (r.event_id.clone(), r.room_id.clone()),
                    };
                    match rules.matrix_to_mesh(&ev, now_ms(), &|e| store.map_by_event(e)) {
                        Ok(out) => {
                            if outbox.len() + mx_batch.len() >= cfg.mesh_queue {
                                n.dropped_full += 1;
                                warn!("The queue to the mesh is full ({} messages); dropped a message from {room_id} ({} dropped so far)", outbox.len(), n.dropped_full);
                                continue;
                            }
                            let item = OutItem {
                                channel: out.channel,
                                text: out.text,
                                reply_id: out.reply_id,
                                event_id: Some(event_id),
                                room_id: Some(room_id),
                                packet_id: 0,
                            };
                            mx_batch.push(item);
                        }
                        Err(Skip::TooOld) => {
                            n.skipped_old += 1;
                            info!("Not sending an old Matrix message to the mesh ({} skipped so far)", n.skipped_old);
                        }
                        Err(Skip::OwnUser) | Err(Skip::OwnMeshnet) | Err(Skip::NotMapped) => {}
                        Err(skip) => debug!("not relaying {event_id} to the mesh: {skip:?}"),
                    }
                }
            },
        }
    }

    notifier.stopping();
    if let Err(e) = store.set_state("last_rx_time", threshold) {
        warn!("saving relay state: {e}");
    }
    // Messages of a sync that did not finish are not saved: the next start reads it again.
    if let Some(t) = synced_token.filter(|t| saved_token.as_ref() != Some(t)) {
        if let Err(e) = store.outbox_push_with_text(&[], Some((SYNC_TOKEN, &t))) {
            warn!("saving the Matrix sync token: {e}");
        }
    }
    info!(
        "Shutting down: {} message(s) relayed to Matrix, {} to the mesh, {} dropped (queue full), {} skipped as old, {} duplicates; {} waiting for the radio",
        n.to_matrix, n.to_mesh, n.dropped_full, n.skipped_old, n.duplicates, outbox.len()
    );
    radio.stop();
    mx.stop().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), link_task).await;
    mx_task.abort();
    Ok(())
}
