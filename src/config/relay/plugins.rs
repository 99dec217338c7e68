//! MMRelay's `plugins:` section, for the bot commands built into the relay: which are active,
//! the mesh channels each answers on, whether Matrix messages must mention the bot, and the
//! ping command's options. Plugins mmrelay does not have are listed so that each gets its
//! one warning.

use super::reader::{show, Reader};

/// The commands mmrelay has, by their `plugins.<name>` key.
pub const PLUGINS: &[&str] = &["help", "ping", "nodes", "health", "telemetry", "status"];

/// Keys read under each `plugins.<name>` (`priority` orders MMRelay's plugins; here each command
/// has one handler, so it is accepted and has no effect).
const PLUGIN_KEYS: &[&str] = &[
    "active",
    "channels",
    "require_bot_mention",
    "priority",
    "display_hops",
    "mimic_mode",
];

/// Whether `path` (as `plugins.ping.active`) is a key mmrelay reads.
pub(super) fn is_known(path: &str) -> bool {
    let Some(rest) = path.strip_prefix("plugins") else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let Some(rest) = rest.strip_prefix('.') else {
        return false;
    };
    let (name, key) = match rest.split_once('.') {
        Some((n, k)) => (n, Some(k)),
        None => (rest, None),
    };
    if !PLUGINS.contains(&name) {
        return false;
    }
    match key {
        None => true,
        Some(k) => {
            let k = k.strip_suffix("[]").unwrap_or(k);
            PLUGIN_KEYS.contains(&k)
        }
    }
}

/// One command's settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plugin {
    /// `active`: off unless true.
    pub active: bool,
    /// `channels`: the mesh channels it answers on; `None` when not set (then the channels of
    /// `matrix_rooms`). Direct messages to the relay's node are always answered.
    pub channels: Option<Vec<u32>>,
    /// `require_bot_mention` (default true): a Matrix message is a command only when it
    /// mentions the bot.
    pub require_bot_mention: bool,
}

/// The `plugins:` section as mmrelay uses it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PluginsConfig {
    pub help: Plugin,
    pub ping: Plugin,
    pub nodes: Plugin,
    pub health: Plugin,
    pub telemetry: Plugin,
    pub status: Plugin,
    /// `plugins.ping.display_hops`: the answer on the mesh says how many hops the ping took.
    pub display_hops: bool,
    /// `plugins.ping.mimic_mode`: the answer copies the letter case and punctuation of the ping.
    pub mimic_mode: bool,
}

impl PluginsConfig {
    /// Whether any command is active (none: the relay keeps no bot state at all).
    pub fn any_active(&self) -> bool {
        self.all().iter().any(|(_, p)| p.active)
    }

    /// Each command with its name.
    pub fn all(&self) -> [(&'static str, &Plugin); 6] {
        [
            ("help", &self.help),
            ("ping", &self.ping),
            ("nodes", &self.nodes),
            ("health", &self.health),
            ("telemetry", &self.telemetry),
            ("status", &self.status),
        ]
    }
}

fn read_channels(r: &mut Reader<'_>, key: &str) -> Option<Vec<u32>> {
    let v = r.value(key)?.clone();
    let items = match v {
        serde_yaml_ng::Value::Sequence(items) => items,
        single @ serde_yaml_ng::Value::Number(_) => vec![single],
        other => {
            r.problem(
                key,
                format!(
                    "{} is not allowed: use a list of channel indexes, like [0, 2]",
                    show(&other)
                ),
            );
            return None;
        }
    };
    let mut out = Vec::new();
    for item in items {
        match item.as_u64().filter(|c| *c <= 7) {
            Some(c) => out.push(c as u32),
            None => r.problem(
                key,
                format!(
                    "{} is not a channel index: use numbers from 0 to 7",
                    show(&item)
                ),
            ),
        }
    }
    Some(out)
}

fn read_plugin(r: &mut Reader<'_>, name: &str) -> Plugin {
    let base = format!("plugins.{name}");
    Plugin {
        active: r.boolean(&format!("{base}.active"), false),
        channels: read_channels(r, &format!("{base}.channels")),
        require_bot_mention: r.boolean(&format!("{base}.require_bot_mention"), true),
    }
}

/// Reads `plugins:`; problems (a bad `active`, a channel that is not 0-7) go to `r`.
pub(super) fn read_plugins(r: &mut Reader<'_>) -> PluginsConfig {
    PluginsConfig {
        help: read_plugin(r, "help"),
        ping: read_plugin(r, "ping"),
        nodes: read_plugin(r, "nodes"),
        health: read_plugin(r, "health"),
        telemetry: read_plugin(r, "telemetry"),
        status: read_plugin(r, "status"),
        display_hops: r.boolean("plugins.ping.display_hops", false),
        mimic_mode: r.boolean("plugins.ping.mimic_mode", false),
    }
}
