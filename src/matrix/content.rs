//! Matrix event contents as plain JSON, sans-IO: reading the events the relay cares about
//! (text, notice, emote, replies, reactions, with any custom fields) and building the ones it
//! sends. Working on JSON keeps MMRelay's custom `meshtastic_*` fields intact both ways.

use serde_json::{json, Map, Value};

/// The kinds of room message the relay handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Text,
    Notice,
    Emote,
}

impl MessageKind {
    pub fn msgtype(self) -> &'static str {
        match self {
            MessageKind::Text => "m.text",
            MessageKind::Notice => "m.notice",
            MessageKind::Emote => "m.emote",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "m.text" => Some(MessageKind::Text),
            "m.notice" => Some(MessageKind::Notice),
            "m.emote" => Some(MessageKind::Emote),
            _ => None,
        }
    }
}

/// A room message from Matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingMessage {
    pub room_id: String,
    pub event_id: String,
    pub sender: String,
    /// The sender's display name in the room (the user id when unknown).
    pub sender_name: String,
    pub kind: MessageKind,
    pub body: String,
    pub formatted_body: Option<String>,
    /// The event this one replies to.
    pub in_reply_to: Option<String>,
    /// The whole content, custom fields included.
    pub content: Value,
    /// Milliseconds since the Unix epoch, as the server stamped it.
    pub origin_server_ts: u64,
    /// Whether it arrived encrypted.
    pub encrypted: bool,
}

/// A reaction (`m.reaction`, an annotation) from Matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingReaction {
    pub room_id: String,
    pub event_id: String,
    pub sender: String,
    pub sender_name: String,
    /// The event reacted to.
    pub relates_to: String,
    pub key: String,
    pub content: Value,
    pub origin_server_ts: u64,
    pub encrypted: bool,
}

/// An event the relay cares about.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    Message(IncomingMessage),
    Reaction(IncomingReaction),
}

impl Incoming {
    pub fn sender(&self) -> &str {
        match self {
            Incoming::Message(m) => &m.sender,
            Incoming::Reaction(r) => &r.sender,
        }
    }

    pub fn set_sender_name(&mut self, name: String) {
        match self {
            Incoming::Message(m) => m.sender_name = name,
            Incoming::Reaction(r) => r.sender_name = name,
        }
    }
}

/// Reads a (decrypted) timeline event. Edits, redacted and unknown events give `None`.
pub fn parse_event(room_id: &str, event: &Value, encrypted: bool) -> Option<Incoming> {
    let ty = event.get("type")?.as_str()?;
    let content = event.get("content")?;
    let event_id = event.get("event_id")?.as_str()?.to_string();
    let sender = event.get("sender")?.as_str()?.to_string();
    let ts = event
        .get("origin_server_ts")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let relates = content.get("m.relates_to");
    match ty {
        "m.room.message" => {
            let kind = MessageKind::parse(content.get("msgtype")?.as_str()?)?;
            // An edit repeats the message; the relay sends each message once.
            if relates
                .and_then(|r| r.get("rel_type"))
                .and_then(Value::as_str)
                == Some("m.replace")
            {
                return None;
            }
            let body = content.get("body")?.as_str()?.to_string();
            let formatted_body = (content.get("format").and_then(Value::as_str)
                == Some("org.matrix.custom.html"))
            .then(|| content.get("formatted_body").and_then(Value::as_str))
            .flatten()
            .map(str::to_string);
            let in_reply_to = relates
                .and_then(|r| r.get("m.in_reply_to"))
                .and_then(|r| r.get("event_id"))
                .and_then(Value::as_str)
                .map(str::to_string);
            Some(Incoming::Message(IncomingMessage {
                room_id: room_id.to_string(),
                event_id,
                sender_name: sender.clone(),
                sender,
                kind,
                body,
                formatted_body,
                in_reply_to,
                content: content.clone(),
                origin_server_ts: ts,
                encrypted,
            }))
        }
        "m.reaction" => {
            let r = relates?;
            if r.get("rel_type")?.as_str()? != "m.annotation" {
                return None;
            }
            Some(Incoming::Reaction(IncomingReaction {
                room_id: room_id.to_string(),
                event_id,
                sender_name: sender.clone(),
                sender,
                relates_to: r.get("event_id")?.as_str()?.to_string(),
                key: r.get("key")?.as_str()?.to_string(),
                content: content.clone(),
                origin_server_ts: ts,
                encrypted,
            }))
        }
        _ => None,
    }
}

