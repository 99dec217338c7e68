//! The subset of the Meshtastic client-API schema that mmrelay speaks, as hand-written prost
//! derives (no protoc, no build script). `proto/meshtastic.proto` describes the same subset.
//!
//! Rules that keep newer firmware from breaking us:
//! - unknown fields and unknown oneof tags are skipped by the decoder;
//! - enums are kept as raw `i32`, so unknown enum values survive;
//! - text fields are declared `bytes` (the wire format is the same), so a name or a text with
//!   invalid UTF-8 never fails the whole frame; read them through the lossy accessors;
//! - messages we pass through without reading (module config, most config sections) are kept as
//!   their raw bytes, so they re-encode exactly.
#![allow(clippy::large_enum_variant)]

use std::borrow::Cow;

/// Broadcast destination node number.
pub const BROADCAST: u32 = 0xFFFF_FFFF;
/// Largest `Data.payload` the firmware accepts.
pub const DATA_PAYLOAD_LEN: usize = 233;

/// Decodes a text field declared as `bytes`, replacing invalid UTF-8.
pub fn text(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

// ---------------------------------------------------------------------------------------------
// Host to radio
// ---------------------------------------------------------------------------------------------

/// A message from the host to the radio.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ToRadio {
    #[prost(oneof = "to_radio::Payload", tags = "1, 3, 4, 7")]
    pub payload: Option<to_radio::Payload>,
}

pub mod to_radio {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Payload {
        #[prost(message, tag = "1")]
        Packet(super::MeshPacket),
        #[prost(uint32, tag = "3")]
        WantConfigId(u32),
        #[prost(bool, tag = "4")]
        Disconnect(bool),
        #[prost(message, tag = "7")]
        Heartbeat(super::Heartbeat),
    }
}

/// Keep-alive. Nonce 1 makes the firmware broadcast its NodeInfo, so keep-alives use 0.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Heartbeat {
    #[prost(uint32, tag = "1")]
    pub nonce: u32,
}

// ---------------------------------------------------------------------------------------------
// Radio to host
// ---------------------------------------------------------------------------------------------

/// A message from the radio to the host.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FromRadio {
    #[prost(uint32, tag = "1")]
    pub id: u32,
    #[prost(
        oneof = "from_radio::Payload",
        tags = "2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 16"
    )]
    pub payload: Option<from_radio::Payload>,
}

pub mod from_radio {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Payload {
        #[prost(message, tag = "2")]
        Packet(super::MeshPacket),
        #[prost(message, tag = "3")]
        MyInfo(super::MyNodeInfo),
        #[prost(message, tag = "4")]
        NodeInfo(super::NodeInfo),
        #[prost(message, tag = "5")]
        Config(super::Config),
        #[prost(message, tag = "6")]
        LogRecord(super::LogRecord),
        #[prost(uint32, tag = "7")]
        ConfigCompleteId(u32),
        #[prost(bool, tag = "8")]
        Rebooted(bool),
        /// Module configuration, passed through unread.
        #[prost(bytes, tag = "9")]
        ModuleConfig(Vec<u8>),
        #[prost(message, tag = "10")]
        Channel(super::Channel),
        #[prost(message, tag = "11")]
        QueueStatus(super::QueueStatus),
        #[prost(message, tag = "13")]
        Metadata(super::DeviceMetadata),
        #[prost(message, tag = "16")]
        ClientNotification(super::ClientNotification),
    }
}

// ---------------------------------------------------------------------------------------------
// Packets
// ---------------------------------------------------------------------------------------------

#[derive(Clone, PartialEq, prost::Message)]
pub struct MeshPacket {
    #[prost(fixed32, tag = "1")]
    pub from: u32,
    #[prost(fixed32, tag = "2")]
    pub to: u32,
    /// Channel index (on the client API).
    #[prost(uint32, tag = "3")]
    pub channel: u32,
    #[prost(oneof = "mesh_packet::Payload", tags = "4, 5")]
    pub payload: Option<mesh_packet::Payload>,
    #[prost(fixed32, tag = "6")]
    pub id: u32,
    #[prost(fixed32, tag = "7")]
    pub rx_time: u32,
    #[prost(float, tag = "8")]
    pub rx_snr: f32,
    #[prost(uint32, tag = "9")]
    pub hop_limit: u32,
    #[prost(bool, tag = "10")]
    pub want_ack: bool,
    #[prost(int32, tag = "11")]
    pub priority: i32,
    #[prost(int32, tag = "12")]
    pub rx_rssi: i32,
    #[prost(int32, tag = "13")]
    pub delayed: i32,
    #[prost(bool, tag = "14")]
    pub via_mqtt: bool,
    #[prost(uint32, tag = "15")]
    pub hop_start: u32,
    #[prost(bytes, tag = "16")]
    pub public_key: Vec<u8>,
    #[prost(bool, tag = "17")]
    pub pki_encrypted: bool,
    #[prost(uint32, tag = "18")]
    pub next_hop: u32,
    #[prost(uint32, tag = "19")]
    pub relay_node: u32,
    #[prost(uint32, tag = "20")]
    pub tx_after: u32,
    #[prost(int32, tag = "21")]
    pub transport_mechanism: i32,
}

