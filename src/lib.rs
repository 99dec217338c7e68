#![recursion_limit = "256"]
//! mmrelay: a relay between a Meshtastic LoRa mesh and Matrix rooms.
//!
//! Dependencies point one way, without cycles: [`cli`] → [`relay`] → [`matrix`] → [`store`]
//! → [`mesh`] → [`clock`], with [`config`] (which builds [`mesh`]'s endpoint) and [`service`]
//! (which imports nothing of ours) beside them; [`sim`] stands for the radio.
//!
//! - [`cli`]: the command line of the `mmrelay` binary (every subcommand);
//! - [`relay`]: the relay task: the rules between mesh and rooms, the bot commands, the state
//!   it saves and when, and the main loop that joins the two sides;
//! - [`matrix`]: the Matrix side: credentials, login and session, the running client (sync,
//!   sender) and the wrappers of matrix-sdk's SQLite stores;
//! - [`mesh`]: the radio side: stream framing, protobuf codec, session, the link over serial
//!   or TCP;
//! - [`store`]: the relay's own SQLite database (MMRelay's tables, the outbox, relay state);
//! - [`service`]: running as a service: systemd notifications and watchdog, the health
//!   check's socket, the stop signal, matrix-sdk's log in ours;
//! - [`config`]: reading MMRelay's `config.yaml` and `MMRELAY_*` variables, with errors that
//!   name the file, line and key;
//! - [`sim`]: a simulated radio for tests and for trying mmrelay without hardware;
//! - [`clock`]: wall-clock time in the units the radio and Matrix use, and the retry delays.

pub mod cli;
pub mod clock;
pub mod config;
pub mod matrix;
pub mod mesh;
pub mod relay;
pub mod service;
pub mod sim;
pub mod store;
