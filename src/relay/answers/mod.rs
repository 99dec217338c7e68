//! The bot commands' answers as text, sans-IO: help, the node list, the mesh's health, the
//! telemetry history (hourly values and a one-line sparkline) and the relay's status. Plain
//! text that a phone shows well; every list is bounded.

use super::commands::WORDS;
use super::nodes::{hw_model_name, Node, Nodes};
use super::telemetry::{History, Metric};
use crate::mesh::radio::node_id;

/// Lines of `!nodes` at most (the rest is counted).
pub const MAX_NODE_LINES: usize = 100;

fn describe(word: &str) -> &'static str {
    match word {
        "help" => "!help [command]: the active commands, or what one does",
        "ping" => "!ping: answers pong! (on the mesh too, as a reply)",
        "nodes" => "!nodes: the nodes the radio knows, most recently heard first",
        "health" => "!health: battery, signal and channel use across the mesh",
        "batteryLevel" => "!batteryLevel [node]: battery level over the last 12 hours",
        "voltage" => "!voltage [node]: battery voltage over the last 12 hours",
        "airUtilTx" => "!airUtilTx [node]: transmit air time over the last 12 hours",
        "status" => "!status: the relay's own state (links, queues, counters)",
        _ => "",
    }
}

/// `!help` (`active`: the active plugins).
pub fn help(active: &[&str], topic: Option<&str>) -> String {
    let words: Vec<&str> = WORDS
        .iter()
        .filter(|(_, plugin)| active.contains(plugin))
        .map(|(w, _)| *w)
        .collect();
    match topic {
        None => format!(
            "Commands: {}",
            words
                .iter()
                .map(|w| format!("!{w}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Some(t) => match words.iter().find(|w| w.eq_ignore_ascii_case(t)) {
            Some(w) => describe(w).to_string(),
            None => format!(
                "No active command '{}'. Commands: {}",
                crate::relay::rules::truncate_utf8(t, 40),
                words
                    .iter()
                    .map(|w| format!("!{w}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
    }
}

/// "5 min ago" for a time `secs` seconds back.
pub fn ago(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs} s ago"),
        60..=3599 => format!("{} min ago", secs / 60),
        3600..=86_399 => format!("{} h ago", secs / 3600),
        _ => format!("{} d ago", secs / 86_400),
    }
}

fn hops(h: u32) -> String {
    match h {
        0 => "direct".into(),
        1 => "1 hop".into(),
        n => format!("{n} hops"),
    }
}

fn node_line(n: &Node, my_node: u32, now: u32) -> String {
    let mut parts = Vec::new();
    let short = if n.short_name.is_empty() {
        node_id(n.num)
    } else {
        n.short_name.clone()
    };
    let long = if n.long_name.is_empty() {
        node_id(n.num)
    } else {
        n.long_name.clone()
    };
    parts.push(format!("{short} {long}"));
    if n.hw_model != 0 {
        parts.push(hw_model_name(n.hw_model));
    }
    match (n.battery, n.voltage) {
        (Some(b), Some(v)) if b > 100 => parts.push(format!("powered {v:.2} V")),
        (Some(b), Some(v)) => parts.push(format!("battery {b} % {v:.2} V")),
        (Some(b), None) if b > 100 => parts.push("powered".into()),
        (Some(b), None) => parts.push(format!("battery {b} %")),
        (None, Some(v)) => parts.push(format!("{v:.2} V")),
        (None, None) => {}
    }
    if n.num == my_node {
        parts.push("this relay's radio".into());
    } else {
        if let Some(s) = n.snr {
            parts.push(format!("SNR {s:.1} dB"));
        }
        if let Some(h) = n.hops_away {
            parts.push(hops(h));
        }
        if n.last_heard != 0 {
            parts.push(ago(u64::from(now.saturating_sub(n.last_heard))));
        }
    }
    parts.join(" · ")
}

/// `!nodes`: one line per node, the most recently heard first; the radio's own node marked.
pub fn nodes(table: &Nodes, my_node: u32, now: u32) -> String {
    if table.is_empty() {
        return "No nodes known yet (the radio has not connected).".into();
    }
    let sorted = table.sorted();
    let mut out = format!("Nodes: {}", sorted.len());
    for n in sorted.iter().take(MAX_NODE_LINES) {
        out.push('\n');
        out.push_str(&node_line(n, my_node, now));
    }
    if sorted.len() > MAX_NODE_LINES {
        out.push_str(&format!("\n... and {} more", sorted.len() - MAX_NODE_LINES));
    }
    out
}

fn median(v: &mut [f32]) -> f32 {
    v.sort_by(f32::total_cmp);
    let m = v.len() / 2;
    if v.len().is_multiple_of(2) {
        (v[m - 1] + v[m]) / 2.0
    } else {
        v[m]
    }
}

/// `!health`: node count, battery (average, median), the radio's channel and air use, average
/// SNR, and the nodes at 10 % battery or less.
pub fn health(table: &Nodes, my_node: u32) -> String {
    let all = table.sorted();
    let mut lines = vec![format!("Nodes: {}", all.len())];
    let mut batteries: Vec<f32> = all
        .iter()
        .filter_map(|n| n.battery.filter(|b| *b <= 100).map(|b| b as f32))
        .collect();
    if batteries.is_empty() {
        lines.push("Battery: no node has reported one".into());
    } else {
        let avg = batteries.iter().sum::<f32>() / batteries.len() as f32;
        let n = batteries.len();
        lines.push(format!(
            "Battery: average {avg:.0} %, median {:.0} % ({n} reporting)",
            median(&mut batteries)
        ));
    }
    match table.get(my_node) {
        Some(me) if me.channel_util.is_some() || me.air_util_tx.is_some() => {
            let show = |v: Option<f32>| v.map_or("?".to_string(), |v| format!("{v:.1} %"));
            lines.push(format!(
                "Radio: channel utilisation {}, air utilisation (TX) {}",
                show(me.channel_util),
                show(me.air_util_tx)
            ));
        }
        _ => lines.push("Radio: no channel utilisation reported yet".into()),
    }
    let snrs: Vec<f32> = all
        .iter()
        .filter(|n| n.num != my_node)
        .filter_map(|n| n.snr)
        .collect();
    if !snrs.is_empty() {
        let avg = snrs.iter().sum::<f32>() / snrs.len() as f32;
        lines.push(format!("SNR: average {avg:.1} dB ({} nodes)", snrs.len()));
    }
    let low: Vec<String> = all
        .iter()
        .filter(|n| n.battery.is_some_and(|b| b <= 10))
        .take(20)
        .map(|n| {
            let name = if n.short_name.is_empty() {
                node_id(n.num)
            } else {
                n.short_name.clone()
            };
            format!("{name} {} %", n.battery.unwrap_or(0))
        })
        .collect();
    if low.is_empty() {
        lines.push("Low battery (10 % or less): none".into());
    } else {
        lines.push(format!("Low battery (10 % or less): {}", low.join(", ")));
    }
    lines.join("\n")
}

/// Eight levels of a sparkline; a space where an hour has no value.
pub fn sparkline(values: &[Option<f32>]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let known: Vec<f32> = values.iter().flatten().copied().collect();
    let (lo, hi) = known
        .iter()
        .fold((f32::MAX, f32::MIN), |(l, h), v| (l.min(*v), h.max(*v)));
    values
        .iter()
        .map(|v| match v {
            None => ' ',
            Some(_) if (hi - lo).abs() < f32::EPSILON => BARS[3],
            Some(v) => BARS[(((v - lo) / (hi - lo)) * 7.0).round() as usize],
        })
        .collect()
}

fn metric_label(m: Metric) -> (&'static str, &'static str, usize) {
    match m {
        Metric::BatteryLevel => ("Battery level", "%", 0),
        Metric::Voltage => ("Voltage", "V", 2),
        Metric::AirUtilTx => ("Air utilisation (TX)", "%", 1),
    }
}

/// `!batteryLevel` / `!voltage` / `!airUtilTx` [node]: the last 12 hours, hourly.
pub fn telemetry(
    history: &History,
    table: &Nodes,
    metric: Metric,
    node: Option<&str>,
    now: u32,
) -> String {
    let (label, unit, digits) = metric_label(metric);
    let (who, num) = match node {
        None => ("all nodes, average".to_string(), None),
        Some(key) => match table.find(key) {
            Some(n) => (
                format!(
                    "{} {}",
                    if n.short_name.is_empty() {
                        node_id(n.num)
                    } else {
                        n.short_name.clone()
                    },
                    n.long_name
                )
                .trim()
                .to_string(),
                Some(n.num),
            ),
            None => {
                return format!(
                    "No node '{}' known: use its short name, long name or !id (see !nodes)",
                    crate::relay::rules::truncate_utf8(key, 40)
                )
            }
        },
    };
    let hours = history.hourly(metric, num, now);
    if hours.iter().all(Option::is_none) {
        return format!("{label} ({who}): no telemetry in the last 12 hours");
    }
    let values: Vec<String> = hours
        .iter()
        .map(|v| v.map_or("-".to_string(), |v| format!("{v:.digits$}")))
        .collect();
    let last = hours.iter().rev().flatten().next().copied().unwrap_or(0.0);
    format!(
        "{label} ({who}), last 12 h, hourly, oldest first ({unit}):\n{}\n{}\nlatest {last:.digits$} {unit}",
        sparkline(&hours),
        values.join(" ")
    )
}

/// What `!status` reports.
#[derive(Debug, Clone)]
pub struct Status {
    pub version: &'static str,
    pub uptime_secs: u64,
    /// Since when (seconds ago) the radio is up, or why it is down.
    pub radio: Result<u64, String>,
    /// Seconds since the last completed Matrix sync.
    pub last_sync_secs: Option<u64>,
    pub to_mesh_waiting: usize,
    pub to_matrix_waiting: usize,
    pub to_matrix: u64,
    pub to_mesh: u64,
    pub dropped: u64,
    pub refused: u64,
    pub last_error: Option<(u64, String)>,
}

impl Default for Status {
    fn default() -> Self {
        Status {
            version: "",
            uptime_secs: 0,
            radio: Err("not connected yet".into()),
            last_sync_secs: None,
            to_mesh_waiting: 0,
            to_matrix_waiting: 0,
            to_matrix: 0,
            to_mesh: 0,
            dropped: 0,
            refused: 0,
            last_error: None,
        }
    }
}

fn duration(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs} s"),
        60..=3599 => format!("{} min", secs / 60),
        3600..=86_399 => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
        _ => format!("{} d {} h", secs / 86_400, secs % 86_400 / 3600),
    }
}

/// A relay is healthy when the radio is connected and a Matrix sync completed within this
/// time (an idle sync returns every 30 s).
pub const HEALTHY_SYNC_SECS: u64 = 300;

/// The health check's line (`mmrelay health`): "healthy: ..." or "unhealthy: ..." with the
/// reason. Names no room, user or message.
pub fn health_check(s: &Status) -> String {
    let radio = match &s.radio {
        Ok(up) => Ok(format!("radio connected for {}", duration(*up))),
        Err(why) => Err(format!("radio not connected ({why})")),
    };
    let sync = match s.last_sync_secs {
        Some(t) if t <= HEALTHY_SYNC_SECS => Ok(format!("last Matrix sync {}", ago(t))),
        Some(t) => Err(format!("no Matrix sync for {}", duration(t))),
        None => Err("no Matrix sync completed yet".to_string()),
    };
    let waiting = format!(
        "{} waiting for the mesh, {} for Matrix",
        s.to_mesh_waiting, s.to_matrix_waiting
    );
    match (radio, sync) {
        (Ok(r), Ok(m)) => format!("healthy: {r}, {m}, {waiting}"),
        (r, m) => {
            let why: Vec<String> = [r, m].into_iter().filter_map(Result::err).collect();
            format!("unhealthy: {}; {waiting}", why.join(", "))
        }
    }
}

/// `!status`.
pub fn status(s: &Status) -> String {
    let radio = match &s.radio {
        Ok(up) => format!("connected for {}", duration(*up)),
        Err(why) => format!("not connected ({why})"),
    };
    let sync = s
        .last_sync_secs
        .map_or("no sync completed yet".to_string(), |t| {
            format!("last sync {}", ago(t))
        });
    let err = s.last_error.as_ref().map_or("none".to_string(), |(t, e)| {
        format!(
            "{} ({})",
            crate::relay::rules::truncate_utf8(e, 200),
            ago(*t)
        )
    });
    format!(
        "mmrelay {} · up {}\nRadio: {radio}\nMatrix: {sync}\nWaiting: {} for the mesh, {} for Matrix\n\
         Relayed: {} to Matrix, {} to the mesh; dropped {} (queue full), refused by the homeserver {}\n\
         Last error: {err}",
        s.version,
        duration(s.uptime_secs),
        s.to_mesh_waiting,
        s.to_matrix_waiting,
        s.to_matrix,
        s.to_mesh,
        s.dropped,
        s.refused
    )
}

#[cfg(test)]
mod tests;
