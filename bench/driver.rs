//! The relay benchmark's driver (run it through bench/run.sh). It starts a Synapse of its own
//! and, for each relay named on the command line (mmrelay, and the Python MMRelay when given),
//! a simulated radio on TCP, a bot account logged in with that relay's own `auth login`, an
//! encrypted room with a second real Matrix client in it, and one config.yaml written the same
//! for both. A first run of the relay joins the room and proves both directions; the measured
//! run then goes: launch → relaying both ways; 20 mesh texts; 20 Matrix texts; a burst of 200
//! mesh texts; 60 s idle. Memory, CPU and disk writes come from /proc/PID of the relay.
#![recursion_limit = "256"]

mod procfs;
mod report;
#[path = "../tests/common/synapse.rs"]
mod synapse;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mmrelay::sim::{SimConfig, SimEvent, SimText, Simulator};
use procfs::{du, sample, smaps_top, wal_bytes, Sample};
use report::print_table;
use synapse::{register_on, unique, Human, OwnSynapse};

/// The mesh node the texts come from (one of the simulator's default nodes).
const SENDER: u32 = 0x2222bbbb;
const PASSWORD: &str = "bench-pass";
const MESSAGE_DELAY: f64 = 2.5;
/// How long a phase waits for a missing message after the last one that arrived.
const QUIET: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// This project's binary.
    Ours,
    /// PyPI mmrelay.
    Python,
}

struct RelaySpec {
    name: String,
    kind: Kind,
    exe: PathBuf,
    /// What "installed size" means for it: the binary, or the venv.
    installed: PathBuf,
}

struct Workload {
    paced: usize,
    burst: usize,
    idle: Duration,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Everything measured for one relay.
#[derive(Default)]
struct Figures {
    ready_m2x: Option<Duration>,
    ready_x2m: Option<Duration>,
    samples: BTreeMap<&'static str, Sample>,
    lat_m2x_server: Vec<f64>,
    lat_m2x_client: Vec<f64>,
    lat_x2m: Vec<f64>,
    lat_burst_client: Vec<f64>,
    relayed: usize,
    lost: usize,
    burst_secs: f64,
    home_bytes: u64,
    wal_bytes: u64,
    installed_bytes: u64,
    stop_secs: f64,
}

/// The bench token in a text ("bench-a-007"), if any.
fn token(text: &str) -> Option<&str> {
    text.split(|c: char| c.is_whitespace() || c == ':')
        .find(|w| w.starts_with("bench-") || w.starts_with("probe-"))
}

struct Run<'a> {
    spec: &'a RelaySpec,
    home: PathBuf,
    sim: Simulator,
    sim_rx: tokio::sync::broadcast::Receiver<SimEvent>,
    human: &'a mut Human,
    bot: String,
    room: matrix_sdk::ruma::OwnedRoomId,
    child: Option<Child>,
    /// How many times the relay was launched: probes carry it, so that a probe of an earlier
    /// run relayed late (after a restart) does not count for this one.
    launches: u32,
}

impl Drop for Run<'_> {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// What arrived on either side while waiting.
enum Arrival {
    /// A text from the bot in the room: token, server timestamp, when the client had it.
    Matrix(String, u64, u64),
    /// A text the relay sent to the radio: token, when the radio had it.
    Mesh(String, u64),
}

