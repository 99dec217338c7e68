//! `mmrelay auth login|status|logout` as the real binary against a real Synapse, with a second
//! client checking what the server and other users see.
#![recursion_limit = "256"]

mod common;

use std::path::Path;
use std::process::Command;

use common::cli::{mode, run, text};
use common::synapse::{password_file, register, synapse, unique, Human};
use matrix_sdk::ruma::OwnedUserId;

/// `auth login` with a homeserver, a user and a password file.
fn login_args(homeserver: &str, user: &str, password_file: &Path) -> Vec<String> {
    s(&[
        "auth",
        "login",
        "--homeserver",
        homeserver,
        "--username",
        user,
        "--password-file",
        password_file.to_str().unwrap(),
    ])
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_status_cross_signing_and_logout() {
    let hs = synapse();
    let bot = unique("bot");
    drop(register(&bot, "bot-pass").await);
    let home = tempfile::tempdir().unwrap();
    let pw = password_file(home.path(), "bot-pass");

    let out = run(home.path(), login_args(&hs.url, &bot, &pw)).await;
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let matrix = home.path().join("matrix");
    let creds_path = matrix.join("credentials.json");
    assert!(
        t.contains(&format!("Credentials written to {}", creds_path.display())),
        "{t}"
    );
    assert!(t.contains("Encryption keys uploaded"), "{t}");
    assert!(
        t.contains("Cross-signing set up: this device is verified by its owner"),
        "{t}"
    );
    assert_eq!(mode(&creds_path), 0o600);
    assert_eq!(mode(&matrix), 0o700);
    assert_eq!(mode(&matrix.join("store")), 0o700);
    assert_eq!(mode(&matrix.join("store_passphrase")), 0o600);
    let creds: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&creds_path).unwrap()).unwrap();
    let user_id = creds["user_id"].as_str().unwrap().to_string();
    let device_id = creds["device_id"].as_str().unwrap().to_string();
    let token = creds["access_token"].as_str().unwrap().to_string();
    assert_eq!(user_id, format!("@{bot}:localhost"));
    assert_eq!(creds["homeserver"], hs.url.as_str());
    assert!(t.contains(&format!("Device ID: {device_id}")));

    // The human's client sees the bot's device as cross-signed by its owner.
    let human = Human::new(&unique("human")).await;
    let bot_uid: OwnedUserId = user_id.parse().unwrap();
    human
        .client
        .encryption()
        .request_user_identity(&bot_uid)
        .await
        .unwrap();
    let device = human
        .client
        .encryption()
        .get_device(&bot_uid, device_id.as_str().into())
        .await
        .unwrap()
        .expect("the bot's device keys are on the server");
    assert!(
        device.is_cross_signed_by_owner(),
        "bot device not cross-signed"
    );
    assert_eq!(device.display_name(), Some("mmrelay"));

    let out = run(home.path(), s(&["auth", "status"])).await;
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains(&format!("Credentials: {}", creds_path.display())));
    assert!(t.contains(&format!("Device ID:   {device_id}")));
    assert!(t.contains("Token:       valid"));
    assert!(t.contains(&format!("holds the keys of device {device_id}")));
    assert!(
        t.contains("Cross-signing: this device is verified by its owner"),
        "{t}"
    );

    // A second login of the same user reuses the device.
    let out = run(home.path(), login_args(&hs.url, &user_id, &pw)).await;
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains(&format!("Device ID: {device_id} (reused)")),
        "{t}"
    );

    // A wrong password changes nothing.
    let bad = home.path().join("bad");
    std::fs::write(&bad, "nope\n").unwrap();
    let out = run(
        home.path(),
        s(&[
            "auth",
            "logout",
            "-y",
            "--password-file",
            bad.to_str().unwrap(),
        ]),
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("wrong password; nothing was removed"),
        "{}",
        text(&out)
    );
    assert!(creds_path.exists());

    let out = run(
        home.path(),
        s(&[
            "auth",
            "logout",
            "-y",
            "--password-file",
            pw.to_str().unwrap(),
        ]),
    )
    .await;
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains(&format!("Logged out device {device_id}")), "{t}");
    assert!(t.contains("Removed credentials"));
    assert!(t.contains("Removed E2EE store"));
    assert!(!creds_path.exists() && !matrix.join("store").exists());
    // The old token no longer works.
    let probe = matrix_sdk::Client::builder()
        .homeserver_url(&hs.url)
        .build()
        .await
        .unwrap();
    probe
        .restore_session(matrix_sdk::authentication::matrix::MatrixSession {
            meta: matrix_sdk::SessionMeta {
                user_id: bot_uid.clone(),
                device_id: device_id.as_str().into(),
            },
            tokens: matrix_sdk::SessionTokens {
                access_token: token,
                refresh_token: None,
            },
        })
        .await
        .unwrap();
    assert!(
        probe.whoami().await.is_err(),
        "token still valid after logout"
    );

    // Without credentials: status says what to do and fails; logout still cleans up.
    let out = run(home.path(), s(&["auth", "status"])).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("run `mmrelay auth login`"));
    let out = run(
        home.path(),
        s(&[
            "auth",
            "logout",
            "-y",
            "--password-file",
            pw.to_str().unwrap(),
        ]),
    )
    .await;
    assert!(out.status.success());
    assert!(text(&out).contains("No credentials at"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_errors_are_explained() {
    let hs = synapse();
    let bot = unique("bot");
    drop(register(&bot, "right-pass").await);
    let home = tempfile::tempdir().unwrap();
    let pw = password_file(home.path(), "wrong-pass");
    let out = run(home.path(), login_args(&hs.url, &bot, &pw)).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("login failed: wrong user name or password"),
        "{}",
        text(&out)
    );
    assert!(!home.path().join("matrix/credentials.json").exists());
    assert!(!home.path().join("matrix/store").exists());

    // Nothing listens on port 1.
    let out = run(home.path(), login_args("http://127.0.0.1:1", &bot, &pw)).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("cannot reach the homeserver at http://127.0.0.1:1"),
        "{}",
        text(&out)
    );

    // Without a terminal, missing options are named.
    let out = run(home.path(), s(&["auth", "login", "--homeserver", &hs.url])).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("--username is required when not at a terminal"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_of_another_device_is_refused() {
    let hs = synapse();
    let bot = unique("bot");
    drop(register(&bot, "pw").await);
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    for home in [a.path(), b.path()] {
        let pw = password_file(home, "pw");
        let out = run(home, login_args(&hs.url, &bot, &pw)).await;
        assert!(out.status.success(), "{}", text(&out));
    }
    // Put B's store (and passphrase) under A's credentials.
    let a_m = a.path().join("matrix");
    std::fs::remove_dir_all(a_m.join("store")).unwrap();
    let copy = Command::new("cp")
        .args(["-a"])
        .arg(b.path().join("matrix/store"))
        .arg(a_m.join("store"))
        .status()
        .unwrap();
    assert!(copy.success());
    std::fs::copy(
        b.path().join("matrix/store_passphrase"),
        a_m.join("store_passphrase"),
    )
    .unwrap();
    let out = run(a.path(), s(&["auth", "status"])).await;
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("belongs to another device"), "{t}");
    assert!(t.contains("run `mmrelay auth login`"), "{t}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_cross_signing_identity_is_reported_and_can_be_replaced() {
    let hs = synapse();
    let bot = unique("bot");
    drop(register(&bot, "pw").await);
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    let login = |home: &Path, extra: &[&str]| {
        let pw = password_file(home, "pw");
        let mut a = login_args(&hs.url, &bot, &pw);
        a.extend(s(extra));
        a
    };
    let out = run(first.path(), login(first.path(), &[])).await;
    assert!(
        text(&out).contains("Cross-signing set up"),
        "{}",
        text(&out)
    );
    // A new device elsewhere: the identity's private keys stay with the first store.
    let out = run(second.path(), login(second.path(), &[])).await;
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("--reset-cross-signing"), "{t}");
    let out = run(second.path(), s(&["auth", "status"])).await;
    assert!(
        text(&out).contains("Cross-signing: not signed"),
        "{}",
        text(&out)
    );
    let out = run(
        second.path(),
        login(second.path(), &["--reset-cross-signing"]),
    )
    .await;
    let t = text(&out);
    assert!(
        t.contains("Cross-signing set up: this device is verified by its owner"),
        "{t}"
    );
    let out = run(second.path(), s(&["auth", "status"])).await;
    assert!(text(&out).contains("Cross-signing: this device is verified by its owner"));
}

/// A store secret that is a passphrase (written by hand, or by an older mmrelay as bare hex) is
/// kept and still opens the store; mmrelay's own new secrets are keys (`key:` + 64 hex digits).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passphrase_store_secret_keeps_working() {
    let hs = synapse();
    let bot = unique("bot");
    drop(register(&bot, "bot-pass").await);
    let home = tempfile::tempdir().unwrap();
    let pw = password_file(home.path(), "bot-pass");
    let matrix = home.path().join("matrix");
    std::fs::create_dir_all(&matrix).unwrap();
    let secret = matrix.join("store_passphrase");
    std::fs::write(&secret, "correct horse battery staple\n").unwrap();
    let out = run(home.path(), login_args(&hs.url, &bot, &pw)).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(&secret).unwrap(),
        "correct horse battery staple\n"
    );
    let out = run(home.path(), s(&["auth", "status"])).await;
    assert!(out.status.success(), "{}", text(&out));
    // The wrong passphrase does not open that store.
    std::fs::write(&secret, "wrong horse\n").unwrap();
    let out = run(home.path(), s(&["auth", "status"])).await;
    assert!(!out.status.success(), "{}", text(&out));

    // A fresh home gets a key.
    let home2 = tempfile::tempdir().unwrap();
    let bot2 = unique("bot");
    drop(register(&bot2, "bot-pass").await);
    let pw2 = password_file(home2.path(), "bot-pass");
    let out = run(home2.path(), login_args(&hs.url, &bot2, &pw2)).await;
    assert!(out.status.success(), "{}", text(&out));
    let k = std::fs::read_to_string(home2.path().join("matrix/store_passphrase")).unwrap();
    assert!(k.starts_with("key:") && k.trim().len() == 68, "{k}");
    let out = run(home2.path(), s(&["auth", "status"])).await;
    assert!(out.status.success(), "{}", text(&out));
}
