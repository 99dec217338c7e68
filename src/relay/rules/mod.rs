//! The relay rules as plain functions: prefixes, truncation, channel <-> room routing, loop
//! prevention, remote meshnets, replies and reactions, MMRelay's content fields. No I/O: the
//! caller passes what the store knows through the `lookup` functions.

use serde_json::{json, Map, Value};

use crate::matrix::content::{Incoming, MessageKind};
use crate::mesh::proto::{PortNum, BROADCAST, DATA_PAYLOAD_LEN};
use crate::mesh::radio::node_id;
pub use crate::store::{MapEntry, Names};

/// The rules' settings (from the config, with room ids resolved).
#[derive(Debug, Clone)]
pub struct Rules {
    pub meshnet_name: String,
    pub bot_user_id: String,
    /// (room id, channel)
    pub rooms: Vec<(String, u32)>,
    pub dm_room: Option<String>,
    pub matrix_prefix: Option<String>,
    pub mesh_prefix: Option<String>,
    pub broadcast_enabled: bool,
    pub detection_sensor: bool,
    pub reactions: bool,
    pub replies: bool,
    /// Matrix events older than this (milliseconds) are not sent to the mesh.
    pub max_event_age_ms: u64,
}

/// Why something was not relayed (counted and logged by the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    OwnNode,
    OwnUser,
    Suppressed,
    OwnMeshnet,
    NotMapped,
    PortNotRelayed,
    DirectMessage,
    BroadcastDisabled,
    TooOld,
    InteractionsDisabled,
    UnknownOriginal,
    Empty,
}

/// Cuts `s` to at most `max` bytes at a character boundary.
pub fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn first_chars(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Fills `{name}` and `{nameN}` (the first N characters) from `vars`.
pub fn format_template(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return out;
        };
        let name = &after[..close];
        let base = name.trim_end_matches(|c: char| c.is_ascii_digit());
        let n: Option<usize> = name[base.len()..].parse().ok();
        match vars.iter().find(|(k, _)| *k == base) {
            Some((_, v)) => out.push_str(n.map(|n| first_chars(v, n)).unwrap_or(v)),
            None => out.push_str(&rest[open..open + close + 2]),
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

/// Removes a Matrix reply fallback (leading `> ` lines and the blank line after them).
pub fn strip_reply_fallback(body: &str) -> &str {
    if !body.starts_with("> ") {
        return body;
    }
    let mut rest = body;
    while rest.starts_with('>') {
        rest = rest.split_once('\n').map(|(_, r)| r).unwrap_or("");
    }
    rest.strip_prefix('\n').unwrap_or(rest)
}

/// "first 40 characters..." for quoting an original in a reaction.
pub fn abbreviate(text: &str) -> String {
    let cut = first_chars(text, 40);
    if cut.len() < text.len() {
        format!("{cut}...")
    } else {
        cut.to_string()
    }
}

/// A text from the mesh, as the relay sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshText {
    pub id: u32,
    pub from: u32,
    pub to: u32,
    pub channel: u32,
    pub portnum: i32,
    pub text: String,
    pub reply_id: u32,
    pub emoji: bool,
}

impl Names {
    pub fn unknown(num: u32) -> Names {
        let id = node_id(num);
        Names {
            long: id.clone(),
            short: id[id.len() - 4..].to_string(),
        }
    }
}

/// A message to post in a Matrix room.
#[derive(Debug, Clone, PartialEq)]
pub struct ToMatrix {
    pub room_id: String,
    pub content: Value,
    /// The original text (for the message map).
    pub text: String,
}

/// A text to send to the mesh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToMesh {
    pub channel: u32,
    pub text: String,
    pub reply_id: u32,
}

fn portnum_name(p: i32) -> String {
    PortNum::try_from(p)
        .map(|p| match p {
            PortNum::TextMessageApp => "TEXT_MESSAGE_APP".to_string(),
            PortNum::DetectionSensorApp => "DETECTION_SENSOR_APP".to_string(),
            other => format!("{other:?}"),
        })
        .unwrap_or_else(|_| p.to_string())
}

