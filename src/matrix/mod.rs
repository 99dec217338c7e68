//! The Matrix side: MMRelay-compatible credentials and E2EE store ([`credentials`]), the
//! session (login, cross-signing, restore: [`session`]), status and logout ([`account`]), and
//! the running client that the relay drives ([`client`]) with its sync loop ([`sync`]) and
//! sender ([`sender`]). [`stores`] are the stores handed to the SDK (outbound
//! Megolm sessions saved only at a clean stop).

pub mod account;
pub mod client;
pub mod content;
pub mod credentials;
pub mod sender;
pub mod session;
pub mod state_store;
pub mod stores;
pub mod sync;
