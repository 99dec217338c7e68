//! A message whose room key comes late, with the relay killed in between: the real `mmrelay`
//! binary between the simulated radio (TCP) and a real Synapse, the key forwarded by the bot's
//! other device, a real Matrix client, after the restart.

#![recursion_limit = "256"]

mod common;

use std::time::{Duration, Instant};

use common::relay::Relay;
use common::synapse::{register, synapse, unique};
use common::{mesh_texts, tcp_sim, wait_mesh};
use matrix_sdk::config::SyncSettings;
use matrix_sdk::encryption::LocalTrust;
use matrix_sdk::ruma::api::client::room::create_room;
use matrix_sdk::ruma::events::room::encryption::RoomEncryptionEventContent;
use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
use matrix_sdk::ruma::events::InitialStateEvent;
use matrix_sdk::ruma::{OwnedDeviceId, OwnedUserId};
use matrix_sdk::Client;
use mmrelay::matrix::credentials::MatrixPaths;
use mmrelay::mesh::transport::Endpoint;
use mmrelay::sim::SimConfig;

async fn sync(c: &Client) {
    c.sync_once(SyncSettings::new().timeout(Duration::ZERO))
        .await
        .unwrap();
}

/// config.yaml bridging `room` to the simulator on `port`, after `head`.
fn write_config(home: &std::path::Path, room: &matrix_sdk::ruma::RoomId, port: u16, head: &str) {
    std::fs::write(
        home.join("config.yaml"),
        format!(
            "{head}matrix_rooms:\n  - id: \"{room}\"\n    meshtastic_channel: 0\nmeshtastic:\n  connection_type: tcp\n  host: 127.0.0.1\n  port: {port}\n  meshnet_name: KeyNet\n"
        ),
    )
    .unwrap();
}