impl Rules {
    fn rooms_for(&self, channel: u32) -> Vec<&str> {
        self.rooms
            .iter()
            .filter(|(_, c)| *c == channel)
            .map(|(r, _)| r.as_str())
            .collect()
    }

    /// Whether `room` is bridged (a channel's room or the direct-message room).
    pub fn bridges(&self, room: &str) -> bool {
        self.channel_of(room).is_some() || self.dm_room.as_deref() == Some(room)
    }

    fn channel_of(&self, room: &str) -> Option<u32> {
        self.rooms.iter().find(|(r, _)| r == room).map(|(_, c)| *c)
    }

    fn matrix_prefix(&self, n: &Names) -> String {
        self.matrix_prefix
            .as_deref()
            .map(|t| {
                format_template(
                    t,
                    &[
                        ("long", &n.long),
                        ("short", &n.short),
                        ("mesh", &self.meshnet_name),
                    ],
                )
            })
            .unwrap_or_default()
    }

    /// Mesh -> Matrix: what to post for a text from the mesh. `lookup` finds an earlier
    /// relayed message by its mesh packet id.
    pub fn mesh_to_matrix(
        &self,
        m: &MeshText,
        names: &Names,
        my_node: u32,
        lookup: &dyn Fn(u32) -> Option<MapEntry>,
    ) -> Result<Vec<ToMatrix>, Skip> {
        if m.from == my_node {
            return Err(Skip::OwnNode);
        }
        let port = PortNum::try_from(m.portnum);
        match port {
            Ok(PortNum::TextMessageApp) => {}
            Ok(PortNum::DetectionSensorApp) if self.detection_sensor => {}
            _ => return Err(Skip::PortNotRelayed),
        }
        if m.text.trim().is_empty() {
            return Err(Skip::Empty);
        }
        let rooms: Vec<String> = if m.to == BROADCAST {
            self.rooms_for(m.channel)
                .into_iter()
                .map(str::to_string)
                .collect()
        } else if m.to == my_node {
            match &self.dm_room {
                Some(r) => vec![r.clone()],
                None => return Err(Skip::DirectMessage),
            }
        } else {
            return Err(Skip::DirectMessage);
        };
        if rooms.is_empty() {
            return Err(Skip::NotMapped);
        }
        let prefix = self.matrix_prefix(names);
        let mut fields = Map::new();
        fields.insert("meshtastic_longname".into(), json!(names.long));
        fields.insert("meshtastic_shortname".into(), json!(names.short));
        fields.insert("meshtastic_meshnet".into(), json!(self.meshnet_name));
        fields.insert("meshtastic_portnum".into(), json!(portnum_name(m.portnum)));
        fields.insert("meshtastic_id".into(), json!(m.id));
        fields.insert("meshtastic_text".into(), json!(m.text));
        let original = (m.reply_id != 0).then(|| lookup(m.reply_id)).flatten();
        let mut out = Vec::new();
        if m.emoji && m.reply_id != 0 && self.reactions {
            if let Some(orig) = &original {
                let mut f = fields.clone();
                f.insert("meshtastic_replyId".into(), json!(m.reply_id));
                f.insert("meshtastic_text".into(), json!(orig.text));
                f.insert("meshtastic_emoji".into(), json!(1));
                let body = format!(
                    "{prefix}reacted {} to \"{}\"",
                    m.text,
                    abbreviate(&orig.text)
                );
                let content = crate::matrix::content::message(MessageKind::Emote, &body, None, &f);
                return Ok(vec![ToMatrix {
                    room_id: orig.room_id.clone(),
                    content,
                    text: m.text.clone(),
                }]);
            }
        }
        let reply_to = match (&original, m.emoji) {
            (Some(o), false) if self.replies => {
                fields.insert("meshtastic_replyId".into(), json!(m.reply_id));
                Some(o)
            }
            _ => None,
        };
        let body = format!("{prefix}{}", m.text);
        for room in rooms {
            let in_reply_to = reply_to
                .filter(|o| o.room_id == room)
                .map(|o| o.event_id.as_str());
            let content =
                crate::matrix::content::message(MessageKind::Text, &body, in_reply_to, &fields);
            out.push(ToMatrix {
                room_id: room,
                content,
                text: m.text.clone(),
            });
        }
        Ok(out)
    }

