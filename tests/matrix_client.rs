//! The running Matrix client against a real Synapse, with a second client playing the human:
//! messages both ways in encrypted and plain rooms, custom content fields, restarts, logins
//! made elsewhere, and messages whose keys the bot gets late.

#![recursion_limit = "256"]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::synapse::{login_elsewhere, register, synapse, unique, Human};
use matrix_sdk::ruma::OwnedRoomId;
use mmrelay::matrix::client::{self, MatrixHandle, MatrixOptions};
use mmrelay::matrix::content::{self, Incoming, MessageKind};
use mmrelay::matrix::credentials::{Credentials, MatrixPaths};
use mmrelay::matrix::event::MatrixEvent;
use mmrelay::matrix::sender::Outgoing;
use mmrelay::matrix::session::{self, LoginParams};
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;

async fn login_bot(home: &Path) -> (MatrixPaths, String) {
    let hs = synapse();
    let bot = unique("bot");
    drop(register(&bot, "bot-pass").await);
    let paths = MatrixPaths::new(home, None);
    let params = LoginParams {
        homeserver: hs.url.clone(),
        username: bot.clone(),
        password: "bot-pass".into(),
        reset_cross_signing: false,
        ..Default::default()
    };
    session::login(&paths, &params, &mut |_| {}).await.unwrap();
    (paths, format!("@{bot}:localhost"))
}

struct Bot {
    handle: MatrixHandle,
    events: mpsc::Receiver<MatrixEvent>,
    task: tokio::task::JoinHandle<()>,
}

impl Bot {
    async fn start(paths: &MatrixPaths, rooms: &[String]) -> Bot {
        let mut opts = MatrixOptions::new(rooms.to_vec());
        opts.sync_timeout = Duration::from_secs(5);
        let (handle, events, task) = client::start(paths, opts).await.expect("bot starts");
        Bot {
            handle,
            events,
            task,
        }
    }

    async fn stop(self) {
        self.handle.stop().await;
        self.task.abort();
        let _ = self.task.await;
    }

