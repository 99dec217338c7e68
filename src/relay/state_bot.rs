//! The relay's side of the bot commands: feeding the bot what the radio tells (nodes,
//! telemetry, link state), and saving and queueing its answers like relayed messages (mesh
//! answers through the outbox, Matrix answers with the sync they answer).

use std::time::Duration;

use log::warn;
use serde_json::{json, Map};
use tokio::time::Instant;

use super::answers::Status;
use super::bot::{Bot, MeshAction};
use super::rules::{truncate_utf8, MeshText};
use super::state::Relay;
use super::telemetry::SLOT_SECS;
use crate::clock::now_ms;
use crate::matrix::content::{IncomingMessage, MessageKind};
use crate::mesh::proto::{MeshPacket, DATA_PAYLOAD_LEN};
use crate::mesh::radio::RadioInfo;
use crate::store::{Changes, MatrixOutItem, OutItem};

/// New telemetry samples wait at most this long for a write they can join.
pub(super) const TELEMETRY_DEFER: Duration = Duration::from_secs(600);

fn unix_secs() -> u32 {
    (now_ms() / 1000) as u32
}

impl Relay {
    /// Turns the bot on (`bot`: `None` when no command is active), with the telemetry history
    /// the store kept.
    pub(super) fn set_bot(&mut self, bot: Option<Bot>) {
        self.bot = bot;
        if let Some(b) = &mut self.bot {
            let since = (unix_secs() / SLOT_SECS).saturating_sub(super::telemetry::PER_NODE as u32);
            b.history.load(self.store.telemetry_since(since));
        }
    }

    /// Remembers the last error for `!status`.
    pub(super) fn note_error(&mut self, e: String) {
        if self.bot.is_some() {
            self.last_error = Some((Instant::now(), e));
        }
    }

    /// The radio finished its handshake: its node database is saved and given to the bot.
    pub(super) fn on_radio_ready(&mut self, info: &RadioInfo) {
        self.my_node = info.my_node_num;
        self.radio = Ok(Instant::now());
        for node in info.nodes.sorted() {
            self.on_node(node);
        }
    }

    /// The radio link went down.
    pub(super) fn on_radio_lost(&mut self, reason: &str) {
        self.radio = Err(reason.to_string());
        self.note_error(format!("radio link lost: {reason}"));
    }

    /// Any packet: what it tells of its node, and telemetry to keep.
    pub(super) fn observe_for_bot(&mut self, p: &MeshPacket) {
        let Some(b) = &mut self.bot else { return };
        let now = unix_secs();
        let Some(m) = b.nodes.observe(p, now) else {
            return;
        };
        let time = if p.rx_time != 0 { p.rx_time } else { now };
        if b.history.record(p.from, time, &m).is_some() {
            self.deferred.arm_within(Instant::now(), TELEMETRY_DEFER);
        }
    }

    /// A new text from the mesh: true when it was a command (answered or refused), which is
    /// then not relayed.
    pub(super) fn answer_mesh(&mut self, p: &MeshPacket, m: &MeshText) -> bool {
        let Some(b) = &mut self.bot else { return false };
        let hops =
            (p.hop_start != 0 && p.hop_start >= p.hop_limit).then(|| p.hop_start - p.hop_limit);
        let now = self.started.elapsed().as_millis() as u64;
        let answer = match b.on_mesh(m, hops, self.my_node, now) {
            MeshAction::NotACommand => return false,
            MeshAction::Drop => {
                self.advance_threshold(p.rx_time);
                return true;
            }
            MeshAction::Answer(a) => a,
        };
        self.advance_threshold(p.rx_time);
        if self.outbox.len() >= self.mesh_queue {
            self.n.dropped_full += 1;
            warn!("The queue to the mesh is full; not answering a command");
            self.note_error("the queue to the mesh is full; dropped an answer".into());
            return true;
        }
        let item = OutItem {
            channel: answer.channel,
            text: truncate_utf8(&answer.text, DATA_PAYLOAD_LEN).to_string(),
            reply_id: answer.reply_id,
            event_id: None,
            room_id: None,
            packet_id: crate::mesh::radio::random_packet_id(),
            to: answer.to,
        };
        let mut c = Changes {
            to_mesh: vec![item],
            ..Default::default()
        };
        let id = match self.save(&mut c, false) {
            Ok(saved) => saved.to_mesh[0],
            Err(e) => {
                warn!("Could not save an answer for the mesh: {e}");
                self.note_error(format!("saving an answer: {e}"));
                self.next_unsaved_id()
            }
        };
        let item = c.to_mesh.pop().expect("one");
        self.outbox.push_back((id, item));
        true
    }

    /// A message from a bridged room: true when it was a command, answered in the room (saved
    /// with the sync it came in) and not relayed.
    pub(super) fn answer_matrix(&mut self, m: &IncomingMessage) -> bool {
        let Some(b) = &self.bot else { return false };
        if !self.rules.bridges(&m.room_id) || m.sender == self.rules.bot_user_id {
            return false;
        }
        let now = now_ms();
        if m.origin_server_ts > 0
            && now.saturating_sub(m.origin_server_ts) > self.rules.max_event_age_ms
        {
            return false;
        }
        let Some(text) = b.on_matrix(m, self.my_node, (now / 1000) as u32, || self.status()) else {
            return false;
        };
        let mut extra = Map::new();
        // Other relays do not carry the bot's answers to their meshes.
        extra.insert("mmrelay_suppress".into(), json!(true));
        let content =
            crate::matrix::content::message(MessageKind::Notice, &text, Some(&m.event_id), &extra);
        self.answers.push(MatrixOutItem {
            room_id: m.room_id.clone(),
            txn_id: super::state::new_txn_id(),
            event_type: "m.room.message".into(),
            content: content.to_string(),
            mesh_id: 0,
            text,
        });
        true
    }

    /// What `!status` reports.
    pub(super) fn status(&self) -> Status {
        Status {
            version: env!("CARGO_PKG_VERSION"),
            uptime_secs: self.started.elapsed().as_secs(),
            radio: self
                .radio
                .as_ref()
                .map(|t| t.elapsed().as_secs())
                .map_err(Clone::clone),
            last_sync_secs: self.last_sync.map(|t| t.elapsed().as_secs()),
            to_mesh_waiting: self.outbox.len() + self.from_sync.len(),
            to_matrix_waiting: self.to_matrix.len() + self.staged.len(),
            to_matrix: self.n.to_matrix,
            to_mesh: self.n.to_mesh,
            dropped: self.n.dropped_full,
            refused: self.n.refused,
            last_error: self
                .last_error
                .as_ref()
                .map(|(t, e)| (t.elapsed().as_secs(), e.clone())),
        }
    }
}
