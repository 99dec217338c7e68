//! Decoder throughput: the stream framing plus the FromRadio codec on one core, fed the golden
//! frames of tests/fixtures (what a radio sends: packets, node infos, config, queue status) in
//! 4 KiB reads, as a serial or TCP link delivers them. A plain timed loop; run by bench/run.sh
//! (`cargo run --release --example decoder`), prints frames per second.

use std::time::{Duration, Instant};

use mmrelay::mesh::framing::{Decoder, Event};
use mmrelay::mesh::proto::FromRadio;

fn fixtures(prefix: &str) -> Vec<Vec<u8>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("tests/fixtures")
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(prefix)
                .then(|| (name, std::fs::read(e.path()).unwrap()))
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, b)| b).collect()
}

/// Decodes `stream` over and over for about `secs` seconds; returns (frames, bytes, elapsed).
fn run(stream: &[u8], secs: f64) -> (u64, u64, Duration) {
    let mut dec: Decoder<FromRadio> = Decoder::new();
    let mut frames = 0u64;
    let mut bytes = 0u64;
    let t0 = Instant::now();
    while t0.elapsed().as_secs_f64() < secs {
        for chunk in stream.chunks(4096) {
            dec.feed(chunk, &mut |ev| {
                if let Event::Message(m) = ev {
                    std::hint::black_box(&m);
                    frames += 1;
                }
            });
            bytes += chunk.len() as u64;
        }
    }
    (frames, bytes, t0.elapsed())
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let mixes = [
        ("every FromRadio fixture", fixtures("from_")),
        ("text packets only", fixtures("from_packet_text")),
    ];
    println!("| decoder input | frames/s | MB/s | avg frame |");
    println!("|---|---:|---:|---:|");
    for (name, frames) in mixes {
        assert!(!frames.is_empty(), "no fixtures for {name}");
        let one: Vec<u8> = frames.concat();
        // About 1 MiB of stream, so the loop measures decoding, not the setup.
        let stream: Vec<u8> = one.repeat((1 << 20) / one.len() + 1);
        let (n, b, el) = run(&stream, secs);
        let expect = frames.len() as u64 * (stream.len() / one.len()) as u64;
        assert!(
            n >= expect,
            "decoded {n} frames, expected at least {expect}"
        );
        println!(
            "| {name} | {:.0} | {:.1} | {} B |",
            n as f64 / el.as_secs_f64(),
            b as f64 / el.as_secs_f64() / 1e6,
            one.len() / frames.len()
        );
    }
}
