//! The `mmrelay` command line: argument parsing, logging set-up and dispatch to the
//! subcommands. `main.rs` only calls [`main`].

pub mod auth;
pub mod config;
pub mod matrix;
pub mod radio;
pub mod service;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "mmrelay",
    version,
    about = "Relay between a Meshtastic mesh and Matrix rooms",
    long_about = "Relay between a Meshtastic LoRa mesh and Matrix rooms.\n\n\
                  Files live in $MMRELAY_HOME (default ~/.mmrelay), laid out as MMRelay lays them \
                  out: config.yaml, matrix/credentials.json, database/."
)]
pub struct Cli {
    /// The config file [default: HOME/config.yaml]
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// mmrelay's home folder [default: $MMRELAY_HOME, else ~/.mmrelay]
    #[arg(long, global = true, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Log level: error, warn, info, debug or trace [default: info, or $RUST_LOG]
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage the bot's Matrix session (login, status, logout)
    #[command(subcommand)]
    Auth(auth::AuthCommand),
    /// Write a sample config, or check the config and the credentials
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Matrix diagnostics: run the client alone and print what arrives
    #[command(subcommand)]
    Matrix(matrix::MatrixCommand),
    /// Install mmrelay as a systemd service
    #[command(subcommand)]
    Service(service::ServiceCommand),
    /// Talk to the radio directly: show its details, send a text, watch the mesh
    #[command(subcommand)]
    Radio(radio::RadioCommand),
    /// Ask the running relay whether it is relaying (exit 0 when it is; for health checks)
    Health,
}

/// Our own messages at `level` (default info); other crates' (matrix-sdk's above all) at warn
/// unless `level` asks for debug or trace. `RUST_LOG`, when set, has the last word.
fn init_logging(level: Option<&str>) -> Result<(), String> {
    let mut b = env_logger::Builder::new();
    let ours = match level {
        Some(l) => l.parse().map_err(|_| {
            format!("--log-level '{l}' is not a level: use error, warn, info, debug or trace")
        })?,
        None => log::LevelFilter::Info,
    };
    let others = if ours >= log::LevelFilter::Debug {
        ours
    } else {
        ours.min(log::LevelFilter::Warn)
    };
    b.filter_level(others);
    b.filter_module("mmrelay", ours);
    if level.is_none() {
        if let Ok(spec) = std::env::var("RUST_LOG") {
            b.parse_filters(&spec);
        }
    }
    // Under systemd the journal adds its own timestamps.
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        b.format_timestamp(None);
    }
    b.format_target(false);
    b.try_init().map_err(|e| e.to_string())?;
    crate::service::sdk_log::install();
    Ok(())
}

fn config_log_level(file: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).ok()?;
    let level = v.get("logging")?.get("level")?.as_str()?.to_lowercase();
    // Unknown values are left to the config check, which names the line.
    match level.as_str() {
        "warning" => Some("warn".into()),
        "critical" => Some("error".into()),
        "error" | "warn" | "info" | "debug" | "trace" => Some(level),
        _ => None,
    }
}

/// Entry point of the `mmrelay` binary.
pub fn main() -> ExitCode {
    // glibc gives every thread that allocates an arena of its own (up to 8 per core), each
    // keeping freed memory; SQLite's worker threads would each get one. Two are plenty here.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
    let cli = Cli::parse();
    let paths = cli_paths(&cli);
    // The relay honours `logging.level` from the config unless --log-level or RUST_LOG say.
    let config_level = match (&cli.command, &cli.log_level, std::env::var_os("RUST_LOG")) {
        (None, None, None) => config_log_level(&paths.config),
        _ => None,
    };
    if let Err(e) = init_logging(cli.log_level.as_deref().or(config_level.as_deref())) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Some(Command::Radio(cmd)) => rt.block_on(radio::run(&paths, cmd)),
        Some(Command::Auth(cmd)) => rt.block_on(auth::run(&paths, cmd)),
        Some(Command::Config(cmd)) => config::run(&paths, cmd, &rt),
        Some(Command::Service(cmd)) => service::run(cmd),
        Some(Command::Matrix(cmd)) => rt.block_on(matrix::run(&paths, cmd)),
        Some(Command::Health) => rt.block_on(service::health(&paths.home)),
        None => match rt.block_on(crate::relay::run::run(&paths.home, &paths.config)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                log::error!("{e}");
                ExitCode::FAILURE
            }
        },
    }
}

/// The paths every subcommand may need.
#[derive(Debug, Clone)]
pub struct Paths {
    pub home: PathBuf,
    pub config: PathBuf,
}

fn cli_paths(cli: &Cli) -> Paths {
    let home = crate::config::home_dir(cli.home.as_deref());
    let config = crate::config::config_path(&home, cli.config.as_deref());
    Paths { home, config }
}
