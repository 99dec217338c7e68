//! The running relay: one task that owns the store and the rules, between the radio link's
//! events and the Matrix client's events. Every message is saved before it is handed on:
//! Matrix -> mesh messages (with the sync token they came with) leave the outbox when the radio
//! has taken them; mesh -> Matrix messages (with their transaction id) when the homeserver has
//! them. Bookkeeping that loses nothing if a crash skips it (sent messages' removal, the message
//! map, the last packet time) joins the next write, or is written by itself once the relay has
//! been quiet for two seconds (a minute at most); a sync token that brought nothing joins the
//! next write or is saved at shutdown. Both spare the flash. Every queue is bounded; a full one
//! drops with a counted warning.

use std::path::Path;
use std::time::Duration;

use log::{debug, info, warn};

use tokio::time::Instant;

use super::bot::Bot;
use super::commands::BotName;
use super::rules::Rules;
use super::state::Relay;
use crate::config::relay::{format_problems, load_relay_config, RelayConfig};
use crate::matrix::client::{self as mxclient, MatrixOptions};
use crate::matrix::credentials::MatrixPaths;
use crate::matrix::event::{MatrixEvent, Undecryptable};
use crate::matrix::session::LoginParams;
use crate::mesh::link::{self, LinkEvent, LinkOptions, PendingSend, SendOutcome};
use crate::mesh::radio::TextMessage;
use crate::service::health::HealthListener;
use crate::store::Store;

use super::state::{Handoff, SYNC_TOKEN};

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

/// The bot's display name, for commands that must mention it (its user id and localpart
/// work without it).
async fn bot_display_name(mx: &mxclient::MatrixHandle) -> Option<String> {
    let account = mx.client().account();
    match tokio::time::timeout(Duration::from_secs(5), account.get_display_name()).await {
        Ok(Ok(name)) => name,
        Ok(Err(e)) => {
            warn!("Could not read the bot's display name ({e}); commands must name its user id");
            None
        }
        Err(_) => {
            warn!("Reading the bot's display name timed out; commands must name its user id");
            None
        }
    }
}

struct InFlight {
    outbox_id: i64,
    pending: PendingSend,
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
            ..Default::default()
        });
    }
    if let (Some(hs), Some(user), Some(token)) =
        (&cfg.homeserver, &cfg.bot_user_id, &cfg.access_token)
    {
        mopts.legacy_token = Some((hs.clone(), user.clone(), token.clone()));
    }
    mopts.e2ee = cfg.e2ee_enabled;
    // A short hand-over queue: the relay keeps the rest, saved and in order (its backlog).
    mopts.send_queue = 16;
    let since_at_start = mopts.since.clone();
    mopts.undecryptable = store
        .waiting_events()
        .into_iter()
        .map(|w| Undecryptable {
            room_id: w.room_id,
            event_id: w.event_id,
            session_id: w.session_id,
            event: w.event,
        })
        .collect();
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

    let mut r = Relay::new(
        store,
        rules,
        mx.sender().clone(),
        cfg.meshnet_name.clone(),
        cfg.mesh_queue,
        since_at_start,
    );
    for event_id in mx.dropped_undecryptable() {
        r.on_undecryptable_done(event_id.clone());
    }
    if cfg.plugins.any_active() {
        let name = BotName {
            user_id: mx.user_id().to_string(),
            display_name: bot_display_name(&mx).await,
        };
        let mapped = r.mapped_channels();
        let active = cfg
            .plugins
            .all()
            .iter()
            .filter(|(_, p)| p.active)
            .map(|(n, _)| *n)
            .collect::<Vec<_>>();
        info!("Bot commands: {}", active.join(", "));
        r.set_bot(Bot::new(cfg.plugins.clone(), mapped, name));
    }

    let mut inflight: Option<InFlight> = None;
    let mut radio_ready = false;
    let stop = crate::service::signal::shutdown_signal();
    tokio::pin!(stop);
    // systemd: READY once both links are up, WATCHDOG from this loop, STOPPING at the end.
    let notifier = crate::service::notify::Notifier::from_env();
    let mut announced = false;
    let mut watchdog = notifier
        .watchdog_interval()
        .map(|d| tokio::time::interval(d.max(Duration::from_millis(100))));
    // `mmrelay health` asks here; a second relay on the same home cannot listen.
    let health = match HealthListener::bind(home) {
        Ok(l) => Some(l),
        Err(e) => {
            warn!(
                "Health check not available ({e}): is another mmrelay running with the home folder {}?",
                home.display()
            );
            None
        }
    };

    loop {
        // Packets for Matrix are saved once the radio's burst is read (or every STAGE_MAX).
        if link_events.is_empty() || r.staging_full() {
            r.save_staged();
        }
        // Hand the next outbox message to the radio when it can take one.
        if inflight.is_none() && radio_ready {
            if let Some((id, item)) = r.next_for_mesh() {
                let msg = TextMessage {
                    channel: item.channel,
                    to: item.to,
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
                        r.mesh_handoff(id, Handoff::Dropped);
                    }
                }
            }
        }
        if radio_ready && !announced {
            announced = true;
            notifier.ready("Relaying between the radio and Matrix");
            info!("Relaying: the radio and Matrix are both connected");
        }
        let due = r.write_due();
        tokio::select! {
            _ = &mut stop => break,
            _ = async { watchdog.as_mut().expect("guarded").tick().await }, if watchdog.is_some() => {
                notifier.watchdog();
            }
            conn = async { health.as_ref().expect("guarded").accept().await }, if health.is_some() => {
                match conn {
                    Ok(conn) => crate::service::health::answer(conn, super::answers::health_check(&r.status())),
                    Err(e) => debug!("health check: accept failed: {e}"),
                }
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
                r.mesh_handoff(f.outbox_id, if delivered { Handoff::Taken } else { Handoff::Retry });
            }
            ev = link_events.recv() => match ev {
                None => break,
                Some(LinkEvent::Ready(info)) => {
                    radio_ready = true;
                    r.on_radio_ready(&info);
                }
                Some(LinkEvent::Disconnected { reason, .. }) => {
                    radio_ready = false;
                    r.on_radio_lost(&reason);
                }
                Some(LinkEvent::NodeUpdated(node)) => r.on_node(&node),
                Some(LinkEvent::Packet(p)) => r.stage_packet(&p),
            },
            ev = mx_events.recv() => match ev {
                None => break,
                Some(MatrixEvent::Sent { id, event_id, .. }) => r.on_sent(id, Some(event_id)),
                Some(MatrixEvent::SendFailed { id, reason }) => {
                    r.note_error(format!("the homeserver refused a message: {reason}"));
                    r.on_sent(id, None);
                }
                Some(MatrixEvent::Synced { token }) => r.on_synced(token),
                Some(MatrixEvent::Incoming(ev)) => r.on_incoming(&ev),
                Some(MatrixEvent::Undecryptable(u)) => r.on_undecryptable(u),
                Some(MatrixEvent::UndecryptableDone { event_id }) => {
                    r.on_undecryptable_done(event_id)
                }
            },
        }
    }

    notifier.stopping();
    info!("Shutting down: {}", r.finish());
    radio.stop();
    mx.stop().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), link_task).await;
    mx_task.abort();
    Ok(())
}
