//! A simulated Meshtastic radio: it plays the radio's side of the client API over TCP and over
//! a pty, answering the `want_config` handshake with a configurable node database and channels,
//! answering heartbeats with a queue status, acknowledging packets, recording what it receives,
//! and injecting packets (texts, replies, reactions, positions, telemetry) and malformed frames
//! on command. Tests drive it as a library; `mmrelay-sim` drives it from standard input.

pub mod command;
mod serve;

pub use serve::SimPty;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use prost::Message;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::clock::unix_now;
use crate::mesh::framing::{self, Decoder, Event as FrameEvent};
use crate::mesh::proto::{
    self, config, from_radio, mesh_packet, telemetry, to_radio, Channel, ChannelRole,
    ChannelSettings, Config, Data, DeviceMetadata, DeviceMetrics, FromRadio, LoRaConfig,
    MeshPacket, MyNodeInfo, NodeInfo, PortNum, Position, QueueStatus, Routing, SecurityConfig,
    Telemetry, ToRadio, User,
};
use crate::mesh::radio::{node_id, parse_node_id};

/// How many received packets the simulator remembers.
const RECORD_LIMIT: usize = 1000;

/// One node of the simulated mesh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimNode {
    pub num: u32,
    pub long_name: String,
    pub short_name: String,
}

impl SimNode {
    pub fn new(num: u32, long_name: &str, short_name: &str) -> Self {
        SimNode {
            num,
            long_name: long_name.into(),
            short_name: short_name.into(),
        }
    }

    /// Parses `!a1b2c3d4:Long Name:SHRT` (the names may be omitted).
    pub fn parse(s: &str) -> Result<SimNode, String> {
        let mut parts = s.splitn(3, ':');
        let id = parts.next().unwrap_or_default();
        let num =
            parse_node_id(id).ok_or_else(|| format!("'{id}' is not a node id like !a1b2c3d4"))?;
        let long = parts.next().unwrap_or_default();
        let short = parts.next().unwrap_or_default();
        let long = if long.is_empty() {
            format!("Meshtastic {:04x}", num & 0xffff)
        } else {
            long.into()
        };
        let short = if short.is_empty() {
            format!("{:04x}", num & 0xffff)
        } else {
            short.into()
        };
        Ok(SimNode {
            num,
            long_name: long,
            short_name: short,
        })
    }

    fn user(&self) -> User {
        User {
            id: node_id(self.num).into_bytes(),
            long_name: self.long_name.as_bytes().to_vec(),
            short_name: self.short_name.as_bytes().to_vec(),
            hw_model: 9, // RAK4631
            ..Default::default()
        }
    }
}

/// The simulated radio's setup.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The radio's own node (the relay's node).
    pub me: SimNode,
    /// The other nodes in its node database.
    pub nodes: Vec<SimNode>,
    /// Channel names by index; index 0 is the primary channel, the rest secondary.
    pub channels: Vec<(u32, String)>,
    pub firmware: String,
    pub hop_limit: u32,
    /// Capacity of the radio's transmit queue.
    pub queue_len: u32,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            me: SimNode::new(0x0a0b0c0d, "Relay Gateway", "RLY"),
            nodes: vec![
                SimNode::new(0x1111aaaa, "Alice Base", "ALC"),
                SimNode::new(0x2222bbbb, "Bob Mobile", "BOB"),
                SimNode::new(0x3333cccc, "Carol \u{1F4E1} Hill", "CRL"),
            ],
            channels: vec![(0, String::new()), (1, "Ops".into())],
            firmware: "2.7.11.sim".into(),
            hop_limit: 3,
            queue_len: 16,
        }
    }
}

/// What the simulator reports (to tests, and as lines from `mmrelay-sim`).
#[derive(Debug, Clone, PartialEq)]
pub enum SimEvent {
    ClientConnected,
    ClientGone,
    ConfigRequested(u32),
    Heartbeat(u32),
    Packet(MeshPacket),
    Disconnect,
    /// A frame from the client that did not decode.
    Malformed(usize),
    /// A packet whose id the radio had just seen: dropped, as the firmware does.
    Duplicate(u32),
}

