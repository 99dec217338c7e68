//! One encrypted room bridged to channel 0 of a simulated radio, with a bot logged in and a
//! human in the room: what most end-to-end tests start from.

use super::relay::Relay;
use super::synapse::{login_bot_on, synapse, unique, Human};
use super::{tcp_sim, wait_mesh};
use mmrelay::mesh::transport::Endpoint;
use mmrelay::sim::SimConfig;

/// What the crash and gap tests start from: a bot logged in to `home`, a human, an encrypted
/// room mapped to channel 0 with `meshtastic:` lines `extra`; and the relay, running with the
/// bot in the room.
pub struct OneRoom {
    pub sim: mmrelay::sim::Simulator,
    pub home: tempfile::TempDir,
    pub bot_id: matrix_sdk::ruma::OwnedUserId,
    pub human: Human,
    pub room: matrix_sdk::ruma::OwnedRoomId,
}

pub async fn one_room(meshnet: &str, extra: &str) -> (OneRoom, Relay) {
    let hs = synapse();
    let (sim, ep) = tcp_sim(SimConfig::default()).await;
    let Endpoint::Tcp { port, .. } = ep else {
        unreachable!()
    };
    let home = tempfile::tempdir().unwrap();
    let bot_id = login_bot_on(&hs.url, home.path()).await;
    let human = Human::new(&unique("human")).await;
    let room = human.create_room(true, std::slice::from_ref(&bot_id)).await;
    std::fs::write(
        home.path().join("config.yaml"),
        format!(
            "matrix_rooms:\n  - id: \"{room}\"\n    meshtastic_channel: 0\nmeshtastic:\n  connection_type: tcp\n  host: 127.0.0.1\n  port: {port}\n  meshnet_name: {meshnet}\n{extra}"
        ),
    )
    .unwrap();
    let relay = Relay::launch(home.path()).await;
    human.wait_joined(&room, &bot_id).await;
    let r = OneRoom {
        sim,
        home,
        bot_id,
        human,
        room,
    };
    (r, relay)
}

/// A first message from the human, so its client has shared the room key with the bot;
/// returns the radio's packet count after it.
pub async fn warm_up(r: &OneRoom) -> usize {
    r.human.send_text(&r.room, "warm-up").await;
    wait_mesh(&r.sim, 1, 60, "the warm-up").await;
    r.sim.received().len()
}
