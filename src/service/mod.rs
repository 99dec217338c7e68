//! Running as a service: the systemd notification protocol ([`notify`]): READY once both links
//! are up, WATCHDOG from the relay's main loop, STOPPING at shutdown.

pub mod notify;
