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
    /// An event of a bridged room that cannot be decrypted yet: the relay keeps it (saved with
    /// the sync's token), so that a key arriving after a restart still delivers it.
    Undecryptable(Undecryptable),
    /// The undecryptable event `event_id` no longer waits: it was decrypted (and delivered
    /// just before this), or given up. The relay forgets it with what that delivery saves.
    UndecryptableDone { event_id: String },
}

/// An event waiting for its room key, as the relay keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undecryptable {
    pub room_id: String,
    pub event_id: String,
    /// The Megolm session whose key it waits for.
    pub session_id: String,
    /// The encrypted event as the homeserver sent it (JSON).
    pub event: String,
}
