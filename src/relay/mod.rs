//! The relay: the rules that turn mesh packets into Matrix messages and back ([`rules`],
//! sans-IO).

pub mod rules;