impl Run<'_> {
    fn launch(&mut self) -> u32 {
        self.launches += 1;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.home.join("relay.log"))
            .unwrap();
        let mut cmd = Command::new(&self.spec.exe);
        cmd.arg("--home")
            .arg(&self.home)
            .env("MMRELAY_HOME", &self.home)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let child = cmd.spawn().expect("start the relay");
        let pid = child.id();
        self.child = Some(child);
        pid
    }

    fn stop(&mut self) -> f64 {
        let Some(mut child) = self.child.take() else {
            return 0.0;
        };
        let t0 = Instant::now();
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        while t0.elapsed() < Duration::from_secs(30) {
            if child.try_wait().unwrap().is_some() {
                return t0.elapsed().as_secs_f64();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        eprintln!(
            "{}: did not stop within 30 s of SIGTERM; killed",
            self.spec.name
        );
        t0.elapsed().as_secs_f64()
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.home.join("relay.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// The next arrival on either side, or None after `within`.
    async fn next(&mut self, within: Duration) -> Option<Arrival> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            tokio::select! {
                v = self.human.events.recv() => {
                    let v = v.expect("the human client stopped");
                    if v["sender"] != self.bot.as_str() || v["room_id"] != self.room.as_str() {
                        continue;
                    }
                    let body = v["content"]["body"].as_str().unwrap_or("");
                    if let Some(t) = token(body) {
                        let ts = v["origin_server_ts"].as_u64().unwrap_or(0);
                        let rx = v["received_ms"].as_u64().unwrap_or(0);
                        return Some(Arrival::Matrix(t.to_string(), ts, rx));
                    }
                }
                ev = self.sim_rx.recv() => match ev {
                    Ok(SimEvent::Packet(p)) => {
                        let at = now_ms();
                        if let Some(d) = p.decoded() {
                            let text = String::from_utf8_lossy(&d.payload);
                            if let Some(t) = token(&text) {
                                return Some(Arrival::Mesh(t.to_string(), at));
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        eprintln!("(driver missed {n} simulator events)");
                    }
                    Err(e) => panic!("simulator events: {e}"),
                },
                _ = tokio::time::sleep_until(deadline) => return None,
            }
        }
    }

    fn inject(&self, text: &str) -> u64 {
        let t = now_ms();
        self.sim.inject_text(&SimText::broadcast(SENDER, 0, text));
        t
    }

    async fn send_matrix(&self, text: &str) -> u64 {
        let t = now_ms();
        self.human.send_text(&self.room, text).await;
        t
    }

    /// Probes both directions until each has relayed one probe; returns the time each took
    /// from `t0`. Mesh probes go every 250 ms, Matrix probes every 500 ms.
    async fn probe(&mut self, t0: Instant, limit: Duration) -> (Duration, Duration) {
        let (mut m2x, mut x2m) = (None, None);
        let (mut next_mesh, mut next_matrix) = (t0, t0);
        let mut n = 0;
        let (mesh_probe, matrix_probe) = (
            format!("probe-{}m-", self.launches),
            format!("probe-{}x-", self.launches),
        );
        while m2x.is_none() || x2m.is_none() {
            if t0.elapsed() > limit {
                panic!(
                    "{}: not relaying both ways {} s after launch (mesh→Matrix {:?}, Matrix→mesh {:?}); log:\n{}",
                    self.spec.name,
                    limit.as_secs(),
                    m2x,
                    x2m,
                    self.log_tail()
                );
            }
            let now = Instant::now();
            if m2x.is_none() && now >= next_mesh {
                n += 1;
                self.inject(&format!("{mesh_probe}{n}"));
                next_mesh += Duration::from_millis(250);
            }
            if x2m.is_none() && now >= next_matrix {
                n += 1;
                self.send_matrix(&format!("{matrix_probe}{n}")).await;
                next_matrix += Duration::from_millis(500);
            }
            match self.next(Duration::from_millis(50)).await {
                Some(Arrival::Matrix(t, ..)) if t.starts_with(&mesh_probe) && m2x.is_none() => {
                    m2x = Some(t0.elapsed())
                }
                Some(Arrival::Mesh(t, _)) if t.starts_with(&matrix_probe) && x2m.is_none() => {
                    x2m = Some(t0.elapsed())
                }
                _ => {}
            }
        }
        (m2x.unwrap(), x2m.unwrap())
    }

    /// Waits until nothing has arrived on either side for `quiet` (late probes drain).
    async fn settle(&mut self, quiet: Duration) {
        while self.next(quiet).await.is_some() {}
    }

    /// Waits for the tokens in `want` on either side; returns token → (times...).
    async fn collect(&mut self, want: &[String], limit: Duration) -> HashMap<String, Arrival> {
        let mut got = HashMap::new();
        let t0 = Instant::now();
        let mut last = Instant::now();
        // Gives up at `limit`, or after a minute in which none of `want` arrived.
        while got.len() < want.len() && t0.elapsed() < limit && last.elapsed() < QUIET {
            if let Some(a) = self.next(Duration::from_millis(500)).await {
                let t = match &a {
                    Arrival::Matrix(t, ..) | Arrival::Mesh(t, _) => t.clone(),
                };
                if want.contains(&t) {
                    got.insert(t, a);
                    last = Instant::now();
                }
            }
        }
        let missing: Vec<&String> = want.iter().filter(|t| !got.contains_key(*t)).collect();
        if !missing.is_empty() {
            eprintln!("{}: never arrived: {missing:?}", self.spec.name);
        }
        got
    }
}

/// `--plugins`: every bot command active (ordinary relaying must cost the same).
static PLUGINS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// mmrelay logged in with `--without-recovery` (no key backup), to measure what backup costs.
static WITHOUT_RECOVERY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

const PLUGINS_YAML: &str = "plugins:\n  help:\n    active: true\n  ping:\n    active: true\n  \
    nodes:\n    active: true\n  health:\n    active: true\n  telemetry:\n    active: true\n  \
    status:\n    active: true\n";

fn write_config(home: &Path, url: &str, bot: &str, room: &str, port: u16) {
    std::fs::create_dir_all(home).unwrap();
    let mut yaml = format!(
        "matrix:\n  homeserver: {url}\n  bot_user_id: \"{bot}\"\n  e2ee:\n    enabled: true\n\
         matrix_rooms:\n  - id: \"{room}\"\n    meshtastic_channel: 0\n\
         meshtastic:\n  connection_type: tcp\n  host: 127.0.0.1\n  port: {port}\n  \
         meshnet_name: BenchMesh\n  broadcast_enabled: true\n  message_delay: {MESSAGE_DELAY}\n\
         logging:\n  level: info\n"
    );
    if PLUGINS.load(std::sync::atomic::Ordering::Relaxed) {
        yaml.push_str(PLUGINS_YAML);
    }
    std::fs::write(home.join("config.yaml"), yaml).unwrap();
}

fn login(spec: &RelaySpec, home: &Path, url: &str, user: &str) {
    let mut cmd = Command::new(&spec.exe);
    cmd.arg("--home").arg(home).env("MMRELAY_HOME", home);
    cmd.args(["auth", "login", "--homeserver", url, "--username", user]);
    match spec.kind {
        Kind::Ours => {
            let pw = home.join("password");
            std::fs::write(&pw, PASSWORD).unwrap();
            cmd.arg("--password-file").arg(&pw);
            if WITHOUT_RECOVERY.load(std::sync::atomic::Ordering::Relaxed) {
                cmd.arg("--without-recovery");
            }
        }
        Kind::Python => {
            cmd.args(["--password", PASSWORD]);
        }
    }
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "{}: auth login failed:\n{}\n{}",
        spec.name,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn bench_one(
    spec: &RelaySpec,
    url: &str,
    human: &mut Human,
    work: &Workload,
    out_dir: &Path,
) -> Figures {
    let mut f = Figures::default();
    let home = out_dir.join(&spec.name);
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home).unwrap();
    let user = unique("benchbot");
    drop(register_on(url, &user, PASSWORD).await);
    let bot = format!("@{user}:localhost");
    let room = human.create_room(true, &[bot.parse().unwrap()]).await;
    let sim = Simulator::new(SimConfig::default());
    let (addr, _listener) = sim.listen_tcp("127.0.0.1:0").await.unwrap();
    write_config(&home, url, &bot, room.as_str(), addr.port());
    eprintln!("==> {}: auth login", spec.name);
    login(spec, &home, url, &user);

    let sim_rx = sim.subscribe();
    let mut run = Run {
        spec,
        home: home.clone(),
        sim,
        sim_rx,
        human,
        bot: bot.clone(),
        room: room.clone(),
        child: None,
        launches: 0,
    };

    // The program file whose resident pages are the relay's code: the binary, or the guest
    // binary when `--mmrelay` is a wrapper that runs it (MMRELAY_BENCH_IMAGE, qemu-user).
    let image = std::env::var_os("MMRELAY_BENCH_IMAGE")
        .map(PathBuf::from)
        .unwrap_or_else(|| spec.exe.clone());
    let image = image.canonicalize().unwrap_or(image);

    // First run: accept the invite, join the room, share keys, prove both directions; stop.
    eprintln!("==> {}: first start (joins the room)", spec.name);
    let t0 = Instant::now();
    let pid = run.launch();
    run.probe(t0, Duration::from_secs(240)).await;
    run.settle(Duration::from_secs(8)).await;
    f.samples.insert("first", sample(pid, &image));
    eprintln!(
        "{}: resident memory by mapping after the first start:\n{}",
        spec.name,
        smaps_top(pid, 8)
    );
    run.stop();

    // The measured run, with an existing session.
    eprintln!("==> {}: measured run", spec.name);
    let t0 = Instant::now();
    let pid = run.launch();
    let (m2x, x2m) = run.probe(t0, Duration::from_secs(120)).await;
    f.ready_m2x = Some(m2x);
    f.ready_x2m = Some(x2m);
    run.settle(Duration::from_secs(MESSAGE_DELAY as u64 * 2 + 2))
        .await;
    f.samples.insert("start", sample(pid, &image));

    // 20 mesh texts, 500 ms apart.
    eprintln!("==> {}: {} mesh texts", spec.name, work.paced);
    let mut emitted = HashMap::new();
    let mut want = Vec::new();
    for i in 0..work.paced {
        let tok = format!("bench-a-{i:03}");
        emitted.insert(
            tok.clone(),
            run.inject(&format!("{tok} hello from the mesh")),
        );
        want.push(tok);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for (tok, a) in run.collect(&want, Duration::from_secs(60)).await {
        if let Arrival::Matrix(_, ts, rx) = a {
            f.lat_m2x_server.push(ts as f64 - emitted[&tok] as f64);
            f.lat_m2x_client.push(rx as f64 - emitted[&tok] as f64);
        }
    }
    f.relayed += f.lat_m2x_client.len();
    f.lost += work.paced - f.lat_m2x_client.len();

    // 20 Matrix texts, message_delay + 0.5 s apart (so the relay's pacing adds no queueing).
    eprintln!("==> {}: {} Matrix texts", spec.name, work.paced);
    let mut sent = HashMap::new();
    let mut want = Vec::new();
    let mut got = HashMap::new();
    for i in 0..work.paced {
        let tok = format!("bench-b-{i:03}");
        sent.insert(
            tok.clone(),
            run.send_matrix(&format!("{tok} hello from Matrix")).await,
        );
        want.push(tok);
        let until = Instant::now() + Duration::from_secs_f64(MESSAGE_DELAY + 0.5);
        while Instant::now() < until {
            if let Some(Arrival::Mesh(t, at)) = run.next(until - Instant::now()).await {
                got.insert(t, at);
            }
        }
    }
    let rest: Vec<String> = want
        .iter()
        .filter(|t| !got.contains_key(*t))
        .cloned()
        .collect();
    for (t, a) in run.collect(&rest, Duration::from_secs(60)).await {
        if let Arrival::Mesh(_, at) = a {
            got.insert(t, at);
        }
    }
    for t in &want {
        if let Some(at) = got.get(t) {
            f.lat_x2m.push(*at as f64 - sent[t] as f64);
        }
    }
    f.relayed += f.lat_x2m.len();
    f.lost += work.paced - f.lat_x2m.len();

    // The burst: all mesh texts at once.
    eprintln!("==> {}: burst of {} mesh texts", spec.name, work.burst);
    let mut emitted = HashMap::new();
    let mut want = Vec::new();
    for i in 0..work.burst {
        let tok = format!("bench-c-{i:03}");
        emitted.insert(tok.clone(), run.inject(&format!("{tok} burst")));
        want.push(tok);
    }
    let got = run.collect(&want, Duration::from_secs(600)).await;
    for (tok, a) in &got {
        if let Arrival::Matrix(_, _, rx) = a {
            f.lat_burst_client.push(*rx as f64 - emitted[tok] as f64);
        }
    }
    f.relayed += got.len();
    f.lost += work.burst - got.len();
    // From the first injection to the last message the client had (NaN when none arrived).
    f.burst_secs = f
        .lat_burst_client
        .iter()
        .cloned()
        .reduce(f64::max)
        .map_or(f64::NAN, |ms| ms / 1000.0);
    // Let the relay finish what the burst started before the idle minute begins.
    tokio::time::sleep(Duration::from_secs(5)).await;
    f.samples.insert("burst", sample(pid, &image));

    eprintln!("==> {}: idle {} s", spec.name, work.idle.as_secs());
    tokio::time::sleep(work.idle).await;
    f.samples.insert("idle", sample(pid, &image));
    eprintln!(
        "{}: resident memory by mapping after idle:\n{}",
        spec.name,
        smaps_top(pid, 8)
    );

    f.stop_secs = run.stop();
    f.home_bytes = du(&home);
    f.wal_bytes = wal_bytes(&home);
    f.installed_bytes = du(&spec.installed);
    f
}

fn usage() -> ! {
    eprintln!(
        "usage: relay_bench --mmrelay BIN [--python-mmrelay VENV] [--quick] [--plugins] [--without-recovery] [--out DIR]\n\
         Prefer bench/run.sh, which builds and installs what this needs."
    );
    std::process::exit(2)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut specs = Vec::new();
    let mut work = Workload {
        paced: 20,
        burst: 200,
        idle: Duration::from_secs(60),
    };
    let mut out = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.build/bench"));
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--mmrelay" => {
                let exe = PathBuf::from(args.next().unwrap_or_else(|| usage()));
                specs.push(RelaySpec {
                    name: "mmrelay".into(),
                    kind: Kind::Ours,
                    installed: exe.clone(),
                    exe,
                });
            }
            "--python-mmrelay" => {
                let venv = PathBuf::from(args.next().unwrap_or_else(|| usage()));
                specs.push(RelaySpec {
                    name: "MMRelay".into(),
                    kind: Kind::Python,
                    exe: venv.join("bin/mmrelay"),
                    installed: venv,
                });
            }
            "--quick" => {
                work = Workload {
                    paced: 5,
                    burst: 30,
                    idle: Duration::from_secs(10),
                }
            }
            "--plugins" => PLUGINS.store(true, std::sync::atomic::Ordering::Relaxed),
            "--without-recovery" => {
                WITHOUT_RECOVERY.store(true, std::sync::atomic::Ordering::Relaxed)
            }
            "--out" => out = PathBuf::from(args.next().unwrap_or_else(|| usage())),
            _ => usage(),
        }
    }
    if specs.is_empty() {
        usage();
    }
    let syn = OwnSynapse::start("bench");
    let mut human = Human::on(&syn.url, &unique("benchhuman")).await;
    let mut figs = Vec::new();
    for s in &specs {
        figs.push(bench_one(s, &syn.url, &mut human, &work, &out).await);
    }
    println!();
    print_table(&specs, &figs, &work);
}
