//! The relay's state between events and what each event does to it: the rules applied, the
//! messages saved and queued on, the keys it persists and when its bookkeeping is written
//! ([`WRITE_QUIET`], [`WRITE_DEFER`]). [`super::run`] drives it; it knows nothing of the loop.

use std::collections::{HashMap, VecDeque};

use log::{debug, info, warn};
use tokio::time::Instant;

use super::bot::Bot;
use super::rules::{MapEntry, MeshText, Names, Rules, Skip};
use crate::clock::now_ms;
use crate::matrix::sender::{Outgoing, Sender};
use crate::mesh::proto::{text, PortNum};
use crate::mesh::radio::node_id;
use crate::store::{Changes, MatrixOutItem, OutItem, Store};

/// Packet ids remembered to drop duplicates.
pub const RECENT_IDS: usize = 256;
/// Messages to Matrix queued but not yet on the homeserver, at most (the queue in front of
/// the Matrix client).
pub const PENDING_SENDS: usize = 1000;

/// The Matrix sync token, saved with the messages from Matrix it follows.
pub const SYNC_TOKEN: &str = "sync_token";
/// The last relayed packet's time (packets the radio replays that are older were relayed).
pub const LAST_RX_TIME: &str = "last_rx_time";
/// At most this many messages for Matrix wait to be saved together.
pub const STAGE_MAX: usize = 32;

/// Bookkeeping waits at most this long for a write it can join...
pub const WRITE_DEFER: std::time::Duration = std::time::Duration::from_secs(60);
/// ...and is written by itself once the relay has been this long without anything new to
/// write down: after a burst, not in the idle time that follows it.
pub const WRITE_QUIET: std::time::Duration = std::time::Duration::from_secs(2);

/// A transaction id for a message to Matrix, kept with it for every try.
pub(super) fn new_txn_id() -> String {
    format!("mmrelay-{:016x}", fastrand::u64(..))
}

/// Counters an operator reads in the log at shutdown.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) to_matrix: u64,
    pub(super) to_mesh: u64,
    pub(super) dropped_full: u64,
    pub(super) refused: u64,
    pub(super) skipped_old: u64,
    pub(super) duplicates: u64,
}

/// Writes that can wait (see the module doc): saved with the next write that cannot, or when
/// `due`.
#[derive(Default)]
pub(super) struct Deferred {
    pub(super) done: Vec<i64>,
    pub(super) maps: Vec<MapEntry>,
    pub(super) last_rx_time: Option<i64>,
    pub(super) token: Option<String>,
    /// When the waiting bookkeeping is written by itself.
    pub(super) due: Option<Instant>,
    /// The latest `due` may move to: `WRITE_DEFER` after the first thing began to wait.
    pub(super) latest: Option<Instant>,
}

impl Deferred {
    /// Something began to wait at `now`: it is written once the relay has been quiet for
    /// `WRITE_QUIET` (a burst's bookkeeping goes in one write, at its end), and at the latest
    /// `WRITE_DEFER` after the first thing that waits (a steady stream of messages).
    pub(super) fn arm(&mut self, now: Instant) {
        let latest = *self.latest.get_or_insert(now + WRITE_DEFER);
        self.due = Some((now + WRITE_QUIET).min(latest));
    }

    /// Something that may wait longer began to wait at `now`: it is written with the next
    /// write, and at the latest `within` from now.
    pub(super) fn arm_within(&mut self, now: Instant, within: std::time::Duration) {
        let latest = *self.latest.get_or_insert(now + within);
        self.due = Some(self.due.map_or(latest, |d| d.min(latest)));
    }

    /// A write failed: the next try comes `WRITE_DEFER` later, not at every quiet moment.
    pub(super) fn retry(&mut self, now: Instant) {
        self.latest = Some(now + WRITE_DEFER);
        self.due = self.latest;
    }

    /// Everything waiting was written.
    pub(super) fn disarm(&mut self) {
        self.due = None;
        self.latest = None;
    }
}

