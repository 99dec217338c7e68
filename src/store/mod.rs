//! The relay's own state in SQLite, flash-friendly: WAL, `synchronous=NORMAL`, a bounded
//! journal, and writes only when something changed. MMRelay's tables for what the two share
//! (`longnames`, `shortnames`, `message_map`), plus a small key/value table for relay state
//! and the outbox: Matrix messages accepted for the mesh but not yet taken by the radio
//! (postcard records), so they survive a restart and are sent once; and the device-metrics
//! history of the telemetry commands ([`telemetry`]); the Matrix events that wait for their
//! room keys ([`waiting`]).

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::mesh::proto::BROADCAST;
use crate::mesh::radio::node_id;

pub mod telemetry;
pub mod waiting;
pub use telemetry::Sample;
pub use waiting::WaitingEvent;

/// A relayed message as the message map remembers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapEntry {
    pub mesh_id: u32,
    pub event_id: String,
    pub room_id: String,
    pub text: String,
    pub meshnet: String,
}

/// A node's names as the node database holds them (the relay fills in the node id for an
/// unknown node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub long: String,
    pub short: String,
}

/// The schema's steps: step N takes a database from `user_version` N-1 to N.
const MIGRATIONS: &[&str] = &[
    // 1: MMRelay's tables (created only if missing, so an MMRelay database is adopted), the
    // relay's state and the outbox to the mesh.
    "CREATE TABLE IF NOT EXISTS longnames (meshtastic_id TEXT PRIMARY KEY, longname TEXT);
     CREATE TABLE IF NOT EXISTS shortnames (meshtastic_id TEXT PRIMARY KEY, shortname TEXT);
     CREATE TABLE IF NOT EXISTS message_map (meshtastic_id INTEGER, matrix_event_id TEXT PRIMARY KEY,
         matrix_room_id TEXT, meshtastic_text TEXT, meshtastic_meshnet TEXT);
     CREATE INDEX IF NOT EXISTS mmrelay_message_map_mesh ON message_map (meshtastic_id);
     CREATE TABLE IF NOT EXISTS mmrelay_state (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
     CREATE TABLE IF NOT EXISTS mmrelay_outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, item BLOB NOT NULL);",
    // 2: text values (the Matrix sync token), written with the outbox they belong to.
    "CREATE TABLE IF NOT EXISTS mmrelay_text (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
    // 3: messages for Matrix kept until the homeserver has them; and the outbox without
    // AUTOINCREMENT (it costs a write of sqlite_sequence with every message).
    "CREATE TABLE IF NOT EXISTS mmrelay_to_matrix (id INTEGER PRIMARY KEY, item BLOB NOT NULL);
     CREATE TABLE mmrelay_outbox_v3 (id INTEGER PRIMARY KEY, item BLOB NOT NULL);
     INSERT INTO mmrelay_outbox_v3 (id, item) SELECT id, item FROM mmrelay_outbox;
     DROP TABLE mmrelay_outbox;
     ALTER TABLE mmrelay_outbox_v3 RENAME TO mmrelay_outbox;",
    // 4: device-metrics history for the telemetry commands.
    "CREATE TABLE IF NOT EXISTS mmrelay_telemetry (node INTEGER NOT NULL, slot INTEGER NOT NULL,
         battery REAL, voltage REAL, air_util_tx REAL, PRIMARY KEY (node, slot));",
    // 5: Matrix events waiting for their room keys.
    "CREATE TABLE IF NOT EXISTS mmrelay_waiting (event_id TEXT PRIMARY KEY, room_id TEXT NOT NULL,
         session_id TEXT NOT NULL, event TEXT NOT NULL);",
];

/// Schema version written in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;
/// Prune the message map after this many inserts.
const PRUNE_EVERY: u32 = 50;

