//! The simulator's command language (one command a line, as typed into `mmrelay-sim`) and the
//! one-line descriptions of what it sees.

use crate::mesh::display::describe_packet;
use crate::mesh::framing;

use super::{AckMode, SimEvent, SimNode, SimText, Simulator};

pub const HELP: &str = "\
commands (NODE is !a1b2c3d4, or a node's short or long name):
  text NODE CHANNEL TEXT...           a broadcast text on CHANNEL
  dm NODE TEXT...                     a direct message to the relay's node
  reply NODE CHANNEL PACKET_ID TEXT... a threaded reply to PACKET_ID
  react NODE CHANNEL PACKET_ID EMOJI   a reaction to PACKET_ID
  detection NODE CHANNEL TEXT...       a detection-sensor alert
  position NODE LAT LON [ALT]          a position report
  telemetry NODE BATTERY VOLTAGE       device metrics
  nodeinfo NODE SHORT LONG...          a node announcing (new) names
  console TEXT...                      plain console text, as a radio prints before API mode
  garbage N                            N random bytes
  malformed                            a frame whose payload does not decode
  truncated                            a frame cut short, then a good one
  reboot                               tell clients the radio rebooted
  drop                                 close every client connection
  heartbeats on|off                    answer heartbeats (off: the radio goes quiet)
  config on|off                        finish the config handshake (off: never finishes)
  ack ok|none|CODE                     how sent packets are answered
  queue N|auto                         free slots reported in the queue status
  received                             list the packets received so far
  help                                 this text
  quit                                 stop the simulator";

