//! `mmrelay-sim`: a simulated Meshtastic radio for trying mmrelay without hardware.
//! It listens on TCP and/or a pty, prints what it sees, and takes commands on standard input.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use mmrelay::sim::command::{self, describe_event};
use mmrelay::sim::{SimConfig, SimNode, Simulator};
use tokio::io::{AsyncBufReadExt, BufReader};

#[derive(Debug, Parser)]
#[command(
    name = "mmrelay-sim",
    version,
    about = "A simulated Meshtastic radio speaking the client API over TCP and a pty",
    after_help = "Type 'help' on standard input for the commands that inject packets.\n\
                  Example: mmrelay-sim --tcp 127.0.0.1:4403, then\n\
                  mmrelay radio listen --tcp 127.0.0.1:4403"
)]
struct Args {
    /// Listen for API clients on this address (the radios' port is 4403)
    #[arg(long, value_name = "ADDR")]
    tcp: Option<String>,
    /// Serve the API on a new pty and print its path
    #[arg(long)]
    pty: bool,
    /// With --pty: also make this path a symlink to the pty (a stable device name)
    #[arg(long, value_name = "PATH")]
    pty_link: Option<PathBuf>,
    /// The radio's own node, as !a1b2c3d4:Long name:SHRT
    #[arg(long, value_name = "NODE")]
    me: Option<String>,
    /// A node in the radio's database, as !a1b2c3d4:Long name:SHRT (repeat; replaces the
    /// three default nodes)
    #[arg(long = "node", value_name = "NODE")]
    nodes: Vec<String>,
    /// A channel as INDEX:NAME (repeat; replaces the default 0 (primary) and 1:Ops)
    #[arg(long = "channel", value_name = "INDEX:NAME")]
    channels: Vec<String>,
    /// Hop limit in the radio's LoRa config
    #[arg(long, default_value_t = 3)]
    hop_limit: u32,
    /// Firmware version the radio reports
    #[arg(long, default_value = "2.7.11.sim")]
    firmware: String,
}

fn build_config(a: &Args) -> Result<SimConfig, String> {
    let mut cfg = SimConfig::default();
    if let Some(me) = &a.me {
        cfg.me = SimNode::parse(me).map_err(|e| format!("--me: {e}"))?;
    }
    if !a.nodes.is_empty() {
        cfg.nodes = a
            .nodes
            .iter()
            .map(|n| SimNode::parse(n).map_err(|e| format!("--node: {e}")))
            .collect::<Result<_, _>>()?;
    }
    if !a.channels.is_empty() {
        cfg.channels = a
            .channels
            .iter()
            .map(|c| {
                let (i, name) = c.split_once(':').unwrap_or((c, ""));
                match i.parse::<u32>() {
                    Ok(i) if i < 8 => Ok((i, name.to_string())),
                    _ => Err(format!("--channel '{c}': the index must be 0 to 7")),
                }
            })
            .collect::<Result<_, _>>()?;
    }
    cfg.hop_limit = a.hop_limit;
    cfg.firmware = a.firmware.clone();
    Ok(cfg)
}

fn main() -> ExitCode {
    let args = Args::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cfg = match build_config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if args.tcp.is_none() && !args.pty {
        eprintln!("error: give --tcp ADDR and/or --pty");
        return ExitCode::from(2);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let sim = Simulator::new(cfg);
        let mut events = sim.subscribe();
        let _tcp = match &args.tcp {
            Some(addr) => match sim.listen_tcp(addr).await {
                Ok((local, task)) => {
                    println!("listening on tcp {local}");
                    Some(task)
                }
                Err(e) => {
                    eprintln!("error: cannot listen on {addr}: {e}");
                    return ExitCode::FAILURE;
                }
            },
            None => None,
        };
        let _pty = if args.pty {
            match sim.open_pty(args.pty_link.as_deref()) {
                Ok(p) => {
                    println!("serving pty {}", p.device().display());
                    Some(p)
                }
                Err(e) => {
                    eprintln!("error: cannot open a pty: {e}");
                    return ExitCode::FAILURE;
                }
            }
        } else {
            None
        };
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        let mut stdin_open = true;
        loop {
            tokio::select! {
                ev = events.recv() => match ev {
                    Ok(ev) => println!("{}", describe_event(&ev)),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        println!("(missed {n} events)")
                    }
                    Err(_) => break,
                },
                line = lines.next_line(), if stdin_open => match line {
                    Ok(Some(line)) => match command::run(&sim, &line) {
                        None => break,
                        Some(Ok(out)) if !out.is_empty() => println!("{out}"),
                        Some(Ok(_)) => {}
                        Some(Err(e)) => println!("error: {e}"),
                    },
                    // Without standard input the simulator keeps serving until killed.
                    _ => stdin_open = false,
                },
                _ = tokio::signal::ctrl_c() => break,
            }
        }
        ExitCode::SUCCESS
    })
}
