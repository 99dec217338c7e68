//! The whole relay, as the real `mmrelay` binary, between the simulated radio (TCP) and a real
//! Synapse with a second client playing the human: both directions in an encrypted and a plain
//! room, with the exact texts and MMRelay's content fields; replies and reactions; SIGTERM.

#![recursion_limit = "256"]

mod common;

use std::time::{Duration, Instant};

use common::one_room::{one_room, warm_up, OneRoom};
use common::relay::Relay;
use common::synapse::{login_bot_on, synapse, unique, Human};
use common::{mesh_texts, tcp_sim, wait_mesh};
use mmrelay::mesh::proto::PortNum;
use mmrelay::mesh::transport::Endpoint;
use mmrelay::sim::{SimConfig, SimEvent, SimText};

async fn next_packet(
    rx: &mut tokio::sync::broadcast::Receiver<SimEvent>,
) -> mmrelay::mesh::proto::MeshPacket {
    common::sim_next(rx, "packet from the relay", |e| match e {
        SimEvent::Packet(p) => Some(p),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_both_ways_with_replies_and_reactions() {
    let hs = synapse();
    let (sim, ep) = tcp_sim(SimConfig::default()).await;
    let Endpoint::Tcp { port, .. } = ep else {
        unreachable!()
    };
    let mut sim_rx = sim.subscribe();

    let home = tempfile::tempdir().unwrap();
    let bot_id = login_bot_on(&hs.url, home.path()).await;
    let mut human = Human::new(&unique("human")).await;
    let enc = human.create_room(true, std::slice::from_ref(&bot_id)).await;
    let plain = human
        .create_room(false, std::slice::from_ref(&bot_id))
        .await;
    std::fs::write(
        home.path().join("config.yaml"),
        format!(
            "matrix:\n  homeserver: {}\n  bot_user_id: \"{bot_id}\"\nmatrix_rooms:\n  - id: \"{enc}\"\n    meshtastic_channel: 0\n  - id: \"{plain}\"\n    meshtastic_channel: 1\nmeshtastic:\n  connection_type: tcp\n  host: 127.0.0.1\n  port: {port}\n  meshnet_name: TestNet\n  message_delay: 0.2\n  message_interactions:\n    reactions: true\n    replies: true\nplugins:\n  ping:\n    active: true\n",
            hs.url
        ),
    )
    .unwrap();

    // systemd's notification socket, as the service manager would pass it.
    let notify_path = home.path().join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    // Read as systemd does, as they come.
    let (states_tx, states_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok(n) = notify.recv(&mut buf) {
            if states_tx
                .send(String::from_utf8_lossy(&buf[..n]).to_string())
                .is_err()
            {
                break;
            }
        }
    });
    let env = vec![
        ("NOTIFY_SOCKET", notify_path.to_str().unwrap().to_string()),
        ("WATCHDOG_USEC", "1000000".to_string()),
    ];
    let relay = tokio::task::spawn_blocking({
        let h = home.path().to_path_buf();
        move || Relay::start_env(&h, &env)
    })
    .await
    .unwrap();
    human.wait_joined(&enc, &bot_id).await;
    human.wait_joined(&plain, &bot_id).await;
    assert!(relay.log().contains("Bot commands: ping"));

    for (room, channel) in [(&enc, 0u32), (&plain, 1u32)] {
        // Mesh -> Matrix.
        let mesh_id = sim.inject_text(&SimText::broadcast(
            0x1111aaaa,
            channel,
            "hello from the mesh",
        ));
        let v = human
            .next_from(bot_id.as_str(), |v| v["type"] == "m.room.message")
            .await;
        assert_eq!(v["room_id"], room.as_str());
        let c = &v["content"];
        assert_eq!(c["body"], "[Alice Base/TestNet]: hello from the mesh");
        assert_eq!(c["msgtype"], "m.text");
        assert_eq!(c["meshtastic_longname"], "Alice Base");
        assert_eq!(c["meshtastic_shortname"], "ALC");
        assert_eq!(c["meshtastic_meshnet"], "TestNet");
        assert_eq!(c["meshtastic_portnum"], "TEXT_MESSAGE_APP");
        assert_eq!(c["meshtastic_id"], mesh_id);
        assert_eq!(c["meshtastic_text"], "hello from the mesh");
        let relayed_event = v["event_id"].as_str().unwrap().to_string();

        // Matrix -> mesh.
        let human_event = human.send_text(room, "hello from matrix").await;
        let p = next_packet(&mut sim_rx).await;
        let from_matrix_packet = p.id;
        let d = p.decoded().unwrap();
        assert_eq!(p.channel, channel);
        assert_eq!(d.portnum, PortNum::TextMessageApp as i32);
        assert_eq!(
            String::from_utf8_lossy(&d.payload),
            "human[M]: hello from matrix"
        );

        // A mesh reply to the message from Matrix becomes a Matrix reply.
        sim.inject_text(&SimText {
            reply_id: p.id,
            ..SimText::broadcast(0x2222bbbb, channel, "got it")
        });
        let v = human
            .next_from(bot_id.as_str(), |v| {
                v["content"]["meshtastic_text"] == "got it"
            })
            .await;
        assert_eq!(v["content"]["body"], "[Bob Mobile/TestNet]: got it");
        assert_eq!(
            v["content"]["m.relates_to"]["m.in_reply_to"]["event_id"],
            human_event.as_str()
        );

        // A mesh reaction to the relayed mesh message becomes MMRelay's reaction emote.
        sim.inject_text(&SimText {
            reply_id: mesh_id,
            emoji: true,
            ..SimText::broadcast(0x3333cccc, channel, "\u{1F44D}")
        });
        let v = human
            .next_from(bot_id.as_str(), |v| v["content"]["meshtastic_emoji"] == 1)
            .await;
        assert_eq!(v["content"]["msgtype"], "m.emote");
        assert_eq!(
            v["content"]["body"],
            "[Carol \u{1F4E1} Hill/TestNet]: reacted \u{1F44D} to \"hello from the mesh\""
        );
        assert_eq!(v["content"]["meshtastic_replyId"], mesh_id);

        // A Matrix reply and reaction on the relayed message go to the mesh.
        human
            .send_raw(
                room,
                "m.room.message",
                serde_json::json!({"msgtype": "m.text", "body": "> <@x:localhost> hello\n\nwelcome back",
                    "m.relates_to": {"m.in_reply_to": {"event_id": relayed_event}}}),
            )
            .await;
        let p = next_packet(&mut sim_rx).await;
        let d = p.decoded().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&d.payload),
            "human[M]: welcome back"
        );
        assert_eq!(d.reply_id, mesh_id);
        // A Matrix reaction is a reply to the packet of the original, whether it came from the
        // mesh or from Matrix.
        for (original, key, quoted, packet) in [
            (&relayed_event, "\u{2764}", "hello from the mesh", mesh_id),
            (
                &human_event,
                "\u{1F680}",
                "human[M]: hello from matrix",
                from_matrix_packet,
            ),
        ] {
            human
                .send_raw(
                    room,
                    "m.reaction",
                    serde_json::json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": original, "key": key}}),
                )
                .await;
            let p = next_packet(&mut sim_rx).await;
            let d = p.decoded().unwrap();
            assert_eq!(
                String::from_utf8_lossy(&d.payload),
                format!("human[M]: reacted {key} to \"{quoted}\"")
            );
            assert_eq!(d.reply_id, packet);
        }
    }

    // An unknown sender appears by its node id until its NODEINFO arrives.
    sim.inject_text(&SimText::broadcast(0x4444dddd, 0, "who am I"));
    let v = human
        .next_from(bot_id.as_str(), |v| {
            v["content"]["meshtastic_text"] == "who am I"
        })
        .await;
    assert_eq!(v["content"]["body"], "[!4444dddd/TestNet]: who am I");
    sim.inject_nodeinfo(&mmrelay::sim::SimNode::new(
        0x4444dddd,
        "Dora Explorer",
        "DORA",
    ));
    sim.inject_text(&SimText::broadcast(0x4444dddd, 0, "now named"));
    let v = human
        .next_from(bot_id.as_str(), |v| {
            v["content"]["meshtastic_text"] == "now named"
        })
        .await;
    assert_eq!(v["content"]["body"], "[Dora Explorer/TestNet]: now named");
    assert_eq!(v["content"]["meshtastic_shortname"], "DORA");

    // A packet the radio replays from before the last relayed one is not relayed again.
    let hour_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32
        - 3600;
    sim.inject_packet(mmrelay::mesh::proto::MeshPacket {
        from: 0x1111aaaa,
        to: mmrelay::mesh::proto::BROADCAST,
        rx_time: hour_ago,
        payload: Some(mmrelay::mesh::proto::mesh_packet::Payload::Decoded(
            mmrelay::mesh::proto::Data {
                portnum: PortNum::TextMessageApp as i32,
                payload: b"an hour old".to_vec(),
                ..Default::default()
            },
        )),
        ..Default::default()
    });
    sim.inject_text(&SimText::broadcast(0x1111aaaa, 0, "fresh"));
    let v = human
        .next_from(bot_id.as_str(), |v| v["type"] == "m.room.message")
        .await;
    assert_eq!(v["content"]["meshtastic_text"], "fresh");

    // The relay's own node and its own Matrix messages are never relayed back.
    // A marker from another node follows: the bot's next message must be the marker's.
    let me = sim.config().me.num;
    sim.inject_text(&SimText::broadcast(me, 0, "from the relay's own node"));
    sim.inject_text(&SimText::broadcast(0x1111aaaa, 0, "marker from the mesh"));
    let v = human
        .next_from(bot_id.as_str(), |v| v["type"] == "m.room.message")
        .await;
    assert_eq!(v["content"]["meshtastic_text"], "marker from the mesh");
    // The bot's marker is in the room before the human's next message, so the relay reads it
    // first: the first packet to the mesh must be the human's.
    human.send_text(&enc, "marker from matrix").await;
    let p = next_packet(&mut sim_rx).await;
    assert_eq!(
        String::from_utf8_lossy(&p.decoded().unwrap().payload),
        "human[M]: marker from matrix"
    );

    let (status, took) = tokio::task::spawn_blocking(move || relay.terminate())
        .await
        .unwrap();
    assert!(status.success(), "exit status {status}");
    assert!(took < Duration::from_secs(10), "took {took:?} to stop");

    // READY once both links were up, WATCHDOG from the main loop, STOPPING at the end.
    std::thread::sleep(Duration::from_millis(200));
    let states: Vec<String> = states_rx.try_iter().collect();
    let ready = states
        .iter()
        .position(|s| s.starts_with("READY=1"))
        .expect("READY=1 sent");
    assert_eq!(
        states.iter().filter(|s| s.starts_with("READY=1")).count(),
        1
    );
    assert!(
        states.iter().filter(|s| *s == "WATCHDOG=1").count() >= 5,
        "{states:?}"
    );
    assert_eq!(
        states.last().map(String::as_str),
        Some("STOPPING=1"),
        "{states:?}"
    );
    assert!(ready < states.len() - 1);
}

