//! The packagers: the Debian package (cross/debian/mkdeb.sh) and the container image
//! (cross/oci/mkimage.py), built from a stand-in binary and read back with dpkg-deb and tar.
//! cross/package.sh checks the real packages from the cross builds, binaries run under qemu.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use sha2::{Digest, Sha256};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The simulator stands in for the relay: what is checked is where the file lands, and the
/// debug relay is large enough to make compressing it most of a test's time.
fn stand_in() -> &'static str {
    env!("CARGO_BIN_EXE_mmrelay-sim")
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn debian_package_holds_the_binary_the_units_and_the_scripts() {
    let dir = tempfile::tempdir().unwrap();
    let deb = run(Command::new(root().join("cross/debian/mkdeb.sh"))
        .args([stand_in(), "arm64"])
        .arg(dir.path()));
    let deb = PathBuf::from(deb.trim());
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        deb.ends_with(format!("mmrelay_{version}-1_arm64.deb")),
        "{deb:?}"
    );

    let fields = run(Command::new("dpkg-deb").arg("--field").arg(&deb).args([
        "Package",
        "Version",
        "Architecture",
        "Depends",
    ]));
    assert!(fields.contains("Package: mmrelay\n"), "{fields}");
    assert!(
        fields.contains(&format!("Version: {version}-1\n")),
        "{fields}"
    );
    assert!(fields.contains("Architecture: arm64\n"), "{fields}");
    // The stand-in links glibc: the package names the version it needs.
    assert!(fields.contains("Depends: libc6 (>= 2."), "{fields}");

    let list = run(Command::new("dpkg-deb").arg("--contents").arg(&deb));
    let size = std::fs::metadata(stand_in()).unwrap().len().to_string();
    let bin = list
        .lines()
        .find(|l| l.ends_with(" ./usr/bin/mmrelay"))
        .expect(&list);
    assert!(
        bin.starts_with("-rwxr-xr-x root/root") && bin.contains(&size),
        "{bin}"
    );
    for f in [
        "./usr/lib/systemd/system/mmrelay.service",
        "./usr/lib/systemd/user/mmrelay.service",
        "./usr/share/doc/mmrelay/README.md",
        "./usr/share/doc/mmrelay/config.yaml.sample",
        "./usr/share/doc/mmrelay/copyright",
    ] {
        assert!(
            list.lines().any(|l| l.ends_with(&format!(" {f}"))),
            "{f}: {list}"
        );
    }

    let x = dir.path().join("control");
    run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&x));
    let postinst = std::fs::read_to_string(x.join("postinst")).unwrap();
    assert!(!postinst.contains("#DEBHELPER#"), "{postinst}");
    assert!(postinst.contains("systemctl daemon-reload"), "{postinst}");
    assert!(postinst.contains("adduser --system"), "{postinst}");
    let prerm = std::fs::read_to_string(x.join("prerm")).unwrap();
    assert!(prerm.contains("systemctl stop mmrelay.service"), "{prerm}");
}

#[test]
fn debian_packager_refuses_an_unknown_architecture() {
    let out = Command::new(root().join("cross/debian/mkdeb.sh"))
        .args([stand_in(), "armel"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown Debian architecture 'armel'"), "{err}");
}

fn read_json(layout: &Path, digest: &str) -> Value {
    let path = layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn make_image(out: &Path) {
    run(Command::new("python3")
        .arg(root().join("cross/oci/mkimage.py"))
        .arg(out)
        .arg(format!("linux/amd64={}", stand_in()))
        .arg(format!("linux/arm/v6={}", stand_in()))
        .args(["--gzip-level", "1"]));
}

#[test]
fn container_image_is_a_valid_oci_layout_with_the_relays_settings() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("image");
    make_image(&layout);
    assert!(layout.with_extension("tar").is_file());

    // Every blob is named by its digest and has the size its descriptor says.
    for e in std::fs::read_dir(layout.join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        let data = std::fs::read(e.path()).unwrap();
        let hex: String = Sha256::digest(&data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(e.file_name().to_str().unwrap(), hex);
    }
    // index.json names one multi-platform index by the version, as engines and skopeo expect.
    let top: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let top = top["manifests"].as_array().unwrap();
    assert_eq!(top.len(), 1);
    assert_eq!(
        top[0]["annotations"]["org.opencontainers.image.ref.name"],
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(
        top[0]["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let index = read_json(&layout, top[0]["digest"].as_str().unwrap());
    let manifests = index["manifests"].as_array().unwrap();
    let platforms: Vec<String> = manifests
        .iter()
        .map(|m| {
            let p = &m["platform"];
            format!(
                "{}/{}{}",
                p["os"].as_str().unwrap(),
                p["architecture"].as_str().unwrap(),
                p["variant"]
                    .as_str()
                    .map(|v| format!("/{v}"))
                    .unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm/v6"]);

    let manifest = read_json(&layout, manifests[0]["digest"].as_str().unwrap());
    let size = std::fs::metadata(
        layout.join("blobs/sha256").join(
            manifests[0]["digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:"),
        ),
    )
    .unwrap()
    .len();
    assert_eq!(manifests[0]["size"].as_u64().unwrap(), size);
    let config = read_json(&layout, manifest["config"]["digest"].as_str().unwrap());
    assert_eq!(config["architecture"], "amd64");
    let c = &config["config"];
    assert_eq!(c["User"], "1000:1000");
    assert_eq!(c["Entrypoint"][0], "/usr/bin/mmrelay");
    let env: Vec<&str> = c["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(env.contains(&"MMRELAY_HOME=/data"), "{env:?}");
    assert!(c["Volumes"]["/data"].is_object());
    assert_eq!(c["Healthcheck"]["Test"][2], "health");

    // The layer: the binary (root's, 0755), /data for the image's user only, a CA bundle,
    // the user in /etc/passwd.
    let layer = layout.join("blobs/sha256").join(
        manifest["layers"][0]["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:"),
    );
    let list = run(Command::new("tar")
        .arg("-tzvf")
        .arg(&layer)
        .arg("--numeric-owner"));
    let line = |name: &str| {
        list.lines()
            .find(|l| l.ends_with(&format!(" {name}")) || l.ends_with(&format!(" {name}/")))
            .unwrap_or_else(|| panic!("{name} missing: {list}"))
            .to_string()
    };
    assert!(line("usr/bin/mmrelay").starts_with("-rwxr-xr-x 0/0"));
    assert!(line("data").starts_with("drwx------ 1000/1000"));
    assert!(line("tmp").starts_with("drwxrwxrwt"));
    line("etc/ssl/certs/ca-certificates.crt");
    let passwd = run(Command::new("tar")
        .arg("-xzOf")
        .arg(&layer)
        .arg("etc/passwd"));
    assert!(passwd.contains("mmrelay:x:1000:1000:"), "{passwd}");

    // The same inputs give the same image.
    let again = dir.path().join("again");
    make_image(&again);
    assert_eq!(
        std::fs::read(layout.join("index.json")).unwrap(),
        std::fs::read(again.join("index.json")).unwrap()
    );
}

#[test]
fn container_image_builder_names_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("python3")
        .arg(root().join("cross/oci/mkimage.py"))
        .arg(dir.path().join("image"))
        .arg(format!("linux/s390x={}", stand_in()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown platform 'linux/s390x'"), "{err}");
    let out = Command::new("python3")
        .arg(root().join("cross/oci/mkimage.py"))
        .arg(dir.path().join("image2"))
        .arg("linux/amd64=/nonexistent/mmrelay")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no binary at /nonexistent/mmrelay"), "{err}");
}
