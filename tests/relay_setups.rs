//! The relay as MMRelay users set it up, as the real `mmrelay` binary between the simulated
//! radio (TCP) and a real Synapse: E2EE switched off, a home folder MMRelay left behind (its
//! device signed at start, or a clear warning where it cannot be), and matrix-sdk's own
//! warnings in the relay's log.

#![recursion_limit = "256"]

mod common;

use common::one_room::{one_room, warm_up};
use common::relay::Relay;
use common::synapse::{login_bot_on, login_elsewhere, synapse, unique, Human};
use common::{mesh_texts, tcp_sim, wait_mesh};
use mmrelay::mesh::transport::Endpoint;
use mmrelay::sim::{SimConfig, SimText};

/// `matrix.e2ee.enabled: false`, as in MMRelay: encrypted rooms are not bridged (one warning
/// naming the key), plain rooms are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_e2ee_disabled_only_plain_rooms_are_bridged() {
    let hs = synapse();
    let (sim, ep) = tcp_sim(SimConfig::default()).await;
    let Endpoint::Tcp { port, .. } = ep else {
        unreachable!()
    };
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
            "matrix:\n  e2ee:\n    enabled: false\nmatrix_rooms:\n  - id: \"{enc}\"\n    meshtastic_channel: 0\n  - id: \"{plain}\"\n    meshtastic_channel: 0\nmeshtastic:\n  connection_type: tcp\n  host: 127.0.0.1\n  port: {port}\n  meshnet_name: PlainNet\n  message_delay: 0.1\n"
        ),
    )
    .unwrap();
    let relay = Relay::launch(home.path()).await;
    human.wait_joined(&enc, &bot_id).await;
    human.wait_joined(&plain, &bot_id).await;
    let log = relay.log();
    assert!(
        log.contains(&format!(
            "Room {enc} is encrypted, but matrix.e2ee.enabled is false"
        )),
        "{log}"
    );
    assert!(
        !log.contains(&format!("Room {plain} is encrypted")),
        "{log}"
    );

    // Matrix to mesh: only the plain room's message.
    human.send_text(&enc, "from the encrypted room").await;
    human.send_text(&plain, "from the plain room").await;
    wait_mesh(&sim, 1, 30, "the plain room's message").await;
    // Sent once the plain room's message was relayed, so in a later sync than the encrypted
    // room's: had that been relayed, it would be on the radio before the marker.
    human.send_text(&plain, "marker").await;
    wait_mesh(&sim, 2, 30, "the marker").await;
    assert_eq!(
        mesh_texts(&sim, 0),
        ["human[M]: from the plain room", "human[M]: marker"]
    );

    // Mesh to Matrix: only into the plain room.
    sim.inject_text(&SimText::broadcast(0x3333cccc, 0, "to both rooms?"));
    let v = human
        .next_from(bot_id.as_str(), |v| v["type"] == "m.room.message")
        .await;
    assert_eq!(v["room_id"], plain.as_str());
    assert_eq!(v["content"]["meshtastic_text"], "to both rooms?");
    // The bot sends one message at a time, in order: a copy for the encrypted room would come
    // before the marker.
    sim.inject_text(&SimText::broadcast(0x3333cccc, 0, "marker"));
    let v = human.next_from(bot_id.as_str(), |_| true).await;
    assert_eq!(
        v["room_id"],
        plain.as_str(),
        "sent into the encrypted room: {v}"
    );
    assert_eq!(v["content"]["meshtastic_text"], "marker");
    relay.stop().await;
}

