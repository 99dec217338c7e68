//! matrix-sdk reports through `tracing`; this forwards its events into our `log` output, so
//! that its warnings and errors (failed key uploads, sync and store errors, events that do not
//! decrypt) reach the journal beside ours. Filtering is the logger's (`RUST_LOG`, the config's
//! level): events it would drop are switched off at their call site and cost nothing. Spans
//! are not kept. Fields whose name suggests a secret are never printed. A few messages that
//! the SDK reports loudly but that carry no news for an operator (see [`QUIET`]) go out at
//! debug level instead.

use std::fmt::{self, Write as _};

use tracing_core::field::{Field, Visit};
use tracing_core::span::{Attributes, Id, Record};
use tracing_core::subscriber::{Interest, Subscriber};
use tracing_core::{Event, Level, LevelFilter, Metadata};

fn to_log(l: &Level) -> log::Level {
    match *l {
        Level::ERROR => log::Level::Error,
        Level::WARN => log::Level::Warn,
        Level::INFO => log::Level::Info,
        Level::DEBUG => log::Level::Debug,
        _ => log::Level::Trace,
    }
}

/// (crate, part of the message): reported at debug level, whatever level the SDK gave them.
pub const QUIET: &[(&str, &str)] = &[
    // The SDK's HTTP client logs every failed request as an error (at start, a 404 for account
    // data that does not exist yet; in an outage, every retry). The caller gets the error, and
    // mmrelay reports it with what it means ("Matrix sync failed: ...", once per outage).
    ("matrix_sdk", "Error while sending request"),
    // Server-side key backup is not set up for the bot, so new room keys have nowhere to go.
    ("matrix_sdk_crypto", "no backup key was found"),
];

fn quiet(krate: &str, message: &str) -> bool {
    QUIET
        .iter()
        .any(|(k, m)| *k == krate && message.contains(m))
}

/// Field names never printed: their values may be tokens or key material.
fn secret(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["token", "password", "secret", "key", "pickle", "passphrase"]
        .iter()
        .any(|s| n.contains(s))
}

/// The event's message and its other fields as ` name=value`.
#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_debug(field, &format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else if field.name().starts_with("log.") {
            // Added by `tracing`'s own log compatibility; nothing to show.
        } else if secret(field.name()) {
            let _ = write!(self.rest, " {}=<redacted>", field.name());
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }
}

/// The `tracing` subscriber that writes events as `log` records.
pub struct LogBridge;

impl LogBridge {
    fn wanted(meta: &Metadata<'_>) -> bool {
        meta.is_event()
            && log::logger().enabled(
                &log::Metadata::builder()
                    .level(to_log(meta.level()))
                    .target(meta.target())
                    .build(),
            )
    }

    /// The line for an event of `target`: the crate's name, then what it said.
    fn line(target: &str, fields: &Fields) -> String {
        let krate = target.split("::").next().unwrap_or(target);
        format!("{krate}: {}{}", fields.message, fields.rest)
    }
}

impl Subscriber for LogBridge {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if Self::wanted(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        Self::wanted(meta)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(match log::max_level() {
            log::LevelFilter::Off => LevelFilter::OFF,
            log::LevelFilter::Error => LevelFilter::ERROR,
            log::LevelFilter::Warn => LevelFilter::WARN,
            log::LevelFilter::Info => LevelFilter::INFO,
            log::LevelFilter::Debug => LevelFilter::DEBUG,
            log::LevelFilter::Trace => LevelFilter::TRACE,
        })
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let krate = meta.target().split("::").next().unwrap_or("");
        let mut level = to_log(meta.level());
        if level < log::Level::Debug && quiet(krate, &fields.message) {
            level = log::Level::Debug;
            let m = log::Metadata::builder()
                .level(level)
                .target(meta.target())
                .build();
            if !log::logger().enabled(&m) {
                return;
            }
        }
        log::logger().log(
            &log::Record::builder()
                .level(level)
                .target(meta.target())
                .module_path(meta.module_path())
                .file(meta.file())
                .line(meta.line())
                .args(format_args!("{}", Self::line(meta.target(), &fields)))
                .build(),
        );
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// Installs the bridge for the whole process (after the logger); a second call does nothing.
pub fn install() {
    let _ = tracing_core::dispatcher::set_global_default(tracing_core::Dispatch::new(LogBridge));
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_core::field::FieldSet;

    #[test]
    fn secrets_are_redacted_and_the_crate_named() {
        assert!(secret("access_token") && secret("recovery_key") && secret("Password"));
        assert!(!secret("room_id") && !secret("sender"));
        static CS: tracing_core::callsite::DefaultCallsite =
            tracing_core::callsite::DefaultCallsite::new(&META);
        static META: Metadata<'static> = Metadata::new(
            "event",
            "matrix_sdk_crypto::machine",
            Level::WARN,
            None,
            None,
            None,
            FieldSet::new(
                &["message", "access_token", "room_id"],
                tracing_core::identify_callsite!(&CS),
            ),
            tracing_core::metadata::Kind::EVENT,
        );
        let fs = META.fields();
        let mut it = fs.iter();
        let (m, t, r) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
        let mut f = Fields::default();
        f.record_debug(&m, &format_args!("Failed to upload keys"));
        f.record_str(&t, "syt_secret");
        f.record_str(&r, "!room:hs");
        let line = LogBridge::line(META.target(), &f);
        assert_eq!(
            line,
            "matrix_sdk_crypto: Failed to upload keys access_token=<redacted> room_id=!room:hs"
        );
        assert!(quiet(
            "matrix_sdk_crypto",
            "Trying to backup room keys but no backup key was found"
        ));
        assert!(quiet("matrix_sdk", "Error while sending request: Api(Server(MatrixError(Error { status_code: 404, body: Standard(StandardErrorBody { kind: NotFound, message: \"Account data not found\" }) })))"));
        assert!(!quiet("matrix_sdk", "Failed to upload keys"));
        assert!(!quiet("matrix_sdk_base", "no backup key was found"));
    }
}