/// How the simulated radio answers packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckMode {
    /// A routing ack with error 0.
    Ack,
    /// A routing error with this code.
    Error(i32),
    /// No routing answer at all.
    Silent,
}

struct SimShared {
    config: Mutex<SimConfig>,
    /// Frames sent to every connected client.
    outbound: broadcast::Sender<Arc<[u8]>>,
    events: broadcast::Sender<SimEvent>,
    received: Mutex<VecDeque<MeshPacket>>,
    drop_clients: broadcast::Sender<()>,
    answer_heartbeats: AtomicBool,
    finish_config: AtomicBool,
    ack_mode: Mutex<AckMode>,
    /// Free queue slots reported; negative means "the full queue length".
    queue_free: AtomicI32,
    next_from_radio_id: AtomicU32,
    /// The last packet ids received (the firmware drops repeats of recent ids).
    recent_ids: Mutex<VecDeque<u32>>,
}

/// The simulated radio. Cheap to clone; all clones drive the same radio.
#[derive(Clone)]
pub struct Simulator {
    shared: Arc<SimShared>,
}

impl Simulator {
    pub fn new(config: SimConfig) -> Self {
        let (outbound, _) = broadcast::channel(1024);
        let (events, _) = broadcast::channel(4096);
        let (drop_clients, _) = broadcast::channel(4);
        Simulator {
            shared: Arc::new(SimShared {
                config: Mutex::new(config),
                outbound,
                events,
                received: Mutex::new(VecDeque::new()),
                drop_clients,
                answer_heartbeats: AtomicBool::new(true),
                finish_config: AtomicBool::new(true),
                ack_mode: Mutex::new(AckMode::Ack),
                queue_free: AtomicI32::new(-1),
                next_from_radio_id: AtomicU32::new(1),
                recent_ids: Mutex::new(VecDeque::new()),
            }),
        }
    }

    pub fn config(&self) -> SimConfig {
        self.shared.config.lock().unwrap().clone()
    }

    /// Subscribes to what the simulator sees from here on.
    pub fn subscribe(&self) -> broadcast::Receiver<SimEvent> {
        self.shared.events.subscribe()
    }

    /// Packets received from clients so far (the last 1000).
    pub fn received(&self) -> Vec<MeshPacket> {
        self.shared
            .received
            .lock()
            .unwrap()
            .iter()
            .cloned()
            .collect()
    }

    /// Whether heartbeats are answered with a queue status (off: the radio goes silent).
    pub fn set_answer_heartbeats(&self, on: bool) {
        self.shared.answer_heartbeats.store(on, Ordering::SeqCst);
    }

    /// Whether the handshake ends with `config_complete_id` (off: a radio that never finishes).
    pub fn set_finish_config(&self, on: bool) {
        self.shared.finish_config.store(on, Ordering::SeqCst);
    }

    pub fn set_ack_mode(&self, mode: AckMode) {
        *self.shared.ack_mode.lock().unwrap() = mode;
    }

    /// Free slots the radio reports in its queue status (`None`: the whole queue is free).
    pub fn set_queue_free(&self, free: Option<u32>) {
        let v = free.map(|f| f.min(i32::MAX as u32) as i32).unwrap_or(-1);
        self.shared.queue_free.store(v, Ordering::SeqCst);
    }

    /// Adds or renames a node in the radio's database (seen at the next handshake).
    pub fn upsert_node(&self, node: SimNode) {
        let mut cfg = self.shared.config.lock().unwrap();
        match cfg.nodes.iter_mut().find(|n| n.num == node.num) {
            Some(n) => *n = node,
            None => cfg.nodes.push(node),
        }
    }

    /// Closes every client connection (the radio drops the link).
    pub fn drop_connections(&self) {
        let _ = self.shared.drop_clients.send(());
    }

    fn queue_status(&self, mesh_packet_id: u32) -> QueueStatus {
        let maxlen = self.shared.config.lock().unwrap().queue_len;
        let free = self.shared.queue_free.load(Ordering::SeqCst);
        QueueStatus {
            res: 0,
            free: if free < 0 { maxlen } else { free as u32 },
            maxlen,
            mesh_packet_id,
        }
    }

