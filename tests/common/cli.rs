//! The `mmrelay` binary run as a command (`auth`, `config`), for the tests of its commands.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const MMRELAY: &str = env!("CARGO_BIN_EXE_mmrelay");

/// `mmrelay --home HOME ARGS...` with no password in the environment and no terminal, from an
/// async test.
pub async fn run<S: AsRef<str>>(home: &Path, args: impl IntoIterator<Item = S>) -> Output {
    let home = home.to_path_buf();
    let args: Vec<String> = args.into_iter().map(|a| a.as_ref().to_string()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(MMRELAY)
            .arg("--home")
            .arg(&home)
            .args(&args)
            .env_remove("MMRELAY_MATRIX_PASSWORD")
            .stdin(Stdio::null())
            .output()
            .expect("run mmrelay")
    })
    .await
    .unwrap()
}

/// Standard output, then standard error.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A file's permission bits.
pub fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}
