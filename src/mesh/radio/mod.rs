//! The radio session as a sans-IO state machine: the `want_config` handshake, what the radio
//! tells us about itself (its node, firmware, channels, LoRa and security config), a bounded node
//! database, and the classification of everything else the radio sends.
//!
//! The link ([`super::link`]) feeds it decoded `FromRadio` messages and acts on its outputs;
//! nothing here touches a socket or a clock.

use std::collections::HashMap;

use super::proto::{
    self, config, from_radio, mesh_packet, text, to_radio, ChannelRole, ClientNotification,
    DeviceMetadata, DeviceMetrics, FromRadio, Heartbeat, LoRaConfig, LogRecord, MeshPacket,
    MyNodeInfo, PortNum, QueueStatus, SecurityConfig, ToRadio, User,
};
use prost::Message;

/// Channels a radio has.
pub const MAX_CHANNELS: usize = 8;
/// Hop limit used before the radio has told us its own.
pub const DEFAULT_HOP_LIMIT: u32 = 3;
/// Nonces with a special meaning to the firmware (config only, nodes only): never use them.
const RESERVED_NONCES: [u32; 2] = [69420, 69421];

/// A fixed-capacity name, cut at a character boundary when too long.
pub type LongName = heapless::String<48>;
pub type ShortName = heapless::String<16>;

fn bounded<const N: usize>(s: &str) -> heapless::String<N> {
    let mut out = heapless::String::new();
    for c in s.chars() {
        if out.push(c).is_err() {
            break;
        }
    }
    out
}

/// What we know of one node of the mesh.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeEntry {
    pub num: u32,
    pub long_name: LongName,
    pub short_name: ShortName,
    pub hw_model: i32,
    /// Seconds since the Unix epoch; 0 when never heard.
    pub last_heard: u32,
    /// As the radio last reported them: signal-to-noise ratio of the last packet heard (dB),
    /// hops away, and the node's device metrics (battery, voltage, channel use).
    pub snr: f32,
    pub hops_away: Option<u32>,
    pub metrics: Option<DeviceMetrics>,
}

impl NodeEntry {
    fn unnamed(num: u32) -> Self {
        NodeEntry {
            num,
            long_name: LongName::new(),
            short_name: ShortName::new(),
            hw_model: 0,
            last_heard: 0,
            snr: 0.0,
            hops_away: None,
            metrics: None,
        }
    }

    /// The node's id as Meshtastic writes it: `!` and eight hex digits.
    pub fn id(&self) -> String {
        node_id(self.num)
    }

    fn set_user(&mut self, user: &User) {
        self.long_name = bounded(&text(&user.long_name));
        self.short_name = bounded(&text(&user.short_name));
        self.hw_model = user.hw_model;
    }
}

/// `!a1b2c3d4` for node number 0xa1b2c3d4.
pub fn node_id(num: u32) -> String {
    format!("!{num:08x}")
}

/// Parses `!a1b2c3d4`, `a1b2c3d4`, `0xa1b2c3d4` or a decimal node number.
pub fn parse_node_id(s: &str) -> Option<u32> {
    let s = s.trim();
    if let Some(hex) = s.strip_prefix('!').or_else(|| s.strip_prefix("0x")) {
        return u32::from_str_radix(hex, 16).ok();
    }
    if s.len() == 8
        && s.chars().all(|c| c.is_ascii_hexdigit())
        && !s.chars().all(|c| c.is_ascii_digit())
    {
        return u32::from_str_radix(s, 16).ok();
    }
    s.parse().ok()
}

/// The node database: bounded; when full, the node heard longest ago makes room.
#[derive(Debug, Clone)]
pub struct NodeDb {
    nodes: HashMap<u32, NodeEntry>,
    capacity: usize,
    evicted: u64,
}

impl NodeDb {
    pub fn new(capacity: usize) -> Self {
        NodeDb {
            nodes: HashMap::new(),
            capacity: capacity.max(1),
            evicted: 0,
        }
    }

