//! The relay's side of the radio hand-off: which saved message goes to the radio next, what
//! happens to it when the radio has taken it (or refused it for good), the node names the
//! radio reports, and the end-of-run summary. `relay::run` drives these; the state decides.

use log::warn;
use tokio::time::Instant;

use super::{Relay, STAGE_MAX};
use crate::mesh::radio::NodeEntry;
use crate::store::OutItem;

/// What became of the message handed to the radio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handoff {
    /// The radio queued it: it leaves the outbox.
    Taken,
    /// Not taken this time (link lost before the radio accepted it, queue full): it stays
    /// first in the outbox and is handed over again.
    Retry,
    /// It can never be sent (the radio refuses it as invalid): dropped from the outbox.
    Dropped,
}

impl Relay {
    /// The saved message the radio should take next (the oldest), with its outbox id.
    pub(in crate::relay) fn next_for_mesh(&self) -> Option<(i64, OutItem)> {
        self.outbox.front().cloned()
    }

    /// Records what became of the outbox message `id` handed to the radio.
    pub(in crate::relay) fn mesh_handoff(&mut self, id: i64, what: Handoff) {
        if what == Handoff::Retry || self.outbox.front().map(|(i, _)| *i) != Some(id) {
            return;
        }
        self.outbox.pop_front();
        if let Err(e) = self.store.outbox_delete(id) {
            warn!("outbox: {e}");
        }
        if what == Handoff::Taken {
            self.n.to_mesh += 1;
        }
    }

    /// Saves a node's names (and tells the bot's node list) when the radio reports it.
    pub(in crate::relay) fn on_node(&mut self, node: &NodeEntry) {
        if let Some(b) = &mut self.bot {
            b.nodes.update(node);
        }
        if let Err(e) = self
            .store
            .save_names(node.num, &node.long_name, &node.short_name)
        {
            warn!("saving node names: {e}");
        }
    }

    /// When the deferred bookkeeping is due, if any.
    pub(in crate::relay) fn write_due(&self) -> Option<Instant> {
        self.deferred.due
    }

    /// Whether enough packets for Matrix wait to be saved together now.
    pub(in crate::relay) fn staging_full(&self) -> bool {
        self.staged.len() >= STAGE_MAX
    }

    /// The mesh channels the rooms are mapped to.
    pub(in crate::relay) fn mapped_channels(&self) -> Vec<u32> {
        self.rules.rooms.iter().map(|(_, c)| *c).collect()
    }

    /// At a clean stop: saves what was read from the radio and the bookkeeping; returns the
    /// run's summary for the log. Messages of a sync that did not finish are not saved: the
    /// next start reads it again.
    pub(in crate::relay) fn finish(&mut self) -> String {
        self.save_staged();
        self.deferred.last_rx_time = Some(self.threshold);
        self.flush();
        let n = &self.n;
        format!(
            "{} message(s) relayed to Matrix, {} to the mesh, {} dropped (queue full), {} refused \
             by the homeserver, {} skipped as old, {} duplicates; {} waiting for the radio, {} \
             for the homeserver",
            n.to_matrix,
            n.to_mesh,
            n.dropped_full,
            n.refused,
            n.skipped_old,
            n.duplicates,
            self.outbox.len(),
            self.to_matrix.len()
        )
    }
}
