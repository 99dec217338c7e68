//! The service files: the systemd units pass `systemd-analyze verify` without a warning, and the
//! project's shell scripts pass shellcheck (both installed by scripts/test.sh).

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

#[test]
fn shell_scripts_pass_shellcheck() {
    let scripts = [
        "scripts/test.sh",
        "scripts/lib.sh",
        "scripts/synapse.sh",
        "scripts/fuzz.sh",
        ".ci/run",
        "cross/openwrt/mmrelay.init",
    ];
    for s in scripts {
        let out = Command::new("shellcheck")
            .arg("-x")
            .arg(root().join(s))
            .current_dir(root())
            .output()
            .expect("shellcheck (Debian package shellcheck)");
        assert!(
            out.status.success(),
            "{s}:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
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