/// A message waiting for the radio.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutItem {
    pub channel: u32,
    pub text: String,
    pub reply_id: u32,
    /// The Matrix event it came from (for the message map), if any.
    pub event_id: Option<String>,
    pub room_id: Option<String>,
    /// The packet id used for it, once one was chosen (0 before), so that a resend after a
    /// crash carries the same id.
    pub packet_id: u32,
    /// The node it is for: [`BROADCAST`] for a channel, or one node (a bot's direct answer).
    pub to: u32,
}

/// An outbox record as mmrelay wrote it before [`OutItem::to`] existed (always a broadcast).
#[derive(Deserialize)]
struct OutItemV1 {
    channel: u32,
    text: String,
    reply_id: u32,
    event_id: Option<String>,
    room_id: Option<String>,
    packet_id: u32,
}

impl OutItem {
    fn decode(blob: &[u8]) -> Result<OutItem, postcard::Error> {
        postcard::from_bytes(blob).or_else(|e| {
            let old: OutItemV1 = postcard::from_bytes(blob).map_err(|_| e)?;
            Ok(OutItem {
                channel: old.channel,
                text: old.text,
                reply_id: old.reply_id,
                event_id: old.event_id,
                room_id: old.room_id,
                packet_id: old.packet_id,
                to: BROADCAST,
            })
        })
    }
}

/// A message waiting for the homeserver (mesh -> Matrix), with the transaction id used for
/// every try, so that the homeserver recognises a resend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatrixOutItem {
    pub room_id: String,
    pub txn_id: String,
    pub event_type: String,
    /// The event content, as JSON.
    pub content: String,
    /// The mesh packet it came from, and its text (for the message map).
    pub mesh_id: u32,
    pub text: String,
}

