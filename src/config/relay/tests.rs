use super::*;

const GOOD: &str = "\
matrix:
  homeserver: https://matrix.example.org
  bot_user_id: \"@relay:example.org\"
  e2ee:
    enabled: true
matrix_rooms:
  - id: \"!abc:example.org\"
    meshtastic_channel: 0
  - id: \"#ops:example.org\"
    meshtastic_channel: 2
meshtastic:
  connection_type: network
  host: 192.168.1.50
  meshnet_name: TestNet
  broadcast_enabled: true
  message_interactions:
    reactions: true
    replies: false
  ble_address: AA:BB
logging:
  level: debug
plugins:
  ping:
    active: true
";

fn no_env(_: &str) -> Option<String> {
    None
}

#[test]
fn reads_mmrelay_config_with_defaults_and_warns_about_unknown_keys() {
    let l = load_relay_config(GOOD, Path::new("/h"), &no_env).unwrap();
    let c = &l.config;
    assert_eq!(c.rooms.len(), 2);
    assert_eq!(
        c.rooms[1],
        RoomRoute {
            id: "#ops:example.org".into(),
            channel: 2
        }
    );
    assert_eq!(
        c.endpoint,
        Endpoint::Tcp {
            host: "192.168.1.50".into(),
            port: 4403
        }
    );
    assert_eq!(c.meshnet_name, "TestNet");
    assert_eq!(
        (c.reactions, c.replies, c.detection_sensor),
        (true, false, false)
    );
    assert_eq!(c.message_delay, Duration::from_millis(2500));
    assert_eq!(c.matrix_prefix.as_deref(), Some(DEFAULT_MATRIX_PREFIX));
    assert_eq!(c.mesh_prefix.as_deref(), Some(DEFAULT_MESH_PREFIX));
    assert_eq!(c.db_path, PathBuf::from("/h/database/meshtastic.sqlite"));
    assert_eq!(c.msgs_to_keep, 500);
    assert_eq!(c.max_event_age, Duration::from_secs(600));
    assert_eq!(l.ignored, vec!["meshtastic.ble_address".to_string()]);
    assert!(c.plugins.ping.active && c.plugins.ping.require_bot_mention);
    assert_eq!(c.plugins.ping.channels, None);
    assert!(!c.plugins.nodes.active && !c.plugins.display_hops);
}

#[test]
fn wrong_values_name_line_key_value_and_what_is_allowed() {
    let bad = GOOD
        .replace("meshtastic_channel: 2", "meshtastic_channel: 9")
        .replace("connection_type: network", "connection_type: lora")
        .replace("level: debug", "level: loud")
        .replace(
            "  meshnet_name: TestNet\n",
            "  meshnet_name: TestNet\n  message_delay: soon\n",
        );
    let problems = load_relay_config(&bad, Path::new("/h"), &no_env).unwrap_err();
    let text = format_problems(Path::new("/h/config.yaml"), &problems);
    assert!(text.contains("/h/config.yaml line 10: matrix_rooms[1].meshtastic_channel: 9 is not allowed: a channel index from 0 to 7"), "{text}");
    assert!(
        text.contains(
            "line 12: meshtastic.connection_type: 'lora' is not allowed: use serial or tcp"
        ),
        "{text}"
    );
    assert!(
        text.contains("line 22: logging.level: 'loud' is not allowed"),
        "{text}"
    );
    assert!(
        text.contains("meshtastic.message_delay: 'soon' is not allowed: seconds from 0.1 to 600"),
        "{text}"
    );
    let ble = GOOD.replace("connection_type: network", "connection_type: ble");
    let p = load_relay_config(&ble, Path::new("/h"), &no_env).unwrap_err();
    assert!(p[0].message.contains("'ble' is not supported"));
    let syntax = load_relay_config("matrix: [\n", Path::new("/h"), &no_env).unwrap_err();
    assert!(syntax[0].message.starts_with("not valid YAML"));
}

#[test]
fn prefix_templates_are_checked() {
    assert!(check_template("[{long}/{mesh}]: ", MATRIX_PREFIX_VARS).is_ok());
    assert!(check_template("{long20}{short}{mesh1}", MATRIX_PREFIX_VARS).is_ok());
    assert!(check_template(
        "{display5}[M]: {user}@{server} {username}",
        MESH_PREFIX_VARS
    )
    .is_ok());
    let e = check_template("{long21}", MATRIX_PREFIX_VARS).unwrap_err();
    assert!(e.contains("{long21}") && e.contains("allowed"), "{e}");
    assert!(check_template("{display", MESH_PREFIX_VARS).is_err());
    let off = GOOD.replace("meshtastic:\n", "meshtastic:\n  prefix_enabled: false\n");
    assert_eq!(
        load_relay_config(&off, Path::new("/h"), &no_env)
            .unwrap()
            .config
            .mesh_prefix,
        None
    );
}

