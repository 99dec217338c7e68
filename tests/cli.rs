//! The `mmrelay radio ...` commands and the `mmrelay-sim` program, run as the real binaries.
#![recursion_limit = "256"]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::tcp_sim;
use mmrelay::mesh::transport::Endpoint;
use mmrelay::sim::{AckMode, SimConfig};

const MMRELAY: &str = env!("CARGO_BIN_EXE_mmrelay");
const SIM: &str = env!("CARGO_BIN_EXE_mmrelay-sim");

async fn mmrelay(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(MMRELAY)
            .args(&args)
            .env_remove("MMRELAY_HOME")
            .env("HOME", "/nonexistent")
            .output()
            .expect("run mmrelay")
    })
    .await
    .unwrap()
}

fn addr(ep: &Endpoint) -> String {
    match ep {
        Endpoint::Tcp { host, port } => format!("{host}:{port}"),
        _ => unreachable!(),
    }
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn radio_info_prints_node_firmware_channels_and_nodes() {
    let (_sim, ep) = tcp_sim(SimConfig::default()).await;
    let out = mmrelay(args(&["radio", "info", "--tcp", &addr(&ep)])).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Relay node: !0a0b0c0d \"Relay Gateway\" (RLY)"),
        "{stdout}"
    );
    assert!(stdout.contains("Firmware:   2.7.11.sim"));
    assert!(stdout.contains("1  secondary  Ops"));
    assert!(stdout.contains("Nodes (4):"));
    assert!(stdout.contains("!3333cccc  CRL   Carol \u{1F4E1} Hill"));
    assert!(stdout.contains("last heard 1m ago"));
}

#[tokio::test]
async fn radio_send_reports_ack_and_errors() {
    let (sim, ep) = tcp_sim(SimConfig::default()).await;
    let out = mmrelay(args(&[
        "radio",
        "send",
        "--tcp",
        &addr(&ep),
        "--channel",
        "1",
        "hello",
        "mesh",
    ]))
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("on channel 1: acknowledged"), "{stdout}");
    let got = sim.received();
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].channel, &got[0].decoded().unwrap().payload[..]),
        (1, &b"hello mesh"[..])
    );

    sim.set_ack_mode(AckMode::Error(1));
    let out = mmrelay(args(&[
        "radio",
        "send",
        "--tcp",
        &addr(&ep),
        "--to",
        "!2222bbbb",
        "psst",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("failed: NO_ROUTE"));
    assert_eq!(sim.received()[1].to, 0x2222bbbb);

    let long = "x".repeat(240);
    let out = mmrelay(args(&["radio", "send", "--tcp", &addr(&ep), &long])).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("text is 240 bytes; the radio takes at most 233"));
}

#[tokio::test]
async fn radio_commands_use_the_config_file_and_explain_problems() {
    let (_sim, ep) = tcp_sim(SimConfig::default()).await;
    let Endpoint::Tcp { port, .. } = ep else {
        unreachable!()
    };
    let home = tempfile::tempdir().unwrap();
    let home_s = home.path().to_str().unwrap().to_string();
    std::fs::write(
        home.path().join("config.yaml"),
        format!("meshtastic:\n  connection_type: network\n  host: 127.0.0.1\n  port: {port}\n"),
    )
    .unwrap();
    let out = mmrelay(args(&["radio", "info", "--home", &home_s])).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Relay node: !0a0b0c0d"));

    std::fs::write(
        home.path().join("config.yaml"),
        "meshtastic:\n  connection_type: ble\n  ble_address: AA\n",
    )
    .unwrap();
    let out = mmrelay(args(&["radio", "info", "--home", &home_s])).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("config.yaml line 2: meshtastic.connection_type: 'ble' is not supported"),
        "{err}"
    );

    let empty = tempfile::tempdir().unwrap();
    let out = mmrelay(args(&[
        "radio",
        "info",
        "--home",
        empty.path().to_str().unwrap(),
    ]))
    .await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("config.yaml: not found; create it with `mmrelay config generate`"),
        "{err}"
    );
    assert!(err.contains("--serial PATH or --tcp HOST[:PORT]"));

    // Nothing listens on port 1: a clear error, not a hang.
    let out = mmrelay(args(&["radio", "info", "--tcp", "127.0.0.1:1"])).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("error: radio (tcp 127.0.0.1:1): cannot connect"),
        "{err}"
    );
}