/// What the relay changed since its last save, written in one transaction by [`Store::save`]
/// (one WAL commit, whatever it holds).
#[derive(Debug, Default)]
pub struct Changes {
    /// New messages for the radio.
    pub to_mesh: Vec<OutItem>,
    /// New messages for the homeserver.
    pub to_matrix: Vec<MatrixOutItem>,
    /// Messages the homeserver has (ids from an earlier save).
    pub to_matrix_done: Vec<i64>,
    /// Message map entries.
    pub maps: Vec<MapEntry>,
    /// Integer state values.
    pub ints: Vec<(&'static str, i64)>,
    /// A text state value.
    pub text: Option<(&'static str, String)>,
    /// New device-metrics samples.
    pub telemetry: Vec<Sample>,
    /// Matrix events that wait for their keys, and those that no longer wait (by event id).
    pub waiting: Vec<WaitingEvent>,
    pub waiting_done: Vec<String>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.to_mesh.is_empty()
            && self.to_matrix.is_empty()
            && self.to_matrix_done.is_empty()
            && self.maps.is_empty()
            && self.ints.is_empty()
            && self.text.is_none()
            && self.telemetry.is_empty()
            && self.waiting.is_empty()
            && self.waiting_done.is_empty()
    }
}

/// The ids given to what [`Store::save`] added.
#[derive(Debug, Default)]
pub struct Saved {
    pub to_mesh: Vec<i64>,
    pub to_matrix: Vec<i64>,
}

pub struct Store {
    conn: Connection,
    msgs_to_keep: u32,
    inserts_since_prune: u32,
    /// Names as last written, so unchanged names cost no write.
    names: HashMap<u32, (String, String)>,
    /// Statements executed that wrote (for the benchmark and tests).
    writes: u64,
}

impl Store {
    /// Runs one statement, compiled once per connection and kept (the same few statements
    /// run for every message).
    fn exec(&self, sql: &str, params: impl rusqlite::Params) -> Result<usize, String> {
        self.conn
            .prepare_cached(sql)
            .and_then(|mut st| st.execute(params))
            .map_err(err)
    }
}

fn err(e: rusqlite::Error) -> String {
    e.to_string()
}

/// SQLite page size for the databases mmrelay creates. Each committed change writes whole pages
/// to the WAL, and a relayed message changes a few rows: 1 KiB pages write a quarter of what
/// SQLite's default 4 KiB pages do (flash wear), and the databases are small either way.
pub const PAGE_SIZE: u32 = 1024;

/// Creates an empty database at `path` in WAL mode with [`PAGE_SIZE`] pages, unless a file is
/// already there (the page size of an existing database is kept). matrix-sdk's stores are
/// created this way before the SDK first opens them; its schema is made by the SDK as usual.
pub fn create_with_small_pages(path: &Path) -> Result<(), String> {
    if path.exists() {
        return Ok(());
    }
    let conn =
        Connection::open(path).map_err(|e| format!("{}: cannot create: {e}", path.display()))?;
    conn.execute_batch(&format!(
        "PRAGMA page_size={PAGE_SIZE}; PRAGMA journal_mode=WAL;"
    ))
    .map_err(|e| format!("{}: {e}", path.display()))
}

impl Store {
    /// Opens (creating and migrating) the database at `path`.
    pub fn open(path: &Path, msgs_to_keep: u32) -> Result<Store, String> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("{}: cannot create: {e}", dir.display()))?;
        }
        create_with_small_pages(path)?;
        let conn =
            Connection::open(path).map_err(|e| format!("{}: cannot open: {e}", path.display()))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA journal_size_limit=1048576; \
             PRAGMA cache_size=-256; PRAGMA temp_store=MEMORY;",
        )
        .map_err(|e| format!("{}: {e}", path.display()))?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(err)?;
        if version > SCHEMA_VERSION {
            return Err(format!(
                "{}: made by a newer mmrelay (schema {version}, this one knows {SCHEMA_VERSION})",
                path.display()
            ));
        }
        for (v, sql) in MIGRATIONS.iter().enumerate() {
            let v = v as i64 + 1;
            if version < v {
                conn.execute_batch(&format!("BEGIN; {sql} PRAGMA user_version = {v}; COMMIT;"))
                    .map_err(|e| {
                        format!("{}: setting up schema {v} failed: {e}", path.display())
                    })?;
            }
        }
        Ok(Store {
            conn,
            msgs_to_keep,
            inserts_since_prune: 0,
            names: HashMap::new(),
            writes: 0,
        })
    }

    pub fn writes(&self) -> u64 {
        self.writes
    }

    /// A node's names as stored.
    pub fn names(&self, num: u32) -> Option<Names> {
        if let Some((l, s)) = self.names.get(&num) {
            return Some(Names {
                long: l.clone(),
                short: s.clone(),
            });
        }
        let id = node_id(num);
        let long: Option<String> = self
            .conn
            .query_row(
                "SELECT longname FROM longnames WHERE meshtastic_id=?1",
                [&id],
                |r| r.get(0),
            )
            .optional()
            .ok()
            .flatten();
        let short: Option<String> = self
            .conn
            .query_row(
                "SELECT shortname FROM shortnames WHERE meshtastic_id=?1",
                [&id],
                |r| r.get(0),
            )
            .optional()
            .ok()
            .flatten();
        match (long, short) {
            (None, None) => None,
            (l, s) => Some(Names {
                long: l.unwrap_or_else(|| id.clone()),
                short: s.unwrap_or_else(|| id[id.len() - 4..].to_string()),
            }),
        }
    }

    /// Stores a node's names; writes only when they changed. Returns whether it wrote.
    pub fn save_names(&mut self, num: u32, long: &str, short: &str) -> Result<bool, String> {
        if long.is_empty() && short.is_empty() {
            return Ok(false);
        }
        let known = match self.names.get(&num) {
            Some(n) => Some(n.clone()),
            None => self.names(num).map(|n| (n.long, n.short)),
        };
        if known.as_ref().is_some_and(|(l, s)| l == long && s == short) {
            self.names
                .insert(num, (long.to_string(), short.to_string()));
            return Ok(false);
        }
        let id = node_id(num);
        let tx = self.conn.unchecked_transaction().map_err(err)?;
        tx.execute(
            "INSERT OR REPLACE INTO longnames (meshtastic_id, longname) VALUES (?1, ?2)",
            params![id, long],
        )
        .map_err(err)?;
        tx.execute(
            "INSERT OR REPLACE INTO shortnames (meshtastic_id, shortname) VALUES (?1, ?2)",
            params![id, short],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        self.writes += 1;
        if self.names.len() > 4096 {
            self.names.clear();
        }
        self.names
            .insert(num, (long.to_string(), short.to_string()));
        Ok(true)
    }

    /// Remembers a relayed message, pruning the map to `msgs_to_keep` now and then.
    pub fn map_insert(&mut self, e: &MapEntry) -> Result<(), String> {
        self.exec(
            "INSERT OR REPLACE INTO message_map (meshtastic_id, matrix_event_id, matrix_room_id, meshtastic_text, meshtastic_meshnet)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![e.mesh_id, e.event_id, e.room_id, e.text, e.meshnet],
        )?;
        self.writes += 1;
        self.inserts_since_prune += 1;
        if self.msgs_to_keep > 0
            && self.inserts_since_prune >= PRUNE_EVERY.min(self.msgs_to_keep.max(1))
        {
            self.prune()?;
        }
        Ok(())
    }

    /// Keeps the newest `msgs_to_keep` entries of the message map.
    pub fn prune(&mut self) -> Result<usize, String> {
        self.inserts_since_prune = 0;
        if self.msgs_to_keep == 0 {
            return Ok(0);
        }
        let n = self.exec(
            "DELETE FROM message_map WHERE rowid NOT IN (SELECT rowid FROM message_map ORDER BY rowid DESC LIMIT ?1)",
            [self.msgs_to_keep],
        )?;
        if n > 0 {
            self.writes += 1;
        }
        Ok(n)
    }

    fn map_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MapEntry> {
        Ok(MapEntry {
            mesh_id: r.get::<_, i64>(0)? as u32,
            event_id: r.get(1)?,
            room_id: r.get(2)?,
            text: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
            meshnet: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
        })
    }

    /// The newest map entry for a mesh packet id.
    pub fn map_by_mesh(&self, mesh_id: u32) -> Option<MapEntry> {
        self.conn
            .query_row(
                "SELECT meshtastic_id, matrix_event_id, matrix_room_id, meshtastic_text, meshtastic_meshnet
                 FROM message_map WHERE meshtastic_id=?1 ORDER BY rowid DESC LIMIT 1",
                [mesh_id],
                Self::map_row,
            )
            .optional()
            .ok()
            .flatten()
    }

    pub fn map_by_event(&self, event_id: &str) -> Option<MapEntry> {
        self.conn
            .query_row(
                "SELECT meshtastic_id, matrix_event_id, matrix_room_id, meshtastic_text, meshtastic_meshnet
                 FROM message_map WHERE matrix_event_id=?1",
                [event_id],
                Self::map_row,
            )
            .optional()
            .ok()
            .flatten()
    }

    pub fn map_len(&self) -> usize {
        self.conn
            .query_row("SELECT COUNT(*) FROM message_map", [], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap_or(0) as usize
    }

    pub fn state(&self, key: &str) -> Option<i64> {
        self.conn
            .prepare_cached("SELECT value FROM mmrelay_state WHERE key=?1")
            .and_then(|mut st| st.query_row([key], |r| r.get(0)))
            .optional()
            .ok()
            .flatten()
    }

    pub fn set_state(&mut self, key: &str, value: i64) -> Result<(), String> {
        if self.state(key) == Some(value) {
            return Ok(());
        }
        self.exec(
            "INSERT OR REPLACE INTO mmrelay_state (key, value) VALUES (?1, ?2)",
            params![key, value],
        )?;
        self.writes += 1;
        Ok(())
    }

    /// A text value of the relay's state (e.g. the Matrix sync token).
    pub fn text(&self, key: &str) -> Option<String> {
        self.conn
            .query_row("SELECT value FROM mmrelay_text WHERE key=?1", [key], |r| {
                r.get(0)
            })
            .optional()
            .ok()
            .flatten()
    }

    /// Writes `c` in one transaction: all of it or (on an error) none of it.
    pub fn save(&mut self, c: &Changes) -> Result<Saved, String> {
        if c.is_empty() {
            return Ok(Saved::default());
        }
        self.exec("BEGIN", [])?;
        let writes = self.writes;
        match self.save_in_transaction(c) {
            Ok(saved) => {
                self.exec("COMMIT", [])?;
                self.writes = writes + 1;
                Ok(saved)
            }
            Err(e) => {
                let _ = self.exec("ROLLBACK", []);
                self.writes = writes;
                Err(e)
            }
        }
    }

    fn save_in_transaction(&mut self, c: &Changes) -> Result<Saved, String> {
        let mut saved = Saved::default();
        for item in &c.to_mesh {
            let blob = postcard::to_allocvec(item).map_err(|e| e.to_string())?;
            self.exec("INSERT INTO mmrelay_outbox (item) VALUES (?1)", [blob])?;
            saved.to_mesh.push(self.conn.last_insert_rowid());
        }
        for id in &c.to_matrix_done {
            self.exec("DELETE FROM mmrelay_to_matrix WHERE id=?1", [id])?;
        }
        for item in &c.to_matrix {
            let blob = postcard::to_allocvec(item).map_err(|e| e.to_string())?;
            self.exec("INSERT INTO mmrelay_to_matrix (item) VALUES (?1)", [blob])?;
            saved.to_matrix.push(self.conn.last_insert_rowid());
        }
        for e in &c.maps {
            self.map_insert(e)?;
        }
        for (key, value) in &c.ints {
            self.set_state(key, *value)?;
        }
        if let Some((key, value)) = &c.text {
            self.exec(
                "INSERT OR REPLACE INTO mmrelay_text (key, value) VALUES (?1, ?2)",
                params![key, value],
            )?;
        }
        self.save_telemetry(&c.telemetry)?;
        self.save_waiting(&c.waiting, &c.waiting_done)?;
        Ok(saved)
    }

    /// Messages for the homeserver not yet known to be there, oldest first.
    pub fn to_matrix(&self) -> Vec<(i64, MatrixOutItem)> {
        self.blobs("SELECT id, item FROM mmrelay_to_matrix ORDER BY id", |b| {
            postcard::from_bytes(b)
        })
    }

    fn blobs<T>(
        &self,
        sql: &str,
        decode: impl Fn(&[u8]) -> Result<T, postcard::Error>,
    ) -> Vec<(i64, T)> {
        let mut stmt = match self.conn.prepare(sql) {
            Ok(s) => s,
            Err(e) => {
                log::warn!("reading the queued messages failed: {e}");
                return Vec::new();
            }
        };
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)));
        let mut out = Vec::new();
        if let Ok(rows) = rows {
            for (id, blob) in rows.flatten() {
                match decode(&blob) {
                    Ok(item) => out.push((id, item)),
                    Err(e) => log::warn!("dropping unreadable queued message {id}: {e}"),
                }
            }
        }
        out
    }

    /// Everything in the outbox, oldest first (unreadable records are dropped with a warning).
    pub fn outbox(&self) -> Vec<(i64, OutItem)> {
        self.blobs(
            "SELECT id, item FROM mmrelay_outbox ORDER BY id",
            OutItem::decode,
        )
    }

    pub fn outbox_delete(&mut self, id: i64) -> Result<(), String> {
        self.exec("DELETE FROM mmrelay_outbox WHERE id=?1", [id])?;
        self.writes += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
