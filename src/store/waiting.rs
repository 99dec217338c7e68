//! Matrix events that could not be decrypted yet, kept until their room keys arrive: saved with
//! the sync token of the sync that brought them (no write of their own), removed with what
//! their delivery saves, at most [`MAX_WAITING`] (the oldest go first).

use rusqlite::params;

use super::Store;

/// Events kept at most (as many as the Matrix client keeps waiting in memory).
pub const MAX_WAITING: usize = 100;

/// An encrypted event waiting for its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingEvent {
    pub room_id: String,
    pub event_id: String,
    pub session_id: String,
    /// The event as the homeserver sent it (JSON).
    pub event: String,
}

impl Store {
    /// The events waiting for their keys, oldest first.
    pub fn waiting_events(&self) -> Vec<WaitingEvent> {
        let read = || -> rusqlite::Result<Vec<WaitingEvent>> {
            let mut st = self.conn.prepare(
                "SELECT room_id, event_id, session_id, event FROM mmrelay_waiting ORDER BY rowid",
            )?;
            let rows = st.query_map([], |r| {
                Ok(WaitingEvent {
                    room_id: r.get(0)?,
                    event_id: r.get(1)?,
                    session_id: r.get(2)?,
                    event: r.get(3)?,
                })
            })?;
            rows.collect()
        };
        read().unwrap_or_else(|e| {
            log::warn!("reading the events that wait for their keys failed: {e}");
            Vec::new()
        })
    }

    /// Within a transaction: forgets `done`, adds `new` (an event kept already stays as it
    /// is), and drops the oldest beyond [`MAX_WAITING`].
    pub(super) fn save_waiting(
        &mut self,
        new: &[WaitingEvent],
        done: &[String],
    ) -> Result<(), String> {
        for id in done {
            self.exec("DELETE FROM mmrelay_waiting WHERE event_id=?1", [id])?;
        }
        for w in new {
            self.exec(
                "INSERT OR IGNORE INTO mmrelay_waiting (event_id, room_id, session_id, event)
                 VALUES (?1, ?2, ?3, ?4)",
                params![w.event_id, w.room_id, w.session_id, w.event],
            )?;
        }
        if !new.is_empty() {
            self.exec(
                "DELETE FROM mmrelay_waiting WHERE rowid IN (SELECT rowid FROM mmrelay_waiting
                 ORDER BY rowid DESC LIMIT -1 OFFSET ?1)",
                [MAX_WAITING as i64],
            )?;
        }
        Ok(())
    }
}
