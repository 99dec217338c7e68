//! The radio link against the simulated radio over real TCP on loopback.
#![recursion_limit = "256"]

mod common;

use std::time::Duration;

use common::*;
use mmrelay::mesh::link::{LinkEvent, SendError, SendOutcome};
use mmrelay::mesh::proto::{ChannelRole, PortNum, BROADCAST};
use mmrelay::mesh::radio::TextMessage;
use mmrelay::mesh::transport::Endpoint;
use mmrelay::sim::{command, AckMode, SimConfig, SimEvent, SimNode, SimText};

fn text(channel: u32, t: &str) -> TextMessage {
    TextMessage {
        channel,
        to: BROADCAST,
        text: t.into(),
        reply_id: 0,
        emoji: false,
    }
}

#[tokio::test]
async fn handshake_gives_node_names_channels_and_config() {
    let mut cfg = SimConfig {
        hop_limit: 6,
        channels: vec![(0, String::new()), (2, "Rescue".into())],
        ..Default::default()
    };
    cfg.nodes.push(SimNode::new(
        0x4444dddd,
        "Dana \u{00e9}t\u{00e9}",
        "D\u{1F332}",
    ));
    let (sim, ep) = tcp_sim(cfg).await;
    let mut sim_rx = sim.subscribe();
    let mut r = start(fast(ep));
    let info = r.ready().await;
    // The wake-up bytes and the request came first.
    let nonce = sim_next(&mut sim_rx, "config request", |e| match e {
        SimEvent::ConfigRequested(n) => Some(n),
        _ => None,
    })
    .await;
    assert_ne!(nonce, 0);
    assert_eq!(info.my_node_num, 0x0a0b0c0d);
    assert_eq!(info.my_node().unwrap().long_name.as_str(), "Relay Gateway");
    assert_eq!(info.firmware_version(), "2.7.11.sim");
    assert_eq!(info.hop_limit(), 6);
    let chans: Vec<_> = info
        .active_channels()
        .map(|c| (c.index, c.name.clone(), c.role))
        .collect();
    assert_eq!(
        chans,
        vec![
            (0, String::new(), ChannelRole::Primary),
            (2, "Rescue".into(), ChannelRole::Secondary)
        ]
    );
    assert_eq!(info.nodes.len(), 5);
    let dana = info.nodes.get(0x4444dddd).unwrap();
    assert_eq!(dana.long_name.as_str(), "Dana \u{00e9}t\u{00e9}");
    assert_eq!(dana.short_name.as_str(), "D\u{1F332}");
    assert!(info.security.as_ref().unwrap().serial_enabled);
    r.link.stop();
    sim_next(&mut sim_rx, "disconnect", |e| {
        (e == SimEvent::Disconnect).then_some(())
    })
    .await;
    tokio::time::timeout(WAIT, r.task).await.unwrap().unwrap();
}

#[tokio::test]
async fn receives_texts_replies_reactions_positions_and_telemetry() {
    let (sim, ep) = tcp_sim(SimConfig::default()).await;
    let mut r = start(fast(ep));
    r.ready().await;
    let id = sim.inject_text(&SimText::broadcast(0x1111aaaa, 1, "hello \u{1F44B}"));
    let reply = sim.inject_text(&SimText {
        reply_id: id,
        ..SimText::broadcast(0x2222bbbb, 1, "hi Alice")
    });
    let react = sim.inject_text(&SimText {
        reply_id: id,
        emoji: true,
        ..SimText::broadcast(0x3333cccc, 1, "\u{1F44D}")
    });
    sim.inject_position(0x2222bbbb, 52.52, 13.405, Some(34));
    sim.inject_telemetry(0x3333cccc, 91, 4.1);
    let mut got = Vec::new();
    while got.len() < 5 {
        let p = r
            .next("packet", |e| match e {
                LinkEvent::Packet(p) => Some(p),
                _ => None,
            })
            .await;
        got.push(p);
    }
    let d = |i: usize| got[i].decoded().unwrap().clone();
    assert_eq!(
        (got[0].id, got[0].from, got[0].channel),
        (id, 0x1111aaaa, 1)
    );
    assert_eq!(d(0).payload, "hello \u{1F44B}".as_bytes());
    assert_eq!((got[1].id, d(1).reply_id, d(1).emoji), (reply, id, 0));
    assert_eq!((got[2].id, d(2).reply_id, d(2).emoji), (react, id, 1));
    assert_eq!(d(3).portnum, PortNum::PositionApp as i32);
    let pos: mmrelay::mesh::proto::Position = prost::Message::decode(&d(3).payload[..]).unwrap();
    assert_eq!(
        (pos.latitude_i, pos.longitude_i, pos.altitude),
        (Some(525200000), Some(134050000), Some(34))
    );
    assert_eq!(d(4).portnum, PortNum::TelemetryApp as i32);
}

