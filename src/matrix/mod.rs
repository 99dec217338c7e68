//! The Matrix side: MMRelay-compatible credentials and E2EE store ([`credentials`]), logging
//! in ([`login`], with the recovery key: [`recovery`]), the session (client on the stores,
//! restore: [`session`]), the device's cross-signing ([`cross_signing`]), status and logout
//! ([`account`]), and the running client that the relay drives ([`client`]) with its sync loop
//! ([`sync`]) and sender ([`sender`]), and what it tells the relay ([`event`]). [`stores`] are
//! the stores handed to the SDK: its SQLite crypto and state stores wrapped to read and write
//! less ([`crypto_store`], [`state_store`]).

pub mod account;
pub mod client;
pub mod content;
pub mod credentials;
pub mod cross_signing;
pub mod crypto_store;
pub mod event;
pub mod login;
pub mod read_cache;
pub mod recovery;
pub mod sender;
pub mod session;
pub mod state_changes;
pub mod state_store;
pub mod stores;
pub mod sync;
