//! Everything that speaks to a Meshtastic radio: the schema subset ([`proto`]), the stream
//! framing ([`framing`]) and the client-API state machine ([`radio`]: handshake, node
//! database, packets) as sans-IO cores, and the I/O shell that drives them over serial or TCP
//! ([`link`], [`transport`]).

pub mod display;
pub mod framing;
pub mod link;
pub mod proto;
pub mod radio;
pub mod transport;
