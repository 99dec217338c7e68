//! Reading bot commands, sans-IO: whether a Matrix message is addressed to the bot (its user
//! id, display name or localpart at the start, a mention pill, or `m.mentions`), the command
//! word after the `!` (any case) and its arguments, and the per-node rate limit of answers
//! to the mesh.

use std::collections::HashMap;

use serde_json::Value;

use super::telemetry::Metric;

/// A command the relay answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `!help [command]`
    Help(Option<String>),
    /// `!ping`, with the word as typed (for `mimic_mode`).
    Ping(String),
    Nodes,
    Health,
    /// `!batteryLevel`, `!voltage`, `!airUtilTx` with an optional node.
    Telemetry(Metric, Option<String>),
    Status,
}

impl Command {
    /// The `plugins.<name>` that switches it on.
    pub fn plugin(&self) -> &'static str {
        match self {
            Command::Help(_) => "help",
            Command::Ping(_) => "ping",
            Command::Nodes => "nodes",
            Command::Health => "health",
            Command::Telemetry(..) => "telemetry",
            Command::Status => "status",
        }
    }
}

/// The command words, as shown in help.
pub const WORDS: &[(&str, &str)] = &[
    ("help", "help"),
    ("ping", "ping"),
    ("nodes", "nodes"),
    ("health", "health"),
    ("batteryLevel", "telemetry"),
    ("voltage", "telemetry"),
    ("airUtilTx", "telemetry"),
    ("status", "status"),
];

/// Reads `!word args` at the start of `text`; `None` when it is not one of our commands.
pub fn parse(text: &str) -> Option<Command> {
    let rest = text.trim_start().strip_prefix('!')?;
    let (word, args) = match rest.split_once(char::is_whitespace) {
        Some((w, a)) => (w, a.trim()),
        None => (rest, ""),
    };
    let arg = (!args.is_empty()).then(|| args.to_string());
    // Punctuation after the word ("!ping?") still names the command.
    let bare = word.trim_end_matches(|c: char| c.is_ascii_punctuation());
    let cmd = match bare.to_ascii_lowercase().as_str() {
        "help" => Command::Help(arg.map(|a| a.trim_start_matches('!').to_string())),
        "ping" => Command::Ping(word.to_string()),
        "nodes" => Command::Nodes,
        "health" => Command::Health,
        "batterylevel" => Command::Telemetry(Metric::BatteryLevel, arg),
        "voltage" => Command::Telemetry(Metric::Voltage, arg),
        "airutiltx" => Command::Telemetry(Metric::AirUtilTx, arg),
        "status" => Command::Status,
        _ => return None,
    };
    Some(cmd)
}

/// The answer to a ping: `pong!`, or with `mimic` the ping's own case and punctuation.
pub fn pong(word: &str, mimic: bool) -> String {
    if !mimic {
        return "pong!".into();
    }
    let mut out = String::new();
    for c in word.chars() {
        let m = match c {
            'i' => 'o',
            'I' => 'O',
            c => c,
        };
        out.push(m);
    }
    out
}

/// The bot as messages may name it.
#[derive(Debug, Clone)]
pub struct BotName {
    pub user_id: String,
    pub display_name: Option<String>,
}

impl BotName {
    fn localpart(&self) -> &str {
        self.user_id
            .trim_start_matches('@')
            .split(':')
            .next()
            .unwrap_or("")
    }
}

/// Strips `name` at the start of `text` (any case) when a separator or the end follows.
fn strip_name<'t>(text: &'t str, name: &str) -> Option<&'t str> {
    if name.is_empty() || text.len() < name.len() || !text.is_char_boundary(name.len()) {
        return None;
    }
    let (head, rest) = text.split_at(name.len());
    if !head.eq_ignore_ascii_case(name) {
        return None;
    }
    match rest.chars().next() {
        None => Some(rest),
        Some(c) if c == ':' || c == ',' || c.is_whitespace() => {
            Some(rest.trim_start_matches([':', ',']).trim_start())
        }
        Some(_) => None,
    }
}

