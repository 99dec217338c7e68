//! Radio-side messages of the schema subset: channels, queue status, device metadata, log
//! records, client notifications and config (the LoRa and security sections read, the others
//! passed through as bytes). Re-exported by [`super`]; same rules as there.

// ---------------------------------------------------------------------------------------------
// Channels, queue, metadata, logs
// ---------------------------------------------------------------------------------------------

#[derive(Clone, PartialEq, prost::Message)]
pub struct Channel {
    #[prost(int32, tag = "1")]
    pub index: i32,
    #[prost(message, optional, tag = "2")]
    pub settings: Option<ChannelSettings>,
    #[prost(enumeration = "ChannelRole", tag = "3")]
    pub role: i32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ChannelRole {
    Disabled = 0,
    Primary = 1,
    Secondary = 2,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ChannelSettings {
    #[prost(uint32, tag = "1")]
    pub channel_num: u32,
    #[prost(bytes, tag = "2")]
    pub psk: Vec<u8>,
    #[prost(bytes, tag = "3")]
    pub name: Vec<u8>,
    #[prost(fixed32, tag = "4")]
    pub id: u32,
    #[prost(bool, tag = "5")]
    pub uplink_enabled: bool,
    #[prost(bool, tag = "6")]
    pub downlink_enabled: bool,
    /// Module settings, passed through unread.
    #[prost(bytes, optional, tag = "7")]
    pub module_settings: Option<Vec<u8>>,
}

/// The radio's transmit queue: flow control for our sends.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct QueueStatus {
    /// Result of the last enqueue (0 = ok).
    #[prost(int32, tag = "1")]
    pub res: i32,
    #[prost(uint32, tag = "2")]
    pub free: u32,
    #[prost(uint32, tag = "3")]
    pub maxlen: u32,
    #[prost(uint32, tag = "4")]
    pub mesh_packet_id: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct DeviceMetadata {
    #[prost(bytes, tag = "1")]
    pub firmware_version: Vec<u8>,
    #[prost(uint32, tag = "2")]
    pub device_state_version: u32,
    #[prost(bool, tag = "3")]
    pub can_shutdown: bool,
    #[prost(bool, tag = "4")]
    pub has_wifi: bool,
    #[prost(bool, tag = "5")]
    pub has_bluetooth: bool,
    #[prost(bool, tag = "6")]
    pub has_ethernet: bool,
    #[prost(int32, tag = "7")]
    pub role: i32,
    #[prost(uint32, tag = "8")]
    pub position_flags: u32,
    #[prost(int32, tag = "9")]
    pub hw_model: i32,
    #[prost(bool, tag = "10")]
    pub has_remote_hardware: bool,
    #[prost(bool, tag = "11")]
    pub has_pkc: bool,
    #[prost(uint32, tag = "12")]
    pub excluded_modules: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LogRecord {
    #[prost(bytes, tag = "1")]
    pub message: Vec<u8>,
    #[prost(fixed32, tag = "2")]
    pub time: u32,
    #[prost(bytes, tag = "3")]
    pub source: Vec<u8>,
    #[prost(int32, tag = "4")]
    pub level: i32,
}

/// A notice the firmware wants shown to the user.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ClientNotification {
    #[prost(uint32, optional, tag = "1")]
    pub reply_id: Option<u32>,
    #[prost(fixed32, tag = "2")]
    pub time: u32,
    #[prost(int32, tag = "3")]
    pub level: i32,
    #[prost(bytes, tag = "4")]
    pub message: Vec<u8>,
}

// ---------------------------------------------------------------------------------------------
// Config: the LoRa and security sections are read, the others passed through as bytes.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, PartialEq, prost::Message)]
pub struct Config {
    #[prost(oneof = "config::Section", tags = "1, 2, 3, 4, 5, 6, 7, 8")]
    pub section: Option<config::Section>,
}

pub mod config {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Section {
        #[prost(bytes, tag = "1")]
        Device(Vec<u8>),
        #[prost(bytes, tag = "2")]
        Position(Vec<u8>),
        #[prost(bytes, tag = "3")]
        Power(Vec<u8>),
        #[prost(bytes, tag = "4")]
        Network(Vec<u8>),
        #[prost(bytes, tag = "5")]
        Display(Vec<u8>),
        #[prost(message, tag = "6")]
        Lora(super::LoRaConfig),
        #[prost(bytes, tag = "7")]
        Bluetooth(Vec<u8>),
        #[prost(message, tag = "8")]
        Security(super::SecurityConfig),
    }
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LoRaConfig {
    #[prost(bool, tag = "1")]
    pub use_preset: bool,
    #[prost(int32, tag = "2")]
    pub modem_preset: i32,
    #[prost(uint32, tag = "3")]
    pub bandwidth: u32,
    #[prost(uint32, tag = "4")]
    pub spread_factor: u32,
    #[prost(uint32, tag = "5")]
    pub coding_rate: u32,
    #[prost(float, tag = "6")]
    pub frequency_offset: f32,
    #[prost(int32, tag = "7")]
    pub region: i32,
    #[prost(uint32, tag = "8")]
    pub hop_limit: u32,
    #[prost(bool, tag = "9")]
    pub tx_enabled: bool,
    #[prost(int32, tag = "10")]
    pub tx_power: i32,
    #[prost(uint32, tag = "11")]
    pub channel_num: u32,
    #[prost(bool, tag = "12")]
    pub override_duty_cycle: bool,
    #[prost(bool, tag = "13")]
    pub sx126x_rx_boosted_gain: bool,
    #[prost(float, tag = "14")]
    pub override_frequency: f32,
    #[prost(bool, tag = "15")]
    pub pa_fan_disabled: bool,
    #[prost(uint32, repeated, tag = "103")]
    pub ignore_incoming: Vec<u32>,
    #[prost(bool, tag = "104")]
    pub ignore_mqtt: bool,
    #[prost(bool, tag = "105")]
    pub config_ok_to_mqtt: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SecurityConfig {
    #[prost(bytes, tag = "1")]
    pub public_key: Vec<u8>,
    #[prost(bytes, tag = "2")]
    pub private_key: Vec<u8>,
    #[prost(bytes, repeated, tag = "3")]
    pub admin_key: Vec<Vec<u8>>,
    #[prost(bool, tag = "4")]
    pub is_managed: bool,
    #[prost(bool, tag = "5")]
    pub serial_enabled: bool,
    #[prost(bool, tag = "6")]
    pub debug_log_api_enabled: bool,
    #[prost(bool, tag = "8")]
    pub admin_channel_enabled: bool,
}
