//! The `mmrelay` binary run as the relay, for end-to-end tests.
#![allow(dead_code)]

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MMRELAY: &str = env!("CARGO_BIN_EXE_mmrelay");

pub struct Relay {
    pub child: Child,
    pub log: std::path::PathBuf,
}

impl Relay {
    pub fn start(home: &Path) -> Relay {
        Relay::start_env(home, &[])
    }

    /// Starts it with extra environment variables and waits until both links are up.
    pub fn start_env(home: &Path, env: &[(&str, String)]) -> Relay {
        let mut r = Relay::spawn_env(home, env);
        r.wait_log("Radio ready");
        r.wait_log("Initial sync completed");
        r
    }

    /// Starts it without waiting for anything.
    pub fn spawn_env(home: &Path, env: &[(&str, String)]) -> Relay {
        let log = home.join("mmrelay.log");
        let child = Command::new(MMRELAY)
            .arg("--home")
            .arg(home)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("RUST_LOG", "info,mmrelay=debug")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::OpenOptions::new().append(true).open(&log).unwrap())
            .spawn()
            .unwrap();
        Relay { child, log }
    }

    pub fn log(&self) -> String {
        let mut s = String::new();
        std::fs::File::open(&self.log)
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        s
    }

    pub fn wait_log(&mut self, what: &str) {
        let t0 = Instant::now();
        while !self.log().contains(what) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("mmrelay exited ({status}) before '{what}':\n{}", self.log());
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "no '{what}' in the relay's log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// [`Relay::start`] from an async test.
    pub async fn launch(home: &Path) -> Relay {
        let h = home.to_path_buf();
        tokio::task::spawn_blocking(move || Relay::start(&h))
            .await
            .unwrap()
    }

    /// SIGTERM from an async test; it must exit cleanly.
    pub async fn stop(self) {
        let (status, _) = tokio::task::spawn_blocking(move || self.terminate())
            .await
            .unwrap();
        assert!(status.success(), "mmrelay exited with {status}");
    }

    /// SIGKILL: a crash, with no chance to save anything.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM; returns the exit status and how long it took.
    pub fn terminate(mut self) -> (std::process::ExitStatus, Duration) {
        let t0 = Instant::now();
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        (status, t0.elapsed())
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("--- last lines of the relay's log ---");
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
        let _ = self.child.kill();
    }
}