/// A home folder as MMRelay leaves it: a config.yaml with MMRelay's sections (plugins,
/// health checks, logging and database options mmrelay does not use) and a credentials.json
/// from a login made by another client (no E2EE store yet). mmrelay starts on it unchanged,
/// warns once per key it ignores, and relays both ways in an encrypted room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mmrelay_home_folder_starts_mmrelay_unchanged() {
    let hs = synapse();
    let (sim, ep) = tcp_sim(SimConfig::default()).await;
    let Endpoint::Tcp { port, .. } = ep else {
        unreachable!()
    };
    let bot = unique("bot");
    let (_registered, session) = login_elsewhere(&bot, "bot-pass").await;
    let bot_id = session.meta.user_id.clone();
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join("matrix")).unwrap();
    std::fs::write(
        home.path().join("matrix/credentials.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "homeserver": hs.url,
            "user_id": bot_id.as_str(),
            "access_token": session.tokens.access_token,
            "device_id": session.meta.device_id.as_str(),
        }))
        .unwrap(),
    )
    .unwrap();
    let mut human = Human::new(&unique("human")).await;
    let room = human.create_room(true, std::slice::from_ref(&bot_id)).await;
    let config = format!(
        r#"matrix:
  e2ee:
    enabled: true
  prefix_enabled: true
  prefix_format: "[{{long}}/{{mesh}}]: "
matrix_rooms:
  - id: "{room}"
    meshtastic_channel: 0
meshtastic:
  connection_type: tcp
  host: 127.0.0.1
  port: {port}
  meshnet_name: Home Mesh
  message_interactions:
    reactions: false
    replies: false
  health_check:
    enabled: true
    heartbeat_interval: 60
  broadcast_enabled: true
  detection_sensor: true
  message_delay: 2.0
  timeout: 30
  nodedb_refresh_interval: 15.0
  prefix_enabled: true
  prefix_format: "{{display5}}[M]: "
logging:
  level: info
  log_to_file: false
  color_enabled: true
  debug:
    matrix_nio: false
    meshtastic: warning
database:
  path: {db}
  enable_wal: true
  busy_timeout_ms: 5000
  msg_map:
    msgs_to_keep: 500
    wipe_on_restart: false
plugins:
  ping:
    active: true
  weather:
    active: true
    units: metric
  nodes:
    active: true
community-plugins:
  some_plugin:
    active: false
    repository: https://example.org/some_plugin.git
custom-plugins:
  mine:
    active: false
"#,
        db = home.path().join("database/meshtastic.sqlite").display()
    );
    std::fs::write(home.path().join("config.yaml"), config).unwrap();

    let relay = Relay::launch(home.path()).await;
    human.wait_joined(&room, &bot_id).await;
    let log = relay.log();
    for key in [
        "plugins.weather",
        "community-plugins",
        "custom-plugins",
        "meshtastic.health_check",
    ] {
        assert!(
            log.contains(&format!("'{key}' is not used by mmrelay; ignoring it")),
            "no warning for {key}: {log}"
        );
    }
    assert!(!log.contains("ERROR"), "{log}");
    assert!(log.contains("Bot commands: ping, nodes"), "{log}");

    sim.inject_text(&SimText::broadcast(0x4444dddd, 0, "hello from the mesh"));
    let v = human
        .next_from(bot_id.as_str(), |v| v["type"] == "m.room.message")
        .await;
    assert_eq!(v["content"]["meshtastic_text"], "hello from the mesh");
    assert_eq!(v["content"]["meshtastic_meshnet"], "Home Mesh");
    human.send_text(&room, "hello from Matrix").await;
    wait_mesh(&sim, 1, 30, "the Matrix message").await;
    assert_eq!(mesh_texts(&sim, 0), ["human[M]: hello from Matrix"]);
    // The E2EE store was made for that login's device, and the device signed at start: the
    // account had no cross-signing identity, so one was made without a password.
    assert!(home.path().join("matrix/store").is_dir());
    assert!(
        log.contains("Cross-signing: this device is verified by its owner"),
        "{log}"
    );
    assert_signed_by_owner(&human, &bot_id, session.meta.device_id.as_str()).await;
    // The health check (a container's HEALTHCHECK) sees a relaying relay...
    let health = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_mmrelay"))
            .arg("--home")
            .arg(home.path())
            .arg("health")
            .output()
            .unwrap()
    };
    let out = health();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.starts_with("healthy: radio connected for "), "{text}");
    assert!(text.contains(", last Matrix sync "), "{text}");
    relay.stop().await;
    // ...and none once it has stopped.
    let out = health();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("unhealthy: no relay answers for the home folder"),
        "{err}"
    );
    // `config check` reads the device's signature from the store.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mmrelay"))
        .arg("--home")
        .arg(home.path())
        .args(["config", "check"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("Cross-signing: this device is verified by its owner"),
        "{text}"
    );
}

