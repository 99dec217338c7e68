//! `mmrelay config generate|check`: a commented sample config, and a check of the config and
//! the Matrix credentials that exits 0 or 1.

use std::process::ExitCode;

use clap::Subcommand;

use super::Paths;
use crate::config::relay::{format_problems, load_relay_config};
use crate::matrix::credentials::{self, Credentials, MatrixPaths};

/// The sample written by `mmrelay config generate`.
pub const SAMPLE: &str = include_str!("../config/sample.yaml");

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Write a commented sample config (never overwrites an existing file)
    Generate,
    /// Check the config and the Matrix credentials; exit 0 when both are usable
    Check,
}

pub fn run(paths: &Paths, cmd: ConfigCommand, rt: &tokio::runtime::Runtime) -> ExitCode {
    match cmd {
        ConfigCommand::Generate => match generate(paths) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        ConfigCommand::Check => check(paths, rt),
    }
}

fn generate(paths: &Paths) -> Result<(), String> {
    let file = &paths.config;
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("{}: cannot create: {e}", dir.display()))?;
    }
    credentials::create_private(file, SAMPLE.as_bytes()).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => format!(
            "{} already exists; it was not changed (remove it first to write a new sample)",
            file.display()
        ),
        _ => format!("{}: cannot write: {e}", file.display()),
    })?;
    println!("Wrote a sample config to {}", file.display());
    println!("Edit the values marked CHANGE ME, then run `mmrelay auth login` and `mmrelay config check`.");
    Ok(())
}

fn check(paths: &Paths, rt: &tokio::runtime::Runtime) -> ExitCode {
    let file = &paths.config;
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            println!(
                "{}: cannot read: {e} (create one with `mmrelay config generate`)",
                file.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let env = |k: &str| std::env::var(k).ok();
    let cfg = match load_relay_config(&text, &paths.home, &env) {
        Ok(l) => {
            for k in &l.ignored {
                println!(
                    "{}: '{k}' is not used by mmrelay; it will be ignored",
                    file.display()
                );
            }
            l.config
        }
        Err(p) => {
            println!("{}", format_problems(file, &p));
            return ExitCode::FAILURE;
        }
    };
    println!(
        "{}: OK ({} room(s), radio {}, meshnet '{}')",
        file.display(),
        cfg.rooms.len(),
        cfg.endpoint,
        cfg.meshnet_name
    );
    let m = MatrixPaths::new(&paths.home, cfg.store_path.as_deref());
    match Credentials::load(&m.credentials) {
        Ok(Some(c)) => {
            println!(
                "{}: OK ({} on {}, device {})",
                m.credentials.display(),
                c.user_id,
                c.homeserver,
                c.device_id
            );
            if credentials::store_exists(&m.store) {
                println!("{}: E2EE store present", m.store.display());
                match rt.block_on(crate::matrix::account::store_cross_signing(&m)) {
                    Ok(cs) => println!("Cross-signing: {}", cs.describe()),
                    Err(e) => println!("Cross-signing: cannot tell ({e})"),
                }
            } else {
                println!(
                    "{}: no E2EE store yet (made at the first start)",
                    m.store.display()
                );
            }
            ExitCode::SUCCESS
        }
        Ok(None)
            if cfg.password.is_some() && cfg.homeserver.is_some() && cfg.bot_user_id.is_some() =>
        {
            println!(
                "{}: none yet; matrix.password in the config will log in at the first start",
                m.credentials.display()
            );
            ExitCode::SUCCESS
        }
        Ok(None) => {
            println!(
                "{}: missing; run `mmrelay auth login`",
                m.credentials.display()
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            println!("{e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_is_a_valid_config_without_warnings() {
        let l = load_relay_config(SAMPLE, std::path::Path::new("/h"), &|_| None).unwrap();
        assert!(l.ignored.is_empty(), "{:?}", l.ignored);
        assert_eq!(l.config.meshnet_name, "My Mesh");
        assert_eq!(l.config.rooms[0].channel, 0);
        let p = &l.config.plugins;
        assert!(p.help.active && p.ping.active && !p.nodes.active && !p.status.active);
        for name in crate::config::relay::plugins::PLUGINS {
            assert!(
                SAMPLE.contains(&format!("  {name}:\n    active:")),
                "{name}"
            );
        }
    }
}
