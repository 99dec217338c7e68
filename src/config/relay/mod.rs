//! The relay's settings, read from MMRelay's `config.yaml` keys (and the `MMRELAY_*`
//! environment overrides), checked once at start. A wrong value stops mmrelay with the file,
//! line, key, bad value and what is allowed; a key mmrelay does not implement (plugins it
//! does not have, BLE settings...) gives one warning naming it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_yaml_ng::Value;

pub mod plugins;
mod reader;
use plugins::PluginsConfig;
use reader::{show, Reader};

use crate::mesh::transport::{Endpoint, DEFAULT_TCP_PORT};

/// One bridged room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRoute {
    /// Room id or alias, as written.
    pub id: String,
    pub channel: u32,
}

/// Everything the relay needs from the config, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct RelayConfig {
    pub homeserver: Option<String>,
    pub bot_user_id: Option<String>,
    pub password: Option<String>,
    pub access_token: Option<String>,
    pub e2ee_enabled: bool,
    pub store_path: Option<PathBuf>,
    /// Mesh -> Matrix prefix (`matrix.prefix_*`).
    pub matrix_prefix: Option<String>,
    pub rooms: Vec<RoomRoute>,
    /// Room for direct messages to the relay's node (`meshtastic.direct_messages_room`).
    pub dm_room: Option<String>,
    pub endpoint: Endpoint,
    pub meshnet_name: String,
    pub broadcast_enabled: bool,
    pub detection_sensor: bool,
    pub message_delay: Duration,
    pub reactions: bool,
    pub replies: bool,
    /// Matrix -> mesh prefix (`meshtastic.prefix_*`).
    pub mesh_prefix: Option<String>,
    pub log_level: Option<String>,
    pub db_path: PathBuf,
    pub msgs_to_keep: u32,
    /// Matrix events older than this when mmrelay sees them are not sent to the mesh.
    pub max_event_age: Duration,
    /// Capacity of the Matrix -> mesh queue.
    pub mesh_queue: usize,
    /// The bot commands (MMRelay's `plugins:`).
    pub plugins: PluginsConfig,
}

pub const DEFAULT_MATRIX_PREFIX: &str = "[{long}/{mesh}]: ";
pub const DEFAULT_MESH_PREFIX: &str = "{display5}[M]: ";
pub const MATRIX_PREFIX_VARS: &[&str] = &["long", "short", "mesh"];
pub const MESH_PREFIX_VARS: &[&str] = &["display", "user", "username", "server"];

/// Environment overrides: variable, key path.
pub const ENV_OVERRIDES: &[(&str, &str)] = &[
    ("MMRELAY_MATRIX_HOMESERVER", "matrix.homeserver"),
    ("MMRELAY_MATRIX_BOT_USER_ID", "matrix.bot_user_id"),
    ("MMRELAY_MATRIX_PASSWORD", "matrix.password"),
    (
        "MMRELAY_MESHTASTIC_CONNECTION_TYPE",
        "meshtastic.connection_type",
    ),
    ("MMRELAY_MESHTASTIC_HOST", "meshtastic.host"),
    ("MMRELAY_MESHTASTIC_PORT", "meshtastic.port"),
    ("MMRELAY_MESHTASTIC_SERIAL_PORT", "meshtastic.serial_port"),
    ("MMRELAY_MESHTASTIC_MESHNET_NAME", "meshtastic.meshnet_name"),
    (
        "MMRELAY_MESHTASTIC_BROADCAST_ENABLED",
        "meshtastic.broadcast_enabled",
    ),
    (
        "MMRELAY_MESHTASTIC_MESSAGE_DELAY",
        "meshtastic.message_delay",
    ),
    ("MMRELAY_LOGGING_LEVEL", "logging.level"),
    ("MMRELAY_DATABASE_PATH", "database.path"),
];

