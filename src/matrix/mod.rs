//! The Matrix side: MMRelay-compatible credentials and E2EE store ([`credentials`]), the
//! session (login, cross-signing, restore: [`session`]), status and logout ([`account`]), and
//! the running client that the relay drives ([`client`]) with its sync loop ([`sync`]) and
//! sender ([`sender`]). [`crypto_store`] is the E2EE store handed to the SDK (outbound
//! Megolm sessions in memory only).

pub mod account;
pub mod client;
pub mod content;
pub mod credentials;
pub mod crypto_store;
pub mod sender;
pub mod session;
pub mod sync;