/// Runs one command line; returns the lines to print, or `None` for `quit`.
pub fn run(sim: &Simulator, line: &str) -> Option<Result<String, String>> {
    let line = line.trim();
    let (cmd, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let rest = rest.trim();
    let mut args = rest.split_whitespace();
    let node = |s: Option<&str>| -> Result<u32, String> {
        let s = s.ok_or("missing NODE")?;
        sim.find_node(s)
            .ok_or_else(|| format!("unknown node '{s}'"))
    };
    let num = |s: Option<&str>, what: &str| -> Result<u32, String> {
        let s = s.ok_or_else(|| format!("missing {what}"))?;
        let parsed = match s.strip_prefix("0x") {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => s.parse().ok(),
        };
        parsed.ok_or_else(|| format!("'{s}' is not a valid {what}"))
    };
    // The text after `n` words.
    let tail = |n: usize| -> Result<String, String> {
        let mut s = rest;
        for _ in 0..n {
            s = s
                .trim_start()
                .split_once(char::is_whitespace)
                .map(|(_, r)| r)
                .unwrap_or("");
        }
        let s = s.trim();
        if s.is_empty() {
            Err("missing TEXT".into())
        } else {
            Ok(s.to_string())
        }
    };
    let res = (|| -> Result<String, String> {
        match cmd {
            "" => Ok(String::new()),
            "help" | "?" => Ok(HELP.into()),
            "quit" | "exit" => Err("quit".into()),
            "text" => {
                let from = node(args.next())?;
                let ch = num(args.next(), "CHANNEL")?;
                let id = sim.inject_text(&SimText::broadcast(from, ch, &tail(2)?));
                Ok(format!("injected text {id:#010x}"))
            }
            "dm" => {
                let from = node(args.next())?;
                let me = sim.config().me.num;
                let msg = SimText {
                    to: me,
                    ..SimText::broadcast(from, 0, &tail(1)?)
                };
                Ok(format!("injected dm {:#010x}", sim.inject_text(&msg)))
            }
            "reply" | "react" => {
                let from = node(args.next())?;
                let ch = num(args.next(), "CHANNEL")?;
                let reply_id = num(args.next(), "PACKET_ID")?;
                let msg = SimText {
                    reply_id,
                    emoji: cmd == "react",
                    ..SimText::broadcast(from, ch, &tail(3)?)
                };
                Ok(format!("injected {cmd} {:#010x}", sim.inject_text(&msg)))
            }
            "detection" => {
                let from = node(args.next())?;
                let ch = num(args.next(), "CHANNEL")?;
                let id = sim.inject_detection(from, ch, &tail(2)?);
                Ok(format!("injected detection {id:#010x}"))
            }
            "position" => {
                let from = node(args.next())?;
                let f = |s: Option<&str>, w: &str| -> Result<f64, String> {
                    s.and_then(|s| s.parse().ok())
                        .ok_or_else(|| format!("missing or bad {w}"))
                };
                let lat = f(args.next(), "LAT")?;
                let lon = f(args.next(), "LON")?;
                let alt = args
                    .next()
                    .map(|a| a.parse().map_err(|_| "bad ALT"))
                    .transpose()?;
                Ok(format!(
                    "injected position {:#010x}",
                    sim.inject_position(from, lat, lon, alt)
                ))
            }
            "telemetry" => {
                let from = node(args.next())?;
                let battery = num(args.next(), "BATTERY")?;
                let voltage: f32 = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .ok_or("missing or bad VOLTAGE")?;
                Ok(format!(
                    "injected telemetry {:#010x}",
                    sim.inject_telemetry(from, battery, voltage)
                ))
            }
            "nodeinfo" => {
                let from = node(args.next())?;
                let short = args.next().ok_or("missing SHORT")?;
                let node = SimNode::new(from, &tail(2)?, short);
                Ok(format!(
                    "injected nodeinfo {:#010x}",
                    sim.inject_nodeinfo(&node)
                ))
            }
            "console" => {
                let line = format!("{}\r\n", tail(0)?);
                sim.inject_raw(line.as_bytes());
                Ok("sent console text".into())
            }
            "garbage" => {
                let n = num(args.next(), "N")?.min(65536) as usize;
                let bytes: Vec<u8> = (0..n).map(|_| fastrand::u8(..)).collect();
                sim.inject_raw(&bytes);
                Ok(format!("sent {n} random bytes"))
            }
            "malformed" => {
                sim.inject_raw(&malformed_frame());
                Ok("sent a malformed frame".into())
            }
            "truncated" => {
                sim.inject_raw(&truncated_frame());
                Ok("sent a truncated frame".into())
            }
            "reboot" => Ok(format!(
                "told {} client(s) the radio rebooted",
                sim.inject_rebooted()
            )),
            "drop" => {
                sim.drop_connections();
                Ok("dropped client connections".into())
            }
            "heartbeats" | "config" => {
                let on = match args.next() {
                    Some("on") => true,
                    Some("off") => false,
                    _ => return Err(format!("usage: {cmd} on|off")),
                };
                if cmd == "heartbeats" {
                    sim.set_answer_heartbeats(on);
                } else {
                    sim.set_finish_config(on);
                }
                Ok(format!("{cmd} {}", if on { "on" } else { "off" }))
            }
            "ack" => {
                let mode = match args.next() {
                    Some("ok") => AckMode::Ack,
                    Some("none") => AckMode::Silent,
                    Some(c) => AckMode::Error(
                        c.parse()
                            .map_err(|_| "usage: ack ok|none|CODE".to_string())?,
                    ),
                    None => return Err("usage: ack ok|none|CODE".into()),
                };
                sim.set_ack_mode(mode);
                Ok(format!("ack mode {mode:?}"))
            }
            "queue" => {
                let free = match args.next() {
                    Some("auto") => None,
                    s => Some(num(s, "N")?),
                };
                sim.set_queue_free(free);
                Ok(format!("queue free {free:?}"))
            }
            "received" => Ok(sim
                .received()
                .iter()
                .map(|p| describe_packet("received", p))
                .collect::<Vec<_>>()
                .join("\n")),
            other => Err(format!("unknown command '{other}' (try 'help')")),
        }
    })();
    match res {
        Err(e) if e == "quit" => None,
        r => Some(r),
    }
}

/// A frame of the right shape whose payload is not valid protobuf.
pub fn malformed_frame() -> Vec<u8> {
    vec![
        framing::START1,
        framing::START2,
        0x00,
        0x04,
        0xff,
        0xff,
        0xff,
        0xff,
    ]
}

/// The start of a frame that claims 40 bytes but is cut after 3 (a lost run of bytes), followed
/// by a good empty frame whose start the cut frame's length swallows.
pub fn truncated_frame() -> Vec<u8> {
    let mut v = vec![framing::START1, framing::START2, 0x00, 40, 0x12, 0x7f, 0x08];
    // A FromRadio with only id = 424242 (varint), a frame of its own.
    let good = [0x08, 0xb2, 0xf2, 0x19];
    v.extend_from_slice(&[framing::START1, framing::START2, 0x00, good.len() as u8]);
    v.extend_from_slice(&good);
    v
}

/// One line describing a simulator event.
pub fn describe_event(ev: &SimEvent) -> String {
    match ev {
        SimEvent::ClientConnected => "client connected".into(),
        SimEvent::ClientGone => "client gone".into(),
        SimEvent::ConfigRequested(n) => format!("config requested nonce={n}"),
        SimEvent::Heartbeat(n) => format!("heartbeat nonce={n}"),
        SimEvent::Packet(p) => describe_packet("rx", p),
        SimEvent::Disconnect => "client said disconnect".into(),
        SimEvent::Malformed(n) => format!("malformed frame from client ({n} bytes)"),
        SimEvent::Duplicate(id) => format!("dropped repeated packet {id:#010x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::framing::{Decoder, Event};
    use crate::mesh::proto::FromRadio;

    #[tokio::test]
    async fn commands_parse_and_report_errors() {
        let sim = Simulator::new(Default::default());
        assert!(run(&sim, "quit").is_none());
        assert!(run(&sim, "help").unwrap().unwrap().contains("reply NODE"));
        assert!(run(&sim, "text ALC 0 hello there")
            .unwrap()
            .unwrap()
            .starts_with("injected text 0x"));
        assert!(run(&sim, "text !1111aaaa 1 hi").unwrap().is_ok());
        assert_eq!(
            run(&sim, "text zed 0 hi").unwrap(),
            Err("unknown node 'zed'".into())
        );
        assert_eq!(
            run(&sim, "text ALC x hi").unwrap(),
            Err("'x' is not a valid CHANNEL".into())
        );
        assert_eq!(run(&sim, "text ALC 0").unwrap(), Err("missing TEXT".into()));
        assert!(run(&sim, "react BOB 0 0x1234 \u{1F44D}").unwrap().is_ok());
        assert!(run(&sim, "position bob 52.5 13.4 35").unwrap().is_ok());
        assert!(run(&sim, "nodeinfo !44445555 NEW Newcomer Node")
            .unwrap()
            .is_ok());
        assert_eq!(sim.find_node("newcomer node"), Some(0x44445555));
        assert!(run(&sim, "ack 5").unwrap().is_ok());
        assert!(run(&sim, "bogus").unwrap().is_err());
    }

    #[test]
    fn truncated_frame_costs_only_itself() {
        let mut dec: Decoder<FromRadio> = Decoder::new();
        let mut ids = vec![];
        let mut bytes = truncated_frame();
        bytes.extend(malformed_frame());
        dec.feed(&bytes, &mut |e| {
            if let Event::Message(m) = e {
                ids.push(m.id)
            }
        });
        dec.on_quiet(&mut |e| {
            if let Event::Message(m) = e {
                ids.push(m.id)
            }
        });
        assert_eq!(ids, vec![424242]);
        assert_eq!(dec.stats().stalled, 1);
        assert_eq!(dec.stats().malformed, 1);
    }
}
