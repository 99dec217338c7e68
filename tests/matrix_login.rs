//! `mmrelay auth login` without a password (a login token, an existing access token), the
//! recovery key that brings the bot's identity back on a new store, and `auth logout` without
//! a password: the real binary against a real Synapse, a second client checking what other
//! users see, and each bad input leaving nothing behind.
#![recursion_limit = "256"]

mod common;

use std::path::Path;

use common::cli::{mode, run, text};
use common::synapse::{login_elsewhere, password_file, register, synapse, unique, Human};
use matrix_sdk::ruma::api::client::session::get_login_token;
use matrix_sdk::ruma::OwnedUserId;

fn creds(home: &Path) -> serde_json::Value {
    let p = home.join("matrix/credentials.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// Nothing of a failed login is left in `home`.
fn nothing_written(home: &Path) {
    for f in [
        "matrix/credentials.json",
        "matrix/store",
        "matrix/store_passphrase",
    ] {
        assert!(!home.join(f).exists(), "{f} was left behind");
    }
}

/// The bot's master key and whether `device` is signed by it, as another user sees them.
async fn seen_by(human: &Human, bot: &OwnedUserId, device: &str) -> (String, bool) {
    let enc = human.client.encryption();
    let identity = enc
        .request_user_identity(bot)
        .await
        .unwrap()
        .expect("the bot has a cross-signing identity");
    let master = identity
        .master_key()
        .get_first_key()
        .expect("a master key")
        .to_base64();
    let d = enc.get_device(bot, device.into()).await.unwrap().unwrap();
    (master, d.is_cross_signed_by_owner())
}

/// A login with the password makes a recovery key (written 0600 to the file named); the store
/// is lost; a login with that key on a new store gets a device signed by the same master key.
/// A wrong or truncated key, or another account's, fails and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recovery_key_brings_the_bots_identity_back_on_a_new_store() {
    let hs = synapse();
    let bot = unique("bot");
    drop(register(&bot, "bot-pass").await);
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("recovery-key");
    let key_arg = key_file.to_str().unwrap();
    let home = tempfile::tempdir().unwrap();
    let pw = password_file(keys.path(), "bot-pass");
    // A password login of `user` (password file `pw`) with the recovery key file `key`.
    let login = |user: &str, pw: &Path, key: &Path| {
        [
            "auth",
            "login",
            "--homeserver",
            hs.url.as_str(),
            "--username",
            user,
            "--password-file",
            pw.to_str().unwrap(),
            "--recovery-key-file",
            key.to_str().unwrap(),
        ]
        .map(String::from)
    };
    let out = run(home.path(), login(&bot, &pw, &key_file)).await;
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains(&format!("Recovery key written to {key_arg}")),
        "{t}"
    );
    assert!(
        !t.contains(std::fs::read_to_string(&key_file).unwrap().trim()),
        "key printed: {t}"
    );
    assert_eq!(mode(&key_file), 0o600);
    let first_device = creds(home.path())["device_id"]
        .as_str()
        .unwrap()
        .to_string();
    let bot_id: OwnedUserId = creds(home.path())["user_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let status = run(home.path(), &["auth", "status"]).await;
    assert!(
        text(&status).contains("Recovery:    set up"),
        "{}",
        text(&status)
    );
    let human = Human::new(&unique("human")).await;
    let (master, signed) = seen_by(&human, &bot_id, &first_device).await;
    assert!(signed);

    // The SD card dies: the whole matrix folder is gone.
    std::fs::remove_dir_all(home.path().join("matrix")).unwrap();

    // A wrong key (one character changed) and a truncated one: refused, nothing written.
    let key = std::fs::read_to_string(&key_file)
        .unwrap()
        .trim()
        .to_string();
    let mut wrong = key.clone().into_bytes();
    let last = wrong.len() - 1;
    wrong[last] = if wrong[last] == b'a' { b'b' } else { b'a' };
    for (name, bad) in [
        ("wrong", String::from_utf8(wrong).unwrap()),
        ("truncated", key[..key.len() / 2].to_string()),
    ] {
        let f = keys.path().join(name);
        std::fs::write(&f, &bad).unwrap();
        let out = run(home.path(), login(&bot, &pw, &f)).await;
        let t = text(&out);
        assert!(!out.status.success(), "{name} key accepted: {t}");
        assert!(t.contains("the recovery key does not open"), "{t}");
        assert!(t.contains("nothing was written"), "{t}");
        nothing_written(home.path());
    }

    // The right key: a new device, signed by the unchanged master key.
    let out = run(home.path(), login(&bot, &pw, &key_file)).await;
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("Recovery key accepted: this device is signed by the bot's identity"),
        "{t}"
    );
    let second_device = creds(home.path())["device_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(second_device, first_device);
    let (master_now, signed) = seen_by(&human, &bot_id, &second_device).await;
    assert_eq!(master_now, master, "the bot's identity changed");
    assert!(signed, "the new device is not signed by the bot's identity");
    assert_eq!(
        std::fs::read_to_string(&key_file).unwrap().trim(),
        key,
        "key file rewritten"
    );

    // Another account's key opens nothing of this one.
    let other = unique("other");
    drop(register(&other, "other-pass").await);
    let other_home = tempfile::tempdir().unwrap();
    let other_pw = password_file(other_home.path(), "other-pass");
    let other_key = other_home.path().join("key");
    let out = run(other_home.path(), login(&other, &other_pw, &other_key)).await;
    assert!(out.status.success(), "{}", text(&out));
    std::fs::remove_dir_all(other_home.path().join("matrix")).unwrap();
    let out = run(other_home.path(), login(&other, &other_pw, &key_file)).await;
    let t = text(&out);
    assert!(!out.status.success(), "another account's key accepted: {t}");
    assert!(t.contains("the recovery key does not open"), "{t}");
    nothing_written(other_home.path());
}

/// A login token that Synapse issues to an existing session logs the bot in without a
/// password: device keys, cross-signing (the account's first identity needs no password) and a
/// recovery key. The same token again is refused. `auth logout` then works without a password:
/// the token ends on the server and the files go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_token_logs_in_and_logout_needs_no_password() {
    let hs = synapse();
    let bot = unique("bot");
    let existing = register(&bot, "bot-pass").await;
    let token = existing
        .send(get_login_token::v1::Request::new())
        .await
        .unwrap()
        .login_token;
    let home = tempfile::tempdir().unwrap();
    let token_file = home.path().join("login-token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let key_file = home.path().join("recovery-key");
    let args = [
        "auth",
        "login",
        "--homeserver",
        hs.url.as_str(),
        "--token-file",
        token_file.to_str().unwrap(),
        "--recovery-key-file",
        key_file.to_str().unwrap(),
    ];
    let out = run(home.path(), &args).await;
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains(&format!("Logged in as @{bot}:localhost")), "{t}");
    assert!(
        t.contains("Cross-signing set up: this device is verified by its owner"),
        "{t}"
    );
    assert!(t.contains("Logged in without a password"), "{t}");
    assert!(t.contains("--reset-cross-signing) needs one"), "{t}");
    assert_eq!(mode(&home.path().join("matrix/credentials.json")), 0o600);
    let c = creds(home.path());
    let status = run(home.path(), &["auth", "status"]).await;
    let st = text(&status);
    assert!(status.status.success(), "{st}");
    assert!(st.contains("Token:       valid"), "{st}");
    assert!(
        st.contains("Cross-signing: this device is verified by its owner"),
        "{st}"
    );

    // The token worked once: a second login with it is refused and leaves nothing.
    let again = tempfile::tempdir().unwrap();
    let again_args = [
        "auth",
        "login",
        "--homeserver",
        hs.url.as_str(),
        "--token-file",
        token_file.to_str().unwrap(),
    ];
    let out = run(again.path(), &again_args).await;
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("the login token was refused"), "{t}");
    nothing_written(again.path());

    // Logout without a password.
    let out = run(home.path(), &["auth", "logout", "-y"]).await;
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("its access token no longer works"), "{t}");
    nothing_written(home.path());
    let probe = matrix_sdk::Client::builder()
        .homeserver_url(&hs.url)
        .build()
        .await
        .unwrap();
    let session = mmrelay::matrix::session::matrix_session(
        c["user_id"].as_str().unwrap().parse().unwrap(),
        c["device_id"].as_str().unwrap(),
        c["access_token"].as_str().unwrap(),
    );
    probe.restore_session(session).await.unwrap();
    assert!(probe.whoami().await.is_err(), "the token still works");
}

