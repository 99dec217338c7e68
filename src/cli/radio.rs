//! `mmrelay radio info|send|listen`: operators' diagnostics that talk to the radio directly,
//! with the config's connection settings or `--serial` / `--tcp`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use tokio::sync::mpsc;

use super::Paths;
use crate::clock::unix_now;
use crate::mesh::display::describe_packet;
use crate::mesh::link::{self, LinkEvent, LinkHandle, LinkOptions};
use crate::mesh::proto::BROADCAST;
use crate::mesh::radio::{node_id, parse_node_id, RadioInfo, TextMessage};
use crate::mesh::transport::Endpoint;

#[derive(Debug, Clone, Args)]
pub struct Target {
    /// Use the radio on this serial port instead of the config's
    #[arg(long, value_name = "PATH", conflicts_with = "tcp")]
    pub serial: Option<PathBuf>,
    /// Use the radio at this address instead of the config's (port 4403 unless given)
    #[arg(long, value_name = "HOST[:PORT]")]
    pub tcp: Option<String>,
    /// Seconds to wait for the radio to connect and send its configuration
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub timeout: u64,
}

#[derive(Debug, Subcommand)]
pub enum RadioCommand {
    /// Show the relay's node, firmware, channels and the node list
    Info {
        #[command(flatten)]
        target: Target,
    },
    /// Send a text and report the acknowledgement or the error
    Send {
        #[command(flatten)]
        target: Target,
        /// Channel index (0-7)
        #[arg(long, short, default_value_t = 0)]
        channel: u32,
        /// Send to this node (!a1b2c3d4) instead of everyone on the channel
        #[arg(long, value_name = "NODE")]
        to: Option<String>,
        /// The text to send
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
    },
    /// Print packets from the mesh as they arrive, one line each (Ctrl-C to stop)
    Listen {
        #[command(flatten)]
        target: Target,
    },
}

fn endpoint(paths: &Paths, target: &Target) -> Result<Endpoint, String> {
    if let Some(p) = &target.serial {
        return Ok(Endpoint::Serial(p.clone()));
    }
    if let Some(t) = &target.tcp {
        return Endpoint::parse_tcp(t).map_err(|e| format!("--tcp: {e}"));
    }
    let hint = "(or name the radio with --serial PATH or --tcp HOST[:PORT])";
    let text = crate::config::read_text(&paths.config).map_err(|e| format!("{e}\n{hint}"))?;
    crate::config::relay::radio_endpoint(&text, &crate::config::process_env).map_err(|p| {
        format!(
            "{}\n{hint}",
            crate::config::relay::format_problems(&paths.config, &p)
        )
    })
}

