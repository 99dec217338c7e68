use super::*;
use crate::matrix::content::{IncomingMessage, IncomingReaction};

const ME: u32 = 0x0a0b0c0d;
const ALICE: u32 = 0x1111aaaa;

fn rules() -> Rules {
    Rules {
        meshnet_name: "TestNet".into(),
        bot_user_id: "@relay:h.org".into(),
        rooms: vec![
            ("!a:h.org".into(), 0),
            ("!b:h.org".into(), 1),
            ("!c:h.org".into(), 1),
        ],
        dm_room: None,
        matrix_prefix: Some("[{long}/{mesh}]: ".into()),
        mesh_prefix: Some("{display5}[M]: ".into()),
        broadcast_enabled: true,
        detection_sensor: false,
        reactions: true,
        replies: true,
        max_event_age_ms: 600_000,
    }
}

fn text(from: u32, channel: u32, t: &str) -> MeshText {
    MeshText {
        id: 77,
        from,
        to: BROADCAST,
        channel,
        portnum: PortNum::TextMessageApp as i32,
        text: t.into(),
        reply_id: 0,
        emoji: false,
    }
}

fn alice() -> Names {
    Names {
        long: "Alice Base".into(),
        short: "ALC".into(),
    }
}

fn none(_: u32) -> Option<MapEntry> {
    None
}

fn entry() -> MapEntry {
    MapEntry {
        mesh_id: 55,
        event_id: "$orig".into(),
        room_id: "!b:h.org".into(),
        text: "The original message that was rather long indeed, yes".into(),
        meshnet: "TestNet".into(),
    }
}

fn msg(room: &str, sender: &str, body: &str, content: Value) -> Incoming {
    Incoming::Message(IncomingMessage {
        room_id: room.into(),
        event_id: "$e".into(),
        sender: sender.into(),
        sender_name: "Bernadette".into(),
        kind: MessageKind::Text,
        body: body.into(),
        formatted_body: None,
        in_reply_to: None,
        content,
        origin_server_ts: 1_000_000,
        encrypted: true,
    })
}

#[test]
fn templates_fill_variables_and_cut_to_n_characters() {
    let v = [("long", "Ünïcode Name"), ("mesh", "MeshNet")];
    assert_eq!(
        format_template("[{long}/{mesh}]: ", &v),
        "[Ünïcode Name/MeshNet]: "
    );
    assert_eq!(
        format_template("{long3}|{mesh20}|{other}", &v),
        "Ünï|MeshNet|{other}"
    );
    assert_eq!(format_template("no vars", &v), "no vars");
}

#[test]
fn truncation_respects_character_boundaries() {
    let s = "aé😀";
    assert_eq!(truncate_utf8(s, 10), s);
    assert_eq!(truncate_utf8(s, 6), "aé");
    assert_eq!(truncate_utf8(s, 3), "aé");
    assert_eq!(truncate_utf8(s, 2), "a");
    let long = "😀".repeat(100);
    let cut = truncate_utf8(&long, 233);
    assert_eq!(cut.len(), 232);
}

#[test]
fn mesh_text_goes_to_every_room_of_its_channel_with_mmrelay_fields() {
    let out = rules()
        .mesh_to_matrix(&text(ALICE, 1, "hello"), &alice(), ME, &none)
        .unwrap();
    let rooms: Vec<_> = out.iter().map(|o| o.room_id.as_str()).collect();
    assert_eq!(rooms, vec!["!b:h.org", "!c:h.org"]);
    let c = &out[0].content;
    assert_eq!(c["body"], "[Alice Base/TestNet]: hello");
    assert_eq!(c["msgtype"], "m.text");
    assert_eq!(c["meshtastic_longname"], "Alice Base");
    assert_eq!(c["meshtastic_shortname"], "ALC");
    assert_eq!(c["meshtastic_meshnet"], "TestNet");
    assert_eq!(c["meshtastic_portnum"], "TEXT_MESSAGE_APP");
    assert_eq!(c["meshtastic_id"], 77);
    assert_eq!(c["meshtastic_text"], "hello");
    assert!(c.get("m.relates_to").is_none());
}

