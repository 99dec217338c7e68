//! The relay with a homeserver that goes away: mesh messages that arrive while Synapse is
//! stopped for 30 s all reach the room once it is back, in order and once each; a relay started
//! while Synapse is down waits for it.

#![recursion_limit = "256"]

mod common;

use std::time::Duration;

use common::relay::Relay;
use common::synapse::{login_bot_on, unique, Human, OwnSynapse};
use common::tcp_sim;
use matrix_sdk::ruma::{OwnedRoomId, OwnedUserId};
use mmrelay::mesh::transport::Endpoint;
use mmrelay::sim::{SimConfig, SimText, Simulator};

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// What both tests start from: their own Synapse, a simulated radio, a bot logged in to
/// `home`, a human and a room (encrypted or not) with a config mapping it to channel 0.
struct Setup {
    hs: OwnSynapse,
    sim: Simulator,
    home: tempfile::TempDir,
    bot_id: OwnedUserId,
    human: Human,
    room: OwnedRoomId,
}

async fn setup(tag: &'static str, encrypted: bool, meshnet: &str) -> Setup {
    let hs = blocking(move || OwnSynapse::start(tag)).await;
    let url = hs.url.clone();
    let (sim, ep) = tcp_sim(SimConfig::default()).await;
    let Endpoint::Tcp { port, .. } = ep else {
        unreachable!()
    };
    let home = tempfile::tempdir().unwrap();
    let bot_id = login_bot_on(&url, home.path()).await;
    let human = Human::on(&url, &unique("human")).await;
    let room = human
        .create_room(encrypted, std::slice::from_ref(&bot_id))
        .await;
    std::fs::write(
        home.path().join("config.yaml"),
        format!(
            "matrix_rooms:\n  - id: \"{room}\"\n    meshtastic_channel: 0\nmeshtastic:\n  connection_type: tcp\n  host: 127.0.0.1\n  port: {port}\n  meshnet_name: {meshnet}\n"
        ),
    )
    .unwrap();
    Setup {
        hs,
        sim,
        home,
        bot_id,
        human,
        room,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesh_messages_during_a_homeserver_outage_are_not_lost() {
    let Setup {
        hs,
        sim,
        home,
        bot_id,
        mut human,
        room,
    } = setup("relay-outage", true, "OutageNet").await;
    let relay = Relay::launch(home.path()).await;
    human.wait_joined(&room, &bot_id).await;
    sim.inject_text(&SimText::broadcast(0x1111aaaa, 0, "before the outage"));
    let v = human
        .next_from(bot_id.as_str(), |v| v["type"] == "m.room.message")
        .await;
    assert_eq!(v["content"]["meshtastic_text"], "before the outage");

    let mut hs = blocking(move || {
        let mut hs = hs;
        hs.stop();
        hs
    })
    .await;
    let texts: Vec<String> = (0..5).map(|i| format!("during the outage {i}")).collect();
    for t in &texts {
        sim.inject_text(&SimText::broadcast(0x2222bbbb, 0, t));
        tokio::time::sleep(Duration::from_secs(6)).await;
    }
    hs = blocking(move || {
        hs.restart();
        hs
    })
    .await;
    // The sender retries with backoff up to a minute (plus jitter): the first message may come
    // that long after the homeserver is back.
    let mut got = Vec::new();
    while got.len() < texts.len() {
        let v = human
            .next_from_within(bot_id.as_str(), 90, |v| v["type"] == "m.room.message")
            .await;
        got.push(
            v["content"]["meshtastic_text"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(got, texts);
    // Messages for Matrix go out one at a time, in order: a repeat would come before this.
    sim.inject_text(&SimText::broadcast(0x2222bbbb, 0, "marker"));
    let v = human
        .next_from(bot_id.as_str(), |v| v["type"] == "m.room.message")
        .await;
    assert_eq!(
        v["content"]["meshtastic_text"], "marker",
        "a message arrived twice: {v}"
    );
    relay.stop().await;
    drop(hs);
}

/// A relay started while its homeserver is unreachable (a router whose uplink comes up after
/// it) waits for it, retrying with backoff, instead of exiting, and relays once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_started_during_an_outage_waits_for_the_homeserver() {
    let Setup {
        hs,
        sim,
        home,
        bot_id,
        mut human,
        room,
    } = setup("start-outage", false, "LateNet").await;
    // A first run joins the room.
    let relay = Relay::launch(home.path()).await;
    human.wait_joined(&room, &bot_id).await;
    relay.stop().await;

    let mut hs = blocking(move || {
        let mut hs = hs;
        hs.stop();
        hs
    })
    .await;
    let h = home.path().to_path_buf();
    let mut relay = blocking(move || {
        let mut r = Relay::spawn_env(&h, &[]);
        r.wait_log("Initial sync failed");
        r.wait_log("retrying in 2s");
        r
    })
    .await;
    hs = blocking(move || {
        hs.restart();
        hs
    })
    .await;
    relay = blocking(move || {
        relay.wait_log("Relaying: the radio and Matrix are both connected");
        relay
    })
    .await;
    sim.inject_text(&SimText::broadcast(0x2222bbbb, 0, "after a late start"));
    let v = human
        .next_from(bot_id.as_str(), |v| v["type"] == "m.room.message")
        .await;
    assert_eq!(v["content"]["meshtastic_text"], "after a late start");
    relay.stop().await;
    drop(hs);
}