/// Waits up to `secs` for the human's `texts` on the radio after its first `warm` packets, then
/// checks each came once, in order, and that the next packet is a marker sent after them.
async fn mesh_gets_each_once(r: &OneRoom, warm: usize, texts: &[String], secs: u64, what: &str) {
    wait_mesh(&r.sim, warm + texts.len(), secs, what).await;
    let want: Vec<String> = texts.iter().map(|t| format!("human[M]: {t}")).collect();
    assert_eq!(
        mesh_texts(&r.sim, warm),
        want,
        "each message once, in order"
    );
    // A repeat would reach the radio before a message sent now.
    r.human.send_text(&r.room, "marker").await;
    wait_mesh(&r.sim, warm + texts.len() + 1, secs, "the marker").await;
    assert_eq!(
        mesh_texts(&r.sim, warm + texts.len()),
        ["human[M]: marker"],
        "nothing arrived twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_killed_mid_burst_delivers_every_message_once_after_restart() {
    let (r, mut relay) = one_room("BurstNet", "  message_delay: 0.3\n").await;
    let warm = warm_up(&r).await;
    let texts: Vec<String> = (0..12).map(|i| format!("burst {i}")).collect();
    for t in &texts {
        r.human.send_text(&r.room, t).await;
    }
    // Kill it hard once part of the burst is on the mesh.
    wait_mesh(&r.sim, warm + 3, 60, "the burst").await;
    relay.kill();
    let sent_before = r.sim.received().len() - warm;
    assert!(
        sent_before < texts.len(),
        "the whole burst went out before the kill"
    );

    let relay = Relay::launch(r.home.path()).await;
    mesh_gets_each_once(&r, warm, &texts, 60, "the burst after the restart").await;
    relay.stop().await;
}

/// Mesh -> Matrix across a SIGKILL: every message the relay read from the radio reaches the
/// room once, in order, after a restart, including those it had sent but not yet crossed off
/// (they are sent again with their transaction ids, and the homeserver recognises them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesh_messages_survive_a_kill_and_arrive_once() {
    let (mut r, mut relay) = one_room("KillNet", "").await;
    let texts: Vec<String> = (0..30).map(|i| format!("mesh burst {i}")).collect();
    for t in &texts {
        r.sim.inject_text(&SimText::broadcast(0x5555eeee, 0, t));
    }
    // Killed as soon as it has read (and saved) all of them.
    let t0 = Instant::now();
    while relay.log().matches("queued for").count() < texts.len() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the relay did not read the burst:\n{}",
            relay.log()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    relay.kill();

    let relay = Relay::launch(r.home.path()).await;
    let log = relay.log();
    assert!(
        log.contains("from the mesh still waiting for the homeserver"),
        "nothing was left to send after the kill:\n{log}"
    );
    let bot = r.bot_id.as_str();
    let mut got = Vec::new();
    while got.len() < texts.len() {
        let v = r
            .human
            .next_from(bot, |v| v["type"] == "m.room.message")
            .await;
        got.push(
            v["content"]["meshtastic_text"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(got, texts, "each message once, in order");
    // Messages for Matrix go out one at a time, in order: a repeat would come before this.
    r.sim
        .inject_text(&SimText::broadcast(0x5555eeee, 0, "marker"));
    let v = r
        .human
        .next_from(bot, |v| v["type"] == "m.room.message")
        .await;
    assert_eq!(
        v["content"]["meshtastic_text"], "marker",
        "a message arrived twice: {v}"
    );
    relay.stop().await;
}

/// The Megolm session the human read the bot's next message `text` (from the mesh) with.
async fn session_of(r: &mut OneRoom, text: &str) -> String {
    r.sim.inject_text(&SimText::broadcast(0x5555eeee, 0, text));
    let bot = r.bot_id.to_string();
    let v = r
        .human
        .next_from(&bot, |v| v["content"]["meshtastic_text"] == text)
        .await;
    v["session_id"]
        .as_str()
        .expect("an encrypted message")
        .to_string()
}

fn outbound_rows(home: &std::path::Path) -> i64 {
    let db =
        rusqlite::Connection::open(home.join("matrix/store/matrix-sdk-crypto.sqlite3")).unwrap();
    db.query_row("SELECT count(*) FROM outbound_group_session", [], |row| {
        row.get(0)
    })
    .unwrap()
}

/// The outbound Megolm session is written only at a clean stop: the next start continues it.
/// After a kill the session on disk may be behind the ratchet, so the next start begins a new
/// one rather than reuse a message index.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_sessions_continue_after_a_clean_stop_and_are_replaced_after_a_kill() {
    let (mut r, relay) = one_room("SessionNet", "").await;
    let first = session_of(&mut r, "before the stop").await;
    let second = session_of(&mut r, "still before the stop").await;
    assert_eq!(first, second);
    assert_eq!(outbound_rows(r.home.path()), 0, "saved while running");
    relay.stop().await;
    assert_eq!(outbound_rows(r.home.path()), 1, "not saved at the stop");

    let mut relay = Relay::launch(r.home.path()).await;
    let after_stop = session_of(&mut r, "after a clean stop").await;
    assert_eq!(after_stop, first, "a clean restart began a new session");
    relay.kill();

    let relay = Relay::launch(r.home.path()).await;
    let after_kill = session_of(&mut r, "after a kill").await;
    assert_ne!(after_kill, first, "the session was used again after a kill");
    relay.stop().await;
}

/// Matrix messages sent while the relay is stopped reach the mesh after it starts, even more
/// of them than one sync returns (its timeline limit is 50): the gap is fetched with
/// `/messages`. Each arrives once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_messages_than_a_sync_returns_while_stopped_all_reach_the_mesh() {
    let (r, relay) = one_room("GapNet", "  message_delay: 0.1\n").await;
    let warm = warm_up(&r).await;
    relay.stop().await;

    let texts: Vec<String> = (0..64).map(|i| format!("while stopped {i}")).collect();
    for t in &texts {
        r.human.send_text(&r.room, t).await;
    }
    let relay = Relay::launch(r.home.path()).await;
    mesh_gets_each_once(&r, warm, &texts, 90, "the messages sent while stopped").await;
    let log = relay.log();
    assert!(
        log.contains("message(s) that the sync skipped"),
        "the gap was not fetched: {log}"
    );
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_of_different_meshnets_bridge_each_other_without_loops() {
    let hs = synapse();
    let human = Human::new(&unique("human")).await;
    let mut sims = Vec::new();
    let mut homes = Vec::new();
    let mut bots = Vec::new();
    for _ in 0..2 {
        let (sim, ep) = tcp_sim(SimConfig::default()).await;
        let Endpoint::Tcp { port, .. } = ep else {
            unreachable!()
        };
        let home = tempfile::tempdir().unwrap();
        bots.push(login_bot_on(&hs.url, home.path()).await);
        sims.push((sim, port));
        homes.push(home);
    }
    let room = human.create_room(true, &bots).await;
    let mut relays = Vec::new();
    for (i, net) in ["Northnet", "Southnet"].iter().enumerate() {
        std::fs::write(
            homes[i].path().join("config.yaml"),
            format!(
                "matrix_rooms:\n  - id: \"{room}\"\n    meshtastic_channel: 0\nmeshtastic:\n  connection_type: tcp\n  host: 127.0.0.1\n  port: {}\n  meshnet_name: {net}\n  message_delay: 0.2\n",
                sims[i].1
            ),
        )
        .unwrap();
        relays.push(Relay::launch(homes[i].path()).await);
    }
    for b in &bots {
        human.wait_joined(&room, b).await;
    }
    // Each relay's first message makes sure the room keys reached the other bot.
    human.send_text(&room, "hello both meshes").await;
    wait_mesh(&sims[0].0, 1, 60, "north's first message").await;
    wait_mesh(&sims[1].0, 1, 60, "south's first message").await;

    sims[0]
        .0
        .inject_text(&SimText::broadcast(0x1111aaaa, 0, "north calling"));
    wait_mesh(&sims[1].0, 2, 60, "north's mesh message on south").await;
    assert_eq!(mesh_texts(&sims[1].0, 1), ["Alice/Nort: north calling"]);
    sims[1]
        .0
        .inject_text(&SimText::broadcast(0x2222bbbb, 0, "south answering"));
    wait_mesh(&sims[0].0, 2, 60, "south's mesh message on north").await;
    assert_eq!(mesh_texts(&sims[0].0, 1), ["Bob M/Sout: south answering"]);

    // No loops: the next packet on either mesh is a marker sent after all of that.
    human.send_text(&room, "marker").await;
    for (n, (sim, _)) in sims.iter().enumerate() {
        wait_mesh(sim, 3, 60, "the marker").await;
        assert_eq!(mesh_texts(sim, 2), ["human[M]: marker"], "mesh {n}");
    }
    for r in relays {
        r.stop().await;
    }
}