/// Keys mmrelay reads. Anything else gets a warning.
const KNOWN: &[&str] = &[
    "matrix",
    "matrix.homeserver",
    "matrix.bot_user_id",
    "matrix.password",
    "matrix.access_token",
    "matrix.e2ee",
    "matrix.e2ee.enabled",
    "matrix.e2ee.store_path",
    "matrix.encryption",
    "matrix.encryption.enabled",
    "matrix.encryption.store_path",
    "matrix.prefix_enabled",
    "matrix.prefix_format",
    "matrix.max_event_age",
    "matrix_rooms",
    "matrix_rooms[].id",
    "matrix_rooms[].meshtastic_channel",
    "meshtastic",
    "meshtastic.connection_type",
    "meshtastic.serial_port",
    "meshtastic.host",
    "meshtastic.port",
    "meshtastic.meshnet_name",
    "meshtastic.broadcast_enabled",
    "meshtastic.detection_sensor",
    "meshtastic.message_delay",
    "meshtastic.message_interactions",
    "meshtastic.message_interactions.reactions",
    "meshtastic.message_interactions.replies",
    "meshtastic.prefix_enabled",
    "meshtastic.prefix_format",
    "meshtastic.direct_messages_room",
    "meshtastic.queue_size",
    "logging",
    "logging.level",
    "database",
    "database.path",
    "database.msg_map",
    "database.msg_map.msgs_to_keep",
];

/// Whether `path` (as `meshtastic.host` or `plugins.ping.active`) is a key mmrelay reads.
fn is_known_key(path: &str) -> bool {
    KNOWN.contains(&path) || plugins::is_known(path)
}

/// A config problem, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: Option<usize>,
    pub key: String,
    pub message: String,
}

/// The result of reading a config: the settings, or every problem found.
#[derive(Debug)]
pub struct Loaded {
    pub config: RelayConfig,
    /// Keys mmrelay does not implement (one warning each).
    pub ignored: Vec<String>,
}

