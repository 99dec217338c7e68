//! The Matrix side: MMRelay-compatible credentials and E2EE store ([`credentials`]), the
//! session (login, cross-signing, restore, logout: [`session`]) and the running client that
//! the relay drives ([`client`]).

pub mod client;
pub mod content;
pub mod credentials;
pub mod session;