    fn frame_msg(&self, payload: from_radio::Payload) -> FromRadio {
        FromRadio {
            id: self
                .shared
                .next_from_radio_id
                .fetch_add(1, Ordering::SeqCst),
            payload: Some(payload),
        }
    }

    /// Sends raw bytes to every connected client (console text, malformed frames).
    pub fn inject_raw(&self, bytes: &[u8]) -> usize {
        self.shared.outbound.send(Arc::from(bytes)).unwrap_or(0)
    }

    /// Sends a `FromRadio` to every connected client; returns how many got it.
    pub fn inject(&self, payload: from_radio::Payload) -> usize {
        let msg = self.frame_msg(payload);
        let frame = framing::encode_message(&msg).expect("simulated messages fit a frame");
        self.inject_raw(&frame)
    }

    /// Injects a packet heard from the mesh; returns its packet id.
    pub fn inject_packet(&self, mut packet: MeshPacket) -> u32 {
        if packet.id == 0 {
            packet.id = fastrand::u32(1..);
        }
        if packet.rx_time == 0 {
            packet.rx_time = unix_now();
        }
        if packet.hop_limit == 0 && packet.hop_start == 0 {
            packet.hop_start = 3;
            packet.hop_limit = 3;
        }
        let id = packet.id;
        self.inject(from_radio::Payload::Packet(packet));
        id
    }

    fn data_packet(from: u32, to: u32, channel: u32, data: Data) -> MeshPacket {
        MeshPacket {
            from,
            to,
            channel,
            rx_snr: 6.25,
            rx_rssi: -71,
            payload: Some(mesh_packet::Payload::Decoded(data)),
            ..Default::default()
        }
    }

    /// A text from `from` on `channel` (to everyone, or to node `to`), optionally a reply to or
    /// a reaction on packet `reply_id`.
    pub fn inject_text(&self, msg: &SimText) -> u32 {
        let data = Data {
            portnum: PortNum::TextMessageApp as i32,
            payload: msg.text.as_bytes().to_vec(),
            reply_id: msg.reply_id,
            emoji: u32::from(msg.emoji),
            ..Default::default()
        };
        self.inject_packet(Self::data_packet(msg.from, msg.to, msg.channel, data))
    }

    /// A detection-sensor alert.
    pub fn inject_detection(&self, from: u32, channel: u32, text: &str) -> u32 {
        let data = Data {
            portnum: PortNum::DetectionSensorApp as i32,
            payload: text.as_bytes().to_vec(),
            ..Default::default()
        };
        self.inject_packet(Self::data_packet(from, proto::BROADCAST, channel, data))
    }

    pub fn inject_position(&self, from: u32, lat: f64, lon: f64, alt: Option<i32>) -> u32 {
        let pos = Position {
            latitude_i: Some((lat * 1e7).round() as i32),
            longitude_i: Some((lon * 1e7).round() as i32),
            altitude: alt,
            time: unix_now(),
            ..Default::default()
        };
        let data = Data {
            portnum: PortNum::PositionApp as i32,
            payload: pos.encode_to_vec(),
            ..Default::default()
        };
        self.inject_packet(Self::data_packet(from, proto::BROADCAST, 0, data))
    }

    pub fn inject_telemetry(&self, from: u32, battery: u32, voltage: f32) -> u32 {
        let t = Telemetry {
            time: unix_now(),
            variant: Some(telemetry::Variant::DeviceMetrics(DeviceMetrics {
                battery_level: Some(battery),
                voltage: Some(voltage),
                channel_utilization: Some(3.5),
                air_util_tx: Some(0.8),
                uptime_seconds: Some(3600),
            })),
        };
        let data = Data {
            portnum: PortNum::TelemetryApp as i32,
            payload: t.encode_to_vec(),
            ..Default::default()
        };
        self.inject_packet(Self::data_packet(from, proto::BROADCAST, 0, data))
    }

    /// A NODEINFO packet announcing a node's names (and adds it to the radio's database).
    pub fn inject_nodeinfo(&self, node: &SimNode) -> u32 {
        self.upsert_node(node.clone());
        let data = Data {
            portnum: PortNum::NodeinfoApp as i32,
            payload: node.user().encode_to_vec(),
            ..Default::default()
        };
        self.inject_packet(Self::data_packet(node.num, proto::BROADCAST, 0, data))
    }

