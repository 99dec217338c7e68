//! The relay's side of Matrix events that wait for their room keys: the client reports each
//! one and when it no longer waits; the relay saves both with the sync they belong to (the
//! event with the token of the sync that brought it, its removal with the message its
//! decryption delivered), so that a key arriving after a restart still delivers the message,
//! once.

use super::Relay;
use crate::matrix::event::Undecryptable;
use crate::store::{Changes, WaitingEvent};

/// What changed among the waiting events since the last save.
#[derive(Debug, Default)]
pub struct Waiting {
    new: Vec<WaitingEvent>,
    done: Vec<String>,
}

impl Waiting {
    pub fn is_empty(&self) -> bool {
        self.new.is_empty() && self.done.is_empty()
    }

    /// Moves what changed into `c`.
    pub fn take_into(&mut self, c: &mut Changes) {
        c.waiting = std::mem::take(&mut self.new);
        c.waiting_done = std::mem::take(&mut self.done);
    }

    /// Takes back what a failed save of `c` was to write (before what came since).
    pub fn restore_from(&mut self, c: &mut Changes) {
        let mut new = std::mem::take(&mut c.waiting);
        new.append(&mut self.new);
        self.new = new;
        let mut done = std::mem::take(&mut c.waiting_done);
        done.append(&mut self.done);
        self.done = done;
    }
}

impl Relay {
    /// The client cannot decrypt an event yet: it is saved with the token of its sync.
    pub(in crate::relay) fn on_undecryptable(&mut self, u: Undecryptable) {
        self.waiting.new.push(WaitingEvent {
            room_id: u.room_id,
            event_id: u.event_id,
            session_id: u.session_id,
            event: u.event,
        });
    }

    /// The event `event_id` no longer waits (decrypted and delivered, or given up): it is
    /// forgotten with the next save, which holds what its delivery brought.
    pub(in crate::relay) fn on_undecryptable_done(&mut self, event_id: String) {
        self.waiting.new.retain(|w| w.event_id != event_id);
        self.waiting.done.push(event_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(id: &str) -> WaitingEvent {
        WaitingEvent {
            room_id: "!r:x".into(),
            event_id: id.into(),
            session_id: "s".into(),
            event: "{}".into(),
        }
    }

    #[test]
    fn a_failed_save_comes_back_before_what_came_since() {
        let mut w = Waiting {
            new: vec![kept("$a")],
            done: vec!["$old".into()],
        };
        let mut c = Changes::default();
        w.take_into(&mut c);
        assert!(w.is_empty() && !c.is_empty());
        w.new.push(kept("$b"));
        w.done.push("$a".into());
        w.restore_from(&mut c);
        let ids: Vec<_> = w.new.iter().map(|k| k.event_id.as_str()).collect();
        assert_eq!(ids, ["$a", "$b"]);
        assert_eq!(w.done, ["$old", "$a"]);
        assert!(c.waiting.is_empty() && c.waiting_done.is_empty());
    }
}