#[tokio::test]
async fn sends_text_with_radio_hop_limit_and_reports_ack_and_errors() {
    let cfg = SimConfig {
        hop_limit: 5,
        ..Default::default()
    };
    let (sim, ep) = tcp_sim(cfg).await;
    let mut sim_rx = sim.subscribe();
    let mut opts = fast(ep);
    opts.ack_timeout = Duration::from_millis(700);
    let mut r = start(opts);
    r.ready().await;

    let pending = r
        .link
        .send_text(text(1, "from matrix \u{00fc}"))
        .await
        .unwrap();
    let id = pending.packet_id;
    assert_ne!(id, 0);
    assert_eq!(pending.outcome().await, SendOutcome::Acked);
    let p = sim_next(&mut sim_rx, "packet", |e| match e {
        SimEvent::Packet(p) => Some(p),
        _ => None,
    })
    .await;
    assert_eq!(
        (p.id, p.channel, p.to, p.hop_limit, p.want_ack),
        (id, 1, BROADCAST, 5, true)
    );
    let d = p.decoded().unwrap();
    assert_eq!(d.portnum, PortNum::TextMessageApp as i32);
    assert_eq!(d.payload, "from matrix \u{00fc}".as_bytes());

    // A direct message, a reply and a reaction carry their fields.
    let dm = TextMessage {
        to: 0x2222bbbb,
        reply_id: 0x1234,
        emoji: true,
        ..text(0, "\u{1F44D}")
    };
    assert_eq!(
        r.link.send_text(dm).await.unwrap().outcome().await,
        SendOutcome::Acked
    );
    let p = sim.received().pop().unwrap();
    assert_eq!(p.to, 0x2222bbbb);
    assert_eq!(
        (p.decoded().unwrap().reply_id, p.decoded().unwrap().emoji),
        (0x1234, 1)
    );

    sim.set_ack_mode(AckMode::Error(5));
    let out = r
        .link
        .send_text(text(0, "x"))
        .await
        .unwrap()
        .outcome()
        .await;
    assert_eq!(out, SendOutcome::Failed { error: 5 });
    assert_eq!(out.to_string(), "failed: MAX_RETRANSMIT");

    sim.set_ack_mode(AckMode::Silent);
    let out = r
        .link
        .send_text(text(0, "y"))
        .await
        .unwrap()
        .outcome()
        .await;
    assert_eq!(out, SendOutcome::NoAck);

    // Invalid sends are refused before they are queued.
    let long = text(0, &"z".repeat(300));
    assert!(matches!(
        r.link.send_text(long).await,
        Err(SendError::Invalid(_))
    ));
    assert_eq!(sim.received().len(), 4);
}

#[tokio::test]
async fn heartbeats_are_sent_and_a_silent_radio_is_dropped_and_reconnected() {
    let (sim, ep) = tcp_sim(SimConfig::default()).await;
    let mut sim_rx = sim.subscribe();
    let mut opts = fast(ep);
    opts.heartbeat_interval = Duration::from_millis(200);
    opts.silence_timeout = Duration::from_millis(900);
    let mut r = start(opts);
    r.ready().await;
    // Heartbeats (nonce 0) are answered; the link stays up well past the silence timeout.
    for _ in 0..8 {
        let n = sim_next(&mut sim_rx, "heartbeat", |e| match e {
            SimEvent::Heartbeat(n) => Some(n),
            _ => None,
        })
        .await;
        assert_eq!(n, 0);
    }
    assert!(
        r.events.try_recv().is_err(),
        "no disconnect while heartbeats are answered"
    );
    // The radio goes quiet: the link declares it lost and reconnects.
    sim.set_answer_heartbeats(false);
    let (reason, retrying) = r.disconnected().await;
    assert!(reason.contains("no data from the radio"), "{reason}");
    assert!(retrying);
    sim.set_answer_heartbeats(true);
    r.ready().await;
}