pub async fn run(paths: &Paths, cmd: RadioCommand) -> ExitCode {
    match run_inner(paths, cmd).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run_inner(paths: &Paths, cmd: RadioCommand) -> Result<ExitCode, String> {
    match cmd {
        RadioCommand::Info { target } => {
            let (link, events, task, info) = connect(paths, &target, false).await?;
            // Nobody reads events from here on: let the link drop them instead of waiting.
            drop(events);
            print!("{}", format_info(&info, unix_now()));
            link.stop();
            let _ = task.await;
            Ok(ExitCode::SUCCESS)
        }
        RadioCommand::Send {
            target,
            channel,
            to,
            text,
        } => {
            let to = match to {
                None => BROADCAST,
                Some(s) => parse_node_id(&s)
                    .ok_or_else(|| format!("--to '{s}' is not a node id like !a1b2c3d4"))?,
            };
            let text = text.join(" ");
            let (link, events, task, _info) = connect(paths, &target, false).await?;
            drop(events);
            let msg = TextMessage {
                channel,
                to,
                text,
                reply_id: 0,
                emoji: false,
            };
            let pending = link.send_text(msg).await.map_err(|e| e.to_string())?;
            let id = pending.packet_id;
            let outcome = pending.outcome().await;
            link.stop();
            let _ = task.await;
            println!("packet {id:#010x} on channel {channel}: {outcome}");
            Ok(if outcome == link::SendOutcome::Acked {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        RadioCommand::Listen { target } => {
            let (link, mut events, task, info) = connect(paths, &target, true).await?;
            println!(
                "listening on {} ({}); Ctrl-C to stop",
                node_id(info.my_node_num),
                info.firmware_version()
            );
            let names = |info: &RadioInfo, num: u32| {
                info.nodes
                    .get(num)
                    .filter(|n| !n.short_name.is_empty())
                    .map(|n| format!(" [{}]", n.short_name))
                    .unwrap_or_default()
            };
            let mut info = info;
            let stop = crate::service::signal::shutdown_signal();
            tokio::pin!(stop);
            loop {
                tokio::select! {
                    _ = &mut stop => break,
                    ev = events.recv() => match ev {
                        None => break,
                        Some(LinkEvent::Packet(p)) => {
                            println!("{}{}", describe_packet("packet", &p), names(&info, p.from));
                        }
                        Some(LinkEvent::NodeUpdated(n)) => {
                            println!("node {} long={:?} short={:?}", n.id(), n.long_name.as_str(), n.short_name.as_str());
                        }
                        Some(LinkEvent::Ready(i)) => {
                            println!("link ready ({} nodes)", i.nodes.len());
                            info = *i;
                        }
                        Some(LinkEvent::Disconnected { reason, .. }) => {
                            println!("link lost: {reason}");
                        }
                    }
                }
            }
            link.stop();
            let _ = task.await;
            Ok(ExitCode::SUCCESS)
        }
    }
}

type Connected = (
    LinkHandle,
    mpsc::Receiver<LinkEvent>,
    tokio::task::JoinHandle<()>,
    RadioInfo,
);

/// Connects and waits for the handshake to finish.
async fn connect(paths: &Paths, target: &Target, reconnect: bool) -> Result<Connected, String> {
    let endpoint = endpoint(paths, target)?;
    let mut opts = LinkOptions::new(endpoint.clone());
    opts.config_timeout = Duration::from_secs(target.timeout.max(1));
    opts.reconnect = reconnect;
    let (link, mut events, task) = link::spawn(opts);
    let wait = async {
        loop {
            match events.recv().await {
                Some(LinkEvent::Ready(info)) => return Ok(*info),
                Some(LinkEvent::Disconnected {
                    reason,
                    retrying: false,
                }) => return Err(format!("radio ({endpoint}): {reason}")),
                Some(_) => {}
                None => return Err(format!("radio ({endpoint}): the link stopped")),
            }
        }
    };
    let limit = Duration::from_secs(target.timeout.max(1) + 15);
    match tokio::time::timeout(limit, wait).await {
        Ok(Ok(info)) => Ok((link, events, task, info)),
        Ok(Err(e)) => Err(e),
        Err(_) => {
            link.stop();
            Err(format!(
                "radio ({endpoint}): not ready after {}s",
                limit.as_secs()
            ))
        }
    }
}

/// "3m ago", "2h ago", "never".
pub fn ago(then: u32, now: u32) -> String {
    if then == 0 {
        return "never".into();
    }
    let d = now.saturating_sub(then);
    match d {
        0..=59 => format!("{d}s ago"),
        60..=3599 => format!("{}m ago", d / 60),
        3600..=86399 => format!("{}h ago", d / 3600),
        _ => format!("{}d ago", d / 86400),
    }
}

/// The text `mmrelay radio info` prints.
pub fn format_info(info: &RadioInfo, now: u32) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let me = info.my_node();
    let _ = writeln!(
        s,
        "Relay node: {} {:?} ({})",
        node_id(info.my_node_num),
        me.map(|n| n.long_name.as_str()).unwrap_or(""),
        me.map(|n| n.short_name.as_str()).unwrap_or("")
    );
    let _ = writeln!(s, "Firmware:   {}", info.firmware_version());
    let _ = writeln!(s, "Hop limit:  {}", info.hop_limit());
    let _ = writeln!(s, "Channels:");
    for c in info.active_channels() {
        let role = match c.role {
            crate::mesh::proto::ChannelRole::Primary => "primary",
            _ => "secondary",
        };
        let _ = writeln!(s, "  {}  {:<9}  {}", c.index, role, c.display_name());
    }
    let _ = writeln!(s, "Nodes ({}):", info.nodes.len());
    for n in info.nodes.sorted() {
        let _ = writeln!(
            s,
            "  {}  {:<5} {:<40} last heard {}",
            n.id(),
            n.short_name.as_str(),
            n.long_name.as_str(),
            ago(n.last_heard, now)
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ago_reads_well() {
        assert_eq!(ago(0, 100), "never");
        assert_eq!(ago(90, 100), "10s ago");
        assert_eq!(ago(100, 400), "5m ago");
        assert_eq!(ago(1, 7202), "2h ago");
        assert_eq!(ago(1, 3 * 86400 + 1), "3d ago");
    }
}
