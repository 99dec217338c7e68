use super::*;
use crate::mesh::proto::{Channel, ChannelSettings, Config, Data, NodeInfo, Routing};

fn fr(p: from_radio::Payload) -> FromRadio {
    FromRadio {
        id: 0,
        payload: Some(p),
    }
}

fn user(long: &str, short: &str) -> User {
    User {
        long_name: long.as_bytes().to_vec(),
        short_name: short.as_bytes().to_vec(),
        ..Default::default()
    }
}

#[test]
fn handshake_collects_everything_until_matching_nonce() {
    let mut s = RadioSession::new(100);
    let req = s.start(1234);
    assert_eq!(req.payload, Some(to_radio::Payload::WantConfigId(1234)));
    use from_radio::Payload as P;
    let msgs = vec![
        P::MyInfo(MyNodeInfo {
            my_node_num: 0x11,
            ..Default::default()
        }),
        P::NodeInfo(NodeInfo {
            num: 0x11,
            user: Some(user("Relay Node", "RLY")),
            last_heard: 100,
            ..Default::default()
        }),
        P::Metadata(DeviceMetadata {
            firmware_version: b"2.7.11.abc".to_vec(),
            ..Default::default()
        }),
        P::Channel(Channel {
            index: 0,
            settings: Some(ChannelSettings::default()),
            role: ChannelRole::Primary as i32,
        }),
        P::Channel(Channel {
            index: 1,
            settings: Some(ChannelSettings {
                name: b"Ops".to_vec(),
                ..Default::default()
            }),
            role: ChannelRole::Secondary as i32,
        }),
        P::Channel(Channel {
            index: 2,
            settings: None,
            role: 0,
        }),
        P::Config(Config {
            section: Some(config::Section::Lora(LoRaConfig {
                hop_limit: 5,
                ..Default::default()
            })),
        }),
        P::NodeInfo(NodeInfo {
            num: 0x22,
            user: Some(user("Alice", "ALC")),
            last_heard: 200,
            ..Default::default()
        }),
    ];
    for m in msgs {
        assert_eq!(s.on_message(fr(m), 0), None);
        assert!(!s.is_ready());
    }
    // A stale completion (someone else's nonce) does not finish our handshake.
    assert_eq!(s.on_message(fr(P::ConfigCompleteId(99)), 0), None);
    assert!(!s.is_ready());
    assert_eq!(
        s.on_message(fr(P::ConfigCompleteId(1234)), 0),
        Some(Output::ConfigComplete)
    );
    assert!(s.is_ready());
    let info = s.info();
    assert_eq!(info.my_node_num, 0x11);
    assert_eq!(info.my_node().unwrap().long_name.as_str(), "Relay Node");
    assert_eq!(info.firmware_version(), "2.7.11.abc");
    assert_eq!(info.hop_limit(), 5);
    let active: Vec<_> = info.active_channels().map(|c| c.index).collect();
    assert_eq!(active, vec![0, 1]);
    assert_eq!(info.channels[1].as_ref().unwrap().name, "Ops");
    let names: Vec<_> = info
        .nodes
        .sorted()
        .iter()
        .map(|n| n.short_name.to_string())
        .collect();
    assert_eq!(names, vec!["ALC", "RLY"]);
}

#[test]
fn reserved_and_zero_nonces_are_avoided() {
    let mut s = RadioSession::new(4);
    for n in [0, 69420, 69421] {
        let nonce = match s.start(n).payload {
            Some(to_radio::Payload::WantConfigId(x)) => x,
            _ => unreachable!(),
        };
        assert_ne!(nonce, 0);
        assert!(!RESERVED_NONCES.contains(&nonce));
        assert_eq!(s.pending_nonce(), Some(nonce));
    }
}

#[test]
fn rebooted_requires_a_new_handshake() {
    let mut s = RadioSession::new(4);
    s.start(5);
    s.on_message(fr(from_radio::Payload::ConfigCompleteId(5)), 0);
    assert!(s.is_ready());
    assert_eq!(
        s.on_message(fr(from_radio::Payload::Rebooted(true)), 0),
        Some(Output::Rebooted)
    );
    assert!(!s.is_ready());
}

fn packet(from: u32, portnum: PortNum, payload: Vec<u8>, request_id: u32) -> MeshPacket {
    MeshPacket {
        from,
        to: proto::BROADCAST,
        id: 77,
        payload: Some(mesh_packet::Payload::Decoded(Data {
            portnum: portnum as i32,
            payload,
            request_id,
            ..Default::default()
        })),
        ..Default::default()
    }
}

