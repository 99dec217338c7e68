//! What the benchmark reads of a running relay from /proc/PID (memory, CPU, disk writes, the
//! resident part of its program file) and of its files (sizes).

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

/// One reading of /proc/PID.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub at: Instant,
    pub rss_kib: u64,
    pub hwm_kib: u64,
    pub anon_kib: u64,
    pub file_kib: u64,
    pub cpu_s: f64,
    pub write_bytes: u64,
    /// Resident pages of the relay's own program file (its code and read-only data).
    pub image_kib: u64,
}

/// `image` is the relay's program file: its mappings' resident pages are the code the relay
/// touched. Under qemu-user the emulator maps the guest binary from its file, so the same
/// reading gives the guest (ARM) code's resident size.
pub fn sample(pid: u32, image: &Path) -> Sample {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("relay is gone");
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces): utime and stime are 14 and 15.
    let rest: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = rest[11].parse::<u64>().unwrap() + rest[12].parse::<u64>().unwrap();
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
    let write_bytes = io
        .lines()
        .find_map(|l| l.strip_prefix("write_bytes: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    Sample {
        at: Instant::now(),
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
        anon_kib: field("RssAnon:"),
        file_kib: field("RssFile:"),
        cpu_s: ticks as f64 / hz,
        write_bytes,
        image_kib: image_rss(pid, image),
    }
}

/// Each mapping of /proc/PID/smaps as (permissions, path or "[anon]", resident KiB).
fn mappings(pid: u32) -> Vec<(String, String, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let mut out: Vec<(String, String, u64)> = Vec::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() >= 5 && f[0].contains('-') && !l.starts_with(|c: char| c.is_ascii_uppercase()) {
            let name = f.get(5).copied().unwrap_or("[anon]");
            out.push((f[1].to_string(), name.to_string(), 0));
        } else if let (Some(&"Rss:"), Some(last)) = (f.first(), out.last_mut()) {
            last.2 += f[1].parse::<u64>().unwrap_or(0);
        }
    }
    out
}

/// Resident KiB of the mappings of `image` in /proc/PID/smaps.
fn image_rss(pid: u32, image: &Path) -> u64 {
    let want = image.to_string_lossy();
    mappings(pid)
        .into_iter()
        .filter(|(_, name, _)| *name == want)
        .map(|(_, _, kib)| kib)
        .sum()
}

/// The mappings holding the most resident memory (KiB), from /proc/PID/smaps.
pub fn smaps_top(pid: u32, n: usize) -> String {
    let mut by: HashMap<String, u64> = HashMap::new();
    for (perms, name, kib) in mappings(pid) {
        *by.entry(format!("{perms} {name}")).or_default() += kib;
    }
    let mut v: Vec<_> = by.into_iter().collect();
    v.sort_by_key(|e| std::cmp::Reverse(e.1));
    v.iter()
        .take(n)
        .map(|(k, kib)| format!("  {kib:>7} KiB  {k}"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn du(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if meta.is_dir() {
        std::fs::read_dir(path)
            .map(|rd| rd.flatten().map(|e| du(&e.path())).sum())
            .unwrap_or(0)
    } else {
        meta.len()
    }
}

pub fn wal_bytes(path: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(path) else {
        return 0;
    };
    rd.flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                wal_bytes(&p)
            } else if p.to_string_lossy().ends_with("-wal") {
                std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0)
            } else {
                0
            }
        })
        .sum()
}