    pub fn get(&self, num: u32) -> Option<&NodeEntry> {
        self.nodes.get(&num)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// How many nodes were dropped to keep the table within its capacity.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// All nodes, most recently heard first.
    pub fn sorted(&self) -> Vec<&NodeEntry> {
        let mut v: Vec<_> = self.nodes.values().collect();
        v.sort_by(|a, b| b.last_heard.cmp(&a.last_heard).then(a.num.cmp(&b.num)));
        v
    }

    fn entry(&mut self, num: u32) -> &mut NodeEntry {
        if !self.nodes.contains_key(&num) && self.nodes.len() >= self.capacity {
            if let Some(oldest) = self
                .nodes
                .values()
                .min_by_key(|n| (n.last_heard, n.num))
                .map(|n| n.num)
            {
                self.nodes.remove(&oldest);
                self.evicted += 1;
            }
        }
        self.nodes
            .entry(num)
            .or_insert_with(|| NodeEntry::unnamed(num))
    }
}

/// One configured channel of the radio.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelInfo {
    pub index: u32,
    pub name: String,
    pub role: ChannelRole,
}

impl ChannelInfo {
    /// The name a user sees: the firmware shows an unnamed primary channel by its preset.
    pub fn display_name(&self) -> &str {
        if self.name.is_empty() {
            match self.role {
                ChannelRole::Primary => "(primary, default name)",
                _ => "(unnamed)",
            }
        } else {
            &self.name
        }
    }
}

/// Everything the radio told us during the handshake, kept up to date afterwards.
#[derive(Debug, Clone)]
pub struct RadioInfo {
    pub my_node_num: u32,
    pub my_info: Option<MyNodeInfo>,
    pub metadata: Option<DeviceMetadata>,
    pub channels: [Option<ChannelInfo>; MAX_CHANNELS],
    pub nodes: NodeDb,
    pub lora: Option<LoRaConfig>,
    pub security: Option<SecurityConfig>,
}

impl RadioInfo {
    fn new(max_nodes: usize) -> Self {
        RadioInfo {
            my_node_num: 0,
            my_info: None,
            metadata: None,
            channels: Default::default(),
            nodes: NodeDb::new(max_nodes),
            lora: None,
            security: None,
        }
    }

    /// Hop limit for our sends: the radio's own setting.
    pub fn hop_limit(&self) -> u32 {
        match &self.lora {
            Some(l) if l.hop_limit > 0 => l.hop_limit,
            _ => DEFAULT_HOP_LIMIT,
        }
    }

    pub fn firmware_version(&self) -> String {
        self.metadata
            .as_ref()
            .map(|m| text(&m.firmware_version).into_owned())
            .unwrap_or_default()
    }

    /// The relay's own node entry, if the radio sent it.
    pub fn my_node(&self) -> Option<&NodeEntry> {
        self.nodes.get(self.my_node_num)
    }

    /// Channels that are in use (not disabled), by index.
    pub fn active_channels(&self) -> impl Iterator<Item = &ChannelInfo> {
        self.channels
            .iter()
            .flatten()
            .filter(|c| c.role != ChannelRole::Disabled)
    }
}

/// What a `FromRadio` message means for the host.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// The handshake finished: the session is ready.
    ConfigComplete,
    /// The radio rebooted: the caller must send [`RadioSession::start`]'s message again.
    Rebooted,
    /// A packet from the mesh (already used to update the node database).
    Packet(MeshPacket),
    /// The radio's answer for a packet we sent: error 0 is success.
    Routing {
        request_id: u32,
        error: i32,
        from: u32,
    },
    QueueStatus(QueueStatus),
    /// A node's name or details changed.
    NodeUpdated(NodeEntry),
    Log(LogRecord),
    Notification(ClientNotification),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Configuring { nonce: u32 },
    Ready,
}

