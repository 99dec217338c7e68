//! `mmrelay auth login|status|logout`: the Matrix session, with prompts when run at a
//! terminal and flags, a password file, an environment variable or standard input otherwise.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::Paths;
use crate::matrix::credentials::MatrixPaths;
use crate::matrix::session::{self, LoginParams};

/// The environment variable that may hold the password.
pub const PASSWORD_ENV: &str = "MMRELAY_MATRIX_PASSWORD";

#[derive(Debug, Clone, Args)]
pub struct PasswordArgs {
    /// Read the password from this file ('-' for standard input) [or $MMRELAY_MATRIX_PASSWORD]
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Log the bot in: writes credentials.json, creates the E2EE store, sets up cross-signing
    Login {
        /// Homeserver URL or server name (https:// is added when missing)
        #[arg(long, value_name = "URL")]
        homeserver: Option<String>,
        /// The bot's user: localpart or @user:server
        #[arg(long, value_name = "USER")]
        username: Option<String>,
        #[command(flatten)]
        password: PasswordArgs,
        /// Log in with a login token (m.login.token) from this file ('-' for standard input)
        /// instead of the password
        #[arg(long, value_name = "FILE", conflicts_with = "access_token_file")]
        token_file: Option<PathBuf>,
        /// Adopt the access token in this file ('-' for standard input) instead of logging in
        #[arg(long, value_name = "FILE")]
        access_token_file: Option<PathBuf>,
        /// The file that holds the bot's recovery key: read when the account has one (else
        /// asked for at a terminal), written (0600, never overwritten) when it gets one now
        #[arg(long, value_name = "FILE")]
        recovery_key_file: Option<PathBuf>,
        /// Do not set up a recovery key (secret storage and key backup) when the account has
        /// none
        #[arg(long, conflicts_with = "recovery_key_file")]
        without_recovery: bool,
        /// Replace the account's cross-signing identity (when its keys were lost)
        #[arg(long)]
        reset_cross_signing: bool,
    },
    /// Show the credentials in use and whether they work; exit 0 when usable
    Status,
    /// Log the bot out on the server and remove its credentials and E2EE store (with a
    /// password, the device is deleted with it; without one, its access token is ended)
    Logout {
        #[command(flatten)]
        password: PasswordArgs,
        /// Do not ask for confirmation
        #[arg(short = 'y', long)]
        yes: bool,
    },
}

/// The Matrix paths for this home, honouring `matrix.e2ee.store_path` in the config.
pub fn matrix_paths(paths: &Paths) -> MatrixPaths {
    let store = crate::config::read_text(&paths.config)
        .ok()
        .and_then(|t| crate::config::relay::store_path(&t, &crate::config::process_env).ok())
        .flatten();
    MatrixPaths::new(&paths.home, store.as_deref())
}

fn prompt(question: &str) -> Result<String, String> {
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read standard input: {e}"))?;
    Ok(line.trim().to_string())
}

/// The password from `--password-file`, the environment, a prompt (at a terminal) or
/// standard input.
fn password(args: &PasswordArgs) -> Result<String, String> {
    if let Some(file) = &args.password_file {
        let text = read_file_or_stdin(file, "--password-file")?;
        let pw = text.trim_end_matches(['\r', '\n']).to_string();
        if pw.is_empty() {
            return Err("the password file is empty".into());
        }
        return Ok(pw);
    }
    if let Ok(pw) = std::env::var(PASSWORD_ENV) {
        if !pw.is_empty() {
            return Ok(pw);
        }
    }
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password("Password: ").map_err(|e| e.to_string());
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
    let pw = line.trim_end_matches(['\r', '\n']).to_string();
    if pw.is_empty() {
        return Err(format!(
            "no password: give --password-file, set ${PASSWORD_ENV}, or type it at a terminal"
        ));
    }
    Ok(pw)
}

