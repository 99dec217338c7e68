//! Everything that speaks to a Meshtastic radio: the schema subset ([`proto`]), the stream
//! framing ([`framing`]), the session rules ([`session`]) as sans-IO cores, and the I/O shell
//! that drives them over serial or TCP ([`link`], [`transport`]).

pub mod display;
pub mod framing;
pub mod link;
pub mod proto;
pub mod session;
pub mod transport;