/// The host side of one radio session.
#[derive(Debug)]
pub struct RadioSession {
    phase: Phase,
    info: RadioInfo,
}

impl RadioSession {
    pub fn new(max_nodes: usize) -> Self {
        RadioSession {
            phase: Phase::Idle,
            info: RadioInfo::new(max_nodes),
        }
    }

    pub fn info(&self) -> &RadioInfo {
        &self.info
    }

    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Ready
    }

    /// Starts (or restarts) the handshake with `nonce`; returns the request to send. What was
    /// learnt before is kept (and refreshed by the radio's answers).
    pub fn start(&mut self, nonce: u32) -> ToRadio {
        let nonce = if nonce == 0 || RESERVED_NONCES.contains(&nonce) {
            nonce.wrapping_add(7).max(1)
        } else {
            nonce
        };
        self.phase = Phase::Configuring { nonce };
        ToRadio {
            payload: Some(to_radio::Payload::WantConfigId(nonce)),
        }
    }

    /// The nonce of the handshake in progress.
    pub fn pending_nonce(&self) -> Option<u32> {
        match self.phase {
            Phase::Configuring { nonce } => Some(nonce),
            _ => None,
        }
    }

    /// Takes one decoded message from the radio; `now` is the Unix time in seconds (used for
    /// nodes heard in packets that carry no receive time).
    pub fn on_message(&mut self, msg: FromRadio, now: u32) -> Option<Output> {
        use from_radio::Payload as P;
        match msg.payload? {
            P::MyInfo(info) => {
                self.info.my_node_num = info.my_node_num;
                self.info.my_info = Some(info);
                None
            }
            P::NodeInfo(ni) => {
                let entry = self.info.nodes.entry(ni.num);
                if let Some(user) = &ni.user {
                    entry.set_user(user);
                }
                entry.last_heard = entry.last_heard.max(ni.last_heard);
                entry.snr = ni.snr;
                entry.hops_away = ni.hops_away.or(entry.hops_away);
                if ni.device_metrics.is_some() {
                    entry.metrics = ni.device_metrics;
                }
                let entry = entry.clone();
                if self.is_ready() {
                    Some(Output::NodeUpdated(entry))
                } else {
                    None
                }
            }
            P::Channel(ch) => {
                if let Ok(idx) = usize::try_from(ch.index) {
                    if idx < MAX_CHANNELS {
                        let name = ch
                            .settings
                            .as_ref()
                            .map(|s| text(&s.name).into_owned())
                            .unwrap_or_default();
                        self.info.channels[idx] = Some(ChannelInfo {
                            index: idx as u32,
                            name,
                            role: ChannelRole::try_from(ch.role).unwrap_or(ChannelRole::Disabled),
                        });
                    }
                }
                None
            }
            P::Config(cfg) => {
                match cfg.section {
                    Some(config::Section::Lora(l)) => self.info.lora = Some(l),
                    Some(config::Section::Security(s)) => self.info.security = Some(s),
                    _ => {}
                }
                None
            }
            P::Metadata(m) => {
                self.info.metadata = Some(m);
                None
            }
            P::ModuleConfig(_) => None,
            P::ConfigCompleteId(id) => match self.phase {
                Phase::Configuring { nonce } if nonce == id => {
                    self.phase = Phase::Ready;
                    Some(Output::ConfigComplete)
                }
                _ => {
                    log::debug!("ignoring config_complete_id {id} that answers no request of ours");
                    None
                }
            },
            P::Rebooted(_) => {
                self.phase = Phase::Idle;
                Some(Output::Rebooted)
            }
            P::QueueStatus(q) => Some(Output::QueueStatus(q)),
            P::LogRecord(l) => Some(Output::Log(l)),
            P::ClientNotification(n) => Some(Output::Notification(n)),
            P::Packet(p) => Some(self.on_packet(p, now)),
        }
    }

    fn on_packet(&mut self, p: MeshPacket, now: u32) -> Output {
        let heard = if p.rx_time != 0 { p.rx_time } else { now };
        let Some(mesh_packet::Payload::Decoded(data)) = &p.payload else {
            return Output::Packet(p);
        };
        match PortNum::try_from(data.portnum) {
            Ok(PortNum::RoutingApp) if data.request_id != 0 => {
                let error = match proto::Routing::decode(data.payload.as_slice()) {
                    Ok(proto::Routing {
                        variant: Some(proto::routing::Variant::ErrorReason(e)),
                    }) => e,
                    Ok(_) => 0,
                    Err(_) => {
                        log::warn!(
                            "routing answer for packet {:#010x} has an undecodable payload",
                            data.request_id
                        );
                        0
                    }
                };
                return Output::Routing {
                    request_id: data.request_id,
                    error,
                    from: p.from,
                };
            }
            Ok(PortNum::NodeinfoApp) => {
                if let Ok(user) = User::decode(data.payload.as_slice()) {
                    let entry = self.info.nodes.entry(p.from);
                    entry.set_user(&user);
                    entry.last_heard = entry.last_heard.max(heard);
                    return Output::NodeUpdated(entry.clone());
                }
                log::warn!("NODEINFO from {} does not decode", node_id(p.from));
            }
            _ => {}
        }
        if p.from != 0 {
            let entry = self.info.nodes.entry(p.from);
            entry.last_heard = entry.last_heard.max(heard);
        }
        Output::Packet(p)
    }
}