#[test]
fn mesh_side_skips() {
    let r = rules();
    assert_eq!(
        r.mesh_to_matrix(&text(ME, 0, "x"), &alice(), ME, &none),
        Err(Skip::OwnNode)
    );
    assert_eq!(
        r.mesh_to_matrix(&text(ALICE, 5, "x"), &alice(), ME, &none),
        Err(Skip::NotMapped)
    );
    let mut dm = text(ALICE, 0, "psst");
    dm.to = ME;
    assert_eq!(
        r.mesh_to_matrix(&dm, &alice(), ME, &none),
        Err(Skip::DirectMessage)
    );
    let with_dm = Rules {
        dm_room: Some("!dm:h.org".into()),
        ..rules()
    };
    assert_eq!(
        with_dm.mesh_to_matrix(&dm, &alice(), ME, &none).unwrap()[0].room_id,
        "!dm:h.org"
    );
    let mut det = text(ALICE, 0, "motion");
    det.portnum = PortNum::DetectionSensorApp as i32;
    assert_eq!(
        r.mesh_to_matrix(&det, &alice(), ME, &none),
        Err(Skip::PortNotRelayed)
    );
    let on = Rules {
        detection_sensor: true,
        ..rules()
    };
    assert_eq!(
        on.mesh_to_matrix(&det, &alice(), ME, &none).unwrap()[0].content["meshtastic_portnum"],
        "DETECTION_SENSOR_APP"
    );
    let unknown = Names::unknown(0x12345678);
    assert_eq!(
        (unknown.long.as_str(), unknown.short.as_str()),
        ("!12345678", "5678")
    );
}

#[test]
fn mesh_reactions_and_replies() {
    let r = rules();
    let found = |id: u32| (id == 55).then(entry);
    let mut react = text(ALICE, 1, "👍");
    react.reply_id = 55;
    react.emoji = true;
    let out = r.mesh_to_matrix(&react, &alice(), ME, &found).unwrap();
    assert_eq!(out.len(), 1);
    let c = &out[0].content;
    assert_eq!(c["msgtype"], "m.emote");
    assert_eq!(
        c["body"],
        "[Alice Base/TestNet]: reacted 👍 to \"The original message that was rather lon...\""
    );
    assert_eq!(
        (
            c["meshtastic_replyId"].clone(),
            c["meshtastic_emoji"].clone()
        ),
        (json!(55), json!(1))
    );
    // Unknown original: plain text.
    let out = r.mesh_to_matrix(&react, &alice(), ME, &none).unwrap();
    assert_eq!(out[0].content["body"], "[Alice Base/TestNet]: 👍");
    let mut reply = text(ALICE, 1, "agreed");
    reply.reply_id = 55;
    let out = r.mesh_to_matrix(&reply, &alice(), ME, &found).unwrap();
    assert_eq!(
        out[0].content["m.relates_to"]["m.in_reply_to"]["event_id"],
        "$orig"
    );
    assert_eq!(out[0].content["meshtastic_replyId"], 55);
    assert!(
        out[1].content.get("m.relates_to").is_none(),
        "only the original's room gets the reply relation"
    );
    let off = Rules {
        replies: false,
        reactions: false,
        ..rules()
    };
    let out = off.mesh_to_matrix(&reply, &alice(), ME, &found).unwrap();
    assert!(out[0].content.get("m.relates_to").is_none());
}

#[test]
fn matrix_text_goes_to_the_mapped_channel_with_prefix() {
    let r = rules();
    let out = r
        .matrix_to_mesh(
            &msg("!b:h.org", "@bern:h.org", "hi mesh", json!({})),
            1_000_500,
            &|_| None,
        )
        .unwrap();
    assert_eq!(
        out,
        ToMesh {
            channel: 1,
            text: "Berna[M]: hi mesh".into(),
            reply_id: 0
        }
    );
    let p = Rules {
        mesh_prefix: Some("{user}|{username}|{server}|{display}: ".into()),
        ..rules()
    };
    let out = p
        .matrix_to_mesh(
            &msg("!a:h.org", "@bern:h.org", "x", json!({})),
            1_000_500,
            &|_| None,
        )
        .unwrap();
    assert_eq!(out.text, "@bern:h.org|bern|h.org|Bernadette: x");
    let none = Rules {
        mesh_prefix: None,
        ..rules()
    };
    let out = none
        .matrix_to_mesh(
            &msg("!a:h.org", "@bern:h.org", "x", json!({})),
            1_000_500,
            &|_| None,
        )
        .unwrap();
    assert_eq!(out.text, "x");
    let long = "é".repeat(300);
    let out = r
        .matrix_to_mesh(
            &msg("!a:h.org", "@bern:h.org", &long, json!({})),
            1_000_500,
            &|_| None,
        )
        .unwrap();
    assert!(out.text.len() <= 233 && out.text.is_char_boundary(out.text.len()));
}

