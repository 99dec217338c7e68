//! The service files: the systemd units pass `systemd-analyze verify` without a warning, and the
//! project's shell scripts pass shellcheck (both installed by scripts/test.sh); the OpenWrt
//! package holds what the router needs.

use std::path::Path;
use std::process::Command;

const MMRELAY: &str = env!("CARGO_BIN_EXE_mmrelay");

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Verifies a unit with its ExecStart pointed at the binary just built.
fn verify(unit: &str, exec: &str) {
    let text = std::fs::read_to_string(root().join("systemd").join(unit)).unwrap();
    assert!(
        text.contains(&format!("ExecStart={exec}")),
        "{unit} runs {exec}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(unit);
    std::fs::write(&path, text.replace(exec, MMRELAY)).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian package systemd)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.trim().is_empty(),
        "{unit}: {err}"
    );
}

#[test]
fn system_unit_verifies() {
    verify("mmrelay.service", "/usr/bin/mmrelay");
    let text = std::fs::read_to_string(root().join("systemd/mmrelay.service")).unwrap();
    for line in [
        "Type=notify",
        "WatchdogSec=",
        "Restart=always",
        "StateDirectory=mmrelay",
        "Environment=MMRELAY_HOME=/var/lib/mmrelay",
        "SupplementaryGroups=dialout",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "MemoryMax=",
    ] {
        assert!(text.contains(line), "mmrelay.service lacks {line}");
    }
}

#[test]
fn user_unit_verifies() {
    verify("mmrelay-user.service", "%h/.local/bin/mmrelay");
}

/// Every shell script of the project: `*.sh` under scripts/, cross/ and bench/, plus the files
/// without the suffix that are scripts too.
fn shell_scripts() -> Vec<std::path::PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "sh") {
                out.push(p);
            }
        }
    }
    let mut v = Vec::new();
    for d in ["scripts", "cross", "bench"] {
        walk(&root().join(d), &mut v);
    }
    for f in [
        ".ci/run",
        "cross/openwrt/mmrelay.init",
        "cross/debian/postinst",
        "cross/ordered-cc",
        "cross/zig-link",
        "cross/pick-order",
    ] {
        v.push(root().join(f));
    }
    v
}

#[test]
fn shell_scripts_pass_shellcheck() {
    let scripts = shell_scripts();
    assert!(scripts.len() >= 9, "{scripts:?}");
    for s in scripts {
        let out = Command::new("shellcheck")
            .arg("-x")
            .arg(&s)
            .current_dir(root())
            .output()
            .expect("shellcheck (Debian package shellcheck)");
        assert!(
            out.status.success(),
            "{}:\n{}",
            s.display(),
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

/// Lists a gzipped tar (or one member of it) with tar.
fn tar_list(archive: &Path, member: Option<&str>) -> String {
    let out = match member {
        None => Command::new("tar")
            .arg("-tzvf")
            .arg(archive)
            .output()
            .unwrap(),
        Some(m) => {
            let cmd = format!("tar -xzOf '{}' '{m}' | tar -tzv", archive.display());
            Command::new("sh").args(["-c", &cmd]).output().unwrap()
        }
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn openwrt_ipk_holds_the_binary_and_the_init_script() {
    // The simulator stands in for the binary: the debug mmrelay is over 100 MB and gzipping it
    // would take most of this test's time; what is checked is where the file lands.
    let bin = env!("CARGO_BIN_EXE_mmrelay-sim");
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(root().join("cross/openwrt/mkipk.sh"))
        .arg(bin)
        .arg("aarch64_cortex-a53")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ipk = std::path::PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    let version = env!("CARGO_PKG_VERSION");
    let name = format!("mmrelay_{version}-1_aarch64_cortex-a53.ipk");
    assert!(ipk.ends_with(&name), "{ipk:?}");
    let outer = tar_list(&ipk, None);
    for m in ["./debian-binary", "./control.tar.gz", "./data.tar.gz"] {
        assert!(outer.contains(m), "{outer}");
    }
    let data = tar_list(&ipk, Some("./data.tar.gz"));
    let size = std::fs::metadata(bin).unwrap().len().to_string();
    let bin = data
        .lines()
        .find(|l| l.ends_with("./usr/bin/mmrelay"))
        .expect(&data);
    assert!(
        bin.starts_with("-rwxr-xr-x 0/0") && bin.contains(&size),
        "{bin}"
    );
    assert!(data.contains("./etc/init.d/mmrelay"), "{data}");
    assert!(data
        .lines()
        .any(|l| l.starts_with("drwx------") && l.ends_with("./etc/mmrelay/")));
    let cmd = format!(
        "tar -xzOf '{}' ./control.tar.gz | tar -xzO ./control",
        ipk.display()
    );
    let control = Command::new("sh").args(["-c", &cmd]).output().unwrap();
    let control = String::from_utf8(control.stdout).unwrap();
    assert!(control.contains("Package: mmrelay\n"), "{control}");
    assert!(
        control.contains("Architecture: aarch64_cortex-a53\n"),
        "{control}"
    );
    assert!(
        control.contains(&format!("Version: {version}-1\n")),
        "{control}"
    );
}

#[test]
fn service_install_writes_a_unit_that_verifies() {
    // The user variant only: the system one creates a system user, not for a test machine.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(MMRELAY)
        .args(["service", "install", "--user", "--no-start", "--unit-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let unit = dir.path().join("mmrelay.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    assert!(text.contains(&format!("ExecStart={MMRELAY}\n")));
    let v = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    assert!(
        v.status.success() && v.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&v.stderr)
    );
}

/// The x86_64 linker wrapper (cross/ordered-cc) adds the link order only to the release binary
/// and only under lld, and keeps the symbols only when asked; everything else links unchanged.
#[test]
fn the_x86_64_linker_orders_only_the_release_binary_under_lld() {
    let link = |args: &[&str], keep: bool| -> String {
        let mut cmd = Command::new(root().join("cross/ordered-cc"));
        cmd.args(args).env("MMRELAY_LINK_CC", "echo");
        if keep {
            cmd.env("MMRELAY_KEEP_SYMBOLS", "1");
        } else {
            cmd.env_remove("MMRELAY_KEEP_SYMBOLS");
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let order = format!(
        "-Wl,--symbol-ordering-file={}/order-x86_64.txt",
        root().join("cross").display()
    );
    let release = [
        "-o",
        "/x/target/release/deps/mmrelay-0123",
        "-fuse-ld=lld",
        "-Wl,--strip-all",
    ];
    let got = link(&release, false);
    assert_eq!(
        got,
        format!(
            "{} {order} -Wl,--no-warn-symbol-ordering",
            release.join(" ")
        )
    );
    assert!(root().join("cross/order-x86_64.txt").is_file());
    // Kept symbols: the same link without the strip.
    assert!(!link(&release, true).contains("--strip-all"));
    assert!(link(&release, true).contains(&order));
    // Without lld (GNU ld has no ordering), for test and debug builds, other binaries: as is.
    for args in [
        &[
            "-o",
            "/x/target/release/deps/mmrelay-0123",
            "-Wl,--strip-all",
        ][..],
        &["-o", "/x/target/debug/deps/mmrelay-0123", "-fuse-ld=lld"][..],
        &[
            "-o",
            "/x/target/release/deps/mmrelay_sim-0123",
            "-fuse-ld=lld",
        ][..],
    ] {
        assert_eq!(link(args, false), args.join(" "));
    }
}