/// matrix-sdk's own warnings reach the relay's log: an invalid encrypted to-device event sent
/// to the bot makes its crypto layer warn, and the warning is in the relay's output, named by
/// crate, with the relay still relaying.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdks_warnings_reach_the_relays_log() {
    use matrix_sdk::ruma::api::client::to_device::send_event_to_device::v3::Request;
    use matrix_sdk::ruma::serde::Raw;
    use matrix_sdk::ruma::to_device::DeviceIdOrAllDevices;
    let (r, mut relay) = one_room("LogNet", "").await;
    let warm = warm_up(&r).await;
    let content =
        serde_json::value::to_raw_value(&serde_json::json!({"not": "an olm message"})).unwrap();
    let mut devices = std::collections::BTreeMap::new();
    devices.insert(DeviceIdOrAllDevices::AllDevices, Raw::from_json(content));
    let mut messages = std::collections::BTreeMap::new();
    messages.insert(r.bot_id.clone(), devices);
    let request = Request::new_raw(
        "m.room.encrypted".into(),
        matrix_sdk::ruma::TransactionId::new(),
        messages,
    );
    r.human.client.send(request).await.unwrap();
    let relay = tokio::task::spawn_blocking(move || {
        relay.wait_log("matrix_sdk_crypto: Received an invalid to-device event");
        relay
    })
    .await
    .unwrap();
    r.human.send_text(&r.room, "still relaying").await;
    wait_mesh(&r.sim, warm + 1, 60, "the message after the warning").await;
    assert_eq!(mesh_texts(&r.sim, warm), ["human[M]: still relaying"]);
    relay.stop().await;
}

/// The human's client sees the bot's device `device` as signed by the bot's own identity.
async fn assert_signed_by_owner(human: &Human, bot: &matrix_sdk::ruma::OwnedUserId, device: &str) {
    let enc = human.client.encryption();
    enc.request_user_identity(bot).await.unwrap();
    let d = enc
        .get_device(bot, device.into())
        .await
        .unwrap()
        .expect("the bot's device keys are on the server");
    assert!(
        d.is_cross_signed_by_owner(),
        "device {device} is not signed"
    );
}

/// Credentials made elsewhere for an account whose cross-signing identity another device made:
/// mmrelay cannot sign its device without that identity's keys. It says so once, with the fix,
/// and relays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_cannot_be_signed_is_reported_once_and_relays() {
    use matrix_sdk::ruma::api::client::uiaa::{
        AuthData, MatrixUserIdentifier, Password, UserIdentifier,
    };
    let hs = synapse();
    let (sim, ep) = tcp_sim(SimConfig::default()).await;
    let Endpoint::Tcp { port, .. } = ep else {
        unreachable!()
    };
    let bot = unique("bot");
    let (registered, session) = login_elsewhere(&bot, "bot-pass").await;
    let bot_id = session.meta.user_id.clone();
    // The registering client sets up the account's identity (with the password if asked).
    if let Err(e) = registered.encryption().bootstrap_cross_signing(None).await {
        let uiaa = e.as_uiaa_response().expect("a password request");
        let mut pw = Password::new(
            UserIdentifier::Matrix(MatrixUserIdentifier::new(bot.clone())),
            "bot-pass".into(),
        );
        pw.session = uiaa.session.clone();
        registered
            .encryption()
            .bootstrap_cross_signing(Some(AuthData::Password(pw)))
            .await
            .unwrap();
    }
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join("matrix")).unwrap();
    std::fs::write(
        home.path().join("matrix/credentials.json"),
        serde_json::json!({
            "homeserver": hs.url,
            "user_id": bot_id.as_str(),
            "access_token": session.tokens.access_token,
            "device_id": session.meta.device_id.as_str(),
        })
        .to_string(),
    )
    .unwrap();
    let mut human = Human::new(&unique("human")).await;
    let room = human.create_room(true, std::slice::from_ref(&bot_id)).await;
    std::fs::write(
        home.path().join("config.yaml"),
        format!(
            "matrix_rooms:\n  - id: \"{room}\"\n    meshtastic_channel: 0\nmeshtastic:\n  connection_type: tcp\n  host: 127.0.0.1\n  port: {port}\n  meshnet_name: SignNet\n"
        ),
    )
    .unwrap();
    let relay = Relay::launch(home.path()).await;
    human.wait_joined(&room, &bot_id).await;
    sim.inject_text(&SimText::broadcast(0x4444dddd, 0, "relayed all the same"));
    let v = human
        .next_from(bot_id.as_str(), |v| v["type"] == "m.room.message")
        .await;
    assert_eq!(v["content"]["meshtastic_text"], "relayed all the same");
    let log = relay.log();
    let warning = "Cross-signing: this device is not signed: the account's cross-signing keys \
                   are not in this E2EE store";
    assert_eq!(log.matches(warning).count(), 1, "{log}");
    assert!(
        log.contains("run `mmrelay auth login --recovery-key-file FILE`"),
        "{log}"
    );
    assert!(!log.contains("ERROR"), "{log}");
    relay.stop().await;
}
