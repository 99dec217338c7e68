//! What the bot commands know of each node, sans-IO: names and hardware from the radio's node
//! database, and what later packets tell (signal, hops, device metrics). Bounded: when full,
//! the node heard longest ago makes room.

use std::collections::HashMap;

use crate::mesh::proto::{telemetry, DeviceMetrics, MeshPacket, PortNum, Telemetry};
use crate::mesh::radio::NodeEntry;
use prost::Message;

/// Nodes kept at most.
pub const MAX_NODES: usize = 1000;

/// One node, as last heard.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Node {
    pub num: u32,
    pub long_name: String,
    pub short_name: String,
    pub hw_model: i32,
    /// Unix seconds; 0 when never heard.
    pub last_heard: u32,
    pub snr: Option<f32>,
    pub hops_away: Option<u32>,
    pub battery: Option<u32>,
    pub voltage: Option<f32>,
    pub channel_util: Option<f32>,
    pub air_util_tx: Option<f32>,
}

impl Node {
    fn set_metrics(&mut self, m: &DeviceMetrics) {
        self.battery = m.battery_level.or(self.battery);
        self.voltage = m.voltage.or(self.voltage);
        self.channel_util = m.channel_utilization.or(self.channel_util);
        self.air_util_tx = m.air_util_tx.or(self.air_util_tx);
    }
}

/// Device metrics read from a telemetry packet, if it is one.
pub fn device_metrics(p: &MeshPacket) -> Option<DeviceMetrics> {
    let d = p.decoded()?;
    if d.portnum != PortNum::TelemetryApp as i32 {
        return None;
    }
    let telemetry::Variant::DeviceMetrics(m) =
        Telemetry::decode(d.payload.as_slice()).ok()?.variant?;
    Some(m)
}

/// The node table.
#[derive(Debug, Default)]
pub struct Nodes {
    nodes: HashMap<u32, Node>,
}

impl Nodes {
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn get(&self, num: u32) -> Option<&Node> {
        self.nodes.get(&num)
    }

    /// All nodes, most recently heard first.
    pub fn sorted(&self) -> Vec<&Node> {
        let mut v: Vec<&Node> = self.nodes.values().collect();
        v.sort_by(|a, b| b.last_heard.cmp(&a.last_heard).then(a.num.cmp(&b.num)));
        v
    }

    fn entry(&mut self, num: u32) -> &mut Node {
        if !self.nodes.contains_key(&num) && self.nodes.len() >= MAX_NODES {
            if let Some(oldest) = self
                .nodes
                .values()
                .min_by_key(|n| (n.last_heard, n.num))
                .map(|n| n.num)
            {
                self.nodes.remove(&oldest);
            }
        }
        self.nodes.entry(num).or_insert_with(|| Node {
            num,
            ..Default::default()
        })
    }

    /// A node as the radio's database has it (at the handshake, or updated later).
    pub fn update(&mut self, e: &NodeEntry) {
        let n = self.entry(e.num);
        if !e.long_name.is_empty() || !e.short_name.is_empty() {
            n.long_name = e.long_name.to_string();
            n.short_name = e.short_name.to_string();
        }
        if e.hw_model != 0 {
            n.hw_model = e.hw_model;
        }
        n.last_heard = n.last_heard.max(e.last_heard);
        if e.snr != 0.0 {
            n.snr = Some(e.snr);
        }
        n.hops_away = e.hops_away.or(n.hops_away);
        if let Some(m) = &e.metrics {
            n.set_metrics(m);
        }
    }

    /// A packet heard from the mesh: when, how well, how many hops, and any device metrics.
    /// `now` stands in for a packet without a receive time. Returns the metrics it carried.
    pub fn observe(&mut self, p: &MeshPacket, now: u32) -> Option<DeviceMetrics> {
        if p.from == 0 {
            return None;
        }
        let metrics = device_metrics(p);
        let n = self.entry(p.from);
        n.last_heard = n
            .last_heard
            .max(if p.rx_time != 0 { p.rx_time } else { now });
        if p.rx_snr != 0.0 {
            n.snr = Some(p.rx_snr);
        }
        if p.hop_start != 0 && p.hop_start >= p.hop_limit {
            n.hops_away = Some(p.hop_start - p.hop_limit);
        }
        if let Some(m) = &metrics {
            n.set_metrics(m);
        }
        metrics
    }

