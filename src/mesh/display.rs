//! One-line, human-readable descriptions of packets, for `mmrelay radio listen`, the
//! simulator's output and debug logs.

use prost::Message;

use super::proto::{self, telemetry, text, PortNum, Position, Telemetry, User};
use super::radio::node_id;

/// One line describing a packet.
pub fn describe_packet(prefix: &str, p: &proto::MeshPacket) -> String {
    let to = if p.to == proto::BROADCAST {
        "all".to_string()
    } else {
        node_id(p.to)
    };
    let Some(d) = p.decoded() else {
        return format!(
            "{prefix} encrypted id={:#010x} from={} to={to} ch={}",
            p.id,
            node_id(p.from),
            p.channel
        );
    };
    let port = PortNum::try_from(d.portnum)
        .map(|p| format!("{p:?}"))
        .unwrap_or_else(|_| format!("port{}", d.portnum));
    let mut s = format!(
        "{prefix} {port} id={:#010x} from={} to={to} ch={} hop_limit={} want_ack={}",
        p.id,
        node_id(p.from),
        p.channel,
        p.hop_limit,
        p.want_ack
    );
    if d.reply_id != 0 {
        s.push_str(&format!(" reply_id={:#010x}", d.reply_id));
    }
    if d.emoji != 0 {
        s.push_str(" emoji=1");
    }
    s.push(' ');
    s.push_str(&describe_payload(d.portnum, &d.payload));
    s
}

/// The interesting part of a payload: the text, the position, the metrics.
pub fn describe_payload(portnum: i32, payload: &[u8]) -> String {
    match PortNum::try_from(portnum) {
        Ok(PortNum::TextMessageApp | PortNum::DetectionSensorApp | PortNum::AlertApp) => {
            format!("text={:?}", text(payload))
        }
        Ok(PortNum::PositionApp) => match Position::decode(payload) {
            Ok(p) => {
                let deg = |v: Option<i32>| {
                    v.map(|v| format!("{:.5}", v as f64 / 1e7))
                        .unwrap_or("?".into())
                };
                let mut s = format!("lat={} lon={}", deg(p.latitude_i), deg(p.longitude_i));
                if let Some(a) = p.altitude {
                    s.push_str(&format!(" alt={a}m"));
                }
                s
            }
            Err(_) => format!("undecodable position ({}B)", payload.len()),
        },
        Ok(PortNum::TelemetryApp) => match Telemetry::decode(payload) {
            Ok(Telemetry {
                variant: Some(telemetry::Variant::DeviceMetrics(m)),
                ..
            }) => {
                let mut s = String::from("device");
                if let Some(b) = m.battery_level {
                    s.push_str(&format!(" battery={b}%"));
                }
                if let Some(v) = m.voltage {
                    s.push_str(&format!(" voltage={v:.2}V"));
                }
                if let Some(u) = m.channel_utilization {
                    s.push_str(&format!(" chutil={u:.1}%"));
                }
                s
            }
            Ok(_) => format!("other telemetry ({}B)", payload.len()),
            Err(_) => format!("undecodable telemetry ({}B)", payload.len()),
        },
        Ok(PortNum::NodeinfoApp) => match User::decode(payload) {
            Ok(u) => format!(
                "long={:?} short={:?}",
                text(&u.long_name),
                text(&u.short_name)
            ),
            Err(_) => format!("undecodable nodeinfo ({}B)", payload.len()),
        },
        Ok(PortNum::RoutingApp) => match proto::Routing::decode(payload) {
            Ok(proto::Routing {
                variant: Some(proto::routing::Variant::ErrorReason(e)),
            }) => format!("routing={}", proto::routing_error_name(e)),
            _ => format!("routing ({}B)", payload.len()),
        },
        _ => format!("payload={}B", payload.len()),
    }
}
