//! The relay's state without radio or homeserver: what each event saves, queues and defers.

use super::*;
use crate::matrix::content::{Incoming, IncomingMessage, MessageKind};
use crate::mesh::proto::{mesh_packet, Data, MeshPacket, BROADCAST};
use std::time::Duration;
use tokio::sync::mpsc;

const ALICE: u32 = 0x1111aaaa;
const ROOM: &str = "!a:h.org";

fn rules(interactions: bool) -> Rules {
    Rules {
        meshnet_name: "TestNet".into(),
        bot_user_id: "@relay:h.org".into(),
        rooms: vec![(ROOM.into(), 0)],
        dm_room: None,
        matrix_prefix: Some("[{long}/{mesh}]: ".into()),
        mesh_prefix: Some("{display5}[M]: ".into()),
        broadcast_enabled: true,
        detection_sensor: false,
        reactions: interactions,
        replies: interactions,
        max_event_age_ms: 600_000,
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    relay: Relay,
    sent: mpsc::Receiver<Outgoing>,
}

fn fixture(capacity: usize, interactions: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    let (relay, sent) = reopen(&path, capacity, interactions);
    Fixture {
        _dir: dir,
        path,
        relay,
        sent,
    }
}

fn reopen(
    path: &std::path::Path,
    capacity: usize,
    interactions: bool,
) -> (Relay, mpsc::Receiver<Outgoing>) {
    let store = Store::open(path, 500).unwrap();
    let token = store.text(SYNC_TOKEN);
    let (sender, sent) = Sender::channel(capacity);
    let relay = Relay::new(
        store,
        rules(interactions),
        sender,
        "TestNet".into(),
        500,
        token,
    );
    (relay, sent)
}

fn packet(id: u32, text: &str) -> MeshPacket {
    MeshPacket {
        from: ALICE,
        to: BROADCAST,
        id,
        channel: 0,
        rx_time: (now_ms() / 1000) as u32 + 5,
        payload: Some(mesh_packet::Payload::Decoded(Data {
            portnum: PortNum::TextMessageApp as i32,
            payload: text.as_bytes().to_vec(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

impl Relay {
    /// A packet relayed at once (saved, then queued), as the loop does for a lone packet.
    fn on_packet(&mut self, p: &MeshPacket) {
        self.stage_packet(p);
        self.save_staged();
    }
}

fn matrix_text(event_id: &str, body: &str) -> Incoming {
    Incoming::Message(IncomingMessage {
        room_id: ROOM.into(),
        event_id: event_id.into(),
        sender: "@bea:h.org".into(),
        sender_name: "Bernadette".into(),
        kind: MessageKind::Text,
        body: body.into(),
        formatted_body: None,
        in_reply_to: None,
        content: serde_json::json!({"msgtype": "m.text", "body": body}),
        origin_server_ts: now_ms(),
        encrypted: true,
    })
}

fn texts(rx: &mut mpsc::Receiver<Outgoing>) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(o) = rx.try_recv() {
        let v: serde_json::Value = serde_json::from_str(&o.content).unwrap();
        out.push(v["meshtastic_text"].as_str().unwrap().to_string());
    }
    out
}

#[test]
fn a_mesh_message_is_saved_with_its_transaction_id_before_it_is_queued() {
    let mut f = fixture(16, false);
    f.relay.on_packet(&packet(1, "hello"));
    let o = f.sent.try_recv().expect("queued for the sender");
    let saved = f.relay.store.to_matrix();
    assert_eq!(saved.len(), 1);
    assert_eq!(saved[0].0, o.id);
    assert_eq!(saved[0].1.txn_id, o.txn_id);
    assert_eq!(saved[0].1.content, o.content);
    assert_eq!(o.room_id, ROOM);
    // A repeat of the packet (same id) is dropped and counted.
    f.relay.on_packet(&packet(1, "hello"));
    assert!(f.sent.try_recv().is_err());
    assert_eq!(f.relay.n.duplicates, 1);
}

#[test]
fn a_burst_from_the_radio_is_saved_in_one_write_then_queued_in_order() {
    let mut f = fixture(16, false);
    let writes = f.relay.store.writes();
    for i in 1..=5 {
        f.relay.stage_packet(&packet(i, &format!("m{i}")));
    }
    assert!(f.sent.try_recv().is_err(), "queued before it was saved");
    assert!(f.relay.store.to_matrix().is_empty());
    f.relay.save_staged();
    assert_eq!(f.relay.store.writes(), writes + 1, "one transaction");
    assert_eq!(f.relay.store.to_matrix().len(), 5);
    assert_eq!(texts(&mut f.sent), ["m1", "m2", "m3", "m4", "m5"]);
    // Nothing staged: no write.
    f.relay.save_staged();
    assert_eq!(f.relay.store.writes(), writes + 1);
}

#[test]
fn sent_messages_are_crossed_off_with_the_next_write_or_the_flush() {
    let mut f = fixture(16, true);
    f.relay.on_packet(&packet(1, "one"));
    let one = f.sent.try_recv().unwrap();
    let writes = f.relay.store.writes();
    f.relay.on_sent(one.id, Some("$one".into()));
    assert_eq!(
        f.relay.store.writes(),
        writes,
        "nothing written for the answer"
    );
    assert!(f.relay.deferred.due.is_some(), "a flush is due");
    assert_eq!(f.relay.store.to_matrix().len(), 1);
    // Its map entry is found before it is written.
    assert_eq!(
        f.relay.map_by_mesh(1).map(|e| e.event_id).as_deref(),
        Some("$one")
    );
    // The next message's write crosses it off.
    f.relay.on_packet(&packet(2, "two"));
    let two = f.sent.try_recv().unwrap();
    assert_eq!(f.relay.store.writes(), writes + 1);
    let left: Vec<i64> = f.relay.store.to_matrix().iter().map(|r| r.0).collect();
    assert_eq!(left, vec![two.id]);
    // The flush writes the rest: the map entry, the last packet time.
    f.relay.on_sent(two.id, Some("$two".into()));
    f.relay.flush();
    assert!(f.relay.store.to_matrix().is_empty());
    assert!(f.relay.deferred.due.is_none());
    assert_eq!(
        f.relay.store.map_by_mesh(1).map(|e| e.event_id).as_deref(),
        Some("$one")
    );
    assert_eq!(
        f.relay.store.state(LAST_RX_TIME),
        Some(f.relay.threshold),
        "the last packet time is saved"
    );
    assert_eq!(f.relay.n.to_matrix, 2);
}

#[test]
fn without_interactions_no_message_map_is_written() {
    let mut f = fixture(16, false);
    f.relay.on_packet(&packet(1, "one"));
    let one = f.sent.try_recv().unwrap();
    f.relay.on_sent(one.id, Some("$one".into()));
    f.relay.flush();
    assert!(f.relay.store.map_by_mesh(1).is_none());
    assert_eq!(f.relay.store.map_len(), 0);
}

#[test]
fn the_sender_gets_what_it_has_room_for_and_the_rest_waits_in_order() {
    let mut f = fixture(2, false);
    for i in 1..=5 {
        f.relay.on_packet(&packet(i, &format!("m{i}")));
    }
    assert_eq!(texts(&mut f.sent), ["m1", "m2"]);
    assert_eq!(f.relay.backlog.len(), 3);
    assert_eq!(f.relay.store.to_matrix().len(), 5, "all saved");
    // Each answer makes room for the next.
    let ids: Vec<i64> = f.relay.store.to_matrix().iter().map(|r| r.0).collect();
    f.relay.on_sent(ids[0], Some("$1".into()));
    f.relay.on_sent(ids[1], Some("$2".into()));
    assert_eq!(texts(&mut f.sent), ["m3", "m4"]);
    // A refused message is dropped, counted, and makes room too.
    f.relay.on_sent(ids[2], None);
    assert_eq!(texts(&mut f.sent), ["m5"]);
    assert_eq!(f.relay.n.refused, 1);
    assert!(f.relay.backlog.is_empty());
}

#[test]
fn after_a_crash_what_was_saved_is_queued_again_in_order_with_the_same_ids() {
    let mut f = fixture(2, false);
    for i in 1..=4 {
        f.relay.on_packet(&packet(i, &format!("m{i}")));
    }
    let first: Vec<Outgoing> = std::iter::from_fn(|| f.sent.try_recv().ok()).collect();
    // m1 reached the homeserver, but mmrelay died before crossing it off.
    f.relay.on_sent(first[0].id, Some("$1".into()));
    drop(f.relay);
    let (relay, mut sent) = reopen(&f.path, 16, false);
    let again: Vec<Outgoing> = std::iter::from_fn(|| sent.try_recv().ok()).collect();
    let texts: Vec<String> = again
        .iter()
        .map(|o| {
            serde_json::from_str::<serde_json::Value>(&o.content).unwrap()["meshtastic_text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(texts, ["m1", "m2", "m3", "m4"]);
    assert_eq!(
        again[0].txn_id, first[0].txn_id,
        "the homeserver will know m1"
    );
    assert_eq!(again[1].txn_id, first[1].txn_id);
    assert_eq!(relay.to_matrix.len(), 4);
}

#[test]
fn matrix_messages_are_saved_with_the_token_of_their_sync() {
    let mut f = fixture(16, false);
    f.relay.on_incoming(&matrix_text("$a", "first"));
    f.relay.on_incoming(&matrix_text("$b", "second"));
    assert!(
        f.relay.store.outbox().is_empty(),
        "not before the sync ends"
    );
    f.relay.on_synced(Some("s1".into()));
    let out: Vec<String> = f
        .relay
        .store
        .outbox()
        .into_iter()
        .map(|(_, i)| i.text)
        .collect();
    assert_eq!(out, ["Berna[M]: first", "Berna[M]: second"]);
    assert_eq!(f.relay.store.text(SYNC_TOKEN).as_deref(), Some("s1"));
    assert_eq!(f.relay.outbox.len(), 2);
    assert!(
        f.relay.outbox.iter().all(|(_, i)| i.packet_id != 0),
        "packet ids chosen when saved"
    );
    // A sync that brought nothing costs no write; its token waits for the next one.
    let writes = f.relay.store.writes();
    f.relay.on_synced(Some("s2".into()));
    assert_eq!(f.relay.store.writes(), writes);
    assert!(f.relay.deferred.due.is_none(), "no flush for a token alone");
    assert_eq!(f.relay.store.text(SYNC_TOKEN).as_deref(), Some("s1"));
    f.relay.flush();
    assert_eq!(f.relay.store.text(SYNC_TOKEN).as_deref(), Some("s2"));
    // Messages of a sync that never ended are not saved (the next start reads it again).
    f.relay.on_incoming(&matrix_text("$c", "third"));
    drop(f.relay);
    let (relay, _sent) = reopen(&f.path, 16, false);
    assert_eq!(relay.outbox.len(), 2);
    assert_eq!(relay.saved_token.as_deref(), Some("s2"));
}

#[test]
fn old_matrix_messages_and_own_messages_are_not_queued() {
    let mut f = fixture(16, false);
    let mut old = matrix_text("$old", "stale");
    if let Incoming::Message(m) = &mut old {
        m.origin_server_ts = now_ms() - 3_600_000;
    }
    f.relay.on_incoming(&old);
    let mut own = matrix_text("$own", "mine");
    if let Incoming::Message(m) = &mut own {
        m.sender = "@relay:h.org".into();
    }
    f.relay.on_incoming(&own);
    f.relay.on_synced(Some("s1".into()));
    assert!(f.relay.store.outbox().is_empty());
    assert_eq!(f.relay.n.skipped_old, 1);
}

#[test]
fn bookkeeping_is_written_when_the_relay_turns_quiet_and_at_the_latest_after_a_minute() {
    let t0 = Instant::now();
    let mut d = Deferred::default();
    d.arm(t0);
    assert_eq!(
        d.due,
        Some(t0 + WRITE_QUIET),
        "quiet after the first message"
    );
    // A burst: each new thing to write down moves the write to the end of the quiet time.
    let t1 = t0 + Duration::from_millis(1500);
    d.arm(t1);
    assert_eq!(d.due, Some(t1 + WRITE_QUIET));
    // A steady stream never quiet for long enough: written a minute after the first.
    let mut t = t1;
    while t < t0 + WRITE_DEFER {
        t += Duration::from_secs(1);
        d.arm(t);
    }
    assert_eq!(d.due, Some(t0 + WRITE_DEFER));
    // Written: the next thing starts a new minute.
    d.disarm();
    assert_eq!(d.due, None);
    let t2 = t + Duration::from_secs(5);
    d.arm(t2);
    assert_eq!(d.due, Some(t2 + WRITE_QUIET));
    // A failed write is tried again a minute later, not at the next quiet moment.
    d.retry(t2);
    assert_eq!(d.due, Some(t2 + WRITE_DEFER));
    // New work is written at the next quiet moment again (its own write is tried at once).
    d.arm(t2 + Duration::from_secs(1));
    assert_eq!(d.due, Some(t2 + Duration::from_secs(1) + WRITE_QUIET));
}

fn with_bot(f: &mut Fixture) {
    use crate::config::relay::plugins::{Plugin, PluginsConfig};
    let on = Plugin {
        active: true,
        channels: None,
        require_bot_mention: false,
    };
    let cfg = PluginsConfig {
        ping: on.clone(),
        telemetry: on,
        ..Default::default()
    };
    let name = super::super::commands::BotName {
        user_id: "@relay:h.org".into(),
        display_name: None,
    };
    f.relay
        .set_bot(super::super::bot::Bot::new(cfg, vec![0], name));
}

fn telemetry_packet(from: u32, battery: u32) -> MeshPacket {
    use crate::mesh::proto::{telemetry, DeviceMetrics, Telemetry};
    use prost::Message;
    let t = Telemetry {
        time: 0,
        variant: Some(telemetry::Variant::DeviceMetrics(DeviceMetrics {
            battery_level: Some(battery),
            ..Default::default()
        })),
    };
    let mut p = packet(fastrand::u32(1..), "");
    p.from = from;
    p.payload = Some(mesh_packet::Payload::Decoded(Data {
        portnum: PortNum::TelemetryApp as i32,
        payload: t.encode_to_vec(),
        ..Default::default()
    }));
    p
}

#[test]
fn a_matrix_command_is_answered_with_the_sync_it_came_in_and_not_relayed() {
    let mut f = fixture(16, true);
    with_bot(&mut f);
    f.relay.on_incoming(&matrix_text("$q", "!ping"));
    assert!(
        f.relay.store.to_matrix().is_empty(),
        "not before the sync ends"
    );
    let writes = f.relay.store.writes();
    f.relay.on_synced(Some("s1".into()));
    assert_eq!(
        f.relay.store.writes(),
        writes + 1,
        "answer and token in one write"
    );
    assert_eq!(f.relay.store.text(SYNC_TOKEN).as_deref(), Some("s1"));
    assert!(
        f.relay.outbox.is_empty(),
        "the command is not sent to the mesh"
    );
    let o = f.sent.try_recv().unwrap();
    let v: serde_json::Value = serde_json::from_str(&o.content).unwrap();
    assert_eq!(v["body"], "pong!");
    assert_eq!(v["msgtype"], "m.notice");
    assert_eq!(v["m.relates_to"]["m.in_reply_to"]["event_id"], "$q");
    // Its delivery adds nothing to the message map (no packet to reply to).
    f.relay.on_sent(o.id, Some("$answer".into()));
    f.relay.flush();
    assert_eq!(f.relay.store.map_len(), 0);
}

#[test]
fn a_mesh_ping_is_answered_through_the_outbox_and_survives_a_restart() {
    let mut f = fixture(16, false);
    with_bot(&mut f);
    f.relay.my_node = 0x0a0b0c0d;
    let mut dm = packet(0x55, "!ping");
    dm.to = 0x0a0b0c0d;
    dm.channel = 2;
    f.relay.stage_packet(&dm);
    assert!(f.relay.staged.is_empty(), "not relayed to Matrix");
    let (_, item) = f.relay.outbox.front().cloned().unwrap();
    assert_eq!((item.to, item.channel, item.reply_id), (ALICE, 2, 0x55));
    assert_eq!(item.text, "pong!");
    drop(f.relay);
    let (relay, _sent) = reopen(&f.path, 16, false);
    assert_eq!(relay.outbox.len(), 1);
    assert_eq!(relay.outbox[0].1.to, ALICE);
}

#[test]
fn telemetry_waits_for_a_write_at_most_ten_minutes_and_is_read_back() {
    let mut f = fixture(16, false);
    with_bot(&mut f);
    let writes = f.relay.store.writes();
    let before = Instant::now();
    f.relay.stage_packet(&telemetry_packet(ALICE, 77));
    assert_eq!(f.relay.store.writes(), writes, "no write of its own");
    let due = f.relay.deferred.due.expect("armed");
    assert!(
        due >= before + Duration::from_secs(599)
            && due <= Instant::now() + Duration::from_secs(600)
    );
    // Bookkeeping that follows brings the write forward; the sample joins it.
    f.relay.stage_packet(&packet(1, "hello"));
    f.relay.save_staged();
    let o = f.sent.try_recv().unwrap();
    f.relay.on_sent(o.id, Some("$e".into()));
    assert!(f.relay.deferred.due.unwrap() <= Instant::now() + Duration::from_secs(2));
    f.relay.flush();
    assert_eq!(f.relay.store.telemetry_len(), 1);
    drop(f.relay);
    let (relay, sent) = reopen(&f.path, 16, false);
    let mut f2 = Fixture {
        _dir: f._dir,
        path: f.path,
        relay,
        sent,
    };
    with_bot(&mut f2);
    let b = f2.relay.bot.as_ref().unwrap();
    assert_eq!(b.history.len(), 1);
    assert!(b.history.pending.is_empty());
}

#[test]
fn the_outbox_hands_its_oldest_message_to_the_radio_and_keeps_it_until_taken() {
    let mut f = fixture(16, false);
    f.relay.on_incoming(&matrix_text("$a", "first"));
    f.relay.on_incoming(&matrix_text("$b", "second"));
    f.relay.on_incoming(&matrix_text("$c", "third"));
    f.relay.on_synced(Some("s1".into()));

    // Not taken (the link dropped before the radio accepted it): the same message again.
    let (id, item) = f.relay.next_for_mesh().unwrap();
    assert_eq!(item.text, "Berna[M]: first");
    f.relay.mesh_handoff(id, Handoff::Retry);
    let (again, item_again) = f.relay.next_for_mesh().unwrap();
    assert_eq!((again, &item_again.packet_id), (id, &item.packet_id));
    assert_eq!(f.relay.store.outbox().len(), 3);

    // Taken: it leaves the outbox, in memory and on disk, and is counted.
    f.relay.mesh_handoff(id, Handoff::Taken);
    assert_eq!(f.relay.n.to_mesh, 1);
    let (id2, item2) = f.relay.next_for_mesh().unwrap();
    assert_eq!(item2.text, "Berna[M]: second");
    // A stale report for the message already gone changes nothing.
    f.relay.mesh_handoff(id, Handoff::Taken);
    assert_eq!(f.relay.next_for_mesh().unwrap().0, id2);

    // Refused for good: dropped, not counted as relayed.
    f.relay.mesh_handoff(id2, Handoff::Dropped);
    assert_eq!(f.relay.n.to_mesh, 1);
    let summary = f.relay.finish();
    assert!(summary.contains("1 to the mesh"), "{summary}");
    assert!(summary.contains("1 waiting for the radio"), "{summary}");

    // After a restart only the message never taken is there, with its packet id.
    let (id3, item3) = f.relay.next_for_mesh().unwrap();
    drop(f.relay);
    let (relay, _sent) = reopen(&f.path, 16, false);
    let (rid, ritem) = relay.next_for_mesh().unwrap();
    assert_eq!((rid, ritem.text.as_str()), (id3, "Berna[M]: third"));
    assert_eq!(ritem.packet_id, item3.packet_id);
    assert_eq!(relay.outbox.len(), 1);
}