    /// The next incoming message or reaction not sent by the bot itself.
    async fn incoming(&mut self) -> Incoming {
        let me = self.handle.user_id().to_string();
        let fut = async {
            loop {
                match self.events.recv().await.expect("bot events ended") {
                    MatrixEvent::Incoming(i) if i.sender() != me => return i,
                    _ => {}
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(30), fut)
            .await
            .expect("no incoming event for the bot")
    }

    /// Queues an event (with a new transaction id); returns its id for [`Bot::sent`].
    async fn send(&self, room: &str, event_type: &str, content: &serde_json::Value) -> i64 {
        let id = fastrand::i64(1..i64::MAX);
        self.handle
            .sender()
            .queue(Outgoing {
                id,
                room_id: room.to_string(),
                txn_id: format!("test-{id}"),
                event_type: event_type.to_string(),
                content: content.to_string(),
            })
            .await
            .unwrap();
        id
    }

    async fn sent(&mut self, want: i64) -> String {
        let fut = async {
            loop {
                if let MatrixEvent::Sent { id, event_id, .. } =
                    self.events.recv().await.expect("bot events ended")
                {
                    if id == want {
                        return event_id;
                    }
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(30), fut)
            .await
            .expect("the send never reached the server")
    }
}

fn mesh_fields() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("meshtastic_longname".into(), json!("Alice Base"));
    m.insert("meshtastic_shortname".into(), json!("ALC"));
    m.insert("meshtastic_meshnet".into(), json!("testnet"));
    m.insert("meshtastic_id".into(), json!(1234567));
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_both_ways_in_encrypted_and_plain_rooms_and_after_restart() {
    let home = tempfile::tempdir().unwrap();
    let (paths, bot_id) = login_bot(home.path()).await;
    let mut human = Human::new(&unique("human")).await;
    let bot_uid: matrix_sdk::ruma::OwnedUserId = bot_id.parse().unwrap();
    let enc_room = human
        .create_room(true, std::slice::from_ref(&bot_uid))
        .await;
    let plain_room = human
        .create_room(false, std::slice::from_ref(&bot_uid))
        .await;
    let rooms = vec![enc_room.to_string(), plain_room.to_string()];

    let mut bot = Bot::start(&paths, &rooms).await;
    human.wait_joined(&enc_room, &bot_uid).await;
    human.wait_joined(&plain_room, &bot_uid).await;
    let device = Credentials::load(&paths.credentials)
        .unwrap()
        .unwrap()
        .device_id;

    for (room, encrypted) in [(&enc_room, true), (&plain_room, false)] {
        // Human -> bot.
        let body = format!(
            "hello bot ({})",
            if encrypted { "encrypted" } else { "plain" }
        );
        let event_id = human.send_text(room, &body).await;
        let Incoming::Message(m) = bot.incoming().await else {
            panic!("expected a message")
        };
        assert_eq!(
            (m.room_id.as_str(), m.event_id.as_str()),
            (room.as_str(), event_id.as_str())
        );
        assert_eq!(
            (m.body.as_str(), m.kind, m.encrypted),
            (body.as_str(), MessageKind::Text, encrypted)
        );
        assert_eq!(m.sender, human.user_id().as_str());
        assert!(m.sender_name.starts_with("human"), "{}", m.sender_name);

        // Bot -> human: a reply with MMRelay's custom fields.
        let c = content::message(
            MessageKind::Text,
            "[Alice Base/testnet]: hi",
            Some(&event_id),
            &mesh_fields(),
        );
        let txn = bot.send(room.as_str(), "m.room.message", &c).await;
        let sent_id = bot.sent(txn).await;
        let v = human
            .next_from(&bot_id, |v| v["type"] == "m.room.message")
            .await;
        assert_eq!(v["event_id"], sent_id.as_str());
        assert_eq!(v["room_id"], room.as_str());
        assert_eq!(v["content"]["body"], "[Alice Base/testnet]: hi");
        assert_eq!(v["content"]["meshtastic_longname"], "Alice Base");
        assert_eq!(v["content"]["meshtastic_id"], 1234567);
        assert_eq!(
            v["content"]["m.relates_to"]["m.in_reply_to"]["event_id"],
            event_id.as_str()
        );

        // A notice, an emote and a reaction from the human.
        let n = human
            .send_raw(
                room,
                "m.room.message",
                json!({"msgtype": "m.notice", "body": "a notice"}),
            )
            .await;
        let Incoming::Message(m) = bot.incoming().await else {
            panic!()
        };
        assert_eq!(
            (m.event_id.as_str(), m.kind),
            (n.as_str(), MessageKind::Notice)
        );
        human
            .send_raw(
                room,
                "m.room.message",
                json!({"msgtype": "m.emote", "body": "waves"}),
            )
            .await;
        let Incoming::Message(m) = bot.incoming().await else {
            panic!()
        };
        assert_eq!((m.kind, m.body.as_str()), (MessageKind::Emote, "waves"));
        human
            .send_raw(room, "m.reaction", json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": sent_id, "key": "\u{1F44D}"}}))
            .await;
        let Incoming::Reaction(r) = bot.incoming().await else {
            panic!("expected a reaction")
        };
        assert_eq!(
            (r.relates_to.as_str(), r.key.as_str()),
            (sent_id.as_str(), "\u{1F44D}")
        );

        // The bot's reaction reaches the human.
        let c = content::reaction(&event_id, "\u{2705}", &Map::new());
        let txn = bot.send(room.as_str(), "m.reaction", &c).await;
        bot.sent(txn).await;
        let v = human
            .next_from(&bot_id, |v| v["type"] == "m.reaction")
            .await;
        assert_eq!(v["content"]["m.relates_to"]["key"], "\u{2705}");
    }

    // Restart: same device, still decrypts and encrypts, and history is not replayed.
    bot.stop().await;
    let mut bot = Bot::start(&paths, &rooms).await;
    assert_eq!(
        Credentials::load(&paths.credentials)
            .unwrap()
            .unwrap()
            .device_id,
        device
    );
    let id = human.send_text(&enc_room, "after restart").await;
    let Incoming::Message(m) = bot.incoming().await else {
        panic!()
    };
    assert_eq!(
        (m.event_id.as_str(), m.body.as_str(), m.encrypted),
        (id.as_str(), "after restart", true)
    );
    let c = content::message(MessageKind::Notice, "still encrypting", None, &Map::new());
    let txn = bot.send(enc_room.as_str(), "m.room.message", &c).await;
    bot.sent(txn).await;
    let v = human
        .next_from(&bot_id, |v| v["content"]["body"] == "still encrypting")
        .await;
    assert_eq!(v["content"]["msgtype"], "m.notice");
    bot.stop().await;
}

/// Sends texts from the bot until `reader` can read one (at most 45 s).
async fn bot_sends_until_read(
    bot: &mut Bot,
    room: &OwnedRoomId,
    bot_id: &str,
    reader: &mut Human,
    what: &str,
) {
    let t0 = Instant::now();
    let mut n = 0;
    loop {
        n += 1;
        let body = format!("{what} {n}");
        let c = content::message(MessageKind::Text, &body, None, &Map::new());
        let txn = bot.send(room.as_str(), "m.room.message", &c).await;
        bot.sent(txn).await;
        let got = tokio::time::timeout(Duration::from_secs(2), async {
            loop {
                let v = reader.events.recv().await.expect("reader stopped");
                if v["sender"] == bot_id && v["content"]["body"] == body.as_str() {
                    return v;
                }
            }
        })
        .await;
        if got.is_ok() {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(45),
            "{what}: none of {n} messages could be read"
        );
    }
}

/// The bot keeps the devices and room members it has read in memory (src/matrix/crypto_store.rs,
/// src/matrix/state_store.rs): a device the human adds and a member who joins after the bot
/// has encrypted for the room must still get the keys to what follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_added_and_a_member_who_joins_while_the_bot_runs_read_what_it_sends_next() {
    let home = tempfile::tempdir().unwrap();
    let (paths, bot_id) = login_bot(home.path()).await;
    let mut human = Human::new(&unique("human")).await;
    let bot_uid: matrix_sdk::ruma::OwnedUserId = bot_id.parse().unwrap();
    let room = human
        .create_room(true, std::slice::from_ref(&bot_uid))
        .await;
    let mut bot = Bot::start(&paths, &[room.to_string()]).await;
    human.wait_joined(&room, &bot_uid).await;

    // The bot encrypts for the human's first device (and has read its devices and the members).
    bot_sends_until_read(&mut bot, &room, &bot_id, &mut human, "before").await;

    // A second device appears.
    let mut second = human.second_device().await;
    bot_sends_until_read(
        &mut bot,
        &room,
        &bot_id,
        &mut second,
        "to the second device",
    )
    .await;

    // A new member joins.
    let mut newcomer = Human::new(&unique("newcomer")).await;
    human
        .client
        .get_room(&room)
        .unwrap()
        .invite_user_by_id(&newcomer.user_id())
        .await
        .unwrap();
    newcomer.client.join_room_by_id(&room).await.unwrap();
    bot_sends_until_read(&mut bot, &room, &bot_id, &mut newcomer, "to the newcomer").await;
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_sent_before_the_bot_had_the_key_is_still_delivered() {
    let home = tempfile::tempdir().unwrap();
    let (paths, bot_id) = login_bot(home.path()).await;
    let human = Human::new(&unique("human")).await;
    // The human writes in an encrypted room before the bot is in it; the bot gets the key
    // only later (shared with the invite, as history).
    let room = human.create_room(true, &[]).await;
    let early = human
        .send_text(&room, "written before the bot joined")
        .await;
    let bot_uid: matrix_sdk::ruma::OwnedUserId = bot_id.parse().unwrap();
    human
        .client
        .get_room(&room)
        .unwrap()
        .invite_user_by_id(&bot_uid)
        .await
        .unwrap();
    let mut bot = Bot::start(&paths, &[room.to_string()]).await;
    let Incoming::Message(m) = bot.incoming().await else {
        panic!()
    };
    assert_eq!(
        (m.event_id.as_str(), m.body.as_str()),
        (early.as_str(), "written before the bot joined")
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_made_elsewhere_gets_a_store_and_one_with_keys_elsewhere_is_refused() {
    let hs = synapse();
    // A login through the API (as MMRelay's own `auth login` or a script would do), with no
    // keys uploaded: mmrelay creates the store for that device and works.
    let bot = unique("bot");
    let (elsewhere, s) = login_elsewhere(&bot, "pw").await;
    let home = tempfile::tempdir().unwrap();
    let paths = MatrixPaths::new(home.path(), None);
    Credentials {
        homeserver: hs.url.clone(),
        user_id: s.meta.user_id.to_string(),
        access_token: s.tokens.access_token.clone(),
        device_id: s.meta.device_id.to_string(),
        extra: Map::new(),
    }
    .save(&paths.credentials)
    .unwrap();
    let human = Human::new(&unique("human")).await;
    let room = human
        .create_room(true, std::slice::from_ref(&s.meta.user_id))
        .await;
    let mut b = Bot::start(&paths, &[room.to_string()]).await;
    human.wait_joined(&room, &s.meta.user_id).await;
    let id = human.send_text(&room, "to the new store").await;
    let Incoming::Message(m) = b.incoming().await else {
        panic!()
    };
    assert_eq!(m.event_id, id);
    b.stop().await;

    // The device that registered `elsewhere` has uploaded keys (it synced): a store for it
    // must not be made.
    elsewhere
        .sync_once(matrix_sdk::config::SyncSettings::new().timeout(Duration::ZERO))
        .await
        .unwrap();
    let s2 = elsewhere.matrix_auth().session().unwrap();
    let home2 = tempfile::tempdir().unwrap();
    let paths2 = MatrixPaths::new(home2.path(), None);
    Credentials {
        homeserver: hs.url.clone(),
        user_id: s2.meta.user_id.to_string(),
        access_token: s2.tokens.access_token.clone(),
        device_id: s2.meta.device_id.to_string(),
        extra: Map::new(),
    }
    .save(&paths2.credentials)
    .unwrap();
    let err = match client::start(&paths2, MatrixOptions::new(vec![])).await {
        Ok(_) => panic!("started with a device whose keys live elsewhere"),
        Err(e) => e,
    };
    assert!(
        err.contains("already has encryption keys on the server"),
        "{err}"
    );
    assert!(err.contains("run `mmrelay auth login`"), "{err}");
    assert!(
        !paths2.store.join("matrix-sdk-crypto.sqlite3").exists(),
        "a store was left behind"
    );

    // No credentials at all.
    let empty = tempfile::tempdir().unwrap();
    let err = match client::start(
        &MatrixPaths::new(empty.path(), None),
        MatrixOptions::new(vec![]),
    )
    .await
    {
        Ok(_) => panic!("started without credentials"),
        Err(e) => e,
    };
    assert!(
        err.contains("no Matrix credentials at") && err.contains("mmrelay auth login"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_password_config_logs_in_once() {
    let hs = synapse();
    let bot = unique("bot");
    drop(register(&bot, "legacy-pass").await);
    let home = tempfile::tempdir().unwrap();
    let paths = MatrixPaths::new(home.path(), None);
    let mut opts = MatrixOptions::new(vec![]);
    opts.legacy_login = Some(LoginParams {
        homeserver: hs.url.clone(),
        username: format!("@{bot}:localhost"),
        password: "legacy-pass".into(),
        reset_cross_signing: false,
        ..Default::default()
    });
    let (h, _ev, task) = client::start(&paths, opts.clone()).await.unwrap();
    let creds = Credentials::load(&paths.credentials)
        .unwrap()
        .expect("credentials written");
    assert_eq!(creds.user_id, format!("@{bot}:localhost"));
    h.stop().await;
    task.abort();
    let _ = task.await;
    // The second start uses credentials.json: the same device, no new login.
    let (h, _ev, task) = client::start(&paths, opts).await.unwrap();
    assert_eq!(
        Credentials::load(&paths.credentials)
            .unwrap()
            .unwrap()
            .device_id,
        creds.device_id
    );
    h.stop().await;
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_access_token_config_writes_credentials_for_its_device() {
    let hs = synapse();
    let bot = unique("bot");
    let (_, s) = login_elsewhere(&bot, "pw").await;
    let home = tempfile::tempdir().unwrap();
    let paths = MatrixPaths::new(home.path(), None);
    let mut opts = MatrixOptions::new(vec![]);
    opts.legacy_token = Some((
        hs.url.clone(),
        s.meta.user_id.to_string(),
        s.tokens.access_token.clone(),
    ));
    let (h, _ev, task) = client::start(&paths, opts).await.unwrap();
    let creds = Credentials::load(&paths.credentials)
        .unwrap()
        .expect("credentials written");
    assert_eq!(creds.device_id, s.meta.device_id.as_str());
    assert_eq!(creds.access_token, s.tokens.access_token);
    h.stop().await;
    task.abort();
}
