//! Byte-exact compatibility with an independent encoder: every frame in tests/fixtures/ was
//! written by the PyPI `meshtastic` package (tests/gen_fixtures.py). Each must go through our
//! stream decoder and re-encode to the same bytes, and what we build ourselves for sending must
//! equal what the Python package builds.

use std::path::PathBuf;

use mmrelay::mesh::framing::{self, Decoder, Event};
use mmrelay::mesh::proto::*;
use mmrelay::mesh::radio::{self, Output, RadioSession, TextMessage};
use prost::Message;

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Runs the bytes through the stream decoder: exactly one message must come out.
fn decode_stream<M: Message + Default + std::fmt::Debug>(bytes: &[u8]) -> M {
    let mut dec: Decoder<M> = Decoder::new();
    let mut out = Vec::new();
    dec.feed(bytes, &mut |e| match e {
        Event::Message(m) => out.push(m),
        other => panic!("unexpected {other:?}"),
    });
    assert_eq!(out.len(), 1);
    out.pop().unwrap()
}

fn from(name: &str) -> FromRadio {
    let bytes = fixture(&format!("from_{name}.bin"));
    let msg: FromRadio = decode_stream(&bytes);
    assert_eq!(
        framing::encode_message(&msg).unwrap(),
        bytes,
        "re-encoding from_{name}"
    );
    msg
}

fn to(name: &str) -> (ToRadio, Vec<u8>) {
    let bytes = fixture(&format!("to_{name}.bin"));
    let msg: ToRadio = decode_stream(&bytes);
    assert_eq!(
        framing::encode_message(&msg).unwrap(),
        bytes,
        "re-encoding to_{name}"
    );
    (msg, bytes)
}

#[test]
fn every_fixture_round_trips() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let bytes = fixture(&name);
        if let Some(rest) = name.strip_prefix("from_") {
            from(rest.trim_end_matches(".bin"));
        } else if let Some(rest) = name.strip_prefix("to_") {
            to(rest.trim_end_matches(".bin"));
        } else {
            assert!(name.starts_with("future_"), "unexpected fixture {name}");
            continue;
        }
        assert!(bytes.len() <= framing::MAX_FRAME);
        n += 1;
    }
    assert_eq!(n, 28, "fixtures missing: run tests/gen_fixtures.py");
}

fn payload(m: FromRadio) -> from_radio::Payload {
    m.payload.expect("payload")
}

#[test]
fn from_radio_fields_decode_to_the_written_values() {
    use from_radio::Payload as P;
    let P::MyInfo(i) = payload(from("my_info")) else {
        panic!()
    };
    assert_eq!(
        (i.my_node_num, i.reboot_count, i.nodedb_count),
        (0x0a0b0c0d, 7, 42)
    );
    assert_eq!(text(&i.pio_env), "rak4631");

    let P::NodeInfo(n) = payload(from("node_info")) else {
        panic!()
    };
    let u = n.user.unwrap();
    assert_eq!((n.num, text(&u.id).as_ref()), (0x1111aaaa, "!1111aaaa"));
    assert_eq!(text(&u.long_name), "Alice Base \u{1F4E1}");
    assert_eq!(text(&u.short_name), "ALC");
    assert_eq!(
        (n.last_heard, n.hops_away, n.is_favorite),
        (1764460700, Some(1), true)
    );
    assert_eq!(n.position.unwrap().latitude_i, Some(525200000));
    assert_eq!(n.device_metrics.unwrap().battery_level, Some(91));

    let P::Config(c) = payload(from("config_lora")) else {
        panic!()
    };
    let Some(config::Section::Lora(l)) = c.section else {
        panic!()
    };
    assert_eq!(
        (l.hop_limit, l.tx_power, l.ignore_incoming.clone()),
        (5, 27, vec![0x1234, 0x5678])
    );
    let P::Config(c) = payload(from("config_security")) else {
        panic!()
    };
    let Some(config::Section::Security(s)) = c.section else {
        panic!()
    };
    assert!(s.serial_enabled && s.debug_log_api_enabled);
    let P::Config(c) = payload(from("config_device")) else {
        panic!()
    };
    assert!(matches!(c.section, Some(config::Section::Device(_))));

    let P::LogRecord(l) = payload(from("log_record")) else {
        panic!()
    };
    assert_eq!((text(&l.source).as_ref(), l.level), ("Router", 20));
    assert_eq!(
        payload(from("config_complete_id")),
        P::ConfigCompleteId(123456789)
    );
    assert_eq!(payload(from("rebooted")), P::Rebooted(true));
    assert!(matches!(payload(from("module_config")), P::ModuleConfig(b) if !b.is_empty()));

    let P::Channel(c) = payload(from("channel")) else {
        panic!()
    };
    assert_eq!((c.index, c.role), (1, ChannelRole::Secondary as i32));
    assert_eq!(text(&c.settings.unwrap().name), "Ops");

    let P::QueueStatus(q) = payload(from("queue_status")) else {
        panic!()
    };
    assert_eq!((q.free, q.maxlen, q.mesh_packet_id), (14, 16, 0x5eed0002));
    let P::Metadata(m) = payload(from("metadata")) else {
        panic!()
    };
    assert_eq!(text(&m.firmware_version), "2.7.11.ee68575");
    assert!(m.has_pkc && m.can_shutdown);
    let P::ClientNotification(n) = payload(from("client_notification")) else {
        panic!()
    };
    assert_eq!(
        (n.reply_id, text(&n.message).as_ref()),
        (Some(0x5eed0003), "Duty cycle limit exceeded")
    );
}