    /// The node `key` names: `!a1b2c3d4`, a node number, or a short or long name (any case).
    pub fn find(&self, key: &str) -> Option<&Node> {
        let key = key.trim();
        if let Some(num) = crate::mesh::radio::parse_node_id(key) {
            if let Some(n) = self.nodes.get(&num) {
                return Some(n);
            }
        }
        let sorted = self.sorted();
        let by = |f: fn(&Node) -> &str| {
            sorted
                .iter()
                .copied()
                .find(|n| f(n).eq_ignore_ascii_case(key))
        };
        by(|n| n.short_name.as_str()).or_else(|| by(|n| n.long_name.as_str()))
    }
}

/// The Meshtastic hardware model's name (`HardwareModel` in the protocol), or its number.
pub fn hw_model_name(model: i32) -> String {
    const NAMES: &[&str] = &[
        "UNSET",
        "TLORA_V2",
        "TLORA_V1",
        "TLORA_V2_1_1P6",
        "TBEAM",
        "HELTEC_V2_0",
        "TBEAM_V0P7",
        "T_ECHO",
        "TLORA_V1_1P3",
        "RAK4631",
        "HELTEC_V2_1",
        "HELTEC_V1",
        "LILYGO_TBEAM_S3_CORE",
        "RAK11200",
        "NANO_G1",
        "TLORA_V2_1_1P8",
        "TLORA_T3_S3",
        "NANO_G1_EXPLORER",
        "NANO_G2_ULTRA",
        "LORA_TYPE",
        "WIPHONE",
        "WIO_WM1110",
        "RAK2560",
        "HELTEC_HRU_3601",
        "HELTEC_WIRELESS_BRIDGE",
        "STATION_G1",
        "RAK11310",
        "SENSELORA_RP2040",
        "SENSELORA_S3",
        "CANARYONE",
        "RP2040_LORA",
        "STATION_G2",
        "LORA_RELAY_V1",
        "T_ECHO_PLUS",
        "PPR",
        "GENIEBLOCKS",
        "NRF52_UNKNOWN",
        "PORTDUINO",
        "ANDROID_SIM",
        "DIY_V1",
        "NRF52840_PCA10059",
        "DR_DEV",
        "M5STACK",
        "HELTEC_V3",
        "HELTEC_WSL_V3",
        "BETAFPV_2400_TX",
        "BETAFPV_900_NANO_TX",
        "RPI_PICO",
        "HELTEC_WIRELESS_TRACKER",
        "HELTEC_WIRELESS_PAPER",
        "T_DECK",
        "T_WATCH_S3",
        "PICOMPUTER_S3",
        "HELTEC_HT62",
        "EBYTE_ESP32_S3",
        "ESP32_S3_PICO",
        "CHATTER_2",
        "HELTEC_WIRELESS_PAPER_V1_0",
        "HELTEC_WIRELESS_TRACKER_V1_0",
        "UNPHONE",
        "TD_LORAC",
        "CDEBYTE_EORA_S3",
        "TWC_MESH_V4",
        "NRF52_PROMICRO_DIY",
        "RADIOMASTER_900_BANDIT_NANO",
        "HELTEC_CAPSULE_SENSOR_V3",
        "HELTEC_VISION_MASTER_T190",
        "HELTEC_VISION_MASTER_E213",
        "HELTEC_VISION_MASTER_E290",
        "HELTEC_MESH_NODE_T114",
        "SENSECAP_INDICATOR",
        "TRACKER_T1000_E",
        "RAK3172",
        "WIO_E5",
        "RADIOMASTER_900_BANDIT",
        "ME25LS01_4Y10TD",
        "RP2040_FEATHER_RFM95",
        "M5STACK_COREBASIC",
        "M5STACK_CORE2",
        "RPI_PICO2",
        "M5STACK_CORES3",
        "SEEED_XIAO_S3",
        "MS24SF1",
        "TLORA_C6",
        "WISMESH_TAP",
        "ROUTASTIC",
        "MESH_TAB",
        "MESHLINK",
        "XIAO_NRF52_KIT",
        "THINKNODE_M1",
        "THINKNODE_M2",
        "T_ETH_ELITE",
        "HELTEC_SENSOR_HUB",
        "MUZI_BASE",
        "HELTEC_MESH_POCKET",
        "SEEED_SOLAR_NODE",
        "NOMADSTAR_METEOR_PRO",
        "CROWPANEL",
    ];
    match usize::try_from(model).ok().and_then(|i| NAMES.get(i)) {
        Some(n) => n.to_string(),
        None if model == 255 => "PRIVATE_HW".into(),
        None => format!("model {model}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::proto::{mesh_packet, Data};

    fn telemetry_packet(from: u32, battery: u32, hop_start: u32, hop_limit: u32) -> MeshPacket {
        let t = Telemetry {
            time: 0,
            variant: Some(telemetry::Variant::DeviceMetrics(DeviceMetrics {
                battery_level: Some(battery),
                voltage: Some(3.9),
                channel_utilization: Some(12.5),
                air_util_tx: Some(1.5),
                uptime_seconds: None,
            })),
        };
        MeshPacket {
            from,
            rx_time: 1000,
            rx_snr: -3.25,
            hop_start,
            hop_limit,
            payload: Some(mesh_packet::Payload::Decoded(Data {
                portnum: PortNum::TelemetryApp as i32,
                payload: t.encode_to_vec(),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    #[test]
    fn packets_update_signal_hops_and_metrics() {
        let mut n = Nodes::default();
        let m = n.observe(&telemetry_packet(7, 64, 5, 3), 50).unwrap();
        assert_eq!(m.battery_level, Some(64));
        let node = n.get(7).unwrap();
        assert_eq!(node.battery, Some(64));
        assert_eq!(node.voltage, Some(3.9));
        assert_eq!(node.hops_away, Some(2));
        assert_eq!(node.snr, Some(-3.25));
        assert_eq!(node.last_heard, 1000);
        // A packet without hop_start (old firmware) leaves the hop count alone.
        let mut p = telemetry_packet(7, 60, 0, 3);
        p.rx_time = 0;
        n.observe(&p, 2000);
        assert_eq!(n.get(7).unwrap().hops_away, Some(2));
        assert_eq!(n.get(7).unwrap().battery, Some(60));
        assert_eq!(n.get(7).unwrap().last_heard, 2000);
    }

    #[test]
    fn find_by_id_short_or_long_name_and_bounded() {
        let mut n = Nodes::default();
        let mut e = NodeEntry {
            num: 0x1111aaaa,
            long_name: "Alice Base".try_into().unwrap(),
            short_name: "ALC".try_into().unwrap(),
            hw_model: 9,
            last_heard: 10,
            snr: 5.5,
            hops_away: Some(1),
            metrics: None,
        };
        n.update(&e);
        assert_eq!(n.find("!1111aaaa").unwrap().num, 0x1111aaaa);
        assert_eq!(n.find("alc").unwrap().num, 0x1111aaaa);
        assert_eq!(n.find("ALICE BASE").unwrap().num, 0x1111aaaa);
        assert!(n.find("bob").is_none());
        assert_eq!(hw_model_name(9), "RAK4631");
        assert_eq!(hw_model_name(255), "PRIVATE_HW");
        assert_eq!(hw_model_name(4000), "model 4000");
        for i in 0..MAX_NODES as u32 + 5 {
            e.num = 100 + i;
            e.last_heard = 100 + i;
            n.update(&e);
        }
        assert_eq!(n.len(), MAX_NODES);
        assert!(
            n.get(0x1111aaaa).is_none(),
            "the node heard longest ago made room"
        );
        assert_eq!(n.sorted()[0].num, 100 + MAX_NODES as u32 + 4);
    }
}
