//! The benchmark's report: the table of figures for each relay, with ratios.

use super::{Figures, RelaySpec, Workload};

pub fn stats(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let rank = |p: f64| s[((p * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1];
    (rank(0.5), rank(0.95))
}

fn fmt_ratio(ours: f64, theirs: f64) -> String {
    if ours > 0.0 && theirs.is_finite() && ours.is_finite() {
        format!("{:.1}×", theirs / ours)
    } else {
        "–".into()
    }
}

pub fn print_table(specs: &[RelaySpec], figs: &[Figures], work: &Workload) {
    let mut rows: Vec<(String, Vec<f64>, &str)> = Vec::new();
    let mut row = |name: &str, unit: &'static str, g: &dyn Fn(&Figures) -> f64| {
        rows.push((name.to_string(), figs.iter().map(g).collect(), unit));
    };
    let mib = |kib: u64| kib as f64 / 1024.0;
    row("launch → relaying mesh→Matrix", "s", &|f| {
        f.ready_m2x.map_or(f64::NAN, |d| d.as_secs_f64())
    });
    row("launch → relaying Matrix→mesh", "s", &|f| {
        f.ready_x2m.map_or(f64::NAN, |d| d.as_secs_f64())
    });
    for (key, label) in [
        ("first", "after a first start (invite, join, key sharing)"),
        ("start", "after start"),
        ("burst", "after burst"),
        ("idle", "after idle"),
    ] {
        row(&format!("VmRSS {label}"), "MiB", &|f| {
            mib(f.samples[key].rss_kib)
        });
        row(&format!("VmHWM {label}"), "MiB", &|f| {
            mib(f.samples[key].hwm_kib)
        });
        row(
            &format!("  of VmRSS: heap and stacks (RssAnon) {label}"),
            "MiB",
            &|f| mib(f.samples[key].anon_kib),
        );
        row(
            &format!("  of VmRSS: program and libraries (RssFile) {label}"),
            "MiB",
            &|f| mib(f.samples[key].file_kib),
        );
        row(
            &format!("  of RssFile: the relay's program file {label}"),
            "MiB",
            &|f| mib(f.samples[key].image_kib),
        );
    }
    let window = |f: &Figures| {
        let (a, b, c) = (f.samples["start"], f.samples["burst"], f.samples["idle"]);
        let tw = (b.at - a.at).as_secs_f64();
        let ti = (c.at - b.at).as_secs_f64();
        let idle_rate = (c.cpu_s - b.cpu_s) / ti;
        let cpu = (b.cpu_s - a.cpu_s) - idle_rate * tw;
        (
            cpu,
            b.write_bytes - a.write_bytes,
            c.write_bytes - b.write_bytes,
            ti,
            idle_rate,
        )
    };
    row("CPU per relayed message (idle subtracted)", "ms", &|f| {
        window(f).0 * 1000.0 / f.relayed.max(1) as f64
    });
    row("CPU while idle", "ms/min", &|f| window(f).4 * 60_000.0);
    row("disk writes per relayed message", "KiB", &|f| {
        window(f).1 as f64 / 1024.0 / f.relayed.max(1) as f64
    });
    row("disk writes per idle minute", "KiB", &|f| {
        let w = window(f);
        w.2 as f64 / 1024.0 / w.3 * 60.0
    });
    row("$MMRELAY_HOME at the end", "MiB", &|f| {
        f.home_bytes as f64 / 1048576.0
    });
    row("SQLite WAL files at the end", "KiB", &|f| {
        f.wal_bytes as f64 / 1024.0
    });
    let lat = |v: &[f64], p95: bool| {
        let (m, p) = stats(v);
        if p95 {
            p
        } else {
            m
        }
    };
    row("latency mesh→Matrix, server ts, median", "ms", &|f| {
        lat(&f.lat_m2x_server, false)
    });
    row("latency mesh→Matrix, server ts, p95", "ms", &|f| {
        lat(&f.lat_m2x_server, true)
    });
    row("latency mesh→Matrix, client, median", "ms", &|f| {
        lat(&f.lat_m2x_client, false)
    });
    row("latency mesh→Matrix, client, p95", "ms", &|f| {
        lat(&f.lat_m2x_client, true)
    });
    row("latency Matrix→mesh, median", "ms", &|f| {
        lat(&f.lat_x2m, false)
    });
    row("latency Matrix→mesh, p95", "ms", &|f| {
        lat(&f.lat_x2m, true)
    });
    row(
        &format!("burst of {}: last one in Matrix after", work.burst),
        "s",
        &|f| f.burst_secs,
    );
    row("messages relayed", "", &|f| f.relayed as f64);
    row("messages lost", "", &|f| f.lost as f64);
    row("SIGTERM → exit", "s", &|f| f.stop_secs);
    row("installed size", "MiB", &|f| {
        f.installed_bytes as f64 / 1048576.0
    });

    let mut head = "| figure | unit |".to_string();
    let mut line = "|---|---|".to_string();
    for s in specs {
        head.push_str(&format!(" {} |", s.name));
        line.push_str("---:|");
    }
    if specs.len() == 2 {
        head.push_str(" ratio |");
        line.push_str("---:|");
    }
    println!("{head}\n{line}");
    for (name, vals, unit) in rows {
        let mut l = format!("| {name} | {unit} |");
        for v in &vals {
            if v.is_nan() {
                l.push_str(" – |");
            } else if v.abs() >= 100.0 || v.fract() == 0.0 {
                l.push_str(&format!(" {v:.0} |"));
            } else {
                l.push_str(&format!(" {v:.2} |"));
            }
        }
        if vals.len() == 2 {
            l.push_str(&format!(" {} |", fmt_ratio(vals[0], vals[1])));
        }
        println!("{l}");
    }
}
