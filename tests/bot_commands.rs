//! The bot commands end to end: the real `mmrelay` binary between the simulated radio (TCP) and
//! a real Synapse, a human in an encrypted room. Each command where it exists (Matrix, and ping
//! on the mesh), the bot mention rule, answers as replies, nothing relayed that was a command,
//! the per-node rate limit, and the telemetry history across a restart.

#![recursion_limit = "256"]

mod common;

use common::one_room::{one_room, warm_up, OneRoom};
use common::relay::Relay;
use common::sim_next;
use mmrelay::mesh::proto::{mesh_packet, Data, MeshPacket, PortNum, BROADCAST};
use mmrelay::sim::{SimEvent, SimText};
use serde_json::Value;

const ME: u32 = 0x0a0b0c0d;
const ALICE: u32 = 0x1111aaaa;
const BOB: u32 = 0x2222bbbb;
const CAROL: u32 = 0x3333cccc;

const PLUGINS: &str = "  message_delay: 0.1
plugins:
  help:
    active: true
  ping:
    active: true
    display_hops: true
  nodes:
    active: true
  health:
    active: true
  telemetry:
    active: true
  status:
    active: true
    require_bot_mention: false
  weather:
    active: true
";

fn text_packet(from: u32, to: u32, text: &str, hop_start: u32, hop_limit: u32) -> MeshPacket {
    MeshPacket {
        from,
        to,
        channel: 0,
        hop_start,
        hop_limit,
        rx_snr: 4.0,
        payload: Some(mesh_packet::Payload::Decoded(Data {
            portnum: PortNum::TextMessageApp as i32,
            payload: text.as_bytes().to_vec(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

async fn next_text_packet(rx: &mut tokio::sync::broadcast::Receiver<SimEvent>) -> MeshPacket {
    sim_next(rx, "a text from the relay", |e| match e {
        SimEvent::Packet(p)
            if p.decoded().map(|d| d.portnum) == Some(PortNum::TextMessageApp as i32) =>
        {
            Some(p)
        }
        _ => None,
    })
    .await
}

fn payload(p: &MeshPacket) -> String {
    String::from_utf8_lossy(&p.decoded().unwrap().payload).into_owned()
}

/// Asks the bot in the room; returns its answer (a notice replying to the question).
async fn ask(r: &mut OneRoom, question: &str) -> String {
    let asked = r.human.send_text(&r.room, question).await;
    let v = r
        .human
        .next_from(r.bot_id.as_str(), |v| v["type"] == "m.room.message")
        .await;
    let c = &v["content"];
    assert_eq!(c["msgtype"], "m.notice", "{question}: {v}");
    assert_eq!(
        c["m.relates_to"]["m.in_reply_to"]["event_id"],
        asked.as_str(),
        "{question}: the answer replies to the question"
    );
    assert_eq!(c["mmrelay_suppress"], true);
    c["body"].as_str().unwrap().to_string()
}

/// The next message the bot relays from the mesh; it must be `text`'s.
async fn next_relayed(r: &mut OneRoom, text: &str) -> Value {
    let v = r
        .human
        .next_from(r.bot_id.as_str(), |v| v["type"] == "m.room.message")
        .await;
    assert_eq!(v["content"]["meshtastic_text"], text, "{v}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_answer_in_matrix_and_on_the_mesh_and_are_not_relayed() {
    let (mut r, relay) = one_room("BotNet", PLUGINS).await;
    warm_up(&r).await;
    let mut rx = r.sim.subscribe();
    let log = relay.log();
    assert!(log.contains("'plugins.weather' is not used by mmrelay; ignoring it"));
    assert!(!log.contains("'plugins' is not used"));
    let bot = r.bot_id.localpart().to_string();

    r.sim.inject_telemetry(ALICE, 85, 4.1);
    r.sim.inject_telemetry(BOB, 7, 3.3);
    r.sim.inject_telemetry(ME, 101, 5.0);

    // Mesh: !ping two hops away is answered as a reply on its channel, not relayed.
    let ping = r
        .sim
        .inject_packet(text_packet(ALICE, BROADCAST, "!ping", 5, 3));
    let p = next_text_packet(&mut rx).await;
    assert_eq!(payload(&p), "pong! (2 hops)");
    let d = p.decoded().unwrap();
    assert_eq!((p.to, p.channel, d.reply_id), (BROADCAST, 0, ping));
    r.sim
        .inject_text(&SimText::broadcast(ALICE, 0, "after the ping"));
    next_relayed(&mut r, "after the ping").await;

    // A direct message to the relay's node gets a direct answer.
    let dm = r.sim.inject_packet(text_packet(BOB, ME, "!PING", 3, 3));
    let p = next_text_packet(&mut rx).await;
    assert_eq!(payload(&p), "pong! (0 hops)");
    assert_eq!((p.to, p.decoded().unwrap().reply_id), (BOB, dm));

    // Matrix: without a mention, !ping is chat and goes to the mesh.
    r.human.send_text(&r.room, "!ping").await;
    assert_eq!(payload(&next_text_packet(&mut rx).await), "human[M]: !ping");
    // With one, the bot answers in the room, and nothing goes to the mesh for it.
    assert_eq!(ask(&mut r, &format!("{bot}: !ping")).await, "pong!");
    r.human.send_text(&r.room, "marker one").await;
    assert_eq!(
        payload(&next_text_packet(&mut rx).await),
        "human[M]: marker one"
    );

    assert_eq!(
        ask(&mut r, &format!("{bot}: !help")).await,
        "Commands: !help, !ping, !nodes, !health, !batteryLevel, !voltage, !airUtilTx, !status"
    );
    assert_eq!(
        ask(&mut r, &format!("{bot}: !help voltage")).await,
        "!voltage [node]: battery voltage over the last 12 hours"
    );
    let nodes = ask(&mut r, &format!("{bot}: !NODES")).await;
    let lines: Vec<&str> = nodes.lines().collect();
    assert_eq!(lines[0], "Nodes: 4", "{nodes}");
    assert!(
        lines.contains(&"RLY Relay Gateway · RAK4631 · powered 5.00 V · this relay's radio"),
        "{nodes}"
    );
    let alice = lines
        .iter()
        .find(|l| l.starts_with("ALC Alice Base"))
        .unwrap();
    assert!(
        alice.starts_with("ALC Alice Base · RAK4631 · battery 85 % 4.10 V · SNR "),
        "{alice}"
    );
    let health = ask(&mut r, &format!("{bot}: !health")).await;
    assert!(health.contains("Nodes: 4"), "{health}");
    assert!(
        health.contains("Battery: average 46 %, median 46 % (2 reporting)"),
        "{health}"
    );
    assert!(
        health.contains("Radio: channel utilisation 3.5 %, air utilisation (TX) 0.8 %"),
        "{health}"
    );
    assert!(
        health.contains("Low battery (10 % or less): BOB 7 %"),
        "{health}"
    );
    let battery = ask(&mut r, &format!("{bot}: !batteryLevel alc")).await;
    assert!(
        battery.starts_with("Battery level (ALC Alice Base), last 12 h"),
        "{battery}"
    );
    assert!(battery.ends_with("latest 85 %"), "{battery}");
    let status = ask(&mut r, "!status").await;
    assert!(status.contains("Radio: connected for"), "{status}");
    assert!(status.contains("Matrix: last sync"), "{status}");
    assert!(status.contains("Last error: none"), "{status}");
    // Junk: an unknown node, an unknown topic; an unknown command is chat.
    let unknown = ask(&mut r, &format!("{bot}: !voltage !deadbeef")).await;
    assert!(
        unknown.starts_with("No node '!deadbeef' known"),
        "{unknown}"
    );
    let topic = ask(&mut r, &format!("{bot}: !help weather")).await;
    assert!(topic.starts_with("No active command 'weather'"), "{topic}");
    r.human
        .send_text(&r.room, &format!("{bot}: !weather"))
        .await;
    assert_eq!(
        payload(&next_text_packet(&mut rx).await),
        format!("human[M]: {bot}: !weather")
    );

    // A burst of 50 pings from one node: three answers, none relayed, nothing else stops.
    let ids: Vec<u32> = (0..50)
        .map(|_| r.sim.inject_text(&SimText::broadcast(CAROL, 0, "!ping")))
        .collect();
    r.sim
        .inject_text(&SimText::broadcast(CAROL, 0, "after the burst"));
    next_relayed(&mut r, "after the burst").await;
    r.human.send_text(&r.room, "marker two").await;
    let mut pongs = 0;
    loop {
        let p = next_text_packet(&mut rx).await;
        if payload(&p) == "human[M]: marker two" {
            break;
        }
        assert!(payload(&p).starts_with("pong!"), "{}", payload(&p));
        assert!(ids.contains(&p.decoded().unwrap().reply_id));
        pongs += 1;
    }
    assert_eq!(pongs, 3);
    assert_eq!(
        relay
            .log()
            .matches("Not answering !3333cccc for a while")
            .count(),
        1,
        "one log line for the refused burst"
    );

    // The telemetry history survives a restart.
    relay.stop().await;
    let relay = Relay::launch(r.home.path()).await;
    let battery = ask(&mut r, &format!("{bot}: !batteryLevel ALC")).await;
    assert!(battery.ends_with("latest 85 %"), "{battery}");
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_plugins_commands_are_chat() {
    let (mut r, relay) = one_room("PlainNet", "  message_delay: 0.1\n").await;
    warm_up(&r).await;
    let mut rx = r.sim.subscribe();
    let bot = r.bot_id.localpart().to_string();
    r.sim.inject_text(&SimText::broadcast(ALICE, 0, "!ping"));
    next_relayed(&mut r, "!ping").await;
    r.human.send_text(&r.room, &format!("{bot}: !ping")).await;
    assert_eq!(
        payload(&next_text_packet(&mut rx).await),
        format!("human[M]: {bot}: !ping")
    );
    assert!(!relay.log().contains("Bot commands:"));
    relay.stop().await;
}
