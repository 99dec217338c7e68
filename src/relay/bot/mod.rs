//! The bot commands' state and decisions, sans-IO: which message is a command of an active
//! plugin and where it is answered, the answers themselves, and what the commands know (the
//! node table, the telemetry history, the relay's status). The relay keeps a `Bot` only when
//! some command is active, so inactive commands cost nothing.

use log::{debug, info};

use super::answers::{self, Status};
use super::commands::{self, BotName, Command, RateLimit, Verdict};
use super::nodes::Nodes;
use super::rules::MeshText;
use super::telemetry::History;
use crate::config::relay::plugins::{Plugin, PluginsConfig};
use crate::matrix::content::IncomingMessage;
use crate::mesh::proto::BROADCAST;
use crate::mesh::radio::node_id;

/// An answer for the mesh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct MeshAnswer {
    pub(super) channel: u32,
    /// [`BROADCAST`], or the asking node for a direct message.
    pub(super) to: u32,
    pub(super) text: String,
    pub(super) reply_id: u32,
}

/// What becomes of a text from the mesh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum MeshAction {
    /// Not a command answered here: relayed as usual.
    NotACommand,
    Answer(MeshAnswer),
    /// A command, not answered (rate limit) and not relayed.
    Drop,
}

pub(super) struct Bot {
    cfg: PluginsConfig,
    /// The channels of `matrix_rooms`: where a command without `channels` answers.
    mapped: Vec<u32>,
    pub(super) name: BotName,
    pub(super) nodes: Nodes,
    pub(super) history: History,
    limit: RateLimit,
}

impl Bot {
    /// `None` when no command is active.
    pub(super) fn new(cfg: PluginsConfig, mapped: Vec<u32>, name: BotName) -> Option<Bot> {
        if !cfg.any_active() {
            return None;
        }
        Some(Bot {
            cfg,
            mapped,
            name,
            nodes: Nodes::default(),
            history: History::default(),
            limit: RateLimit::default(),
        })
    }

    /// The active plugins' names.
    pub(super) fn active(&self) -> Vec<&'static str> {
        self.cfg
            .all()
            .into_iter()
            .filter(|(_, p)| p.active)
            .map(|(n, _)| n)
            .collect()
    }

    /// The plugin `name`, when active.
    fn plugin(&self, name: &str) -> Option<&Plugin> {
        self.cfg
            .all()
            .into_iter()
            .find(|(n, p)| *n == name && p.active)
            .map(|(_, p)| p)
    }

    /// A text from the mesh (already known to be new). `hops`: how far it came, when the
    /// packet says; `now_ms`: a monotonic clock for the rate limit.
    pub(super) fn on_mesh(
        &mut self,
        m: &MeshText,
        hops: Option<u32>,
        my_node: u32,
        now_ms: u64,
    ) -> MeshAction {
        // On the mesh, only ping answers (the other commands' answers are Matrix messages).
        let Some(Command::Ping(word)) = commands::parse(&m.text) else {
            return MeshAction::NotACommand;
        };
        let Some(plugin) = self.plugin("ping") else {
            return MeshAction::NotACommand;
        };
        let direct = m.to == my_node && my_node != 0;
        if !direct {
            if m.to != BROADCAST {
                return MeshAction::NotACommand;
            }
            let channels = plugin.channels.as_ref().unwrap_or(&self.mapped);
            if !channels.contains(&m.channel) {
                info!(
                    "Not answering !ping from {} on channel {}: plugins.ping answers on channels {:?}",
                    node_id(m.from),
                    m.channel,
                    channels
                );
                return MeshAction::NotACommand;
            }
        }
        match self.limit.check(m.from, now_ms) {
            Verdict::Allow => {}
            Verdict::Deny { first } => {
                if first {
                    info!(
                        "Not answering {} for a while: it asks faster than {} answers per {} s",
                        node_id(m.from),
                        commands::BURST,
                        commands::REFILL_MS / 1000
                    );
                } else {
                    debug!("not answering {}: rate limit", node_id(m.from));
                }
                return MeshAction::Drop;
            }
        }
        let mut text = commands::pong(word.trim_start_matches('!'), self.cfg.mimic_mode);
        if self.cfg.display_hops {
            if let Some(h) = hops {
                text.push_str(&format!(" ({h} hop{})", if h == 1 { "" } else { "s" }));
            }
        }
        MeshAction::Answer(MeshAnswer {
            channel: m.channel,
            to: if direct { m.from } else { BROADCAST },
            text,
            reply_id: m.id,
        })
    }

    /// A message in a bridged Matrix room: the answer, when it is a command of an active
    /// plugin addressed as that plugin requires. `status` is asked only for `!status`.
    pub(super) fn on_matrix(
        &self,
        ev: &IncomingMessage,
        my_node: u32,
        now_secs: u32,
        status: impl FnOnce() -> Status,
    ) -> Option<String> {
        // Another relay's message (a mesh text relayed by it) is never a command for us.
        if ev.content.get("meshtastic_meshnet").is_some()
            || ev.content.get("mmrelay_suppress").is_some()
        {
            return None;
        }
        let (mentioned, rest) = commands::addressed(&ev.body, &ev.content, &self.name);
        let cmd = commands::parse(rest)?;
        let plugin = self.plugin(cmd.plugin())?;
        if plugin.require_bot_mention && !mentioned {
            debug!(
                "{} in {} does not mention the bot; relayed as chat",
                cmd.plugin(),
                ev.room_id
            );
            return None;
        }
        info!(
            "Answering !{} from {} in {}",
            cmd.plugin(),
            ev.sender,
            ev.room_id
        );
        Some(match cmd {
            Command::Help(topic) => answers::help(&self.active(), topic.as_deref()),
            Command::Ping(word) => commands::pong(&word, self.cfg.mimic_mode),
            Command::Nodes => answers::nodes(&self.nodes, my_node, now_secs),
            Command::Health => answers::health(&self.nodes, my_node),
            Command::Telemetry(metric, node) => answers::telemetry(
                &self.history,
                &self.nodes,
                metric,
                node.as_deref(),
                now_secs,
            ),
            Command::Status => answers::status(&status()),
        })
    }
}

#[cfg(test)]
mod tests;