pub mod mesh_packet {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Payload {
        #[prost(message, tag = "4")]
        Decoded(super::Data),
        #[prost(bytes, tag = "5")]
        Encrypted(Vec<u8>),
    }
}

impl MeshPacket {
    /// The decoded payload, when the radio could decrypt the packet.
    pub fn decoded(&self) -> Option<&Data> {
        match &self.payload {
            Some(mesh_packet::Payload::Decoded(d)) => Some(d),
            _ => None,
        }
    }
}

/// Priority values used by the relay.
pub mod priority {
    pub const DEFAULT: i32 = 64;
    pub const RELIABLE: i32 = 70;
    pub const ACK: i32 = 120;
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Data {
    #[prost(enumeration = "PortNum", tag = "1")]
    pub portnum: i32,
    #[prost(bytes, tag = "2")]
    pub payload: Vec<u8>,
    #[prost(bool, tag = "3")]
    pub want_response: bool,
    #[prost(fixed32, tag = "4")]
    pub dest: u32,
    #[prost(fixed32, tag = "5")]
    pub source: u32,
    #[prost(fixed32, tag = "6")]
    pub request_id: u32,
    #[prost(fixed32, tag = "7")]
    pub reply_id: u32,
    #[prost(fixed32, tag = "8")]
    pub emoji: u32,
    #[prost(uint32, optional, tag = "9")]
    pub bitfield: Option<u32>,
}

/// Application port numbers (the kinds of payload). Values we do not list stay raw `i32`s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum PortNum {
    UnknownApp = 0,
    TextMessageApp = 1,
    RemoteHardwareApp = 2,
    PositionApp = 3,
    NodeinfoApp = 4,
    RoutingApp = 5,
    AdminApp = 6,
    TextMessageCompressedApp = 7,
    WaypointApp = 8,
    AudioApp = 9,
    DetectionSensorApp = 10,
    AlertApp = 11,
    ReplyApp = 32,
    RangeTestApp = 66,
    TelemetryApp = 67,
    TracerouteApp = 70,
    NeighborinfoApp = 71,
    PrivateApp = 256,
}

/// Routing messages: acks and errors for packets we sent.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Routing {
    #[prost(oneof = "routing::Variant", tags = "1, 2, 3")]
    pub variant: Option<routing::Variant>,
}

pub mod routing {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Variant {
        /// Route discovery, passed through unread.
        #[prost(bytes, tag = "1")]
        RouteRequest(Vec<u8>),
        #[prost(bytes, tag = "2")]
        RouteReply(Vec<u8>),
        #[prost(int32, tag = "3")]
        ErrorReason(i32),
    }
}

/// Human-readable name of a `Routing.Error` value.
pub fn routing_error_name(code: i32) -> Cow<'static, str> {
    Cow::Borrowed(match code {
        0 => "NONE",
        1 => "NO_ROUTE",
        2 => "GOT_NAK",
        3 => "TIMEOUT",
        4 => "NO_INTERFACE",
        5 => "MAX_RETRANSMIT",
        6 => "NO_CHANNEL",
        7 => "TOO_LARGE",
        8 => "NO_RESPONSE",
        9 => "DUTY_CYCLE_LIMIT",
        32 => "BAD_REQUEST",
        33 => "NOT_AUTHORIZED",
        34 => "PKI_FAILED",
        35 => "PKI_UNKNOWN_PUBKEY",
        36 => "ADMIN_BAD_SESSION_KEY",
        37 => "ADMIN_PUBLIC_KEY_UNAUTHORIZED",
        38 => "RATE_LIMIT_EXCEEDED",
        39 => "PKI_SEND_FAIL_PUBLIC_KEY",
        other => return Cow::Owned(format!("error {other}")),
    })
}

// ---------------------------------------------------------------------------------------------
// Nodes
// ---------------------------------------------------------------------------------------------