    fn mesh_prefix(&self, display: &str, user: &str) -> String {
        let Some(t) = &self.mesh_prefix else {
            return String::new();
        };
        let username = user.trim_start_matches('@').split(':').next().unwrap_or("");
        let server = user.split_once(':').map(|(_, s)| s).unwrap_or("");
        format_template(
            t,
            &[
                ("display", display),
                ("user", user),
                ("username", username),
                ("server", server),
            ],
        )
    }

    /// Matrix -> mesh: what to send for an event from a bridged room. `now_ms` is the current
    /// time; `lookup` finds a relayed message by its Matrix event id.
    pub fn matrix_to_mesh(
        &self,
        ev: &Incoming,
        now_ms: u64,
        lookup: &dyn Fn(&str) -> Option<MapEntry>,
    ) -> Result<ToMesh, Skip> {
        let (room, sender, content, ts) = match ev {
            Incoming::Message(m) => (&m.room_id, &m.sender, &m.content, m.origin_server_ts),
            Incoming::Reaction(r) => (&r.room_id, &r.sender, &r.content, r.origin_server_ts),
        };
        if *sender == self.bot_user_id {
            return Err(Skip::OwnUser);
        }
        if content.get("mmrelay_suppress").and_then(Value::as_bool) == Some(true) {
            return Err(Skip::Suppressed);
        }
        let meshnet = content.get("meshtastic_meshnet").and_then(Value::as_str);
        if meshnet == Some(self.meshnet_name.as_str()) {
            return Err(Skip::OwnMeshnet);
        }
        let channel = self.channel_of(room).ok_or(Skip::NotMapped)?;
        if !self.broadcast_enabled {
            return Err(Skip::BroadcastDisabled);
        }
        if ts > 0 && now_ms.saturating_sub(ts) > self.max_event_age_ms {
            return Err(Skip::TooOld);
        }
        let limit = DATA_PAYLOAD_LEN;
        match ev {
            Incoming::Reaction(r) => {
                if !self.reactions {
                    return Err(Skip::InteractionsDisabled);
                }
                let orig = lookup(&r.relates_to).ok_or(Skip::UnknownOriginal)?;
                let prefix = self.mesh_prefix(&r.sender_name, &r.sender);
                let text = format!(
                    "{prefix}reacted {} to \"{}\"",
                    r.key,
                    abbreviate(&orig.text)
                );
                // A reply to the original packet, as MMRelay sends it, so radios thread it.
                Ok(ToMesh {
                    channel,
                    text: truncate_utf8(&text, limit).to_string(),
                    reply_id: orig.mesh_id,
                })
            }
            Incoming::Message(m) => {
                // A message relayed by another meshnet's relay: its sender's short prefix.
                let remote_long = content.get("meshtastic_longname").and_then(Value::as_str);
                let (prefix, body) = match (meshnet, remote_long) {
                    (Some(net), Some(long)) => {
                        let text = content
                            .get("meshtastic_text")
                            .and_then(Value::as_str)
                            .unwrap_or_else(|| strip_reply_fallback(&m.body));
                        (
                            format!("{}/{}: ", first_chars(long, 5), first_chars(net, 4)),
                            text.to_string(),
                        )
                    }
                    _ => {
                        let body = strip_reply_fallback(&m.body);
                        let body = match m.kind {
                            MessageKind::Emote => format!("* {body}"),
                            _ => body.to_string(),
                        };
                        (self.mesh_prefix(&m.sender_name, &m.sender), body)
                    }
                };
                if body.trim().is_empty() {
                    return Err(Skip::Empty);
                }
                let reply_id = match &m.in_reply_to {
                    Some(e) if self.replies => lookup(e).map(|o| o.mesh_id).unwrap_or(0),
                    _ => 0,
                };
                let text = format!("{prefix}{body}");
                Ok(ToMesh {
                    channel,
                    text: truncate_utf8(&text, limit).to_string(),
                    reply_id,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests;