/// Reads a child's stdout lines on a thread.
fn lines(child: &mut std::process::Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_line(rx: &mpsc::Receiver<String>, what: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(l) if l.contains(what) => return l,
            Ok(l) => seen.push(l),
            Err(_) => break,
        }
    }
    panic!("no line with {what:?}; saw {seen:#?}");
}

#[test]
fn simulator_program_over_a_pty_with_radio_listen() {
    let dir = tempfile::tempdir().unwrap();
    let dev = dir.path().join("ttyMESH");
    let mut sim = Command::new(SIM)
        .args([
            "--pty",
            "--pty-link",
            dev.to_str().unwrap(),
            "--node",
            "!1111aaaa:Alice Base:ALC",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let sim_out = lines(&mut sim);
    wait_line(&sim_out, "serving pty");
    let mut listen = Command::new(MMRELAY)
        .args(["radio", "listen", "--serial", dev.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let listen_out = lines(&mut listen);
    wait_line(&listen_out, "listening on !0a0b0c0d");
    wait_line(&sim_out, "config requested");
    let mut stdin = sim.stdin.take().unwrap();
    writeln!(stdin, "text ALC 1 hi from the sim").unwrap();
    writeln!(stdin, "telemetry ALC 77 3.95").unwrap();
    writeln!(stdin, "malformed").unwrap();
    writeln!(stdin, "text !1111aaaa 0 after the bad frame").unwrap();
    let l = wait_line(&listen_out, "hi from the sim");
    assert!(
        l.contains("from=!1111aaaa") && l.contains("ch=1") && l.ends_with("[ALC]"),
        "{l}"
    );
    let l = wait_line(&listen_out, "TelemetryApp");
    assert!(l.contains("battery=77%"), "{l}");
    wait_line(&listen_out, "after the bad frame");

    // SIGTERM: listen says goodbye to the radio and exits 0.
    unsafe { libc::kill(listen.id() as i32, libc::SIGTERM) };
    assert!(listen.wait().unwrap().success());
    wait_line(&sim_out, "client said disconnect");
    writeln!(stdin, "quit").unwrap();
    assert!(sim.wait().unwrap().success());
}

#[test]
fn config_generate_and_check() {
    use std::os::unix::fs::PermissionsExt;
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(MMRELAY)
            .arg("--home")
            .arg(home.path())
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["config", "generate"]);
    assert!(out.status.success());
    let file = home.path().join("config.yaml");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    std::fs::write(
        &file,
        std::fs::read_to_string(&file).unwrap() + "# edited\n",
    )
    .unwrap();
    let out = run(&["config", "generate"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists; it was not changed"));
    assert!(std::fs::read_to_string(&file)
        .unwrap()
        .ends_with("# edited\n"));

    let out = run(&["config", "check"]);
    let t = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains(
            "config.yaml: OK (1 room(s), radio serial port /dev/ttyUSB0, meshnet 'My Mesh')"
        ),
        "{t}"
    );
    assert!(
        t.contains("credentials.json: missing; run `mmrelay auth login`"),
        "{t}"
    );

    std::fs::create_dir_all(home.path().join("matrix")).unwrap();
    std::fs::write(
        home.path().join("matrix/credentials.json"),
        r#"{"homeserver":"https://m.org","user_id":"@bot:m.org","access_token":"t","device_id":"DEV"}"#,
    )
    .unwrap();
    let out = run(&["config", "check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("@bot:m.org on https://m.org, device DEV")
    );

    let bad = std::fs::read_to_string(&file)
        .unwrap()
        .replace("meshtastic_channel: 0", "meshtastic_channel: 12");
    std::fs::write(&file, bad).unwrap();
    let out = run(&["config", "check"]);
    let t = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1));
    assert!(t.contains("config.yaml line 22: matrix_rooms[0].meshtastic_channel: 12 is not allowed: a channel index from 0 to 7"), "{t}");
}
