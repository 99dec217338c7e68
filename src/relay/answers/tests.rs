use super::*;
use crate::mesh::proto::DeviceMetrics;
use crate::mesh::radio::NodeEntry;

const NOW: u32 = 1_700_000_000;

fn entry(num: u32, long: &str, short: &str, heard_ago: u32) -> NodeEntry {
    NodeEntry {
        num,
        long_name: long.try_into().unwrap(),
        short_name: short.try_into().unwrap(),
        hw_model: 9,
        last_heard: NOW - heard_ago,
        snr: 5.5,
        hops_away: Some(1),
        metrics: None,
    }
}

fn metrics(battery: u32, voltage: f32) -> DeviceMetrics {
    DeviceMetrics {
        battery_level: Some(battery),
        voltage: Some(voltage),
        channel_utilization: Some(12.5),
        air_util_tx: Some(1.25),
        uptime_seconds: None,
    }
}

fn table() -> Nodes {
    let mut t = Nodes::default();
    let mut me = entry(1, "Relay Gateway", "RLY", 0);
    me.metrics = Some(metrics(101, 5.1));
    t.update(&me);
    let mut a = entry(2, "Alice Base", "ALC", 300);
    a.metrics = Some(metrics(80, 4.05));
    t.update(&a);
    let mut b = entry(3, "Bob Mobile", "BOB", 60);
    b.metrics = Some(metrics(8, 3.4));
    b.hops_away = Some(0);
    t.update(&b);
    let mut c = entry(4, "Carol \u{1F4E1} Hill", "CRL", 7200);
    c.hops_away = Some(3);
    c.snr = -7.25;
    t.update(&c);
    t
}

#[test]
fn nodes_lists_most_recent_first_with_everything_known() {
    let text = nodes(&table(), 1, NOW);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "Nodes: 4",
            "RLY Relay Gateway · RAK4631 · powered 5.10 V · this relay's radio",
            "BOB Bob Mobile · RAK4631 · battery 8 % 3.40 V · SNR 5.5 dB · direct · 1 min ago",
            "ALC Alice Base · RAK4631 · battery 80 % 4.05 V · SNR 5.5 dB · 1 hop · 5 min ago",
            "CRL Carol \u{1F4E1} Hill · RAK4631 · SNR -7.2 dB · 3 hops · 2 h ago",
        ]
    );
    assert_eq!(
        nodes(&Nodes::default(), 1, NOW),
        "No nodes known yet (the radio has not connected)."
    );
}

#[test]
fn nodes_list_is_bounded() {
    let mut t = Nodes::default();
    for i in 0..(MAX_NODE_LINES as u32 + 7) {
        t.update(&entry(100 + i, "N", "N", i));
    }
    let text = nodes(&t, 1, NOW);
    assert_eq!(text.lines().count(), MAX_NODE_LINES + 2);
    assert!(text.ends_with("... and 7 more"), "{text}");
}

#[test]
fn health_sums_up_the_mesh() {
    let text = health(&table(), 1);
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [
            "Nodes: 4",
            "Battery: average 44 %, median 44 % (2 reporting)",
            "Radio: channel utilisation 12.5 %, air utilisation (TX) 1.2 %",
            "SNR: average 1.2 dB (3 nodes)",
            "Low battery (10 % or less): BOB 8 %",
        ]
    );
    let empty = health(&Nodes::default(), 1);
    assert!(empty.contains("Nodes: 0"));
    assert!(empty.contains("no node has reported one"));
    assert!(empty.contains("Low battery (10 % or less): none"));
}

#[test]
fn median_of_odd_and_even() {
    assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
    assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
}

