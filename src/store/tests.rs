use super::*;

fn page_size(path: &Path) -> i64 {
    let c = Connection::open(path).unwrap();
    c.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap()
}

#[test]
fn new_databases_get_small_pages_and_existing_ones_keep_theirs() {
    let dir = tempfile::tempdir().unwrap();
    let new = dir.path().join("new.sqlite");
    drop(Store::open(&new, 10).unwrap());
    assert_eq!(page_size(&new), i64::from(PAGE_SIZE));
    // A database made elsewhere (MMRelay's, SQLite's default 4 KiB) is left as it is.
    let old = dir.path().join("old.sqlite");
    Connection::open(&old)
        .unwrap()
        .execute_batch("CREATE TABLE t(x);")
        .unwrap();
    let before = page_size(&old);
    assert_ne!(before, i64::from(PAGE_SIZE));
    drop(Store::open(&old, 10).unwrap());
    assert_eq!(page_size(&old), before);
}

fn entry(id: u32, ev: &str) -> MapEntry {
    MapEntry {
        mesh_id: id,
        event_id: ev.into(),
        room_id: "!r:h".into(),
        text: format!("text {id}"),
        meshnet: "Net".into(),
    }
}

#[test]
fn names_are_written_only_when_they_change_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db/meshtastic.sqlite");
    let mut s = Store::open(&path, 500).unwrap();
    assert_eq!(s.names(7), None);
    assert!(s.save_names(7, "Alice", "ALC").unwrap());
    assert!(!s.save_names(7, "Alice", "ALC").unwrap());
    assert!(s.save_names(7, "Alice B", "ALC").unwrap());
    assert_eq!(s.writes(), 2);
    drop(s);
    let s = Store::open(&path, 500).unwrap();
    assert_eq!(
        s.names(7),
        Some(Names {
            long: "Alice B".into(),
            short: "ALC".into()
        })
    );
    let mode: String = s
        .conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn message_map_looks_up_both_ways_and_is_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&dir.path().join("m.sqlite"), 10).unwrap();
    for i in 1..=25u32 {
        s.map_insert(&entry(i, &format!("$e{i}"))).unwrap();
    }
    s.prune().unwrap();
    assert_eq!(s.map_len(), 10);
    assert_eq!(s.map_by_mesh(25).unwrap().event_id, "$e25");
    assert_eq!(s.map_by_event("$e16").unwrap().mesh_id, 16);
    assert_eq!(s.map_by_event("$e15"), None);
    // Large ids round-trip (SQLite integers are signed).
    s.map_insert(&entry(0xfffffff0, "$big")).unwrap();
    assert_eq!(s.map_by_event("$big").unwrap().mesh_id, 0xfffffff0);
}

fn mx_item(t: &str) -> MatrixOutItem {
    MatrixOutItem {
        room_id: "!r:x".into(),
        txn_id: format!("txn-{t}"),
        event_type: "m.room.message".into(),
        content: format!("{{\"body\":\"{t}\"}}"),
        mesh_id: 7,
        text: t.into(),
    }
}