/// Whether a Matrix message is addressed to the bot, and the text after the mention.
pub fn addressed<'b>(body: &'b str, content: &Value, bot: &BotName) -> (bool, &'b str) {
    let body = body.trim_start();
    let lead = [
        Some(bot.user_id.as_str()),
        bot.display_name.as_deref(),
        Some(bot.localpart()),
    ];
    let mut rest = body;
    let mut mentioned = false;
    for name in lead.into_iter().flatten() {
        if let Some(r) = strip_name(body, name) {
            rest = r;
            mentioned = true;
            break;
        }
    }
    let listed = content
        .get("m.mentions")
        .and_then(|m| m.get("user_ids"))
        .and_then(Value::as_array)
        .is_some_and(|ids| ids.iter().any(|i| i.as_str() == Some(bot.user_id.as_str())));
    let pill = content
        .get("formatted_body")
        .and_then(Value::as_str)
        .is_some_and(|f| {
            f.contains(&format!("matrix.to/#/{}", bot.user_id))
                || f.contains(&format!(
                    "matrix.to/#/{}",
                    bot.user_id.replacen('@', "%40", 1)
                ))
        });
    (mentioned || listed || pill, rest)
}

/// Answers to the mesh per node: a burst of [`BURST`], then one per [`REFILL_MS`].
pub const BURST: u32 = 3;
pub const REFILL_MS: u64 = 20_000;
/// Nodes tracked at most (a full table forgets the node that asked longest ago).
const TRACKED: usize = 256;

/// What the rate limit says of one more answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// No answer; `first`: the first refusal since the node's last answer (worth a log line).
    Deny {
        first: bool,
    },
}

#[derive(Debug, Default)]
pub struct RateLimit {
    /// node -> (answers left, when last refilled in ms, refused since the last answer)
    nodes: HashMap<u32, (u32, u64, bool)>,
}

impl RateLimit {
    /// Whether `node` may get an answer at `now_ms` (monotonic); takes one if so.
    pub fn check(&mut self, node: u32, now_ms: u64) -> Verdict {
        if !self.nodes.contains_key(&node) && self.nodes.len() >= TRACKED {
            if let Some(oldest) = self.nodes.iter().min_by_key(|(_, v)| v.1).map(|(k, _)| *k) {
                self.nodes.remove(&oldest);
            }
        }
        let (left, at, refused) = self.nodes.entry(node).or_insert((BURST, now_ms, false));
        let earned = (now_ms.saturating_sub(*at) / REFILL_MS) as u32;
        if earned > 0 {
            *left = (*left + earned).min(BURST);
            *at += u64::from(earned) * REFILL_MS;
        }
        if *left == 0 {
            let first = !*refused;
            *refused = true;
            return Verdict::Deny { first };
        }
        if *left == BURST {
            *at = now_ms;
        }
        *left -= 1;
        *refused = false;
        Verdict::Allow
    }

