//! A real Synapse homeserver for the Matrix tests, started once per test binary on a free port
//! of 127.0.0.1 (scripts/synapse.sh installs it into .build/ on first use), and a second Matrix
//! client, separate from mmrelay's code, that plays the human in the rooms.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use matrix_sdk::config::SyncSettings;
use matrix_sdk::event_handler::RawEvent;
use matrix_sdk::ruma::api::client::account::register;
use matrix_sdk::ruma::api::client::filter::FilterDefinition;
use matrix_sdk::ruma::api::client::room::create_room;
use matrix_sdk::ruma::api::client::uiaa::{AuthData, Dummy};
use matrix_sdk::ruma::events::room::encryption::RoomEncryptionEventContent;
use matrix_sdk::ruma::events::{AnySyncMessageLikeEvent, InitialStateEvent};
use matrix_sdk::ruma::{OwnedRoomId, OwnedUserId};
use matrix_sdk::Client;
use serde_json::Value;
use tokio::sync::mpsc;

pub struct Synapse {
    pub url: String,
    pub dir: PathBuf,
}

static SYNAPSE: OnceLock<Synapse> = OnceLock::new();
static COUNTER: AtomicU32 = AtomicU32::new(0);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn answers(port: u16) -> bool {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /_matrix/client/versions HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.") && &buf[8..12] == b" 200"
}

fn script() -> PathBuf {
    root().join("scripts/synapse.sh")
}