#[test]
fn routing_answers_are_matched_by_request_id() {
    let mut s = RadioSession::new(4);
    let ok = Routing {
        variant: Some(proto::routing::Variant::ErrorReason(0)),
    };
    let nak = Routing {
        variant: Some(proto::routing::Variant::ErrorReason(5)),
    };
    let p = packet(1, PortNum::RoutingApp, ok.encode_to_vec(), 42);
    assert_eq!(
        s.on_message(fr(from_radio::Payload::Packet(p)), 0),
        Some(Output::Routing {
            request_id: 42,
            error: 0,
            from: 1
        })
    );
    let p = packet(1, PortNum::RoutingApp, nak.encode_to_vec(), 43);
    assert!(matches!(
        s.on_message(fr(from_radio::Payload::Packet(p)), 0),
        Some(Output::Routing { error: 5, .. })
    ));
}

#[test]
fn nodeinfo_packets_name_unknown_senders_and_text_updates_last_heard() {
    let mut s = RadioSession::new(4);
    let t = packet(0x33, PortNum::TextMessageApp, b"hi".to_vec(), 0);
    assert!(matches!(
        s.on_message(fr(from_radio::Payload::Packet(t)), 1000),
        Some(Output::Packet(_))
    ));
    let n = s.info().nodes.get(0x33).unwrap();
    assert_eq!((n.long_name.as_str(), n.last_heard), ("", 1000));
    let ni = packet(
        0x33,
        PortNum::NodeinfoApp,
        user("Bob \u{1F600}", "B\u{1F600}").encode_to_vec(),
        0,
    );
    match s.on_message(fr(from_radio::Payload::Packet(ni)), 1001) {
        Some(Output::NodeUpdated(n)) => {
            assert_eq!(n.long_name.as_str(), "Bob \u{1F600}");
            assert_eq!(n.short_name.as_str(), "B\u{1F600}");
            assert_eq!(n.last_heard, 1001);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn node_db_is_bounded_and_evicts_the_longest_unheard() {
    let mut s = RadioSession::new(3);
    for (num, heard) in [(1, 50), (2, 10), (3, 30), (4, 40)] {
        let t = packet(num, PortNum::TextMessageApp, vec![], 0);
        s.on_message(fr(from_radio::Payload::Packet(t)), heard);
    }
    let nums: Vec<u32> = s.info().nodes.sorted().iter().map(|n| n.num).collect();
    assert_eq!(nums, vec![1, 4, 3]);
    assert_eq!(s.info().nodes.evicted(), 1);
}

#[test]
fn long_names_are_cut_at_char_boundaries() {
    let mut s = RadioSession::new(3);
    let long = "\u{00e9}".repeat(40); // 80 bytes
    let ni = packet(9, PortNum::NodeinfoApp, user(&long, "x").encode_to_vec(), 0);
    s.on_message(fr(from_radio::Payload::Packet(ni)), 1);
    let n = s.info().nodes.get(9).unwrap();
    assert_eq!(n.long_name.len(), 48);
    assert!(n.long_name.chars().all(|c| c == '\u{00e9}'));
}

#[test]
fn text_packets_are_built_with_limits() {
    let m = TextMessage {
        channel: 2,
        to: proto::BROADCAST,
        text: "hello".into(),
        reply_id: 9,
        emoji: true,
    };
    let p = m.to_packet(1234, 4).unwrap();
    assert_eq!(
        (p.id, p.hop_limit, p.channel, p.want_ack),
        (1234, 4, 2, true)
    );
    let d = p.decoded().unwrap();
    assert_eq!((d.reply_id, d.emoji, &d.payload[..]), (9, 1, &b"hello"[..]));
    let long = TextMessage {
        text: "x".repeat(234),
        ..m.clone()
    };
    assert_eq!(long.to_packet(1, 3), Err(BuildError::TooLong { len: 234 }));
    let bad = TextMessage { channel: 8, ..m };
    assert_eq!(bad.to_packet(1, 3), Err(BuildError::BadChannel(8)));
}

#[test]
fn node_ids_parse_and_print() {
    assert_eq!(node_id(0xa1b2c3d4), "!a1b2c3d4");
    assert_eq!(parse_node_id("!a1b2c3d4"), Some(0xa1b2c3d4));
    assert_eq!(parse_node_id("0x10"), Some(16));
    assert_eq!(parse_node_id("a1b2c3d4"), Some(0xa1b2c3d4));
    assert_eq!(parse_node_id("12345678"), Some(12345678));
    assert_eq!(parse_node_id("!zz"), None);
}