/// The relay's state between events.
pub(super) struct Relay {
    pub(super) store: Store,
    pub(super) rules: Rules,
    pub(super) sender: Sender,
    pub(super) meshnet: String,
    pub(super) mesh_queue: usize,
    pub(super) interactions: bool,
    /// Packets older than this were relayed before (or predate the very first start).
    pub(super) threshold: i64,
    pub(super) recent: VecDeque<u32>,
    pub(super) my_node: u32,
    /// Matrix -> mesh, saved, not yet taken by the radio.
    pub(super) outbox: VecDeque<(i64, OutItem)>,
    /// Matrix -> mesh from the sync being read, saved with its token when it ends.
    pub(super) from_sync: Vec<OutItem>,
    /// Mesh -> Matrix, saved, not yet on the homeserver.
    pub(super) to_matrix: HashMap<i64, MatrixOutItem>,
    /// Of those, the ones the sender had no room for yet, in order.
    pub(super) backlog: VecDeque<i64>,
    /// Messages for Matrix read from the radio, not saved yet (see `stage_packet`).
    pub(super) staged: Vec<MatrixOutItem>,
    pub(super) deferred: Deferred,
    pub(super) saved_token: Option<String>,
    /// Ids (negative, never in the tables) of messages that could not be saved.
    pub(super) unsaved_id: i64,
    pub(super) n: Counters,
    /// The bot commands, when any is active.
    pub(super) bot: Option<Bot>,
    /// Answers to Matrix commands from the sync being read, saved with its token.
    pub(super) answers: Vec<MatrixOutItem>,
    /// For `!status`: when the relay started, since when the radio is up (or why not), the
    /// last completed sync, and the last error.
    pub(super) started: Instant,
    pub(super) radio: Result<Instant, String>,
    pub(super) last_sync: Option<Instant>,
    pub(super) last_error: Option<(Instant, String)>,
    /// Matrix events waiting for their keys, changed since the last save.
    pub(super) waiting: waiting::Waiting,
}

impl Relay {
    /// The relay's state as the store left it: messages still waiting for the radio, and those
    /// still waiting for the homeserver (handed to `sender` first, in order: their transaction
    /// ids make the homeserver recognise what it already has). `saved_token`: the sync token in
    /// the store.
    pub(super) fn new(
        store: Store,
        rules: Rules,
        sender: Sender,
        meshnet: String,
        mesh_queue: usize,
        saved_token: Option<String>,
    ) -> Relay {
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
        if !waiting.is_empty() {
            info!(
                "{} message(s) from the mesh still waiting for the homeserver",
                waiting.len()
            );
        }
        let interactions = rules.reactions || rules.replies;
        let mut r = Relay {
            store,
            rules,
            sender,
            meshnet,
            mesh_queue,
            interactions,
            threshold,
            recent: VecDeque::with_capacity(RECENT_IDS),
            my_node: 0,
            outbox,
            from_sync: Vec::new(),
            to_matrix: HashMap::new(),
            backlog: VecDeque::new(),
            staged: Vec::new(),
            deferred: Deferred::default(),
            saved_token,
            unsaved_id: 0,
            n: Counters::default(),
            bot: None,
            answers: Vec::new(),
            started: Instant::now(),
            radio: Err("not connected yet".into()),
            last_sync: None,
            last_error: None,
            waiting: waiting::Waiting::default(),
        };
        for (id, item) in waiting {
            r.queue_to_matrix(id, item);
        }
        r
    }

