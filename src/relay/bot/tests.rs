use serde_json::json;

use super::*;
use crate::matrix::content::MessageKind;
use crate::mesh::proto::PortNum;

const ME: u32 = 0x0a0b0c0d;

fn on(channels: Option<Vec<u32>>, mention: bool) -> Plugin {
    Plugin {
        active: true,
        channels,
        require_bot_mention: mention,
    }
}

fn bot(cfg: PluginsConfig) -> Bot {
    Bot::new(
        cfg,
        vec![0, 1],
        BotName {
            user_id: "@relay:hs".into(),
            display_name: Some("Relay".into()),
        },
    )
    .expect("active")
}

fn mesh(from: u32, to: u32, channel: u32, text: &str) -> MeshText {
    MeshText {
        id: 0x77,
        from,
        to,
        channel,
        portnum: PortNum::TextMessageApp as i32,
        text: text.into(),
        reply_id: 0,
        emoji: false,
    }
}

fn matrix(body: &str, content: serde_json::Value) -> IncomingMessage {
    IncomingMessage {
        room_id: "!r:hs".into(),
        event_id: "$e".into(),
        sender: "@human:hs".into(),
        sender_name: "Human".into(),
        kind: MessageKind::Text,
        body: body.into(),
        formatted_body: None,
        in_reply_to: None,
        content,
        origin_server_ts: 0,
        encrypted: false,
    }
}

#[test]
fn no_active_command_means_no_bot() {
    let name = BotName {
        user_id: "@relay:hs".into(),
        display_name: None,
    };
    assert!(Bot::new(PluginsConfig::default(), vec![0], name).is_none());
}

#[test]
fn mesh_ping_is_answered_on_its_channel_as_a_reply_or_directly() {
    let mut b = bot(PluginsConfig {
        ping: on(None, true),
        ..Default::default()
    });
    let a = b.on_mesh(&mesh(5, BROADCAST, 1, "!ping"), Some(2), ME, 0);
    assert_eq!(
        a,
        MeshAction::Answer(MeshAnswer {
            channel: 1,
            to: BROADCAST,
            text: "pong!".into(),
            reply_id: 0x77
        })
    );
    // A direct message gets a direct answer, whatever the channel.
    let MeshAction::Answer(d) = b.on_mesh(&mesh(6, ME, 5, "!PING"), None, ME, 0) else {
        panic!("direct ping answered")
    };
    assert_eq!((d.to, d.channel), (6, 5));
    // Channel 3 is not bridged and not configured: relayed as chat.
    assert_eq!(
        b.on_mesh(&mesh(5, BROADCAST, 3, "!ping"), None, ME, 0),
        MeshAction::NotACommand
    );
    // Not a command, another node's direct message, a command only Matrix answers.
    for (to, text) in [(BROADCAST, "ping"), (0x99, "!ping"), (BROADCAST, "!nodes")] {
        assert_eq!(
            b.on_mesh(&mesh(5, to, 0, text), None, ME, 0),
            MeshAction::NotACommand
        );
    }
}

#[test]
fn mesh_channels_hops_mimic_and_rate_limit() {
    let mut b = bot(PluginsConfig {
        ping: on(Some(vec![3]), true),
        display_hops: true,
        mimic_mode: true,
        ..Default::default()
    });
    assert_eq!(
        b.on_mesh(&mesh(5, BROADCAST, 0, "!ping"), None, ME, 0),
        MeshAction::NotACommand,
        "channels replaces the bridged channels"
    );
    let MeshAction::Answer(a) = b.on_mesh(&mesh(5, BROADCAST, 3, "!PiNg?"), Some(2), ME, 0) else {
        panic!("answered")
    };
    assert_eq!(a.text, "PoNg? (2 hops)");
    let MeshAction::Answer(a) = b.on_mesh(&mesh(5, BROADCAST, 3, "!ping"), Some(1), ME, 0) else {
        panic!("answered")
    };
    assert_eq!(a.text, "pong (1 hop)");
    // A burst of 50 from one node: a few answers, the rest neither answered nor relayed.
    let mut answered = 2;
    for _ in 0..48 {
        match b.on_mesh(&mesh(5, BROADCAST, 3, "!ping"), None, ME, 10) {
            MeshAction::Answer(_) => answered += 1,
            MeshAction::Drop => {}
            MeshAction::NotACommand => panic!("a refused command is not relayed"),
        }
    }
    assert_eq!(answered, commands::BURST);
    assert!(matches!(
        b.on_mesh(&mesh(6, BROADCAST, 3, "!ping"), None, ME, 10),
        MeshAction::Answer(_)
    ));
}

#[test]
fn matrix_commands_need_a_mention_unless_configured_otherwise() {
    let b = bot(PluginsConfig {
        ping: on(None, true),
        help: on(None, false),
        ..Default::default()
    });
    let none = json!({});
    let status = || -> Status { panic!("only !status asks") };
    assert_eq!(
        b.on_matrix(&matrix("!ping", none.clone()), ME, 0, status),
        None
    );
    assert_eq!(
        b.on_matrix(&matrix("Relay: !ping", none.clone()), ME, 0, status)
            .as_deref(),
        Some("pong!")
    );
    let listed = json!({"m.mentions": {"user_ids": ["@relay:hs"]}});
    assert_eq!(
        b.on_matrix(&matrix("!PING", listed), ME, 0, status)
            .as_deref(),
        Some("pong!")
    );
    assert_eq!(
        b.on_matrix(&matrix("@other:hs: !ping", none.clone()), ME, 0, status),
        None
    );
    // help needs no mention here; it lists only the active commands.
    assert_eq!(
        b.on_matrix(&matrix("!help", none.clone()), ME, 0, status)
            .as_deref(),
        Some("Commands: !help, !ping")
    );
    // Inactive plugins and unknown commands are not ours.
    for body in [
        "Relay: !nodes",
        "Relay: !status",
        "Relay: !weather",
        "Relay: hi",
    ] {
        assert_eq!(
            b.on_matrix(&matrix(body, none.clone()), ME, 0, status),
            None
        );
    }
    // Another relay's message is never answered.
    let relayed = json!({"meshtastic_meshnet": "Other"});
    assert_eq!(
        b.on_matrix(&matrix("Relay: !ping", relayed), ME, 0, status),
        None
    );
}

#[test]
fn matrix_status_nodes_and_telemetry() {
    let b = bot(PluginsConfig {
        nodes: on(None, false),
        status: on(None, false),
        telemetry: on(None, false),
        ..Default::default()
    });
    let none = json!({});
    let text = b
        .on_matrix(&matrix("!status", none.clone()), ME, 0, || Status {
            version: "9.9",
            ..Default::default()
        })
        .unwrap();
    assert!(text.starts_with("mmrelay 9.9"), "{text}");
    let text = b
        .on_matrix(&matrix("!nodes", none.clone()), ME, 0, Status::default)
        .unwrap();
    assert!(text.starts_with("No nodes known yet"), "{text}");
    let text = b
        .on_matrix(&matrix("!voltage nobody", none), ME, 0, Status::default)
        .unwrap();
    assert!(text.starts_with("No node 'nobody'"), "{text}");
}