/// A text message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextMessage {
    pub channel: u32,
    /// Destination node, or [`proto::BROADCAST`].
    pub to: u32,
    pub text: String,
    /// The packet this one answers (a threaded reply or a reaction), or 0.
    pub reply_id: u32,
    /// True when the text is a reaction (an emoji) to `reply_id`.
    pub emoji: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildError {
    TooLong { len: usize },
    BadChannel(u32),
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::TooLong { len } => write!(
                f,
                "text is {len} bytes; the radio takes at most {} bytes",
                proto::DATA_PAYLOAD_LEN
            ),
            BuildError::BadChannel(c) => {
                write!(
                    f,
                    "channel {c} does not exist (radios have channels 0 to 7)"
                )
            }
        }
    }
}
impl std::error::Error for BuildError {}

impl TextMessage {
    /// Builds the packet with packet id `id` (non-zero) and the radio's hop limit.
    pub fn to_packet(&self, id: u32, hop_limit: u32) -> Result<MeshPacket, BuildError> {
        if self.text.len() > proto::DATA_PAYLOAD_LEN {
            return Err(BuildError::TooLong {
                len: self.text.len(),
            });
        }
        if self.channel as usize >= MAX_CHANNELS {
            return Err(BuildError::BadChannel(self.channel));
        }
        Ok(MeshPacket {
            to: self.to,
            channel: self.channel,
            id,
            hop_limit,
            want_ack: true,
            priority: proto::priority::RELIABLE,
            payload: Some(mesh_packet::Payload::Decoded(proto::Data {
                portnum: PortNum::TextMessageApp as i32,
                payload: self.text.as_bytes().to_vec(),
                reply_id: self.reply_id,
                emoji: u32::from(self.emoji),
                ..Default::default()
            })),
            ..Default::default()
        })
    }
}

/// The keep-alive request (nonce 0: nonce 1 would make the radio broadcast its NodeInfo).
pub fn heartbeat() -> ToRadio {
    ToRadio {
        payload: Some(to_radio::Payload::Heartbeat(Heartbeat { nonce: 0 })),
    }
}

/// The request sent on a clean shutdown.
pub fn disconnect() -> ToRadio {
    ToRadio {
        payload: Some(to_radio::Payload::Disconnect(true)),
    }
}

/// A random, non-zero packet id.
pub fn random_packet_id() -> u32 {
    fastrand::u32(1..)
}

#[cfg(test)]
mod tests;