pub async fn run(paths: &Paths, cmd: AuthCommand) -> ExitCode {
    let mpaths = matrix_paths(paths);
    let res = match cmd {
        AuthCommand::Login {
            homeserver,
            username,
            password: pw,
            token_file,
            access_token_file,
            recovery_key_file,
            without_recovery,
            reset_cross_signing,
        } => {
            let how = How {
                token_file,
                access_token_file,
                recovery_key_file,
                recovery: !without_recovery,
                reset: reset_cross_signing,
            };
            login(paths, &mpaths, homeserver, username, &pw, how).await
        }
        AuthCommand::Status => {
            let report = crate::matrix::account::status(&mpaths).await;
            for l in &report.lines {
                println!("{l}");
            }
            return if report.usable {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            };
        }
        AuthCommand::Logout { password: pw, yes } => logout(&mpaths, &pw, yes).await,
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// How `auth login` signs in, besides the password.
struct How {
    token_file: Option<PathBuf>,
    access_token_file: Option<PathBuf>,
    recovery_key_file: Option<PathBuf>,
    recovery: bool,
    reset: bool,
}

/// The text of `file` given with `flag`; '-': the first line of standard input.
fn read_file_or_stdin(file: &std::path::Path, flag: &str) -> Result<String, String> {
    if file.as_os_str() == "-" {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("{flag}: cannot read standard input: {e}"))?;
        return Ok(line);
    }
    std::fs::read_to_string(file).map_err(|e| format!("{flag} {}: {e}", file.display()))
}

/// A token from `file` ('-': the first line of standard input).
fn read_token(file: &std::path::Path, flag: &str) -> Result<String, String> {
    let token = read_file_or_stdin(file, flag)?.trim().to_string();
    if token.is_empty() {
        return Err(format!("{flag} {}: empty", file.display()));
    }
    Ok(token)
}

/// `matrix.bot_user_id` of the config, if it has one.
fn configured_bot(paths: &Paths) -> Option<String> {
    let text = crate::config::read_text(&paths.config).ok()?;
    crate::config::relay::bot_user_id(&text, &crate::config::process_env)
        .ok()
        .flatten()
}

/// The recovery key typed at a terminal (not echoed), if one is there.
fn ask_recovery_key() -> Option<String> {
    if !std::io::stdin().is_terminal() {
        return None;
    }
    eprintln!("This account has a recovery key: type it to sign this device with the bot's identity (empty to skip).");
    let key = rpassword::prompt_password("Recovery key: ").ok()?;
    let key = key.trim().to_string();
    (!key.is_empty()).then_some(key)
}

async fn login(
    paths: &Paths,
    mpaths: &MatrixPaths,
    homeserver: Option<String>,
    username: Option<String>,
    pw: &PasswordArgs,
    how: How,
) -> Result<(), String> {
    let interactive = std::io::stdin().is_terminal();
    let homeserver = match homeserver {
        Some(h) => h,
        None if interactive => prompt("Homeserver (e.g. matrix.org): ")?,
        None => return Err("--homeserver is required when not at a terminal".into()),
    };
    let login_token = match &how.token_file {
        Some(f) => Some(read_token(f, "--token-file")?),
        None => None,
    };
    let access_token = match &how.access_token_file {
        Some(f) => Some(read_token(f, "--access-token-file")?),
        None => None,
    };
    let with_token = login_token.is_some() || access_token.is_some();
    let username = match username {
        Some(u) => u,
        // A token names its user; a username given (or the config's matrix.bot_user_id) is
        // checked against it.
        None if with_token => configured_bot(paths).unwrap_or_default(),
        None if interactive => prompt("Username (e.g. @relaybot:matrix.org): ")?,
        None => return Err("--username is required when not at a terminal".into()),
    };
    if homeserver.is_empty() || (username.is_empty() && !with_token) {
        return Err("the homeserver and the username must not be empty".into());
    }
    let password = if with_token {
        String::new()
    } else {
        password(pw)?
    };
    let params = LoginParams {
        homeserver,
        username,
        password,
        reset_cross_signing: how.reset,
        login_token,
        access_token,
        set_up_recovery: how.recovery,
        recovery_key_file: how.recovery_key_file,
        ask_recovery_key: Some(ask_recovery_key),
    };
    session::login(mpaths, &params, &mut |line| println!("{line}")).await?;
    Ok(())
}

async fn logout(mpaths: &MatrixPaths, pw: &PasswordArgs, yes: bool) -> Result<(), String> {
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err("add -y to log out without a terminal to confirm at".into());
        }
        let answer = prompt(&format!(
            "Log out and delete {} and the E2EE store? [y/N] ",
            mpaths.credentials.display()
        ))?;
        if !matches!(answer.as_str(), "y" | "Y" | "yes") {
            return Err("nothing was changed".into());
        }
    }
    // With a password (file or environment), the device is deleted with it; without one, the
    // access token is logged out, which ends its device too.
    let password =
        if pw.password_file.is_some() || std::env::var(PASSWORD_ENV).is_ok_and(|p| !p.is_empty()) {
            Some(password(pw)?)
        } else {
            None
        };
    for line in crate::matrix::account::logout(mpaths, password.as_deref()).await? {
        println!("{line}");
    }
    Ok(())
}
