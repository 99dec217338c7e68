//! The radio session as a sans-IO state machine: the `want_config` handshake, what the radio
//! tells us about itself (its node, firmware, channels, LoRa and security config), a bounded node
//! database, and the classification of everything else the radio sends.
//!
//! The link ([`super::link`]) feeds it decoded `FromRadio` messages and acts on its outputs;
//! nothing here touches a socket or a clock.

use std::collections::HashMap;

use super::proto::{
    self, config, from_radio, mesh_packet, text, to_radio, ChannelRole, ClientNotification,
    DeviceMetadata, FromRadio, Heartbeat, LoRaConfig, LogRecord, MeshPacket, MyNodeInfo, PortNum,
    QueueStatus, SecurityConfig, ToRadio, User,
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
}

impl NodeEntry {
    fn unnamed(num: u32) -> Self {
        NodeEntry {
            num,
            long_name: LongName::new(),
            short_name: ShortName::new(),
            hw_model: 0,
            last_heard: 0,
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
    /// The radio rebooted: the caller must send [`Session::start`]'s message again.
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
pub struct Session {
    phase: Phase,
    info: RadioInfo,
}

impl Session {
    pub fn new(max_nodes: usize) -> Self {
        Session {
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
mod tests {
    use super::*;
    use crate::mesh::proto::{Channel, ChannelSettings, Config, Data, NodeInfo, Routing};

    fn fr(p: from_radio::Payload) -> FromRadio {
        FromRadio {
            id: 0,
            payload: Some(p),
        }
    }

    fn user(long: &str, short: &str) -> User {
        User {
            long_name: long.as_bytes().to_vec(),
            short_name: short.as_bytes().to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn handshake_collects_everything_until_matching_nonce() {
        let mut s = Session::new(100);
        let req = s.start(1234);
        assert_eq!(req.payload, Some(to_radio::Payload::WantConfigId(1234)));
        use from_radio::Payload as P;
        let msgs = vec![
            P::MyInfo(MyNodeInfo {
                my_node_num: 0x11,
                ..Default::default()
            }),
            P::NodeInfo(NodeInfo {
                num: 0x11,
                user: Some(user("Relay Node", "RLY")),
                last_heard: 100,
                ..Default::default()
            }),
            P::Metadata(DeviceMetadata {
                firmware_version: b"2.7.11.abc".to_vec(),
                ..Default::default()
            }),
            P::Channel(Channel {
                index: 0,
                settings: Some(ChannelSettings::default()),
                role: ChannelRole::Primary as i32,
            }),
            P::Channel(Channel {
                index: 1,
                settings: Some(ChannelSettings {
                    name: b"Ops".to_vec(),
                    ..Default::default()
                }),
                role: ChannelRole::Secondary as i32,
            }),
            P::Channel(Channel {
                index: 2,
                settings: None,
                role: 0,
            }),
            P::Config(Config {
                section: Some(config::Section::Lora(LoRaConfig {
                    hop_limit: 5,
                    ..Default::default()
                })),
            }),
            P::NodeInfo(NodeInfo {
                num: 0x22,
                user: Some(user("Alice", "ALC")),
                last_heard: 200,
                ..Default::default()
            }),
        ];
        for m in msgs {
            assert_eq!(s.on_message(fr(m), 0), None);
            assert!(!s.is_ready());
        }
        // A stale completion (someone else's nonce) does not finish our handshake.
        assert_eq!(s.on_message(fr(P::ConfigCompleteId(99)), 0), None);
        assert!(!s.is_ready());
        assert_eq!(
            s.on_message(fr(P::ConfigCompleteId(1234)), 0),
            Some(Output::ConfigComplete)
        );
        assert!(s.is_ready());
        let info = s.info();
        assert_eq!(info.my_node_num, 0x11);
        assert_eq!(info.my_node().unwrap().long_name.as_str(), "Relay Node");
        assert_eq!(info.firmware_version(), "2.7.11.abc");
        assert_eq!(info.hop_limit(), 5);
        let active: Vec<_> = info.active_channels().map(|c| c.index).collect();
        assert_eq!(active, vec![0, 1]);
        assert_eq!(info.channels[1].as_ref().unwrap().name, "Ops");
        let names: Vec<_> = info
            .nodes
            .sorted()
            .iter()
            .map(|n| n.short_name.to_string())
            .collect();
        assert_eq!(names, vec!["ALC", "RLY"]);
    }

    #[test]
    fn reserved_and_zero_nonces_are_avoided() {
        let mut s = Session::new(4);
        for n in [0, 69420, 69421] {
            let nonce = match s.start(n).payload {
                Some(to_radio::Payload::WantConfigId(x)) => x,
                _ => unreachable!(),
            };
            assert_ne!(nonce, 0);
            assert!(!RESERVED_NONCES.contains(&nonce));
            assert_eq!(s.pending_nonce(), Some(nonce));
        }
    }

    #[test]
    fn rebooted_requires_a_new_handshake() {
        let mut s = Session::new(4);
        s.start(5);
        s.on_message(fr(from_radio::Payload::ConfigCompleteId(5)), 0);
        assert!(s.is_ready());
        assert_eq!(
            s.on_message(fr(from_radio::Payload::Rebooted(true)), 0),
            Some(Output::Rebooted)
        );
        assert!(!s.is_ready());
    }

    fn packet(from: u32, portnum: PortNum, payload: Vec<u8>, request_id: u32) -> MeshPacket {
        MeshPacket {
            from,
            to: proto::BROADCAST,
            id: 77,
            payload: Some(mesh_packet::Payload::Decoded(Data {
                portnum: portnum as i32,
                payload,
                request_id,
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    #[test]
    fn routing_answers_are_matched_by_request_id() {
        let mut s = Session::new(4);
        let ok = Routing {
            variant: Some(proto::routing::Variant::ErrorReason(0)),
        };
        let nak = Routing {
            variant: Some(proto::routing::Variant::ErrorReason(5)),
        };
        let p = packet(1, PortNum::RoutingApp, ok.encode_to_vec(), 42);
        assert_eq!(
            s.on_message(fr(from_radio::Payload::Packet(p)), 0),
            Some(Output::Routing {
                request_id: 42,
                error: 0,
                from: 1
            })
        );
        let p = packet(1, PortNum::RoutingApp, nak.encode_to_vec(), 43);
        assert!(matches!(
            s.on_message(fr(from_radio::Payload::Packet(p)), 0),
            Some(Output::Routing { error: 5, .. })
        ));
    }

    #[test]
    fn nodeinfo_packets_name_unknown_senders_and_text_updates_last_heard() {
        let mut s = Session::new(4);
        let t = packet(0x33, PortNum::TextMessageApp, b"hi".to_vec(), 0);
        assert!(matches!(
            s.on_message(fr(from_radio::Payload::Packet(t)), 1000),
            Some(Output::Packet(_))
        ));
        let n = s.info().nodes.get(0x33).unwrap();
        assert_eq!((n.long_name.as_str(), n.last_heard), ("", 1000));
        let ni = packet(
            0x33,
            PortNum::NodeinfoApp,
            user("Bob \u{1F600}", "B\u{1F600}").encode_to_vec(),
            0,
        );
        match s.on_message(fr(from_radio::Payload::Packet(ni)), 1001) {
            Some(Output::NodeUpdated(n)) => {
                assert_eq!(n.long_name.as_str(), "Bob \u{1F600}");
                assert_eq!(n.short_name.as_str(), "B\u{1F600}");
                assert_eq!(n.last_heard, 1001);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn node_db_is_bounded_and_evicts_the_longest_unheard() {
        let mut s = Session::new(3);
        for (num, heard) in [(1, 50), (2, 10), (3, 30), (4, 40)] {
            let t = packet(num, PortNum::TextMessageApp, vec![], 0);
            s.on_message(fr(from_radio::Payload::Packet(t)), heard);
        }
        let nums: Vec<u32> = s.info().nodes.sorted().iter().map(|n| n.num).collect();
        assert_eq!(nums, vec![1, 4, 3]);
        assert_eq!(s.info().nodes.evicted(), 1);
    }

    #[test]
    fn long_names_are_cut_at_char_boundaries() {
        let mut s = Session::new(3);
        let long = "\u{00e9}".repeat(40); // 80 bytes
        let ni = packet(9, PortNum::NodeinfoApp, user(&long, "x").encode_to_vec(), 0);
        s.on_message(fr(from_radio::Payload::Packet(ni)), 1);
        let n = s.info().nodes.get(9).unwrap();
        assert_eq!(n.long_name.len(), 48);
        assert!(n.long_name.chars().all(|c| c == '\u{00e9}'));
    }

    #[test]
    fn text_packets_are_built_with_limits() {
        let m = TextMessage {
            channel: 2,
            to: proto::BROADCAST,
            text: "hello".into(),
            reply_id: 9,
            emoji: true,
        };
        let p = m.to_packet(1234, 4).unwrap();
        assert_eq!(
            (p.id, p.hop_limit, p.channel, p.want_ack),
            (1234, 4, 2, true)
        );
        let d = p.decoded().unwrap();
        assert_eq!((d.reply_id, d.emoji, &d.payload[..]), (9, 1, &b"hello"[..]));
        let long = TextMessage {
            text: "x".repeat(234),
            ..m.clone()
        };
        assert_eq!(long.to_packet(1, 3), Err(BuildError::TooLong { len: 234 }));
        let bad = TextMessage { channel: 8, ..m };
        assert_eq!(bad.to_packet(1, 3), Err(BuildError::BadChannel(8)));
    }

    #[test]
    fn node_ids_parse_and_print() {
        assert_eq!(node_id(0xa1b2c3d4), "!a1b2c3d4");
        assert_eq!(parse_node_id("!a1b2c3d4"), Some(0xa1b2c3d4));
        assert_eq!(parse_node_id("0x10"), Some(16));
        assert_eq!(parse_node_id("a1b2c3d4"), Some(0xa1b2c3d4));
        assert_eq!(parse_node_id("12345678"), Some(12345678));
        assert_eq!(parse_node_id("!zz"), None);
    }
}