    /// Saves `c` with whatever bookkeeping waits (`all`: all of it; else only the removal of
    /// sent messages, which shares the pages of `c`). `c` keeps what it was given, so the
    /// caller gets its messages back without copying them. On an error the bookkeeping is kept
    /// for the next try and the caller gets the error.
    pub(super) fn save(
        &mut self,
        c: &mut Changes,
        all: bool,
    ) -> Result<crate::store::Saved, String> {
        let d = &mut self.deferred;
        c.to_matrix_done = std::mem::take(&mut d.done);
        let mut deferred_token = false;
        if all {
            c.maps = std::mem::take(&mut d.maps);
            if let Some(t) = d.last_rx_time.take() {
                c.ints.push((LAST_RX_TIME, t));
            }
            if c.text.is_none() {
                c.text = d.token.take().map(|t| (SYNC_TOKEN, t));
                deferred_token = true;
            }
            d.disarm();
            if let Some(bot) = &mut self.bot {
                c.telemetry = std::mem::take(&mut bot.history.pending);
            }
        }
        match self.store.save(c) {
            Ok(saved) => {
                if let Some((_, t)) = &c.text {
                    self.saved_token = Some(t.clone());
                }
                Ok(saved)
            }
            Err(e) => {
                let d = &mut self.deferred;
                d.done.append(&mut c.to_matrix_done);
                d.maps.append(&mut c.maps);
                if let Some((_, t)) = c.ints.iter().find(|(k, _)| *k == LAST_RX_TIME) {
                    d.last_rx_time.get_or_insert(*t);
                }
                if deferred_token {
                    d.token = c.text.take().map(|(_, t)| t);
                }
                d.retry(Instant::now());
                if let Some(bot) = &mut self.bot {
                    let newer = std::mem::take(&mut bot.history.pending);
                    bot.history.pending = std::mem::take(&mut c.telemetry);
                    bot.history.pending.extend(newer);
                }
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

    pub(super) fn next_unsaved_id(&mut self) -> i64 {
        self.unsaved_id -= 1;
        self.unsaved_id
    }

    /// A packet from the radio: turned into messages for Matrix, held in `staged` until
    /// [`Self::save_staged`], so that a burst from the radio costs one transaction rather than
    /// one per packet.
    pub(super) fn stage_packet(&mut self, p: &crate::mesh::proto::MeshPacket) {
        let Some(d) = p.decoded() else { return };
        if self.bot.is_some() {
            self.observe_for_bot(p);
        }
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
        if self.bot.is_some() && port == PortNum::TextMessageApp as i32 && self.answer_mesh(p, &m) {
            return;
        }
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
            if self.to_matrix.len() + self.staged.len() + items.len() >= PENDING_SENDS {
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
                txn_id: new_txn_id(),
                event_type: "m.room.message".into(),
                content: o.content.to_string(),
                mesh_id: m.id,
                text: o.text,
            });
        }
        if items.is_empty() {
            return;
        }
        self.advance_threshold(p.rx_time);
        self.staged.append(&mut items);
    }

    /// A packet received at `rx_time` was handled: the radio's replays of it, and of what came
    /// before, are old from now on.
    pub(super) fn advance_threshold(&mut self, rx_time: u32) {
        if rx_time != 0 && (rx_time as i64) > self.threshold {
            self.threshold = rx_time as i64;
            self.deferred.last_rx_time = Some(self.threshold);
            self.deferred.arm(Instant::now());
        }
    }

    /// Saves the staged messages for Matrix in one transaction, then hands them to the sender.
    pub(super) fn save_staged(&mut self) {
        if self.staged.is_empty() {
            return;
        }
        let mut c = Changes {
            to_matrix: std::mem::take(&mut self.staged),
            ..Default::default()
        };
        let ids = match self.save(&mut c, false) {
            Ok(saved) => saved.to_matrix,
            Err(e) => {
                warn!(
                    "Could not save {} message(s) for Matrix: {e} (they are sent, but would be \
                     lost if mmrelay stopped first)",
                    c.to_matrix.len()
                );
                c.to_matrix.iter().map(|_| self.next_unsaved_id()).collect()
            }
        };
        for (id, item) in ids.into_iter().zip(c.to_matrix) {
            self.queue_to_matrix(id, item);
        }
    }

    /// Hands a saved message to the sender, or (when the sender is full, as after a restart
    /// with more waiting than it holds) keeps it in order until there is room.
    pub(super) fn queue_to_matrix(&mut self, id: i64, item: MatrixOutItem) {
        self.to_matrix.insert(id, item);
        self.backlog.push_back(id);
        self.feed_sender();
    }

    fn feed_sender(&mut self) {
        while let Some(&id) = self.backlog.front() {
            let Some(item) = self.to_matrix.get(&id) else {
                self.backlog.pop_front();
                continue;
            };
            let o = Outgoing {
                id,
                room_id: item.room_id.clone(),
                txn_id: item.txn_id.clone(),
                event_type: item.event_type.clone(),
                content: item.content.clone(),
            };
            if self.sender.try_queue(o).is_err() {
                return;
            }
            debug!("packet {:#010x} queued for {}", item.mesh_id, item.room_id);
            self.backlog.pop_front();
        }
    }

    /// The homeserver has (or refused) a message for Matrix.
    pub(super) fn on_sent(&mut self, id: i64, event_id: Option<String>) {
        let Some(item) = self.to_matrix.remove(&id) else {
            return;
        };
        self.feed_sender();
        self.deferred.done.push(id);
        self.deferred.arm(Instant::now());
        match event_id {
            Some(event_id) => {
                self.n.to_matrix += 1;
                // mesh_id 0: a command's answer, not a relayed packet.
                if self.interactions && item.mesh_id != 0 {
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
    pub(super) fn on_incoming(&mut self, ev: &crate::matrix::content::Incoming) {
        let (event_id, room_id) = match ev {
            crate::matrix::content::Incoming::Message(m) => (&m.event_id, &m.room_id),
            crate::matrix::content::Incoming::Reaction(r) => (&r.event_id, &r.room_id),
        };
        if let crate::matrix::content::Incoming::Message(m) = ev {
            if self.bot.is_some() && self.answer_matrix(m) {
                return;
            }
        }
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
                    self.note_error("the queue to the mesh is full; dropped a message".into());
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
                    packet_id: crate::mesh::radio::random_packet_id(),
                    to: crate::mesh::proto::BROADCAST,
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
    /// is not worth a write of its own (a busy homeserver moves it every long-poll): it joins
    /// the next write, or is saved at shutdown; after a crash the next start reads those syncs
    /// again, and the gap fill stops at `matrix.max_event_age`.
    pub(super) fn on_synced(&mut self, token: Option<String>) {
        let token = token.filter(|t| self.saved_token.as_ref() != Some(t));
        if token.is_some() {
            self.last_sync = Some(Instant::now());
        }
        if self.from_sync.is_empty() && self.answers.is_empty() && self.waiting.is_empty() {
            if let Some(t) = token {
                self.deferred.token = Some(t);
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
        let mut c = Changes {
            to_mesh: items,
            to_matrix: std::mem::take(&mut self.answers),
            maps,
            text: token.map(|t| (SYNC_TOKEN, t)),
            ..Default::default()
        };
        self.waiting.take_into(&mut c);
        match self.save(&mut c, false) {
            Ok(saved) => {
                self.outbox.extend(saved.to_mesh.into_iter().zip(c.to_mesh));
                for (id, item) in saved.to_matrix.into_iter().zip(c.to_matrix) {
                    self.queue_to_matrix(id, item);
                }
            }
            Err(e) => {
                self.waiting.restore_from(&mut c);
                // Still sent in this run; only a restart before then would lose them.
                warn!(
                    "Could not save {} message(s) for the mesh: {e}",
                    c.to_mesh.len()
                );
                for item in c.to_mesh {
                    let id = self.next_unsaved_id();
                    self.outbox.push_back((id, item));
                }
                for item in c.to_matrix {
                    let id = self.next_unsaved_id();
                    self.queue_to_matrix(id, item);
                }
            }
        }
    }

    /// Saves all bookkeeping now.
    pub(super) fn flush(&mut self) {
        let mut c = Changes::default();
        self.waiting.take_into(&mut c);
        if let Err(e) = self.save(&mut c, true) {
            self.waiting.restore_from(&mut c);
            warn!("Saving the relay's state failed: {e}; will retry");
        }
    }
}

mod radio;
pub(super) use radio::Handoff;
mod waiting;

#[cfg(test)]
mod tests;
