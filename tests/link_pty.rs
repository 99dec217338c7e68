//! The radio link over a serial device: the simulated radio serves a real pty, opened by the
//! link through tokio-serial exactly as a USB radio would be.
#![recursion_limit = "256"]

mod common;

use std::time::Duration;

use common::*;
use mmrelay::mesh::link::{LinkEvent, SendOutcome};
use mmrelay::mesh::proto::BROADCAST;
use mmrelay::mesh::radio::TextMessage;
use mmrelay::mesh::transport::Endpoint;
use mmrelay::sim::{SimConfig, SimEvent, SimText, Simulator};

#[tokio::test]
async fn serial_handshake_receive_send_and_console_text() {
    let sim = Simulator::new(SimConfig::default());
    let mut sim_rx = sim.subscribe();
    let pty = sim.open_pty(None).unwrap();
    let mut r = start(fast(Endpoint::Serial(pty.device().to_path_buf())));
    let info = r.ready().await;
    assert_eq!(info.my_node_num, 0x0a0b0c0d);
    assert_eq!(
        info.nodes.get(0x3333cccc).unwrap().long_name.as_str(),
        "Carol \u{1F4E1} Hill"
    );

    // Console text from the radio's debug port is not a frame and breaks nothing.
    sim.inject_raw(b"INFO  | 12:00:01 [Radio] rx ok\r\n");
    let id = sim.inject_text(&SimText::broadcast(0x2222bbbb, 0, "over serial"));
    let p = r
        .next("packet", |e| match e {
            LinkEvent::Packet(p) => Some(p),
            _ => None,
        })
        .await;
    assert_eq!(p.id, id);
    assert_eq!(p.decoded().unwrap().payload, b"over serial");

    let msg = TextMessage {
        channel: 1,
        to: BROADCAST,
        text: "to the mesh".into(),
        reply_id: 0,
        emoji: false,
    };
    let out = r.link.send_text(msg).await.unwrap().outcome().await;
    assert_eq!(out, SendOutcome::Acked);
    let got = sim.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].decoded().unwrap().payload, b"to the mesh");

    r.link.stop();
    sim_next(&mut sim_rx, "disconnect", |e| {
        (e == SimEvent::Disconnect).then_some(())
    })
    .await;
    tokio::time::timeout(WAIT, r.task).await.unwrap().unwrap();
}

#[tokio::test]
async fn serial_device_that_disappears_and_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let dev = dir.path().join("ttyMESH0");
    let sim = Simulator::new(SimConfig::default());
    let pty = sim.open_pty(Some(&dev)).unwrap();
    let mut opts = fast(Endpoint::Serial(dev.clone()));
    opts.heartbeat_interval = Duration::from_millis(200);
    opts.silence_timeout = Duration::from_millis(1500);
    let mut r = start(opts);
    r.ready().await;

    // Unplug: both pty ends close and the device path vanishes.
    pty.close();
    let (reason, retrying) = r.disconnected().await;
    assert!(retrying, "{reason}");
    // While it is gone, attempts fail with a clear reason.
    let (reason, _) = r.disconnected().await;
    assert!(reason.contains("cannot connect"), "{reason}");

    // Plug back in at the same path: the link comes back on its own.
    let _pty = sim.open_pty(Some(&dev)).unwrap();
    r.ready().await;
    let id = sim.inject_text(&SimText::broadcast(0x1111aaaa, 0, "back again"));
    let p = r
        .next("packet", |e| match e {
            LinkEvent::Packet(p) => Some(p),
            _ => None,
        })
        .await;
    assert_eq!(p.id, id);
}