#[test]
fn packets_decode_and_feed_the_session() {
    let mut s = RadioSession::new(10);
    let now = 1_800_000_000;
    let out = |s: &mut RadioSession, name: &str| s.on_message(from(name), now).unwrap();

    let Output::Packet(p) = out(&mut s, "packet_text") else {
        panic!()
    };
    assert_eq!(
        (p.from, p.to, p.channel, p.id),
        (0x1111aaaa, BROADCAST, 1, 0x5eed0001)
    );
    assert_eq!(
        (p.rx_snr, p.rx_rssi, p.hop_start, p.hop_limit),
        (6.25, -71, 3, 2)
    );
    assert_eq!(
        p.decoded().unwrap().payload,
        "Hello mesh \u{1F44B}".as_bytes()
    );

    let Output::Packet(p) = out(&mut s, "packet_reply") else {
        panic!()
    };
    assert_eq!(
        (p.decoded().unwrap().reply_id, p.decoded().unwrap().emoji),
        (0x5eed0001, 0)
    );
    let Output::Packet(p) = out(&mut s, "packet_reaction") else {
        panic!()
    };
    assert_eq!(
        (p.decoded().unwrap().reply_id, p.decoded().unwrap().emoji),
        (0x5eed0001, 1)
    );

    let Output::Packet(p) = out(&mut s, "packet_position") else {
        panic!()
    };
    let pos = Position::decode(&p.decoded().unwrap().payload[..]).unwrap();
    assert_eq!(
        (pos.latitude_i, pos.altitude, pos.precision_bits),
        (Some(525200000), Some(34), 32)
    );
    let Output::Packet(p) = out(&mut s, "packet_telemetry") else {
        panic!()
    };
    let t = Telemetry::decode(&p.decoded().unwrap().payload[..]).unwrap();
    let Some(telemetry::Variant::DeviceMetrics(m)) = t.variant else {
        panic!()
    };
    assert_eq!((m.battery_level, m.uptime_seconds), (Some(91), Some(86400)));

    let Output::NodeUpdated(n) = out(&mut s, "packet_nodeinfo") else {
        panic!()
    };
    assert_eq!(
        (n.num, n.long_name.as_str(), n.short_name.as_str()),
        (0x1111aaaa, "Alice Base", "ALC")
    );

    assert_eq!(
        out(&mut s, "packet_routing_ack"),
        Output::Routing {
            request_id: 0x5eed0002,
            error: 0,
            from: 0x0a0b0c0d
        }
    );
    assert_eq!(
        out(&mut s, "packet_routing_error"),
        Output::Routing {
            request_id: 0x5eed0003,
            error: 5,
            from: 0x0a0b0c0d
        }
    );
    let Output::Packet(p) = out(&mut s, "packet_encrypted") else {
        panic!()
    };
    assert!(matches!(p.payload, Some(mesh_packet::Payload::Encrypted(ref b)) if b.len() == 40));
}

#[test]
fn what_we_send_equals_what_the_python_package_sends() {
    let enc = |m: &ToRadio| framing::encode_message(m).unwrap();
    let packet = |p| ToRadio {
        payload: Some(to_radio::Payload::Packet(p)),
    };

    let text = TextMessage {
        channel: 1,
        to: BROADCAST,
        text: "[Alice/Home]: hi from Matrix \u{00fc}".into(),
        reply_id: 0,
        emoji: false,
    };
    assert_eq!(
        enc(&packet(text.to_packet(0x5eed0002, 3).unwrap())),
        to("packet_text").1
    );

    let reaction = TextMessage {
        channel: 0,
        to: 0x1111aaaa,
        text: "\u{1F44D}".into(),
        reply_id: 0x5eed0001,
        emoji: true,
    };
    assert_eq!(
        enc(&packet(reaction.to_packet(0x5eed0003, 5).unwrap())),
        to("packet_reaction_dm").1
    );

    assert_eq!(enc(&radio::heartbeat()), to("heartbeat").1);
    assert_eq!(enc(&radio::disconnect()), to("disconnect").1);
    assert_eq!(
        enc(&RadioSession::new(1).start(3735928559)),
        to("want_config_id").1
    );
    let (hb, _) = to("heartbeat_nonce");
    assert_eq!(
        hb.payload,
        Some(to_radio::Payload::Heartbeat(Heartbeat { nonce: 7 }))
    );
}

#[test]
fn newer_firmware_messages_decode_without_error() {
    let bytes = fixture("future_from_unknown_variant.bin");
    let msg: FromRadio = decode_stream(&bytes);
    assert_eq!(msg.id, 99);
    assert_eq!(msg.payload, None);
    assert_eq!(RadioSession::new(1).on_message(msg, 0), None);
}
