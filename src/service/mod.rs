//! Running as a service: the systemd notification protocol ([`notify`]): READY once both links
//! are up, WATCHDOG from the relay's main loop, STOPPING at shutdown; and matrix-sdk's
//! diagnostics in the same log as ours ([`sdk_log`]); the health check's socket ([`health`]);
//! the stop request ([`signal`]).

pub mod health;
pub mod notify;
pub mod sdk_log;
pub mod signal;
