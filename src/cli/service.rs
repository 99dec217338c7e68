//! `mmrelay service install [--user]`: installs the systemd unit that fits (a system service
//! for a dedicated user, or a user service), and enables and starts it; `mmrelay health`, which
//! asks the running relay whether it is relaying.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::Subcommand;

pub const SYSTEM_UNIT: &str = include_str!("../../systemd/mmrelay.service");
pub const USER_UNIT: &str = include_str!("../../systemd/mmrelay-user.service");

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Install, enable and start the systemd service
    Install {
        /// A user service (files in ~/.mmrelay) instead of the system service (as root)
        #[arg(long)]
        user: bool,
        /// Write the unit file only; do not call systemctl
        #[arg(long)]
        no_start: bool,
        /// Where to write the unit [default: /etc/systemd/system, or ~/.config/systemd/user]
        #[arg(long, value_name = "DIR")]
        unit_dir: Option<PathBuf>,
    },
}

/// The unit text for this binary: ExecStart names the running executable.
pub fn unit_text(user: bool, exe: &Path) -> String {
    let (text, exec) = if user {
        (USER_UNIT, "%h/.local/bin/mmrelay")
    } else {
        (SYSTEM_UNIT, "/usr/bin/mmrelay")
    };
    text.replace(
        &format!("ExecStart={exec}"),
        &format!("ExecStart={}", exe.display()),
    )
}

fn systemctl(user: bool, args: &[&str]) -> Result<(), String> {
    let mut cmd = Command::new("systemctl");
    if user {
        cmd.arg("--user");
    }
    let status = cmd
        .args(args)
        .status()
        .map_err(|e| format!("cannot run systemctl: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`systemctl {}` failed ({status})", args.join(" ")))
    }
}

pub fn run(cmd: ServiceCommand) -> ExitCode {
    let ServiceCommand::Install {
        user,
        no_start,
        unit_dir,
    } = cmd;
    match install(user, no_start, unit_dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn install(user: bool, no_start: bool, unit_dir: Option<PathBuf>) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let (dir, name) = match (user, unit_dir) {
        (_, Some(d)) => (d, "mmrelay.service"),
        (true, None) => {
            let home = std::env::var_os("HOME").ok_or("HOME is not set")?;
            (
                PathBuf::from(home).join(".config/systemd/user"),
                "mmrelay.service",
            )
        }
        (false, None) => {
            // SAFETY: geteuid has no preconditions.
            if unsafe { libc::geteuid() } != 0 {
                return Err(
                    "the system service needs root (sudo mmrelay service install), or use --user"
                        .into(),
                );
            }
            (PathBuf::from("/etc/systemd/system"), "mmrelay.service")
        }
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join(name);
    std::fs::write(&path, unit_text(user, &exe))
        .map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
    println!("Wrote {}", path.display());
    if !user {
        let exists = Command::new("id")
            .arg("mmrelay")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !exists {
            let status = Command::new("useradd")
                .args([
                    "--system",
                    "--home-dir",
                    "/var/lib/mmrelay",
                    "--shell",
                    "/usr/sbin/nologin",
                    "--groups",
                    "dialout",
                    "mmrelay",
                ])
                .status()
                .map_err(|e| format!("cannot run useradd: {e}"))?;
            if !status.success() {
                return Err("creating the user 'mmrelay' failed".into());
            }
            println!("Created the system user 'mmrelay' (in group dialout)");
        }
        println!("Put the config in /var/lib/mmrelay/config.yaml and log in with");
        println!("  sudo -u mmrelay MMRELAY_HOME=/var/lib/mmrelay mmrelay auth login");
    }
    if no_start {
        return Ok(());
    }
    systemctl(user, &["daemon-reload"])?;
    systemctl(user, &["enable", "--now", "mmrelay.service"])?;
    println!(
        "Enabled and started mmrelay; follow it with: journalctl {}-u mmrelay -f",
        if user { "--user " } else { "" }
    );
    if user {
        println!("To start it at boot without logging in: loginctl enable-linger $USER");
    }
    Ok(())
}

/// `mmrelay health`: prints the running relay's health line; exit 0 only when it is healthy.
pub async fn health(home: &Path) -> ExitCode {
    match crate::service::health::query(home).await {
        Ok(line) => {
            println!("{line}");
            if line.starts_with("healthy") {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!(
                "unhealthy: no relay answers for the home folder {} ({e}); is mmrelay running with this home (--home, MMRELAY_HOME)?",
                home.display()
            );
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_name_the_running_binary() {
        let t = unit_text(false, Path::new("/opt/mm/bin/mmrelay"));
        assert!(t.contains("ExecStart=/opt/mm/bin/mmrelay\n"));
        assert!(t.contains("User=mmrelay"));
        let t = unit_text(true, Path::new("/home/a/.cargo/bin/mmrelay"));
        assert!(t.contains("ExecStart=/home/a/.cargo/bin/mmrelay\n"));
        assert!(t.contains("WantedBy=default.target"));
    }
}
