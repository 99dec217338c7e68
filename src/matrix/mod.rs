//! The Matrix side: MMRelay-compatible credentials and E2EE store ([`credentials`]), the
//! session (login, cross-signing, restore: [`session`]), status and logout ([`account`]), and
//! the running client that the relay drives ([`client`]) with its sync loop ([`sync`]) and
//! sender ([`sender`]), and what it tells the relay ([`event`]). [`stores`] are the stores handed to the SDK: its SQLite crypto and
//! state stores wrapped to read and write less ([`crypto_store`], [`state_store`]).

pub mod account;
pub mod client;
pub mod content;
pub mod credentials;
pub mod cross_signing;
pub mod crypto_store;
pub mod event;
pub mod read_cache;
pub mod sender;
pub mod session;
pub mod state_changes;
pub mod state_store;
pub mod stores;
pub mod sync;
