//! matrix-sdk's own test suites for crypto and state stores, run over mmrelay's store wrappers
//! ([`SdkCryptoStore`], [`SdkStateStore`]) on the SDK's SQLite stores, as the relay opens them:
//! whatever a store must do for the SDK, the wrappers must do too.

// The suites test some of the SDK's optional features with `cfg(feature = ...)`, which are
// evaluated against this crate's features.
#![allow(unexpected_cfgs)]
// The suites' dev-dependencies are x86_64 only (Cargo.toml).
#![cfg(target_arch = "x86_64")]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::LazyLock;

use matrix_sdk_crypto::store::IntoCryptoStore;
use matrix_sdk_sqlite::{SqliteCryptoStore, SqliteStateStore, SqliteStoreConfig};
use mmrelay::matrix::crypto_store::SdkCryptoStore;
use mmrelay::matrix::state_store::SdkStateStore;
use tempfile::TempDir;

static DIR: LazyLock<TempDir> = LazyLock::new(|| tempfile::tempdir().unwrap());

/// The SDK's SQLite stores with the settings `mmrelay::matrix::stores::open` gives them.
fn config(path: &PathBuf, passphrase: Option<&str>) -> SqliteStoreConfig {
    SqliteStoreConfig::with_low_memory_config(path)
        .passphrase(passphrase)
        .pool_max_size(2)
        .journal_size_limit(1024 * 1024)
}

async fn open_crypto(path: &PathBuf, passphrase: Option<&str>) -> SdkCryptoStore {
    let sqlite = SqliteCryptoStore::open_with_config(&config(path, passphrase))
        .await
        .expect("open the crypto store");
    SdkCryptoStore::new(sqlite.into_crypto_store())
}

mod crypto {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    /// The store last opened under each name.
    static OPEN: LazyLock<Mutex<HashMap<String, SdkCryptoStore>>> = LazyLock::new(Default::default);

    /// What the SDK's crypto suite asks for: the store named `name`, emptied first if
    /// `clear_data`. A store opened again is first stopped cleanly, as the relay stops: the
    /// suite's reopening tests expect what was saved to be there, and the outbound sessions
    /// reach the disk only at a clean stop (a crash is `outbound_sessions_...` below).
    async fn get_store(name: &str, passphrase: Option<&str>, clear_data: bool) -> SdkCryptoStore {
        let path = DIR.path().join("crypto").join(name);
        let previous = OPEN.lock().unwrap().remove(name);
        if clear_data {
            let _ = std::fs::remove_dir_all(&path);
        } else if let Some(p) = previous {
            p.save_at_stop().await.expect("the clean stop");
        }
        let store = open_crypto(&path, passphrase).await;
        OPEN.lock().unwrap().insert(name.to_owned(), store.clone());
        store
    }

    matrix_sdk_crypto::cryptostore_integration_tests!();
    matrix_sdk_crypto::cryptostore_integration_tests_time!();
}

mod state {
    use matrix_sdk::store::IntoStateStore;
    use matrix_sdk::{StateStore, StoreError};

    use super::*;

    static NEXT: AtomicU32 = AtomicU32::new(0);

    /// What the SDK's state suite asks for: a new, empty store.
    async fn get_store() -> Result<impl StateStore, StoreError> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = DIR.path().join("state").join(n.to_string());
        let sqlite = SqliteStateStore::open_with_config(&config(&path, None))
            .await
            .expect("open the state store");
        Ok(SdkStateStore::new(sqlite.into_state_store()))
    }

    matrix_sdk_base::statestore_integration_tests!();
}

/// The outbound Megolm session reaches the disk only at a clean stop; the next start continues
/// it. A start after a crash never continues a session, even one a clean stop saved earlier:
/// its ratchet on disk may be behind the messages it already encrypted.
#[tokio::test]
async fn outbound_sessions_continue_after_a_clean_stop_and_never_after_a_crash() {
    use matrix_sdk::ruma::{device_id, room_id, user_id};
    use matrix_sdk_crypto::olm::Account;
    use matrix_sdk_crypto::store::types::{Changes, PendingChanges};
    use matrix_sdk_crypto::store::CryptoStore;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let room = room_id!("!room:example.org");
    let account = Account::with_device_id(user_id!("@bot:example.org"), device_id!("BOT"));
    let (outbound, _) = account.create_group_session_pair_with_defaults(room).await;
    let session = |s: &matrix_sdk_crypto::olm::OutboundGroupSession| s.session_id().to_owned();
    let save = || Changes {
        outbound_group_sessions: vec![outbound.clone()],
        ..Default::default()
    };
    // The next run: the store opened again, the account loaded (as the SDK does first).
    let next_run = |run: SdkCryptoStore| async {
        drop(run);
        let run = open_crypto(&path, None).await;
        run.load_account().await.unwrap();
        run
    };

    // A run that encrypts, then crashes: nothing of its session is on disk.
    let run = open_crypto(&path, None).await;
    run.save_pending_changes(PendingChanges {
        account: Some(account.deep_clone()),
    })
    .await
    .unwrap();
    run.save_changes(save()).await.unwrap();
    let held = run.get_outbound_group_session(room).await.unwrap();
    assert_eq!(held.as_ref().map(session), Some(session(&outbound)));
    let run = next_run(run).await;
    assert!(run
        .get_outbound_group_session(room)
        .await
        .unwrap()
        .is_none());

    // A run that stops cleanly: the next one continues the same session.
    run.save_changes(save()).await.unwrap();
    assert_eq!(run.save_at_stop().await.unwrap(), 1);
    let run = next_run(run).await;
    let continued = run.get_outbound_group_session(room).await.unwrap();
    assert_eq!(continued.as_ref().map(session), Some(session(&outbound)));

    // That run crashes: the session saved by the earlier clean stop is not continued again.
    let run = next_run(run).await;
    assert!(run
        .get_outbound_group_session(room)
        .await
        .unwrap()
        .is_none());
}