#[test]
fn changes_are_saved_together_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.sqlite");
    let mut s = Store::open(&path, 500).unwrap();
    assert_eq!(s.text("sync_token"), None);
    let item = |t: &str| OutItem {
        channel: 0,
        text: t.into(),
        reply_id: 0,
        event_id: Some(format!("${t}")),
        room_id: Some("!r:x".into()),
        packet_id: 0,
        to: crate::mesh::proto::BROADCAST,
    };
    let saved = s
        .save(&Changes {
            to_mesh: vec![item("a"), item("b")],
            to_matrix: vec![mx_item("m1"), mx_item("m2")],
            text: Some(("sync_token", "s1".into())),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(saved.to_mesh.len(), 2);
    assert!(saved.to_mesh[0] < saved.to_mesh[1]);
    assert_eq!(saved.to_matrix.len(), 2);
    let w = s.writes();
    s.save(&Changes::default()).unwrap();
    assert_eq!(s.writes(), w, "nothing to save, nothing written");
    // The first Matrix message is done; its map entry and the state come with a new one.
    s.save(&Changes {
        to_matrix: vec![mx_item("m3")],
        to_matrix_done: vec![saved.to_matrix[0]],
        maps: vec![entry(7, "$m1")],
        ints: vec![("last_rx_time", 99)],
        text: Some(("sync_token", "s2".into())),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(s.writes(), w + 1, "one commit");
    // A failing part saves nothing of the rest.
    s.conn
        .execute_batch("ALTER TABLE mmrelay_outbox RENAME TO gone")
        .unwrap();
    assert!(s
        .save(&Changes {
            to_mesh: vec![item("d")],
            to_matrix_done: vec![saved.to_matrix[1]],
            ints: vec![("last_rx_time", 100)],
            text: Some(("sync_token", "s3".into())),
            ..Default::default()
        })
        .is_err());
    s.conn
        .execute_batch("ALTER TABLE gone RENAME TO mmrelay_outbox")
        .unwrap();
    drop(s);
    let s = Store::open(&path, 500).unwrap();
    assert_eq!(s.text("sync_token").as_deref(), Some("s2"));
    assert_eq!(s.state("last_rx_time"), Some(99));
    assert_eq!(s.map_by_mesh(7).map(|e| e.event_id).as_deref(), Some("$m1"));
    let texts: Vec<String> = s.outbox().into_iter().map(|(_, i)| i.text).collect();
    assert_eq!(texts, ["a", "b"]);
    let mx: Vec<String> = s.to_matrix().into_iter().map(|(_, i)| i.text).collect();
    assert_eq!(mx, ["m2", "m3"]);
    assert_eq!(s.to_matrix()[0].1, mx_item("m2"));
}

#[test]
fn a_version_1_database_is_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.sqlite");
    let mut s = Store::open(&path, 500).unwrap();
    s.conn
        .execute_batch(
            "DROP TABLE mmrelay_text; DROP TABLE mmrelay_to_matrix; DROP TABLE mmrelay_outbox;
             CREATE TABLE mmrelay_outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, item BLOB NOT NULL);
             PRAGMA user_version=1;",
        )
        .unwrap();
    s.set_state("last_rx_time", 5).unwrap();
    // A record as schema 1 wrote it: the fields before `to`, in order.
    let old = (1u32, "kept", 0u32, None::<String>, None::<String>, 3u32);
    s.conn
        .execute(
            "INSERT INTO mmrelay_outbox (item) VALUES (?1)",
            [postcard::to_allocvec(&old).unwrap()],
        )
        .unwrap();
    let kept = s.conn.last_insert_rowid();
    drop(s);
    let mut s = Store::open(&path, 500).unwrap();
    assert_eq!(s.state("last_rx_time"), Some(5));
    let out = s.outbox();
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].0, out[0].1.text.as_str()), (kept, "kept"));
    assert_eq!(
        (out[0].1.packet_id, out[0].1.to),
        (3, crate::mesh::proto::BROADCAST)
    );
    s.save(&Changes {
        text: Some(("sync_token", "t".into())),
        to_matrix: vec![mx_item("x")],
        ..Default::default()
    })
    .unwrap();
    assert_eq!(s.text("sync_token").as_deref(), Some("t"));
    assert_eq!(s.to_matrix().len(), 1);
    let v: i64 = s
        .conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION);
}

#[test]
fn outbox_and_state_persist() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.sqlite");
    let mut s = Store::open(&path, 500).unwrap();
    let item = OutItem {
        channel: 2,
        text: "héllo".into(),
        reply_id: 9,
        event_id: Some("$e".into()),
        room_id: None,
        packet_id: 0,
        to: 0x1234,
    };
    let saved = s
        .save(&Changes {
            to_mesh: vec![
                item.clone(),
                OutItem {
                    text: "second".into(),
                    ..item.clone()
                },
            ],
            ..Default::default()
        })
        .unwrap();
    let (a, b) = (saved.to_mesh[0], saved.to_mesh[1]);
    s.set_state("last_rx_time", 1234).unwrap();
    let w = s.writes();
    s.set_state("last_rx_time", 1234).unwrap();
    assert_eq!(s.writes(), w, "unchanged state is not written");
    drop(s);
    let mut s = Store::open(&path, 500).unwrap();
    let items = s.outbox();
    assert_eq!(
        items.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        vec![a, b]
    );
    assert_eq!(items[0].1, item);
    s.outbox_delete(a).unwrap();
    assert_eq!(s.outbox().len(), 1);
    assert_eq!(s.state("last_rx_time"), Some(1234));
}