/// Installs Synapse (once) and writes a config for `port` in a fresh folder.
fn prepare(tag: &str, port: u16) -> PathBuf {
    static INSTALL: OnceLock<()> = OnceLock::new();
    INSTALL.get_or_init(|| {
        let ok = Command::new("bash").arg(script()).arg("install").status();
        assert!(
            ok.expect("run scripts/synapse.sh").success(),
            "installing Synapse failed"
        );
    });
    let dir = std::env::temp_dir().join(format!("mmrelay-synapse-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let ok = Command::new("bash")
        .arg(script())
        .args(["config", dir.to_str().unwrap(), &port.to_string()])
        .status()
        .unwrap();
    assert!(ok.success(), "writing the Synapse config failed");
    dir
}

/// Starts Synapse from `dir` and waits until it answers on `port`; returns its pid. The
/// thread that starts it waits for it, and Synapse is told to stop (PR_SET_PDEATHSIG) when
/// that thread ends: at the latest when the test process exits.
fn launch(dir: &Path, port: u16) -> u32 {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("synapse.out"))
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let d2 = dir.to_path_buf();
    std::thread::spawn(move || {
        let mut cmd = Command::new("bash");
        cmd.arg(script())
            .args(["run", d2.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("start Synapse");
        tx.send(child.id()).unwrap();
        let _ = child.wait();
    });
    let pid = rx.recv().unwrap();
    let t0 = Instant::now();
    while !answers(port) {
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "Synapse did not start; see {}",
            dir.join("synapse.out").display()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    pid
}

/// The homeserver shared by a test binary, started on first use.
pub fn synapse() -> &'static Synapse {
    SYNAPSE.get_or_init(|| {
        let port = free_port();
        let dir = prepare("shared", port);
        launch(&dir, port);
        Synapse {
            url: format!("http://127.0.0.1:{port}"),
            dir,
        }
    })
}

/// A homeserver of one test's own, which the test can stop and start again.
pub struct OwnSynapse {
    pub url: String,
    dir: PathBuf,
    port: u16,
    pid: Option<u32>,
}

impl OwnSynapse {
    pub fn start(tag: &str) -> OwnSynapse {
        let port = free_port();
        let dir = prepare(tag, port);
        let pid = launch(&dir, port);
        OwnSynapse {
            url: format!("http://127.0.0.1:{port}"),
            dir,
            port,
            pid: Some(pid),
        }
    }

    /// Stops it (SIGTERM) and waits until the port is closed.
    pub fn stop(&mut self) {
        if let Some(pid) = self.pid.take() {
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
            let t0 = Instant::now();
            while answers(self.port)
                || std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            {
                assert!(
                    t0.elapsed() < Duration::from_secs(30),
                    "Synapse did not stop"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// Starts it again on the same port with the same data.
    pub fn restart(&mut self) {
        assert!(self.pid.is_none());
        self.pid = Some(launch(&self.dir, self.port));
    }
}

impl Drop for OwnSynapse {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A fresh user name for this test process.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// Registers a user on the shared homeserver and returns a logged-in client (in-memory store).
pub async fn register(name: &str, password: &str) -> Client {
    register_on(&synapse().url, name, password).await
}

/// Registers `name` on the shared homeserver, then logs it in from a second, plain client that
/// uploads no keys (as MMRelay's own login or a script leaves a device). Returns the
/// registering client and that login's session.
pub async fn login_elsewhere(
    name: &str,
    password: &str,
) -> (Client, matrix_sdk::authentication::matrix::MatrixSession) {
    let registered = register(name, password).await;
    let other = Client::builder()
        .homeserver_url(&synapse().url)
        .build()
        .await
        .unwrap();
    other
        .matrix_auth()
        .login_username(name, password)
        .initial_device_display_name("made elsewhere")
        .send()
        .await
        .unwrap();
    (registered, other.matrix_auth().session().unwrap())
}

/// Registers a user on the homeserver at `url`.
pub async fn register_on(url: &str, name: &str, password: &str) -> Client {
    let client = Client::builder().homeserver_url(url).build().await.unwrap();
    let mut req = register::v3::Request::new();
    req.username = Some(name.to_owned());
    req.password = Some(password.to_owned());
    req.initial_device_display_name = Some("test human".to_owned());
    match client.matrix_auth().register(req.clone()).await {
        Ok(_) => {}
        Err(e) => {
            let uiaa = e
                .as_uiaa_response()
                .unwrap_or_else(|| panic!("register {name}: {e}"));
            let mut dummy = Dummy::new();
            dummy.session = uiaa.session.clone();
            req.auth = Some(AuthData::Dummy(dummy));
            client.matrix_auth().register(req).await.unwrap();
        }
    }
    client
}

/// The human's side: a client that syncs in the background and reports every message-like
/// event (decrypted when it can be) as JSON with `room_id`, `received_ms` and, for an
/// encrypted one, `session_id` added.
pub struct Human {
    pub client: Client,
    pub events: mpsc::UnboundedReceiver<Value>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Human {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Human {
    pub async fn new(name: &str) -> Human {
        Human::on(&synapse().url, name).await
    }

    /// A human on the homeserver at `url`.
    pub async fn on(url: &str, name: &str) -> Human {
        let client = register_on(url, name, "human-pass").await;
        Human::run(client, true).await
    }

    /// The same human on a new device (logged in with its password, not cross-signed).
    pub async fn second_device(&self) -> Human {
        let client = Client::builder()
            .homeserver_url(self.client.homeserver())
            .build()
            .await
            .unwrap();
        client
            .matrix_auth()
            .login_username(self.user_id().localpart(), "human-pass")
            .initial_device_display_name("second device")
            .send()
            .await
            .unwrap();
        Human::run(client, false).await
    }

    /// Reports `client`'s events and keeps it syncing; `cross_sign`: bootstraps cross-signing
    /// first.
    async fn run(client: Client, cross_sign: bool) -> Human {
        let (tx, events) = mpsc::unbounded_channel();
        client.add_event_handler(
            move |_e: AnySyncMessageLikeEvent,
                  room: matrix_sdk::Room,
                  raw: RawEvent,
                  enc: Option<matrix_sdk::deserialized_responses::EncryptionInfo>| {
                let tx = tx.clone();
                async move {
                    let mut v: Value = serde_json::from_str(raw.0.get()).unwrap();
                    v["room_id"] = Value::String(room.room_id().to_string());
                    // The Megolm session it was encrypted with, if it was.
                    if let Some(id) = enc.as_ref().and_then(|e| e.session_id()) {
                        v["session_id"] = Value::String(id.to_string());
                    }
                    // When this client had it, for the benchmark's latency figures.
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap();
                    v["received_ms"] = Value::from(now.as_millis() as u64);
                    let _ = tx.send(v);
                }
            },
        );
        client.sync_once(SyncSettings::new()).await.unwrap();
        // A cross-signed human, as Element users are (history is shared only by them).
        if cross_sign {
            if let Err(e) = client.encryption().bootstrap_cross_signing(None).await {
                let uiaa = e.as_uiaa_response().expect("cross-signing bootstrap");
                let auth = mmrelay::matrix::session::password_auth(
                    client.user_id().unwrap().as_str(),
                    "human-pass",
                    uiaa.session.clone(),
                );
                client
                    .encryption()
                    .bootstrap_cross_signing(Some(auth))
                    .await
                    .unwrap();
            }
        }
        let c = client.clone();
        let task = tokio::spawn(async move {
            // Sync again after a failure (the homeserver may be stopped by a test).
            loop {
                // A long timeline, so that a burst (the benchmark sends 200 at once) reaches
                // this client whole rather than as a gap and the last few (Synapse's default
                // limit is 10).
                let mut filter = FilterDefinition::default();
                filter.room.timeline.limit = Some(1000u32.into());
                let settings = SyncSettings::new()
                    .timeout(Duration::from_secs(5))
                    .filter(filter.into());
                let _ = c.sync(settings).await;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        Human {
            client,
            events,
            task,
        }
    }

    pub fn user_id(&self) -> OwnedUserId {
        self.client.user_id().unwrap().to_owned()
    }

    /// Creates a private room, encrypted or not, inviting `invite`.
    pub async fn create_room(&self, encrypted: bool, invite: &[OwnedUserId]) -> OwnedRoomId {
        let mut req = create_room::v3::Request::new();
        req.invite = invite.to_vec();
        req.preset = Some(create_room::v3::RoomPreset::PrivateChat);
        if encrypted {
            let ev = InitialStateEvent::with_empty_state_key(
                RoomEncryptionEventContent::with_recommended_defaults(),
            );
            req.initial_state = vec![ev.to_raw_any()];
        }
        let room = self.client.create_room(req).await.unwrap();
        room.room_id().to_owned()
    }

    /// Waits until the bot has joined `room` (as this client sees it).
    pub async fn wait_joined(&self, room: &OwnedRoomId, bot: &OwnedUserId) {
        let t0 = Instant::now();
        loop {
            let r = self.client.get_room(room).unwrap();
            if let Ok(Some(m)) = r.get_member(bot).await {
                if *m.membership() == matrix_sdk::ruma::events::room::member::MembershipState::Join
                {
                    return;
                }
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "the bot never joined {room}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Sends a text and returns its event id.
    pub async fn send_text(&self, room: &OwnedRoomId, body: &str) -> String {
        let r = self.client.get_room(room).unwrap();
        let content =
            matrix_sdk::ruma::events::room::message::RoomMessageEventContent::text_plain(body);
        r.send(content).await.unwrap().response.event_id.to_string()
    }

    /// Sends raw content of `event_type` and returns its event id.
    pub async fn send_raw(&self, room: &OwnedRoomId, event_type: &str, content: Value) -> String {
        let r = self.client.get_room(room).unwrap();
        r.send_raw(event_type, content)
            .await
            .unwrap()
            .response
            .event_id
            .to_string()
    }

    /// The next event from `sender` that `pick` accepts (within 30 s).
    pub async fn next_from(&mut self, sender: &str, pick: impl FnMut(&Value) -> bool) -> Value {
        self.next_from_within(sender, 30, pick).await
    }

    /// The next event from `sender` that `pick` accepts, within `secs`.
    pub async fn next_from_within(
        &mut self,
        sender: &str,
        secs: u64,
        mut pick: impl FnMut(&Value) -> bool,
    ) -> Value {
        let fut = async {
            loop {
                let v = self.events.recv().await.expect("human sync ended");
                if v["sender"] == sender && pick(&v) {
                    return v;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(secs), fut)
            .await
            .unwrap_or_else(|_| panic!("no matching event from {sender} in {secs} s"))
    }
}

/// Writes a password file for the CLI.
pub fn password_file(dir: &Path, password: &str) -> PathBuf {
    let p = dir.join("password");
    std::fs::write(&p, format!("{password}\n")).unwrap();
    p
}

/// Registers a bot on the homeserver at `url` and logs it in with mmrelay's own login into
/// `home` (credentials.json, E2EE store, cross-signing). Returns the bot's user id.
pub async fn login_bot_on(url: &str, home: &Path) -> OwnedUserId {
    let bot = unique("relay");
    drop(register_on(url, &bot, "pw").await);
    let params = mmrelay::matrix::session::LoginParams {
        homeserver: url.to_string(),
        username: bot.clone(),
        password: "pw".into(),
        reset_cross_signing: false,
        ..Default::default()
    };
    let paths = mmrelay::matrix::credentials::MatrixPaths::new(home, None);
    mmrelay::matrix::session::login(&paths, &params, &mut |_| {})
        .await
        .unwrap();
    format!("@{bot}:localhost").parse().unwrap()
}
