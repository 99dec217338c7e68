//! Sending through outages: messages queued while the homeserver is down reach the room once it
//! is back; a message queued again after a restart with its saved transaction id (as the relay
//! does from its store) arrives once, also when the homeserver already had it. This test has a
//! Synapse of its own, which it stops and starts.

#![recursion_limit = "256"]

mod common;

use std::time::Duration;

use common::synapse::{register_on, unique, Human, OwnSynapse};
use mmrelay::matrix::client::{self, MatrixHandle, MatrixOptions};
use mmrelay::matrix::content::{self, MessageKind};
use mmrelay::matrix::credentials::MatrixPaths;
use mmrelay::matrix::event::MatrixEvent;
use mmrelay::matrix::sender::Outgoing;
use mmrelay::matrix::session::{self, LoginParams};
use serde_json::Map;
use tokio::sync::mpsc;

async fn start(
    paths: &MatrixPaths,
    room: &str,
) -> (
    MatrixHandle,
    mpsc::Receiver<MatrixEvent>,
    tokio::task::JoinHandle<()>,
) {
    let mut opts = MatrixOptions::new(vec![room.to_string()]);
    opts.sync_timeout = Duration::from_secs(2);
    client::start(paths, opts).await.expect("bot starts")
}

fn outgoing(id: i64, room: &str, body: &str) -> Outgoing {
    let c = content::message(MessageKind::Text, body, None, &Map::new());
    Outgoing {
        id,
        room_id: room.to_string(),
        txn_id: format!("outage-test-{id}-{}", fastrand::u32(..)),
        event_type: "m.room.message".into(),
        content: c.to_string(),
    }
}

async fn sent(events: &mut mpsc::Receiver<MatrixEvent>, want: i64) -> String {
    let fut = async {
        loop {
            if let Some(MatrixEvent::Sent { id, event_id, .. }) = events.recv().await {
                if id == want {
                    return event_id;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(90), fut)
        .await
        .expect("the queued message never reached the server")
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_sends_survive_outages_and_restarts_and_arrive_once() {
    let hs = blocking(|| OwnSynapse::start("outage")).await;
    let url = hs.url.clone();
    let bot = unique("bot");
    drop(register_on(&url, &bot, "pw").await);
    let home = tempfile::tempdir().unwrap();
    let paths = MatrixPaths::new(home.path(), None);
    let params = LoginParams {
        homeserver: url.clone(),
        username: bot.clone(),
        password: "pw".into(),
        reset_cross_signing: false,
        ..Default::default()
    };
    session::login(&paths, &params, &mut |_| {}).await.unwrap();
    let bot_id: matrix_sdk::ruma::OwnedUserId = format!("@{bot}:localhost").parse().unwrap();
    let mut human = Human::on(&url, &unique("human")).await;
    let room = human.create_room(true, std::slice::from_ref(&bot_id)).await;
    let (handle, mut events, task) = start(&paths, room.as_str()).await;
    human.wait_joined(&room, &bot_id).await;

    // Outage while running.
    let mut hs = blocking(move || {
        let mut hs = hs;
        hs.stop();
        hs
    })
    .await;
    let m1 = outgoing(1, room.as_str(), "sent during outage 1");
    let m1_txn = m1.txn_id.clone();
    handle.sender().queue(m1).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    hs = blocking(move || {
        hs.restart();
        hs
    })
    .await;
    let ev1 = sent(&mut events, 1).await;

    // Outage across a restart of mmrelay: the message is queued again after the restart.
    hs = blocking(move || {
        hs.stop();
        hs
    })
    .await;
    let m2 = outgoing(2, room.as_str(), "sent during outage 2");
    handle.sender().queue(m2.clone()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    handle.stop().await;
    task.abort();
    let _ = task.await;
    drop(events);
    drop(handle);
    let hs = blocking(move || {
        hs.restart();
        hs
    })
    .await;
    let (handle, mut events, task) = start(&paths, room.as_str()).await;
    handle.sender().queue(m2).await.unwrap();
    sent(&mut events, 2).await;
    // The first message again, with its transaction id, as after a crash before its removal
    // was saved: the homeserver answers with the event it has.
    let m1_again = Outgoing {
        id: 11,
        txn_id: m1_txn,
        ..outgoing(1, room.as_str(), "sent during outage 1")
    };
    handle.sender().queue(m1_again).await.unwrap();
    assert_eq!(sent(&mut events, 11).await, ev1);
    handle
        .sender()
        .queue(outgoing(3, room.as_str(), "final"))
        .await
        .unwrap();
    sent(&mut events, 3).await;

    // The human sees each message once, in order.
    let mut bodies = Vec::new();
    while bodies.last().map(String::as_str) != Some("final") {
        let v = human
            .next_from(bot_id.as_str(), |v| v["type"] == "m.room.message")
            .await;
        bodies.push(v["content"]["body"].as_str().unwrap().to_string());
    }
    assert_eq!(
        bodies,
        vec!["sent during outage 1", "sent during outage 2", "final"]
    );
    handle.stop().await;
    task.abort();
    drop(hs);
}