#[test]
fn loop_prevention_and_other_matrix_skips() {
    let r = rules();
    let now = 1_000_500;
    let f = |room: &str, sender: &str, c: Value| {
        r.matrix_to_mesh(&msg(room, sender, "x", c), now, &|_| None)
    };
    assert_eq!(f("!a:h.org", "@relay:h.org", json!({})), Err(Skip::OwnUser));
    assert_eq!(
        f("!a:h.org", "@u:h.org", json!({"mmrelay_suppress": true})),
        Err(Skip::Suppressed)
    );
    assert_eq!(
        f(
            "!a:h.org",
            "@u:h.org",
            json!({"meshtastic_meshnet": "TestNet"})
        ),
        Err(Skip::OwnMeshnet)
    );
    assert_eq!(f("!z:h.org", "@u:h.org", json!({})), Err(Skip::NotMapped));
    let off = Rules {
        broadcast_enabled: false,
        ..rules()
    };
    assert_eq!(
        off.matrix_to_mesh(&msg("!a:h.org", "@u:h.org", "x", json!({})), now, &|_| None),
        Err(Skip::BroadcastDisabled)
    );
    assert_eq!(
        r.matrix_to_mesh(
            &msg("!a:h.org", "@u:h.org", "x", json!({})),
            1_000_000 + 600_001,
            &|_| None
        ),
        Err(Skip::TooOld)
    );
}

#[test]
fn remote_meshnet_messages_get_their_short_prefix() {
    let r = rules();
    let c = json!({"meshtastic_meshnet": "OtherMesh", "meshtastic_longname": "Zacharias", "meshtastic_text": "from afar"});
    let out = r
        .matrix_to_mesh(
            &msg(
                "!a:h.org",
                "@otherrelay:h.org",
                "[Zacharias/OtherMesh]: from afar",
                c,
            ),
            1_000_500,
            &|_| None,
        )
        .unwrap();
    assert_eq!(out.text, "Zacha/Othe: from afar");
}

#[test]
fn reply_fallbacks_are_stripped_and_replies_map_to_mesh_ids() {
    assert_eq!(
        strip_reply_fallback("> <@a:h> original\n> more\n\nmy answer"),
        "my answer"
    );
    assert_eq!(strip_reply_fallback("plain > text"), "plain > text");
    let r = rules();
    let found = |e: &str| (e == "$orig").then(entry);
    let Incoming::Message(mut m) = msg(
        "!b:h.org",
        "@u:h.org",
        "> <@a:h> original\n\nsure",
        json!({}),
    ) else {
        unreachable!()
    };
    m.in_reply_to = Some("$orig".into());
    let out = r
        .matrix_to_mesh(&Incoming::Message(m.clone()), 1_000_500, &found)
        .unwrap();
    assert_eq!((out.text.as_str(), out.reply_id), ("Berna[M]: sure", 55));
    let off = Rules {
        replies: false,
        ..rules()
    };
    assert_eq!(
        off.matrix_to_mesh(&Incoming::Message(m), 1_000_500, &found)
            .unwrap()
            .reply_id,
        0
    );
}

#[test]
fn matrix_reactions_become_reaction_texts() {
    let r = rules();
    let react = Incoming::Reaction(IncomingReaction {
        room_id: "!b:h.org".into(),
        event_id: "$r".into(),
        sender: "@u:h.org".into(),
        sender_name: "Bernadette".into(),
        relates_to: "$orig".into(),
        key: "❤️".into(),
        content: json!({}),
        origin_server_ts: 1_000_000,
        encrypted: false,
    });
    let found = |e: &str| (e == "$orig").then(entry);
    let out = r.matrix_to_mesh(&react, 1_000_500, &found).unwrap();
    assert_eq!(
        out.text,
        "Berna[M]: reacted ❤️ to \"The original message that was rather lon...\""
    );
    assert_eq!(out.channel, 1);
    assert_eq!(out.reply_id, 55, "a reply to the original packet");
    assert_eq!(
        r.matrix_to_mesh(&react, 1_000_500, &|_| None),
        Err(Skip::UnknownOriginal)
    );
    let off = Rules {
        reactions: false,
        ..rules()
    };
    assert_eq!(
        off.matrix_to_mesh(&react, 1_000_500, &found),
        Err(Skip::InteractionsDisabled)
    );
}
