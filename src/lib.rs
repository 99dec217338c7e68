#![recursion_limit = "256"]
//! mmrelay: a relay between a Meshtastic LoRa mesh and Matrix rooms.
//!
//! - [`mesh`]: the radio side (framing, protobuf codec, session, link over serial or TCP);
//! - [`sim`]: a simulated radio for tests and for trying mmrelay without hardware;
//! - [`cli`]: the command line of the `mmrelay` binary;
//! - [`config`]: reading MMRelay's `config.yaml`;
//! - [`clock`]: wall-clock time in the units the radio and Matrix use.

pub mod cli;
pub mod clock;
pub mod config;
pub mod matrix;
pub mod mesh;
pub mod relay;
pub mod service;
pub mod sim;
pub mod store;