#[test]
fn an_mmrelay_database_is_adopted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meshtastic.sqlite");
    {
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE longnames (meshtastic_id TEXT PRIMARY KEY, longname TEXT);
             CREATE TABLE shortnames (meshtastic_id TEXT PRIMARY KEY, shortname TEXT);
             CREATE TABLE message_map (meshtastic_id INTEGER, matrix_event_id TEXT PRIMARY KEY, matrix_room_id TEXT, meshtastic_text TEXT, meshtastic_meshnet TEXT);
             INSERT INTO longnames VALUES ('!0000002a', 'Old Node');
             INSERT INTO shortnames VALUES ('!0000002a', 'OLD');",
        )
        .unwrap();
    }
    let s = Store::open(&path, 500).unwrap();
    assert_eq!(
        s.names(42),
        Some(Names {
            long: "Old Node".into(),
            short: "OLD".into()
        })
    );
}

#[test]
fn telemetry_rows_are_replaced_per_slot_and_pruned_to_the_window() {
    use super::telemetry::{MAX_SAMPLES, SLOTS};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.sqlite");
    let mut s = Store::open(&path, 500).unwrap();
    let sample = |node: u32, slot: u32, battery: f32| Sample {
        node,
        slot,
        battery: Some(battery),
        voltage: None,
        air_util_tx: Some(1.5),
    };
    s.save(&Changes {
        telemetry: vec![sample(1, 1000, 50.0), sample(2, 1000, 60.0)],
        ..Default::default()
    })
    .unwrap();
    s.save(&Changes {
        telemetry: vec![sample(1, 1000, 55.0), sample(1, 1001, 56.0)],
        ..Default::default()
    })
    .unwrap();
    drop(s);
    let mut s = Store::open(&path, 500).unwrap();
    assert_eq!(
        s.telemetry_since(0),
        vec![
            sample(1, 1000, 55.0),
            sample(2, 1000, 60.0),
            sample(1, 1001, 56.0)
        ]
    );
    assert_eq!(s.telemetry_since(1001), vec![sample(1, 1001, 56.0)]);
    // A sample 12 hours on: the old slots go.
    s.save(&Changes {
        telemetry: vec![sample(3, 1001 + SLOTS, 70.0)],
        ..Default::default()
    })
    .unwrap();
    assert_eq!(s.telemetry_len(), 2);
    // Never more than MAX_SAMPLES rows.
    let many: Vec<Sample> = (0..MAX_SAMPLES as u32 + 10)
        .map(|n| sample(100 + n, 1001 + SLOTS, 1.0))
        .collect();
    s.save(&Changes {
        telemetry: many,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(s.telemetry_len(), MAX_SAMPLES);
}

fn waiting(id: usize) -> WaitingEvent {
    WaitingEvent {
        room_id: "!r:x".into(),
        event_id: format!("${id}"),
        session_id: "s".into(),
        event: format!("{{\"event_id\":\"${id}\"}}"),
    }
}

#[test]
fn waiting_events_are_kept_bounded_once_each_and_forgotten_when_done() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    let mut s = Store::open(&path, 100).unwrap();
    let ids =
        |s: &Store| -> Vec<String> { s.waiting_events().into_iter().map(|w| w.event_id).collect() };
    let save = |s: &mut Store, new: Vec<WaitingEvent>, done: Vec<String>| {
        s.save(&Changes {
            waiting: new,
            waiting_done: done,
            ..Default::default()
        })
        .unwrap();
    };
    save(&mut s, vec![waiting(1), waiting(2)], vec![]);
    // Seen again (a sync read twice after a crash): kept once, in its place.
    save(&mut s, vec![waiting(1)], vec![]);
    assert_eq!(ids(&s), ["$1", "$2"]);
    save(&mut s, vec![], vec!["$1".into()]);
    assert_eq!(ids(&s), ["$2"]);
    // The oldest go beyond the bound.
    save(
        &mut s,
        (3..3 + waiting::MAX_WAITING).map(waiting).collect(),
        vec![],
    );
    let kept = ids(&s);
    assert_eq!(kept.len(), waiting::MAX_WAITING);
    assert_eq!(kept[0], "$3");
    // Across a reopening, with the event as it was.
    drop(s);
    let s = Store::open(&path, 100).unwrap();
    assert_eq!(s.waiting_events()[0], waiting(3));
}