#[test]
fn telemetry_hourly_with_sparkline_and_unknown_node() {
    let t = table();
    let mut h = History::default();
    let now = NOW / 3600 * 3600 + 3599;
    for (hours_ago, battery) in [(11, 90), (6, 60), (0, 30)] {
        h.record(2, now - hours_ago * 3600, &metrics(battery, 4.0));
    }
    let text = telemetry(&h, &t, Metric::BatteryLevel, Some("alc"), now);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "Battery level (ALC Alice Base), last 12 h, hourly, oldest first (%):"
    );
    assert_eq!(lines[1], "█    ▅     ▁");
    assert_eq!(lines[2], "90 - - - - 60 - - - - - 30");
    assert_eq!(lines[3], "latest 30 %");
    let all = telemetry(&h, &t, Metric::Voltage, None, now);
    assert!(all.starts_with("Voltage (all nodes, average)"), "{all}");
    assert!(all.contains("4.00 - - - - 4.00"), "{all}");
    assert_eq!(
        telemetry(&h, &t, Metric::AirUtilTx, Some("BOB"), now),
        "Air utilisation (TX) (BOB Bob Mobile): no telemetry in the last 12 hours"
    );
    assert!(telemetry(&h, &t, Metric::Voltage, Some("zzz"), now).starts_with("No node 'zzz'"));
}

#[test]
fn sparkline_levels() {
    assert_eq!(sparkline(&[Some(0.0), Some(7.0), None, Some(3.5)]), "▁█ ▅");
    assert_eq!(sparkline(&[Some(2.0), Some(2.0)]), "▄▄");
    assert_eq!(sparkline(&[None, None]), "  ");
}

#[test]
fn help_lists_only_active_commands() {
    assert_eq!(
        help(&["help", "ping", "telemetry"], None),
        "Commands: !help, !ping, !batteryLevel, !voltage, !airUtilTx"
    );
    assert_eq!(
        help(&["help", "ping"], Some("PING")),
        "!ping: answers pong! (on the mesh too, as a reply)"
    );
    assert_eq!(
        help(&["help", "ping"], Some("nodes")),
        "No active command 'nodes'. Commands: !help, !ping"
    );
}

#[test]
fn status_reports_links_queues_and_the_last_error() {
    let s = Status {
        version: "1.2.3",
        uptime_secs: 3 * 3600 + 120,
        radio: Ok(59),
        last_sync_secs: Some(4),
        to_mesh_waiting: 2,
        to_matrix_waiting: 0,
        to_matrix: 10,
        to_mesh: 5,
        dropped: 1,
        refused: 0,
        last_error: Some((120, "the queue to the mesh is full".into())),
    };
    assert_eq!(
        status(&s).lines().collect::<Vec<_>>(),
        [
            "mmrelay 1.2.3 · up 3 h 2 min",
            "Radio: connected for 59 s",
            "Matrix: last sync 4 s ago",
            "Waiting: 2 for the mesh, 0 for Matrix",
            "Relayed: 10 to Matrix, 5 to the mesh; dropped 1 (queue full), refused by the homeserver 0",
            "Last error: the queue to the mesh is full (2 min ago)",
        ]
    );
    let down = Status {
        radio: Err("connection refused".into()),
        ..Default::default()
    };
    let text = status(&down);
    assert!(text.contains("Radio: not connected (connection refused)"));
    assert!(text.contains("no sync completed yet"));
    assert!(text.contains("Last error: none"));
}

#[test]
fn health_needs_the_radio_and_a_recent_sync() {
    let up = Status {
        radio: Ok(125),
        last_sync_secs: Some(12),
        to_mesh_waiting: 1,
        last_error: Some((1, "secret room text".into())),
        ..Default::default()
    };
    assert_eq!(
        health_check(&up),
        "healthy: radio connected for 2 min, last Matrix sync 12 s ago, 1 waiting for the mesh, 0 for Matrix"
    );
    let stale = Status {
        last_sync_secs: Some(HEALTHY_SYNC_SECS + 1),
        ..up.clone()
    };
    assert_eq!(
        health_check(&stale),
        "unhealthy: no Matrix sync for 5 min; 1 waiting for the mesh, 0 for Matrix"
    );
    let starting = Status::default();
    assert_eq!(
        health_check(&starting),
        "unhealthy: radio not connected (not connected yet), no Matrix sync completed yet; 0 waiting for the mesh, 0 for Matrix"
    );
    assert!(!health_check(&up).contains("secret"));
}