#[test]
fn environment_overrides_win_and_are_named_in_errors() {
    let env = |v: &str| match v {
        "MMRELAY_MESHTASTIC_HOST" => Some("10.9.8.7".to_string()),
        "MMRELAY_MESHTASTIC_PORT" => Some("4000".to_string()),
        "MMRELAY_DATABASE_PATH" => Some("/var/lib/mm/db.sqlite".to_string()),
        _ => None,
    };
    let c = load_relay_config(GOOD, Path::new("/h"), &env)
        .unwrap()
        .config;
    assert_eq!(
        c.endpoint,
        Endpoint::Tcp {
            host: "10.9.8.7".into(),
            port: 4000
        }
    );
    assert_eq!(c.db_path, PathBuf::from("/var/lib/mm/db.sqlite"));
    let env = |v: &str| (v == "MMRELAY_MESHTASTIC_BROADCAST_ENABLED").then(|| "maybe".to_string());
    let p = load_relay_config(GOOD, Path::new("/h"), &env).unwrap_err();
    assert!(
        p[0].message
            .contains("(from $MMRELAY_MESHTASTIC_BROADCAST_ENABLED)"),
        "{:?}",
        p
    );
}

#[test]
fn commands_read_only_the_part_they_need() {
    // A file with only the radio: the radio commands work, the relay does not.
    let radio_only = "meshtastic:\n  connection_type: serial\n  serial_port: /dev/ttyACM0\n";
    assert_eq!(
        radio_endpoint(radio_only, &no_env),
        Ok(Endpoint::Serial("/dev/ttyACM0".into()))
    );
    assert!(load_relay_config(radio_only, Path::new("/h"), &no_env).is_err());
    assert_eq!(
        radio_endpoint(
            "meshtastic:\n  connection_type: tcp\n  host: r\n  port: 4000\n",
            &no_env
        ),
        Ok(Endpoint::Tcp {
            host: "r".into(),
            port: 4000
        })
    );
    let env = |k: &str| (k == "MMRELAY_MESHTASTIC_HOST").then(|| "10.1.2.3".to_string());
    assert_eq!(
        radio_endpoint("meshtastic:\n  connection_type: network\n", &env),
        Ok(Endpoint::Tcp {
            host: "10.1.2.3".into(),
            port: 4403
        })
    );
    let rooms = matrix_rooms(GOOD, &no_env).unwrap();
    assert_eq!(rooms.len(), 2);
    assert_eq!(rooms[0].id, "!abc:example.org");
    assert_eq!(store_path(GOOD, &no_env), Ok(None));
    assert_eq!(
        store_path(
            "matrix:\n  encryption:\n    store_path: /srv/store\n",
            &no_env
        ),
        Ok(Some(PathBuf::from("/srv/store")))
    );
}

#[test]
fn radio_settings_problems_name_key_and_line() {
    let e = |y: &str| {
        let p = radio_endpoint(y, &no_env).unwrap_err();
        format_problems(Path::new("/c.yaml"), &p)
    };
    assert!(e("meshtastic:\n  connection_type: ble\n").contains("not supported"));
    assert!(e("meshtastic:\n  connection_type: serial\n").contains("serial_port"));
    assert!(e("meshtastic:\n  connection_type: tcp\n").contains("meshtastic.host"));
    assert!(e("meshtastic:\n  connection_type: lora\n").contains("'lora' is not allowed"));
    assert!(e("matrix: {}\n").contains("connection_type"));
    let bad = e("meshtastic:\n  connection_type: tcp\n  host: h\n  port: seventy\n");
    assert!(
        bad.contains("meshtastic.port") && bad.contains("line 4") && bad.contains("seventy"),
        "{bad}"
    );
}

#[test]
fn plugins_as_mmrelay_writes_them_and_one_warning_per_plugin_we_lack() {
    let text = format!(
        "{GOOD}  nodes:\n    active: true\n    require_bot_mention: false\n    priority: 2\n  \
         telemetry:\n    active: \"yes\"\n    channels: [0, 3]\n  weather:\n    active: true\n  \
         map:\n    active: true\n  status:\n    active: true\n    colour: red\n\
         community-plugins:\n  x:\n    active: true\n"
    );
    let l = load_relay_config(&text, Path::new("/h"), &no_env).unwrap();
    let p = &l.config.plugins;
    assert!(p.nodes.active && !p.nodes.require_bot_mention);
    assert!(p.telemetry.active);
    assert_eq!(p.telemetry.channels, Some(vec![0, 3]));
    assert!(p.status.active && !p.help.active && !p.health.active);
    assert_eq!(
        l.ignored,
        [
            "meshtastic.ble_address",
            "plugins.weather",
            "plugins.map",
            "plugins.status.colour",
            "community-plugins",
        ]
    );
}

#[test]
fn bad_plugin_values_name_the_key() {
    let text = format!(
        "{GOOD}    channels: [0, 9]\n    display_hops: maybe\n  help:\n    channels: all\n"
    );
    let problems = load_relay_config(&text, Path::new("/h"), &no_env).unwrap_err();
    let shown: Vec<String> = problems
        .iter()
        .map(|p| format!("{}: {}", p.key, p.message))
        .collect();
    assert_eq!(
        shown,
        [
            "plugins.help.channels: 'all' is not allowed: use a list of channel indexes, like [0, 2]",
            "plugins.ping.channels: 9 is not a channel index: use numbers from 0 to 7",
            "plugins.ping.display_hops: 'maybe' is not allowed: use true or false",
        ]
    );
    assert!(problems.iter().all(|p| p.line.is_some()));
}
