//! What the Matrix client tells the relay ([`MatrixEvent`]): the sync, the sender and the
//! client produce these; the relay consumes them.

use super::content::Incoming;

/// What the client tells the relay.
#[derive(Debug, Clone, PartialEq)]
pub enum MatrixEvent {
    /// A message or reaction in a bridged room (also the bot's own, marked by its sender).
    Incoming(Incoming),
    /// A queued event (the caller's `id`) reached the homeserver.
    Sent {
        id: i64,
        room_id: String,
        event_id: String,
    },
    /// The homeserver refused a queued event; it was dropped.
    SendFailed { id: i64, reason: String },
    /// Everything before this came from syncs up to `token` (a sync's `next_batch`): the relay
    /// saves what it accepted together with the token, so that the next start resumes there.
    /// Without a token: events delivered outside a sync (late keys), to be saved at once.
    Synced { token: Option<String> },
}