/// Runs mmrelay until it has kept both messages it cannot decrypt, then kills it.
async fn keep_both_then_crash(home: &std::path::Path) {
    let mut relay = Relay::launch(home).await;
    let t0 = Instant::now();
    while waiting_rows(home) < 2 {
        assert!(t0.elapsed() < Duration::from_secs(60), "{}", relay.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    relay.kill();
}

/// Rows of the relay's table of events that wait for their keys.
fn waiting_rows(home: &std::path::Path) -> i64 {
    let db = rusqlite::Connection::open(home.join("database/meshtastic.sqlite")).unwrap();
    db.query_row("SELECT count(*) FROM mmrelay_waiting", [], |r| r.get(0))
        .unwrap()
}

const SEALED: &str = "sealed for the other device";

/// What both tests start from (see the first one), up to mmrelay's first start.
struct Setup {
    sim: mmrelay::sim::Simulator,
    port: u16,
    home: tempfile::TempDir,
    human: Client,
    hroom: matrix_sdk::Room,
    other: Client,
    room: matrix_sdk::ruma::OwnedRoomId,
    bot_id: OwnedUserId,
    sealed_id: matrix_sdk::ruma::OwnedEventId,
}

async fn setup() -> Setup {
    let hs = synapse();
    let (sim, ep) = tcp_sim(SimConfig::default()).await;
    let Endpoint::Tcp { port, .. } = ep else {
        unreachable!()
    };
    let bot = unique("bot");
    let other = register(&bot, "bot-pass").await; // the bot's first device
    let bot_id: OwnedUserId = other.user_id().unwrap().to_owned();
    sync(&other).await;
    let human = register(&unique("human"), "human-pass").await;
    let mut req = create_room::v3::Request::new();
    req.invite = vec![bot_id.clone()];
    req.preset = Some(create_room::v3::RoomPreset::PrivateChat);
    req.initial_state = vec![InitialStateEvent::with_empty_state_key(
        RoomEncryptionEventContent::with_recommended_defaults(),
    )
    .to_raw_any()];
    let room = human.create_room(req).await.unwrap().room_id().to_owned();
    sync(&other).await;
    other.join_room_by_id(&room).await.unwrap();
    sync(&human).await;
    let hroom = human.get_room(&room).unwrap();
    hroom
        .send(RoomMessageEventContent::text_plain("before mmrelay"))
        .await
        .unwrap();

    // mmrelay's device, cross-signed at login; it verifies the first device, which trusts it.
    let home = tempfile::tempdir().unwrap();
    let paths = MatrixPaths::new(home.path(), None);
    let params = mmrelay::matrix::session::LoginParams {
        homeserver: hs.url.clone(),
        username: bot.clone(),
        password: "bot-pass".into(),
        reset_cross_signing: false,
        ..Default::default()
    };
    let report = mmrelay::matrix::session::login(&paths, &params, &mut |_| {})
        .await
        .unwrap();
    let relay_device: OwnedDeviceId = report.device_id.as_str().into();
    let other_device = other.device_id().unwrap().to_owned();
    {
        let restored = mmrelay::matrix::session::restore(&paths).await.unwrap();
        let enc = restored.client.encryption();
        enc.request_user_identity(&bot_id).await.unwrap();
        let d = enc
            .get_device(&bot_id, &other_device)
            .await
            .unwrap()
            .unwrap();
        d.verify().await.unwrap();
        // Read the signature back, so that the store knows the first device as verified.
        enc.request_user_identity(&bot_id).await.unwrap();
        let d = enc
            .get_device(&bot_id, &other_device)
            .await
            .unwrap()
            .unwrap();
        assert!(
            d.is_verified(),
            "the first device is not verified by mmrelay's"
        );
        restored.held.save_at_stop().await.unwrap();
    }
    other
        .encryption()
        .request_user_identity(&bot_id)
        .await
        .unwrap();
    let d = other
        .encryption()
        .get_device(&bot_id, &relay_device)
        .await
        .unwrap()
        .expect("the relay's device");
    d.set_local_trust(LocalTrust::Verified).await.unwrap();

    // The human, not synced since mmrelay's login, shares the session with the first device
    // only (it did so with the message above).
    let sealed_id = hroom
        .send(RoomMessageEventContent::text_plain(SEALED))
        .await
        .unwrap()
        .response
        .event_id;
    // The first device takes the key in before mmrelay asks for it.
    sync(&other).await;
    write_config(home.path(), &room, port, "");
    Setup {
        sim,
        port,
        home,
        human,
        hroom,
        other,
        room,
        bot_id,
        sealed_id,
    }
}

/// The bot's first device (a plain client) has the room key; mmrelay's device, logged in
/// after, does not: the sender's client has not synced since and shares only with the devices
/// it knows. mmrelay keeps the undecryptable messages and asks its own devices for the key; it
/// is killed before the answer. The other device answers while mmrelay is down; after the
/// restart the messages reach the mesh, once each, and are no longer kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_whose_key_comes_after_a_crash_reaches_the_mesh_once() {
    let Setup {
        sim,
        home,
        human,
        hroom,
        other,
        room,
        sealed_id,
        ..
    } = setup().await;
    let sealed = SEALED;
    let mut relay = Relay::launch(home.path()).await;
    let t0 = Instant::now();
    while waiting_rows(home.path()) < 2 {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the undecryptable message was never kept:\n{}",
            relay.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        relay
            .log()
            .contains(&format!("Failed to decrypt event {sealed_id}")),
        "{}",
        relay.log()
    );
    // A later message mmrelay can read moves its saved sync token past the two it cannot:
    // only what it kept of them can bring them back.
    sync(&human).await;
    hroom
        .send(RoomMessageEventContent::text_plain("read at once"))
        .await
        .unwrap();
    wait_mesh(&sim, 1, 60, "the message mmrelay can read").await;
    relay.kill();
    assert_eq!(mesh_texts(&sim, 0).len(), 1);

    // The first device reads mmrelay's key request and forwards the key (and keeps syncing,
    // for a request sent only after the restart).
    for _ in 0..3 {
        sync(&other).await;
    }
    let ev = other
        .get_room(&room)
        .unwrap()
        .event(&sealed_id, None)
        .await
        .unwrap();
    assert!(!ev.kind.is_utd(), "the first device has no key either");
    let answering = {
        let other = other.clone();
        tokio::spawn(async move {
            loop {
                let _ = other
                    .sync_once(SyncSettings::new().timeout(Duration::from_secs(1)))
                    .await;
            }
        })
    };
    // Both messages mmrelay could not read (the one from before its login came with its first
    // sync too) reach the mesh, in order, once.
    let relay = Relay::launch(home.path()).await;
    let t0 = Instant::now();
    while sim.received().len() < 3 {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the messages whose key came late never reached the mesh: {:?}\n{}",
            mesh_texts(&sim, 0),
            relay.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = mesh_texts(&sim, 1);
    assert!(got[0].ends_with("before mmrelay"), "{got:?}");
    assert!(got[1].ends_with(sealed), "{got:?}");
    // A marker after them: nothing arrives twice. (The human's client syncs first, to learn
    // of mmrelay's device.)
    sync(&human).await;
    hroom
        .send(RoomMessageEventContent::text_plain("marker"))
        .await
        .unwrap();
    wait_mesh(&sim, 4, 60, "the marker").await;
    let texts = mesh_texts(&sim, 0);
    assert_eq!(texts.len(), 4, "{texts:?}");
    assert!(texts[3].ends_with("marker"), "{texts:?}");
    relay.stop().await;
    answering.abort();
    assert_eq!(waiting_rows(home.path()), 0);
}

/// Kept undecryptable events of a room that is no longer bridged: one line each at the next
/// start, forgotten, and the relay goes on with the rooms it bridges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_events_of_a_room_no_longer_bridged_are_forgotten_with_one_line_each() {
    let Setup {
        sim,
        port,
        home,
        human,
        bot_id,
        sealed_id,
        ..
    } = setup().await;
    keep_both_then_crash(home.path()).await;

    // The config now bridges another (plain) room only.
    let mut req = create_room::v3::Request::new();
    req.invite = vec![bot_id.clone()];
    req.preset = Some(create_room::v3::RoomPreset::PrivateChat);
    let plain = human.create_room(req).await.unwrap().room_id().to_owned();
    write_config(home.path(), &plain, port, "");
    let relay = Relay::launch(home.path()).await;
    let log = relay.log();
    let line = format!("Forgetting event {sealed_id} that waited for its key: its room");
    assert_eq!(log.matches(&line).count(), 1, "{log}");
    assert_eq!(log.matches("is no longer bridged").count(), 2, "{log}");
    // Relaying goes on in the bridged room (joined at start; plain, so no key to share); the
    // message's sync saves the forgetting too.
    sync(&human).await;
    let r = human.get_room(&plain).unwrap();
    r.send(RoomMessageEventContent::text_plain("in the bridged room"))
        .await
        .unwrap();
    wait_mesh(&sim, 1, 60, "the message of the bridged room").await;
    assert!(mesh_texts(&sim, 0)[0].ends_with("in the bridged room"));
    relay.stop().await;
    assert_eq!(waiting_rows(home.path()), 0);
}

/// Kept undecryptable events older than `matrix.max_event_age` at the next start: no key could
/// bring them to the mesh any more, so they are forgotten (and no longer tried).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_events_older_than_max_event_age_are_forgotten_at_start() {
    let Setup {
        port, home, room, ..
    } = setup().await;
    keep_both_then_crash(home.path()).await;
    let killed = Instant::now();
    write_config(home.path(), &room, port, "matrix:\n  max_event_age: 1\n");
    // The precondition: both events are now more than a second old.
    tokio::time::sleep(Duration::from_secs(1).saturating_sub(killed.elapsed())).await;
    let relay = Relay::launch(home.path()).await;
    let log = relay.log();
    assert_eq!(
        log.matches("older than matrix.max_event_age now").count(),
        2,
        "{log}"
    );
    assert!(!log.contains("still wait for their keys"), "{log}");
    relay.stop().await;
    assert_eq!(waiting_rows(home.path()), 0);
}
