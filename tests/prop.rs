//! Property tests for the codec and the stream decoder: round trips, and no panic on any input.

use mmrelay::mesh::framing::{self, Decoder, Event};
use mmrelay::mesh::proto::*;
use mmrelay::mesh::radio::RadioSession;
use proptest::prelude::*;
use prost::Message;

fn arb_text() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        ".{0,40}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..40),
    ]
}

fn arb_data() -> impl Strategy<Value = Data> {
    (
        any::<i32>(),
        proptest::collection::vec(any::<u8>(), 0..233),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        proptest::option::of(any::<u32>()),
    )
        .prop_map(
            |(portnum, payload, request_id, reply_id, emoji, bitfield)| Data {
                portnum,
                payload,
                request_id,
                reply_id,
                emoji,
                bitfield,
                ..Default::default()
            },
        )
}

fn arb_packet() -> impl Strategy<Value = MeshPacket> {
    (
        any::<u32>(),
        any::<u32>(),
        0u32..8,
        prop_oneof![
            arb_data().prop_map(mesh_packet::Payload::Decoded),
            proptest::collection::vec(any::<u8>(), 0..64).prop_map(mesh_packet::Payload::Encrypted),
        ],
        any::<u32>(),
        any::<u32>(),
        any::<i32>(),
        any::<bool>(),
    )
        .prop_map(
            |(from, to, channel, payload, id, rx_time, rx_rssi, want_ack)| MeshPacket {
                from,
                to,
                channel,
                payload: Some(payload),
                id,
                rx_time,
                rx_rssi,
                want_ack,
                hop_limit: 3,
                ..Default::default()
            },
        )
}

fn arb_from_radio() -> impl Strategy<Value = FromRadio> {
    use from_radio::Payload as P;
    let payload = prop_oneof![
        arb_packet().prop_map(P::Packet),
        (any::<u32>(), arb_text(), arb_text(), any::<u32>()).prop_map(
            |(num, long, short, heard)| {
                P::NodeInfo(NodeInfo {
                    num,
                    user: Some(User {
                        long_name: long,
                        short_name: short,
                        ..Default::default()
                    }),
                    last_heard: heard,
                    hops_away: Some(1),
                    ..Default::default()
                })
            }
        ),
        any::<u32>().prop_map(|n| P::MyInfo(MyNodeInfo {
            my_node_num: n,
            ..Default::default()
        })),
        any::<u32>().prop_map(P::ConfigCompleteId),
        any::<bool>().prop_map(P::Rebooted),
        (any::<i32>(), arb_text()).prop_map(|(index, name)| P::Channel(Channel {
            index,
            settings: Some(ChannelSettings {
                name,
                ..Default::default()
            }),
            role: 1,
        })),
        (any::<i32>(), any::<u32>(), any::<u32>(), any::<u32>()).prop_map(
            |(res, free, maxlen, id)| {
                P::QueueStatus(QueueStatus {
                    res,
                    free,
                    maxlen,
                    mesh_packet_id: id,
                })
            }
        ),
        arb_text().prop_map(|m| P::LogRecord(LogRecord {
            message: m,
            ..Default::default()
        })),
        proptest::collection::vec(any::<u8>(), 0..100).prop_map(P::ModuleConfig),
        any::<u32>().prop_map(|h| P::Config(Config {
            section: Some(config::Section::Lora(LoRaConfig {
                hop_limit: h,
                ..Default::default()
            }))
        })),
    ];
    (any::<u32>(), proptest::option::of(payload))
        .prop_map(|(id, payload)| FromRadio { id, payload })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn from_radio_round_trips(msg in arb_from_radio()) {
        let bytes = msg.encode_to_vec();
        let back = FromRadio::decode(bytes.as_slice()).unwrap();
        prop_assert_eq!(back.encode_to_vec(), bytes);
        // NaN-free messages compare equal too.
        prop_assert_eq!(back, msg);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_codec_or_the_session(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(m) = FromRadio::decode(bytes.as_slice()) {
            // Whatever decodes re-encodes, and the session takes it without panicking.
            let _ = m.encode_to_vec();
            let mut s = RadioSession::new(8);
            s.start(5);
            let _ = s.on_message(m, 0);
        }
        let _ = ToRadio::decode(bytes.as_slice());
        let _ = User::decode(bytes.as_slice());
        let _ = Routing::decode(bytes.as_slice());
        let _ = Position::decode(bytes.as_slice());
        let _ = Telemetry::decode(bytes.as_slice());
    }

    /// Any sequence of frames, split at arbitrary points and mixed with console text, comes out
    /// whole and in order.
    #[test]
    fn framed_stream_survives_any_split(
        msgs in proptest::collection::vec(arb_from_radio(), 1..8),
        cuts in proptest::collection::vec(0usize..2000, 0..10),
        console in "[a-zA-Z0-9 |:]{0,30}",
    ) {
        let mut stream = format!("{console}\n").into_bytes();
        let mut expect = Vec::new();
        for m in &msgs {
            if let Ok(f) = framing::encode_message(m) {
                stream.extend(f);
                expect.push(m.clone());
            }
        }
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (stream.len() + 1)).collect();
        cuts.sort();
        let mut dec: Decoder<FromRadio> = Decoder::new();
        let mut got = Vec::new();
        let mut last = 0;
        for c in cuts.into_iter().chain(std::iter::once(stream.len())) {
            dec.feed(&stream[last..c], &mut |e| if let Event::Message(m) = e { got.push(m) });
            last = c;
        }
        prop_assert_eq!(got, expect);
        prop_assert!(!dec.has_partial());
    }

    /// Random bytes never panic the decoder, its buffer stays bounded, and a good frame sent
    /// after the noise (and a quiet time) is still found.
    #[test]
    fn noise_then_good_frame(noise in proptest::collection::vec(any::<u8>(), 0..3000), id in 1u32..) {
        let mut dec: Decoder<FromRadio> = Decoder::new();
        let mut noise_ids = Vec::new();
        let mut on = |e: Event<'_, FromRadio>| if let Event::Message(m) = e { noise_ids.push(m.id) };
        dec.feed(&noise, &mut on);
        dec.on_quiet(&mut on);
        prop_assert!(!dec.has_pending());
        let mut ids = Vec::new();
        let good = FromRadio { id, payload: Some(from_radio::Payload::Rebooted(true)) };
        dec.feed(&framing::encode_message(&good).unwrap(), &mut |e| if let Event::Message(m) = e { ids.push(m.id) });
        prop_assert_eq!(ids, vec![id]);
    }
}