/// Formats problems as lines `FILE line N: KEY: MESSAGE`.
pub fn format_problems(file: &Path, problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| match p.line {
            Some(l) => format!("{} line {l}: {}: {}", file.display(), p.key, p.message),
            None => format!("{}: {}: {}", file.display(), p.key, p.message),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Checks a prefix template: `{name}` or `{nameN}` (N 1 to 20) with the given names.
pub fn check_template(template: &str, vars: &[&str]) -> Result<(), String> {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("'{template}' opens '{{' without closing it"))?;
        let name = &after[..close];
        let base = name.trim_end_matches(|c: char| c.is_ascii_digit());
        let digits = &name[base.len()..];
        let ok_len =
            digits.is_empty() || digits.parse::<u32>().is_ok_and(|n| (1..=20).contains(&n));
        if !vars.contains(&base) || !ok_len {
            let allowed: Vec<String> = vars
                .iter()
                .map(|v| format!("{{{v}}}, {{{v}1}}..{{{v}20}}"))
                .collect();
            return Err(format!(
                "'{template}' uses {{{name}}}, which is not a variable here; allowed: {}",
                allowed.join(", ")
            ));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

/// Only the radio's connection (`meshtastic.connection_type` and its keys): what the `radio`
/// commands need, whatever the rest of the file holds.
pub fn radio_endpoint(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Endpoint, Vec<Problem>> {
    read_part(text, env, read_endpoint).map(|e| e.expect("no problems"))
}

/// Only the bridged rooms (`matrix_rooms`).
pub fn matrix_rooms(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<RoomRoute>, Vec<Problem>> {
    read_part(text, env, read_rooms)
}

/// Only `matrix.e2ee.store_path` (or MMRelay's older `matrix.encryption.store_path`).
pub fn store_path(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<PathBuf>, Vec<Problem>> {
    read_part(text, env, |r| read_e2ee(r).1)
}

/// `matrix.bot_user_id` alone (for `auth login`, which checks a token's user against it).
pub fn bot_user_id(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, Vec<Problem>> {
    read_part(text, env, |r| r.string("matrix.bot_user_id"))
}

/// Reads one part of the config with `part`; its problems only.
fn read_part<T>(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    part: impl FnOnce(&mut Reader<'_>) -> T,
) -> Result<T, Vec<Problem>> {
    let (mut r, _) = Reader::new(text, env, &is_known_key)?;
    let value = part(&mut r);
    r.done(value)
}

fn read_e2ee(r: &mut Reader<'_>) -> (bool, Option<PathBuf>) {
    let key = if r.value("matrix.e2ee").is_some() {
        "matrix.e2ee"
    } else {
        "matrix.encryption"
    };
    let enabled = r.boolean(&format!("{key}.enabled"), true);
    let path = r
        .string(&format!("{key}.store_path"))
        .map(|s| super::expand_home(&s));
    (enabled, path)
}

/// Reads the config text. `home` resolves the default database path; `env` gives the
/// environment (a function so tests need not touch the process environment).
pub fn load_relay_config(
    text: &str,
    home: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, Vec<Problem>> {
    let (mut r, ignored) = Reader::new(text, env, &is_known_key)?;
    let homeserver = r.string("matrix.homeserver");
    let bot_user_id = r.string("matrix.bot_user_id");
    let password = r.string("matrix.password");
    let access_token = r.string("matrix.access_token");
    let (e2ee_enabled, store_path) = read_e2ee(&mut r);
    let matrix_prefix = template(&mut r, "matrix", DEFAULT_MATRIX_PREFIX, MATRIX_PREFIX_VARS);

    let rooms = read_rooms(&mut r);

    let endpoint = read_endpoint(&mut r);
    let meshnet_name = r.string("meshtastic.meshnet_name").unwrap_or_default();
    if meshnet_name.trim().is_empty() {
        r.problem(
            "meshtastic.meshnet_name",
            "is missing: a short name for your mesh, shown in Matrix and used to avoid loops"
                .into(),
        );
    }
    let broadcast_enabled = r.boolean("meshtastic.broadcast_enabled", true);
    let detection_sensor = r.boolean("meshtastic.detection_sensor", false);
    let message_delay = r.number("meshtastic.message_delay", 2.5, 0.1, 600.0, "seconds");
    let reactions = r.boolean("meshtastic.message_interactions.reactions", false);
    let replies = r.boolean("meshtastic.message_interactions.replies", false);
    let mesh_prefix = template(&mut r, "meshtastic", DEFAULT_MESH_PREFIX, MESH_PREFIX_VARS);
    let dm_room = r.string("meshtastic.direct_messages_room");
    if let Some(d) = &dm_room {
        if !(rooms.iter().any(|x| &x.id == d) || d.starts_with('!') || d.starts_with('#')) {
            let d = d.clone();
            r.problem(
                "meshtastic.direct_messages_room",
                format!("'{d}' is not a room id (!room:server) or alias (#room:server)"),
            );
        }
    }
    let mesh_queue = r.number(
        "meshtastic.queue_size",
        500.0,
        1.0,
        100_000.0,
        "a number of messages",
    ) as usize;
    let log_level = r.string("logging.level").map(|s| s.to_lowercase());
    if let Some(l) = &log_level {
        if !matches!(
            l.as_str(),
            "error" | "warn" | "warning" | "info" | "debug" | "trace" | "critical"
        ) {
            let l = l.clone();
            r.problem(
                "logging.level",
                format!("'{l}' is not allowed: use error, warning, info or debug"),
            );
        }
    }
    let db_path = r
        .string("database.path")
        .map(|s| super::expand_home(&s))
        .unwrap_or_else(|| home.join("database").join("meshtastic.sqlite"));
    let msgs_to_keep = r.number(
        "database.msg_map.msgs_to_keep",
        500.0,
        0.0,
        1_000_000.0,
        "a number of messages",
    ) as u32;
    let max_event_age = r.number(
        "matrix.max_event_age",
        600.0,
        0.0,
        30.0 * 86400.0,
        "seconds",
    );

    let plugins = plugins::read_plugins(&mut r);

    r.done(())?;
    Ok(Loaded {
        config: RelayConfig {
            homeserver,
            bot_user_id,
            password,
            access_token,
            e2ee_enabled,
            store_path,
            matrix_prefix,
            rooms,
            dm_room,
            endpoint: endpoint.expect("no problems"),
            meshnet_name,
            broadcast_enabled,
            detection_sensor,
            message_delay: Duration::from_secs_f64(message_delay),
            reactions,
            replies,
            mesh_prefix,
            log_level,
            db_path,
            msgs_to_keep,
            max_event_age: Duration::from_secs_f64(max_event_age),
            mesh_queue,
            plugins,
        },
        ignored,
    })
}

fn read_rooms(r: &mut Reader<'_>) -> Vec<RoomRoute> {
    let mut rooms = Vec::new();
    match r.value("matrix_rooms").cloned() {
        None => r.problem(
            "matrix_rooms",
            "is missing: list the rooms to bridge, each with `id` and `meshtastic_channel`".into(),
        ),
        Some(Value::Sequence(items)) => {
            for (i, item) in items.iter().enumerate() {
                let key = format!("matrix_rooms[{i}]");
                let id = item
                    .get("id")
                    .and_then(Value::as_str)
                    .map(str::trim)
                    .unwrap_or("");
                let valid = (id.starts_with('!') && id.len() > 1)
                    || (id.starts_with('#') && id.contains(':'));
                if !valid {
                    r.problem(
                        &format!("{key}.id"),
                        format!(
                            "{} is not a room id (!room:server) or alias (#room:server)",
                            show(item.get("id").unwrap_or(&Value::Null))
                        ),
                    );
                    continue;
                }
                let ch = item.get("meshtastic_channel");
                match ch.and_then(Value::as_u64) {
                    Some(c) if c < 8 => rooms.push(RoomRoute {
                        id: id.to_string(),
                        channel: c as u32,
                    }),
                    _ => r.problem(
                        &format!("{key}.meshtastic_channel"),
                        format!(
                            "{} is not allowed: a channel index from 0 to 7",
                            show(ch.unwrap_or(&Value::Null))
                        ),
                    ),
                }
            }
        }
        Some(other) => r.problem(
            "matrix_rooms",
            format!("{} is not a list of rooms", show(&other)),
        ),
    }
    rooms
}

fn read_endpoint(r: &mut Reader<'_>) -> Option<Endpoint> {
    let kind = r
        .string("meshtastic.connection_type")
        .map(|s| s.trim().to_lowercase());
    match kind.as_deref() {
        Some("serial") => match r.string("meshtastic.serial_port") {
            Some(p) if !p.trim().is_empty() => Some(Endpoint::Serial(PathBuf::from(p.trim()))),
            _ => {
                r.problem(
                    "meshtastic.serial_port",
                    "is missing: the radio's device, for example /dev/ttyUSB0 or /dev/ttyACM0"
                        .into(),
                );
                None
            }
        },
        Some("tcp") | Some("network") => {
            let port = r.number(
                "meshtastic.port",
                DEFAULT_TCP_PORT as f64,
                1.0,
                65535.0,
                "a TCP port",
            ) as u16;
            match r.string("meshtastic.host") {
                Some(h) if !h.trim().is_empty() => Some(Endpoint::Tcp {
                    host: h.trim().to_string(),
                    port,
                }),
                _ => {
                    r.problem("meshtastic.host", "is missing: the radio's address".into());
                    None
                }
            }
        }
        Some("ble") => {
            r.problem(
                "meshtastic.connection_type",
                "'ble' is not supported by mmrelay: connect the radio by USB (serial) or over the network (tcp)".into(),
            );
            None
        }
        Some(other) => {
            let other = other.to_string();
            r.problem(
                "meshtastic.connection_type",
                format!("'{other}' is not allowed: use serial or tcp"),
            );
            None
        }
        None => {
            r.problem(
                "meshtastic.connection_type",
                "is missing: set it to serial or tcp".into(),
            );
            None
        }
    }
}

/// `SECTION.prefix_enabled` and `SECTION.prefix_format`: the template in use, or `None`.
fn template(r: &mut Reader<'_>, section: &str, default: &str, vars: &[&str]) -> Option<String> {
    if !r.boolean(&format!("{section}.prefix_enabled"), true) {
        return None;
    }
    let key = format!("{section}.prefix_format");
    let t = r.string(&key).unwrap_or_else(|| default.to_string());
    if let Err(e) = check_template(&t, vars) {
        r.problem(&key, e);
    }
    Some(t)
}

#[cfg(test)]
mod tests;
