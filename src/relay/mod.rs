//! The relay: the rules that turn mesh packets into Matrix messages and back ([`rules`],
//! sans-IO) and the task that runs them between the radio link and the Matrix client
//! ([`run`]), keeping its state in [`state`].

pub mod rules;
pub mod run;
mod state;