/// Content of a room message; `extra` fields (such as MMRelay's `meshtastic_*`) are added at
/// the top level, and `reply_to` makes it a reply.
pub fn message(
    kind: MessageKind,
    body: &str,
    reply_to: Option<&str>,
    extra: &Map<String, Value>,
) -> Value {
    let mut c = Map::new();
    c.insert("msgtype".into(), json!(kind.msgtype()));
    c.insert("body".into(), json!(body));
    for (k, v) in extra {
        c.insert(k.clone(), v.clone());
    }
    if let Some(id) = reply_to {
        c.insert(
            "m.relates_to".into(),
            json!({"m.in_reply_to": {"event_id": id}}),
        );
    }
    Value::Object(c)
}

/// Content of an `m.reaction` to `event_id`.
pub fn reaction(event_id: &str, key: &str, extra: &Map<String, Value>) -> Value {
    let mut c = Map::new();
    for (k, v) in extra {
        c.insert(k.clone(), v.clone());
    }
    c.insert(
        "m.relates_to".into(),
        json!({"rel_type": "m.annotation", "event_id": event_id, "key": key}),
    );
    Value::Object(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_messages_replies_and_custom_fields() {
        let ev = json!({
            "type": "m.room.message", "event_id": "$e1", "sender": "@a:h", "origin_server_ts": 5,
            "content": {"msgtype": "m.emote", "body": "waves", "meshtastic_id": 42,
                        "format": "org.matrix.custom.html", "formatted_body": "<b>waves</b>",
                        "m.relates_to": {"m.in_reply_to": {"event_id": "$orig"}}}
        });
        let Some(Incoming::Message(m)) = parse_event("!r:h", &ev, true) else {
            panic!()
        };
        assert_eq!((m.kind, m.body.as_str()), (MessageKind::Emote, "waves"));
        assert_eq!(m.in_reply_to.as_deref(), Some("$orig"));
        assert_eq!(m.formatted_body.as_deref(), Some("<b>waves</b>"));
        assert_eq!(m.content["meshtastic_id"], 42);
        assert_eq!((m.origin_server_ts, m.encrypted), (5, true));
    }

    #[test]
    fn parses_reactions_and_skips_edits_and_other_events() {
        let r = json!({"type": "m.reaction", "event_id": "$r", "sender": "@a:h",
            "content": {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$t", "key": "\u{1F44D}"}}});
        let Some(Incoming::Reaction(r)) = parse_event("!r:h", &r, false) else {
            panic!()
        };
        assert_eq!((r.relates_to.as_str(), r.key.as_str()), ("$t", "\u{1F44D}"));
        let edit = json!({"type": "m.room.message", "event_id": "$x", "sender": "@a:h",
            "content": {"msgtype": "m.text", "body": "* fixed",
                        "m.relates_to": {"rel_type": "m.replace", "event_id": "$y"}}});
        assert_eq!(parse_event("!r:h", &edit, false), None);
        let image = json!({"type": "m.room.message", "event_id": "$i", "sender": "@a:h",
            "content": {"msgtype": "m.image", "body": "cat.png"}});
        assert_eq!(parse_event("!r:h", &image, false), None);
        assert_eq!(
            parse_event("!r:h", &json!({"type": "m.room.member"}), false),
            None
        );
    }

    #[test]
    fn builds_messages_and_reactions_that_parse_back() {
        let mut extra = Map::new();
        extra.insert("meshtastic_longname".into(), json!("Alice"));
        let c = message(MessageKind::Text, "hi", Some("$o"), &extra);
        let ev =
            json!({"type": "m.room.message", "event_id": "$n", "sender": "@b:h", "content": c});
        let Some(Incoming::Message(m)) = parse_event("!r:h", &ev, false) else {
            panic!()
        };
        assert_eq!(
            (m.body.as_str(), m.in_reply_to.as_deref()),
            ("hi", Some("$o"))
        );
        assert_eq!(m.content["meshtastic_longname"], "Alice");
        let c = reaction("$o", "\u{2764}", &extra);
        assert_eq!(c["m.relates_to"]["key"], "\u{2764}");
        assert_eq!(c["meshtastic_longname"], "Alice");
    }
}
