//! The stores given to matrix-sdk ([`open`]): its SQLite state store and crypto store, each
//! wrapped to read and write less ([`SdkStateStore`], [`SdkCryptoStore`]), and what those hold
//! back in memory until a clean stop ([`HeldBack`]). The SDK's event cache and media stores stay
//! in memory: the relay reads neither, and on disk they were two more databases to open and
//! write.

use std::path::Path;
use std::sync::Arc;

use matrix_sdk::config::StoreConfig;
use matrix_sdk::cross_process_lock::CrossProcessLockConfig;
use matrix_sdk::store::IntoStateStore;
use matrix_sdk_crypto::store::IntoCryptoStore;
use matrix_sdk_sqlite::{SqliteCryptoStore, SqliteStateStore, SqliteStoreConfig};

use super::credentials;
use super::crypto_store::SdkCryptoStore;
use super::state_store::SdkStateStore;

/// The files of matrix-sdk's SQLite stores we use (named by matrix-sdk-sqlite 0.18).
const SDK_DATABASES: [&str; 2] = ["matrix-sdk-state.sqlite3", "matrix-sdk-crypto.sqlite3"];

/// What the stores hold back in memory until a clean stop ([`HeldBack::save_at_stop`]).
#[derive(Debug, Clone)]
pub struct HeldBack {
    pub crypto: Arc<SdkCryptoStore>,
    pub state: Arc<SdkStateStore>,
}

impl HeldBack {
    /// Saves what is held back; returns how many outbound sessions. Call it once nothing will be
    /// encrypted or synced any more.
    pub async fn save_at_stop(&self) -> Result<usize, String> {
        let state = self.state.save_at_stop().await;
        let n = self
            .crypto
            .save_at_stop()
            .await
            .map_err(|e| e.to_string())?;
        state.map_err(|e| e.to_string())?;
        Ok(n)
    }
}

/// Opens the stores in the folder `store` (created 0700, databases with small pages) with
/// low-memory settings; also returns what they hold back until a clean stop.
pub async fn open(store: &Path, passphrase: &str) -> Result<(StoreConfig, HeldBack), String> {
    credentials::private_dir(store)?;
    for name in SDK_DATABASES {
        crate::store::create_with_small_pages(&store.join(name))?;
    }
    let config = SqliteStoreConfig::with_low_memory_config(store);
    let config = match credentials::store_secret(passphrase) {
        credentials::StoreSecret::Key(k) => config.key(Some(&k)),
        credentials::StoreSecret::Passphrase(p) => config.passphrase(Some(p)),
    };
    let config = config.pool_max_size(2).journal_size_limit(1024 * 1024);
    let failed = |e: matrix_sdk_sqlite::OpenStoreError| {
        format!("cannot open the Matrix store in {}: {e}", store.display())
    };
    let state = SqliteStateStore::open_with_config(&config)
        .await
        .map_err(failed)?;
    let crypto = SqliteCryptoStore::open_with_config(&config)
        .await
        .map_err(failed)?;
    let held = HeldBack {
        crypto: Arc::new(SdkCryptoStore::new(crypto.into_crypto_store())),
        state: Arc::new(SdkStateStore::new(state.into_state_store())),
    };
    let stores = StoreConfig::new(CrossProcessLockConfig::multi_process("main"))
        .state_store(held.state.clone())
        .crypto_store(held.crypto.clone());
    Ok((stores, held))
}
