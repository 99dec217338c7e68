//! The relay: the rules that turn mesh packets into Matrix messages and back ([`rules`],
//! sans-IO), the bot commands ([`commands`], [`answers`], with what they know of the mesh in
//! [`nodes`] and [`telemetry`]), and the task that runs them between the radio link and the
//! Matrix client ([`run`]), keeping its state in [`state`].

pub mod answers;
mod bot;
pub mod commands;
pub mod nodes;
pub mod rules;
pub mod run;
mod state;
mod state_bot;
pub mod telemetry;