    /// Tells clients the radio rebooted (they must redo the handshake).
    pub fn inject_rebooted(&self) -> usize {
        self.inject(from_radio::Payload::Rebooted(true))
    }

    /// Finds a node by id or by short or long name.
    pub fn find_node(&self, key: &str) -> Option<u32> {
        if let Some(n) = parse_node_id(key) {
            return Some(n);
        }
        let cfg = self.shared.config.lock().unwrap();
        std::iter::once(&cfg.me)
            .chain(cfg.nodes.iter())
            .find(|n| {
                n.short_name.eq_ignore_ascii_case(key) || n.long_name.eq_ignore_ascii_case(key)
            })
            .map(|n| n.num)
    }

    /// The handshake answer, in the firmware's order.
    fn config_stream(&self, nonce: u32) -> Vec<FromRadio> {
        use from_radio::Payload as P;
        let cfg = self.config();
        let now = unix_now();
        let mut out = vec![self.frame_msg(P::MyInfo(MyNodeInfo {
            my_node_num: cfg.me.num,
            reboot_count: 3,
            min_app_version: 30200,
            nodedb_count: cfg.nodes.len() as u32 + 1,
            ..Default::default()
        }))];
        out.push(self.frame_msg(P::NodeInfo(NodeInfo {
            num: cfg.me.num,
            user: Some(cfg.me.user()),
            last_heard: now,
            ..Default::default()
        })));
        out.push(self.frame_msg(P::Metadata(DeviceMetadata {
            firmware_version: cfg.firmware.as_bytes().to_vec(),
            device_state_version: 24,
            has_bluetooth: true,
            hw_model: 9,
            has_pkc: true,
            ..Default::default()
        })));
        for index in 0..8u32 {
            let named = cfg.channels.iter().find(|(i, _)| *i == index);
            let (role, settings) = match named {
                Some((i, name)) => (
                    if *i == 0 {
                        ChannelRole::Primary
                    } else {
                        ChannelRole::Secondary
                    },
                    Some(ChannelSettings {
                        psk: vec![1],
                        name: name.as_bytes().to_vec(),
                        ..Default::default()
                    }),
                ),
                None => (ChannelRole::Disabled, None),
            };
            out.push(self.frame_msg(P::Channel(Channel {
                index: index as i32,
                settings,
                role: role as i32,
            })));
        }
        out.push(self.frame_msg(P::Config(Config {
            section: Some(config::Section::Lora(LoRaConfig {
                use_preset: true,
                region: 3,
                hop_limit: cfg.hop_limit,
                tx_enabled: true,
                ..Default::default()
            })),
        })));
        out.push(self.frame_msg(P::Config(Config {
            section: Some(config::Section::Security(SecurityConfig {
                serial_enabled: true,
                ..Default::default()
            })),
        })));
        // A module config section the relay does not read (MQTT, disabled).
        out.push(self.frame_msg(P::ModuleConfig(vec![0x0a, 0x02, 0x08, 0x00])));
        for (i, n) in cfg.nodes.iter().enumerate() {
            out.push(self.frame_msg(P::NodeInfo(NodeInfo {
                num: n.num,
                user: Some(n.user()),
                last_heard: now.saturating_sub(60 * (i as u32 + 1)),
                snr: 5.5,
                hops_away: Some(i as u32 % 3),
                ..Default::default()
            })));
        }
        if self.shared.finish_config.load(Ordering::SeqCst) {
            out.push(self.frame_msg(P::ConfigCompleteId(nonce)));
        }
        out
    }
}

/// A text to inject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimText {
    pub from: u32,
    pub to: u32,
    pub channel: u32,
    pub text: String,
    pub reply_id: u32,
    pub emoji: bool,
}

impl SimText {
    /// A broadcast text on `channel`.
    pub fn broadcast(from: u32, channel: u32, text: &str) -> Self {
        SimText {
            from,
            to: proto::BROADCAST,
            channel,
            text: text.into(),
            reply_id: 0,
            emoji: false,
        }
    }
}