    #[cfg(test)]
    fn allow(&mut self, node: u32, now_ms: u64) -> bool {
        self.check(node, now_ms) == Verdict::Allow
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn commands_any_case_with_arguments_and_punctuation() {
        assert_eq!(parse("!ping"), Some(Command::Ping("ping".into())));
        assert_eq!(parse("  !PiNg?"), Some(Command::Ping("PiNg?".into())));
        assert_eq!(parse("!ping junk junk"), Some(Command::Ping("ping".into())));
        assert_eq!(
            parse("!HELP nodes"),
            Some(Command::Help(Some("nodes".into())))
        );
        assert_eq!(
            parse("!help !ping"),
            Some(Command::Help(Some("ping".into())))
        );
        assert_eq!(parse("!help"), Some(Command::Help(None)));
        assert_eq!(
            parse("!batteryLevel ALC"),
            Some(Command::Telemetry(Metric::BatteryLevel, Some("ALC".into())))
        );
        assert_eq!(
            parse("!AIRUTILTX"),
            Some(Command::Telemetry(Metric::AirUtilTx, None))
        );
        assert_eq!(
            parse("!voltage"),
            Some(Command::Telemetry(Metric::Voltage, None))
        );
        assert_eq!(parse("!status"), Some(Command::Status));
        for not in [
            "ping",
            "!pingpong",
            "!weather",
            "! ping",
            "",
            "!",
            "hello !ping",
        ] {
            assert_eq!(parse(not), None, "{not:?}");
        }
        assert_eq!(
            Command::Telemetry(Metric::Voltage, None).plugin(),
            "telemetry"
        );
    }

    #[test]
    fn mimic_mode_copies_case_and_punctuation() {
        assert_eq!(pong("ping", false), "pong!");
        assert_eq!(pong("PING", false), "pong!");
        assert_eq!(pong("ping", true), "pong");
        assert_eq!(pong("PiNg??", true), "PoNg??");
        assert_eq!(pong("PING!", true), "PONG!");
    }

    #[test]
    fn mentions_by_id_name_localpart_pill_or_m_mentions() {
        let bot = BotName {
            user_id: "@relaybot:example.org".into(),
            display_name: Some("Mesh Relay".into()),
        };
        let none = json!({});
        assert_eq!(
            addressed("@relaybot:example.org: !ping", &none, &bot),
            (true, "!ping")
        );
        assert_eq!(
            addressed("mesh relay, !nodes", &none, &bot),
            (true, "!nodes")
        );
        assert_eq!(
            addressed("relaybot !health", &none, &bot),
            (true, "!health")
        );
        assert_eq!(
            addressed("RelayBot:!health", &none, &bot),
            (true, "!health")
        );
        // Not the bot: another user, or a name that only begins like it.
        assert_eq!(
            addressed("@alice:example.org: !ping", &none, &bot),
            (false, "@alice:example.org: !ping")
        );
        assert!(!addressed("relaybots !ping", &none, &bot).0);
        assert_eq!(addressed("!ping", &none, &bot), (false, "!ping"));
        // m.mentions and a pill count, wherever the name is.
        let listed = json!({"m.mentions": {"user_ids": ["@relaybot:example.org"]}});
        assert_eq!(addressed("!ping", &listed, &bot), (true, "!ping"));
        let other = json!({"m.mentions": {"user_ids": ["@alice:example.org"]}});
        assert!(!addressed("!ping", &other, &bot).0);
        let pill = json!({
            "formatted_body": "<a href=\"https://matrix.to/#/%40relaybot:example.org\">Bot</a>: !ping"
        });
        assert_eq!(addressed("Bot: !ping", &pill, &bot), (true, "Bot: !ping"));
        // Multi-byte text around a name never splits a character.
        assert!(!addressed("Mesh Relé !ping", &none, &bot).0);
        assert!(!addressed("é", &none, &bot).0);
    }

    #[test]
    fn rate_limit_per_node_refills() {
        let mut r = RateLimit::default();
        let allowed = (0..50).filter(|_| r.allow(7, 1000)).count();
        assert_eq!(allowed as u32, BURST);
        assert!(r.allow(8, 1000), "another node has its own budget");
        assert!(!r.allow(7, 1000 + REFILL_MS - 1));
        assert!(r.allow(7, 1000 + REFILL_MS));
        assert!(!r.allow(7, 1000 + REFILL_MS));
        // Long quiet: a full burst again, never more.
        let later = 1000 + 100 * REFILL_MS;
        assert_eq!((0..10).filter(|_| r.allow(7, later)).count() as u32, BURST);
        for n in 0..(TRACKED as u32 + 10) {
            r.allow(1000 + n, later);
        }
        assert!(r.nodes.len() <= TRACKED);
        let mut r = RateLimit::default();
        for _ in 0..BURST {
            assert_eq!(r.check(9, 0), Verdict::Allow);
        }
        assert_eq!(r.check(9, 0), Verdict::Deny { first: true });
        assert_eq!(r.check(9, 0), Verdict::Deny { first: false });
        assert_eq!(r.check(9, REFILL_MS), Verdict::Allow);
        assert_eq!(r.check(9, REFILL_MS), Verdict::Deny { first: true });
    }
}