/// An access token made elsewhere (a login without keys) is adopted: whoami names its user
/// and device, and mmrelay makes the store for it. A token of another user than the one named
/// is refused and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_token_is_adopted_and_another_users_is_refused() {
    let hs = synapse();
    let bot = unique("bot");
    let (_registered, session) = login_elsewhere(&bot, "bot-pass").await;
    let home = tempfile::tempdir().unwrap();
    let token_file = home.path().join("access-token");
    std::fs::write(&token_file, &session.tokens.access_token).unwrap();
    // `auth login --access-token-file` with `extra` arguments.
    let adopt = |extra: &[&str]| {
        let mut args = vec!["auth", "login", "--homeserver", hs.url.as_str()];
        args.extend_from_slice(extra);
        args.extend(["--access-token-file", token_file.to_str().unwrap()]);
        let args: Vec<String> = args.into_iter().map(String::from).collect();
        run(home.path(), args)
    };

    // Named for another user: refused.
    let out = adopt(&["--username", "someone-else"]).await;
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(
        t.contains(&format!(
            "the access token belongs to @{bot}:localhost, not someone-else"
        )),
        "{t}"
    );
    nothing_written(home.path());

    // The config names another bot: refused too.
    let config = home.path().join("config.yaml");
    std::fs::write(
        &config,
        "matrix:\n  bot_user_id: \"@someone-else:localhost\"\n",
    )
    .unwrap();
    let out = adopt(&[]).await;
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("not @someone-else:localhost"), "{t}");
    nothing_written(home.path());
    std::fs::remove_file(&config).unwrap();

    let out = adopt(&["--username", &bot]).await;
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let c = creds(home.path());
    assert_eq!(c["device_id"], session.meta.device_id.as_str());
    assert_eq!(c["access_token"], session.tokens.access_token.as_str());
    assert!(
        t.contains("Cross-signing set up: this device is verified by its owner"),
        "{t}"
    );
    let status = run(home.path(), &["auth", "status"]).await;
    assert!(
        text(&status).contains("Token:       valid"),
        "{}",
        text(&status)
    );
}