#[derive(Clone, PartialEq, prost::Message)]
pub struct User {
    /// "!" followed by the node number in eight hex digits.
    #[prost(bytes, tag = "1")]
    pub id: Vec<u8>,
    #[prost(bytes, tag = "2")]
    pub long_name: Vec<u8>,
    #[prost(bytes, tag = "3")]
    pub short_name: Vec<u8>,
    #[prost(bytes, tag = "4")]
    pub macaddr: Vec<u8>,
    #[prost(int32, tag = "5")]
    pub hw_model: i32,
    #[prost(bool, tag = "6")]
    pub is_licensed: bool,
    #[prost(int32, tag = "7")]
    pub role: i32,
    #[prost(bytes, tag = "8")]
    pub public_key: Vec<u8>,
    #[prost(bool, optional, tag = "9")]
    pub is_unmessagable: Option<bool>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeInfo {
    #[prost(uint32, tag = "1")]
    pub num: u32,
    #[prost(message, optional, tag = "2")]
    pub user: Option<User>,
    #[prost(message, optional, tag = "3")]
    pub position: Option<Position>,
    #[prost(float, tag = "4")]
    pub snr: f32,
    /// Seconds since the Unix epoch.
    #[prost(fixed32, tag = "5")]
    pub last_heard: u32,
    #[prost(message, optional, tag = "6")]
    pub device_metrics: Option<DeviceMetrics>,
    #[prost(uint32, tag = "7")]
    pub channel: u32,
    #[prost(bool, tag = "8")]
    pub via_mqtt: bool,
    #[prost(uint32, optional, tag = "9")]
    pub hops_away: Option<u32>,
    #[prost(bool, tag = "10")]
    pub is_favorite: bool,
    #[prost(bool, tag = "11")]
    pub is_ignored: bool,
    #[prost(bool, tag = "12")]
    pub is_key_manually_verified: bool,
    #[prost(bool, tag = "13")]
    pub is_muted: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct MyNodeInfo {
    #[prost(uint32, tag = "1")]
    pub my_node_num: u32,
    #[prost(uint32, tag = "8")]
    pub reboot_count: u32,
    #[prost(uint32, tag = "11")]
    pub min_app_version: u32,
    #[prost(bytes, tag = "12")]
    pub device_id: Vec<u8>,
    #[prost(bytes, tag = "13")]
    pub pio_env: Vec<u8>,
    #[prost(int32, tag = "14")]
    pub firmware_edition: i32,
    #[prost(uint32, tag = "15")]
    pub nodedb_count: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Position {
    /// Latitude in 1e-7 degrees.
    #[prost(sfixed32, optional, tag = "1")]
    pub latitude_i: Option<i32>,
    #[prost(sfixed32, optional, tag = "2")]
    pub longitude_i: Option<i32>,
    /// Metres above mean sea level.
    #[prost(int32, optional, tag = "3")]
    pub altitude: Option<i32>,
    #[prost(fixed32, tag = "4")]
    pub time: u32,
    #[prost(int32, tag = "5")]
    pub location_source: i32,
    #[prost(int32, tag = "6")]
    pub altitude_source: i32,
    #[prost(fixed32, tag = "7")]
    pub timestamp: u32,
    #[prost(int32, tag = "8")]
    pub timestamp_millis_adjust: i32,
    #[prost(sint32, optional, tag = "9")]
    pub altitude_hae: Option<i32>,
    #[prost(sint32, optional, tag = "10")]
    pub altitude_geoidal_separation: Option<i32>,
    #[prost(uint32, tag = "11")]
    pub pdop: u32,
    #[prost(uint32, tag = "12")]
    pub hdop: u32,
    #[prost(uint32, tag = "13")]
    pub vdop: u32,
    #[prost(uint32, tag = "14")]
    pub gps_accuracy: u32,
    #[prost(uint32, optional, tag = "15")]
    pub ground_speed: Option<u32>,
    #[prost(uint32, optional, tag = "16")]
    pub ground_track: Option<u32>,
    #[prost(uint32, tag = "17")]
    pub fix_quality: u32,
    #[prost(uint32, tag = "18")]
    pub fix_type: u32,
    #[prost(uint32, tag = "19")]
    pub sats_in_view: u32,
    #[prost(uint32, tag = "20")]
    pub sensor_id: u32,
    #[prost(uint32, tag = "21")]
    pub next_update: u32,
    #[prost(uint32, tag = "22")]
    pub seq_number: u32,
    #[prost(uint32, tag = "23")]
    pub precision_bits: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Telemetry {
    #[prost(fixed32, tag = "1")]
    pub time: u32,
    #[prost(oneof = "telemetry::Variant", tags = "2")]
    pub variant: Option<telemetry::Variant>,
}

pub mod telemetry {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Variant {
        #[prost(message, tag = "2")]
        DeviceMetrics(super::DeviceMetrics),
    }
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct DeviceMetrics {
    #[prost(uint32, optional, tag = "1")]
    pub battery_level: Option<u32>,
    #[prost(float, optional, tag = "2")]
    pub voltage: Option<f32>,
    #[prost(float, optional, tag = "3")]
    pub channel_utilization: Option<f32>,
    #[prost(float, optional, tag = "4")]
    pub air_util_tx: Option<f32>,
    #[prost(uint32, optional, tag = "5")]
    pub uptime_seconds: Option<u32>,
}

// Channels, queue status, metadata, logs and config: in device.rs.
mod device;
pub use device::*;

#[cfg(test)]
mod tests;