#[tokio::test]
async fn dropped_connection_reconnects_and_inflight_send_is_reported() {
    let (sim, ep) = tcp_sim(SimConfig::default()).await;
    let mut r = start(fast(ep));
    r.ready().await;
    sim.set_ack_mode(AckMode::Silent);
    let pending = r.link.send_text(text(0, "in flight")).await.unwrap();
    // Wait until the radio has it, then drop the connection.
    let t0 = std::time::Instant::now();
    while sim.received().is_empty() {
        assert!(t0.elapsed() < WAIT);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sim.drop_connections();
    let (reason, retrying) = r.disconnected().await;
    assert!(reason.contains("closed the connection"), "{reason}");
    assert!(retrying);
    assert_eq!(
        pending.outcome().await,
        SendOutcome::LinkLost { accepted: true }
    );
    r.ready().await;
    sim.set_ack_mode(AckMode::Ack);
    let id = sim.inject_text(&SimText::broadcast(0x1111aaaa, 0, "after reconnect"));
    let p = r
        .next("packet", |e| match e {
            LinkEvent::Packet(p) => Some(p),
            _ => None,
        })
        .await;
    assert_eq!(p.id, id);
}

#[tokio::test]
async fn garbage_console_text_and_bad_frames_cost_nothing_else() {
    let (sim, ep) = tcp_sim(SimConfig::default()).await;
    let mut r = start(fast(ep));
    r.ready().await;
    let mut noise = b"DEBUG | ??:??:?? 5 [Router] something\r\n".to_vec();
    noise.extend((0..2000).map(|i| (i * 37 % 251) as u8));
    sim.inject_raw(&noise);
    sim.inject_raw(&command::malformed_frame());
    sim.inject_raw(&[0x94, 0xc3, 0xff, 0xff]); // a length far over 512
    sim.inject_raw(&command::truncated_frame());
    let before = sim.inject_text(&SimText::broadcast(0x1111aaaa, 0, "still here"));
    let p = r
        .next("packet", |e| match e {
            LinkEvent::Packet(p) => Some(p),
            LinkEvent::Disconnected { reason, .. } => panic!("link dropped: {reason}"),
            _ => None,
        })
        .await;
    assert_eq!(p.id, before);
    // Sending still works on the same connection.
    let out = r
        .link
        .send_text(text(0, "ok"))
        .await
        .unwrap()
        .outcome()
        .await;
    assert_eq!(out, SendOutcome::Acked);
}

#[tokio::test]
async fn reboot_redoes_the_handshake() {
    let (sim, ep) = tcp_sim(SimConfig::default()).await;
    let mut sim_rx = sim.subscribe();
    let mut r = start(fast(ep));
    r.ready().await;
    sim.inject_nodeinfo(&SimNode::new(0x5555eeee, "Eve New", "EVE"));
    let n = r
        .next("node update", |e| match e {
            LinkEvent::NodeUpdated(n) => Some(n),
            _ => None,
        })
        .await;
    assert_eq!((n.num, n.short_name.as_str()), (0x5555eeee, "EVE"));
    sim.inject_rebooted();
    let info = r.ready().await;
    let requests = std::iter::from_fn(|| sim_rx.try_recv().ok())
        .filter(|e| matches!(e, SimEvent::ConfigRequested(_)))
        .count();
    assert_eq!(requests, 2);
    assert_eq!(
        info.nodes.get(0x5555eeee).unwrap().long_name.as_str(),
        "Eve New"
    );
}

#[tokio::test]
async fn a_radio_that_never_finishes_its_config_is_reported() {
    let (sim, ep) = tcp_sim(SimConfig::default()).await;
    sim.set_finish_config(false);
    let mut opts = fast(ep);
    opts.config_timeout = Duration::from_millis(600);
    opts.reconnect = false;
    let mut r = start(opts);
    let (reason, retrying) = r.disconnected().await;
    assert!(
        reason.contains("did not finish sending its configuration"),
        "{reason}"
    );
    assert!(!retrying);
    tokio::time::timeout(WAIT, r.task).await.unwrap().unwrap();
}

#[tokio::test]
async fn full_radio_queue_holds_sends_back() {
    let (sim, ep) = tcp_sim(SimConfig::default()).await;
    let mut sim_rx = sim.subscribe();
    let mut opts = fast(ep);
    opts.heartbeat_interval = Duration::from_millis(100);
    let mut r = start(opts);
    r.ready().await;
    sim.set_queue_free(Some(0));
    // Wait for a heartbeat answer carrying "no free slot".
    sim_next(&mut sim_rx, "heartbeat", |e| {
        matches!(e, SimEvent::Heartbeat(_)).then_some(())
    })
    .await;
    sim_next(&mut sim_rx, "heartbeat", |e| {
        matches!(e, SimEvent::Heartbeat(_)).then_some(())
    })
    .await;
    let pending = r.link.send_text(text(0, "wait for room")).await.unwrap();
    // The link's own heartbeats are the marker: three rounds after the send was asked for, a
    // link that ignored the full queue would have sent it (its frames come in order).
    for _ in 0..3 {
        sim_next(&mut sim_rx, "heartbeat", |e| {
            matches!(e, SimEvent::Heartbeat(_)).then_some(())
        })
        .await;
    }
    assert!(
        sim.received().is_empty(),
        "sent while the radio reported a full queue"
    );
    sim.set_queue_free(None);
    assert_eq!(pending.outcome().await, SendOutcome::Acked);
    assert_eq!(sim.received().len(), 1);
}

#[tokio::test]
async fn sends_are_spaced() {
    let (sim, ep) = tcp_sim(SimConfig::default()).await;
    let mut sim_rx = sim.subscribe();
    let mut opts = fast(ep);
    opts.send_spacing = Duration::from_millis(300);
    let mut r = start(opts);
    r.ready().await;
    let mut pendings = Vec::new();
    for i in 0..3 {
        pendings.push(r.link.send_text(text(0, &format!("m{i}"))).await.unwrap());
    }
    let mut times = Vec::new();
    while times.len() < 3 {
        sim_next(&mut sim_rx, "packet", |e| {
            matches!(e, SimEvent::Packet(_)).then_some(())
        })
        .await;
        times.push(std::time::Instant::now());
    }
    for w in times.windows(2) {
        assert!(
            w[1] - w[0] >= Duration::from_millis(250),
            "gap {:?}",
            w[1] - w[0]
        );
    }
    for p in pendings {
        assert_eq!(p.outcome().await, SendOutcome::Acked);
    }
}

#[tokio::test]
async fn send_queue_is_bounded_while_the_radio_is_away() {
    // Nothing listens on this port: the link keeps retrying and the queue fills.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut opts = fast(Endpoint::Tcp {
        host: "127.0.0.1".into(),
        port,
    });
    opts.send_queue = 2;
    let mut r = start(opts);
    let (reason, retrying) = r.disconnected().await;
    assert!(reason.starts_with("cannot connect"), "{reason}");
    assert!(retrying);
    assert!(r.link.try_send_text(text(0, "a")).is_ok());
    assert!(r.link.try_send_text(text(0, "b")).is_ok());
    assert_eq!(
        r.link.try_send_text(text(0, "c")).unwrap_err(),
        SendError::QueueFull
    );
    // Backoff: attempts keep coming, each reported once.
    let (_, retrying) = r.disconnected().await;
    assert!(retrying);
    r.link.stop();
    tokio::time::timeout(WAIT, r.task).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_resend_with_the_same_packet_id_reaches_the_mesh_once() {
    let (sim, ep) = tcp_sim(SimConfig::default()).await;
    let mut r = start(fast(ep));
    r.ready().await;
    let a = r
        .link
        .send_text_with_id(text(0, "once"), Some(0x5eed))
        .await
        .unwrap();
    assert_eq!(a.packet_id, 0x5eed);
    assert_eq!(a.outcome().await, SendOutcome::Acked);
    let b = r
        .link
        .send_text_with_id(text(0, "once"), Some(0x5eed))
        .await
        .unwrap();
    assert_eq!(b.outcome().await, SendOutcome::Acked);
    assert_eq!(sim.received().len(), 1);
}

#[tokio::test]
async fn taken_resolves_when_the_radio_queues_the_packet_before_any_ack() {
    let (sim, ep) = tcp_sim(SimConfig::default()).await;
    let mut opts = fast(ep);
    opts.ack_timeout = Duration::from_secs(2);
    let mut r = start(opts);
    r.ready().await;
    sim.set_ack_mode(AckMode::Silent);
    let mut p = r.link.send_text(text(0, "no ack coming")).await.unwrap();
    let t0 = std::time::Instant::now();
    assert_eq!(p.taken().await, Ok(()));
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "taken only after {:?}",
        t0.elapsed()
    );
    assert_eq!(p.outcome().await, SendOutcome::NoAck);
    // A routing error from the mesh still arrives as the final outcome.
    sim.set_ack_mode(AckMode::Error(1));
    let mut p = r.link.send_text(text(0, "fails")).await.unwrap();
    assert_eq!(p.taken().await, Ok(()));
    assert_eq!(p.outcome().await, SendOutcome::Failed { error: 1 });
}
