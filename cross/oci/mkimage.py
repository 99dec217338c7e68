#!/usr/bin/env python3
"""Writes mmrelay's container image as an OCI image layout, without a container engine.

    cross/oci/mkimage.py OUT PLATFORM=BINARY... [--ca-bundle FILE] [--gzip-level N]

PLATFORM is linux/amd64, linux/arm64 or linux/arm/v7 (linux/arm/v6 too); BINARY a static
(musl) mmrelay for it. OUT becomes an OCI image layout folder with one image per platform
under one index, and OUT.tar the same as an archive for
`skopeo copy oci-archive:OUT.tar docker-daemon:mmrelay:VERSION` (or containers-storage:).

Each image holds the binary, a CA bundle for TLS to the homeserver, and a user mmrelay
(uid and gid 1000, group dialout 20 for serial radios). It runs as that user with
MMRELAY_HOME=/data: mount the ~/.mmrelay folder there (config.yaml, matrix/credentials.json,
the E2EE store and the database live inside it). The health check runs `mmrelay health`.
Everything is written with fixed times and owners, so the same inputs give the same digests.
"""

import datetime
import gzip
import hashlib
import io
import json
import os
import re
import sys
import tarfile

PLATFORMS = {
    "linux/amd64": {"architecture": "amd64", "os": "linux"},
    "linux/arm64": {"architecture": "arm64", "os": "linux", "variant": "v8"},
    "linux/arm/v7": {"architecture": "arm", "os": "linux", "variant": "v7"},
    "linux/arm/v6": {"architecture": "arm", "os": "linux", "variant": "v6"},
}
UID = 1000
EPOCH = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
NS = 1_000_000_000


def fail(msg):
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(2)


def version():
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "..", "Cargo.toml"), encoding="utf-8") as f:
        m = re.search(r'^version = "([^"]+)"', f.read(), re.M)
    return m.group(1)


def add(tar, name, data=None, mode=0o644, uid=0, kind=tarfile.REGTYPE):
    info = tarfile.TarInfo(name)
    info.mode, info.uid, info.gid, info.mtime, info.type = mode, uid, uid, EPOCH, kind
    if data is None:
        tar.addfile(info)
    else:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def layer(binary, ca_bundle):
    """The image's one layer, uncompressed."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in ["etc", "etc/ssl", "etc/ssl/certs", "usr", "usr/bin"]:
            add(tar, d, mode=0o755, kind=tarfile.DIRTYPE)
        add(tar, "tmp", mode=0o1777, kind=tarfile.DIRTYPE)
        add(tar, "data", mode=0o700, uid=UID, kind=tarfile.DIRTYPE)
        add(tar, "etc/passwd", b"root:x:0:0:root:/root:/sbin/nologin\n"
            b"mmrelay:x:1000:1000:mmrelay:/data:/sbin/nologin\n")
        add(tar, "etc/group", b"root:x:0:\ndialout:x:20:mmrelay\nmmrelay:x:1000:\n")
        with open(ca_bundle, "rb") as f:
            add(tar, "etc/ssl/certs/ca-certificates.crt", f.read())
        with open(binary, "rb") as f:
            add(tar, "usr/bin/mmrelay", f.read(), mode=0o755)
    return buf.getvalue()


INDEX = "application/vnd.oci.image.index.v1+json"


class Layout:
    """An OCI image layout folder: blobs by digest, an index."""

    def __init__(self, out):
        self.out = out
        os.makedirs(os.path.join(out, "blobs", "sha256"), exist_ok=True)

    def blob(self, data, media_type, **extra):
        digest = hashlib.sha256(data).hexdigest()
        with open(os.path.join(self.out, "blobs", "sha256", digest), "wb") as f:
            f.write(data)
        return dict(mediaType=media_type, digest=f"sha256:{digest}", size=len(data), **extra)

    def json_blob(self, obj, media_type, **extra):
        return self.blob(json.dumps(obj, sort_keys=True).encode(), media_type, **extra)


def image(layout, platform, binary, ca_bundle, level, ver):
    raw = layer(binary, ca_bundle)
    packed = gzip.compress(raw, compresslevel=level, mtime=EPOCH)
    layer_desc = layout.blob(packed, "application/vnd.oci.image.layer.v1.tar+gzip")
    created = datetime.datetime.fromtimestamp(EPOCH, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    config = dict(PLATFORMS[platform])
    config.update({
        "created": created,
        "config": {
            "User": f"{UID}:{UID}",
            "Env": [
                "PATH=/usr/bin",
                "MMRELAY_HOME=/data",
                "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
            ],
            "Entrypoint": ["/usr/bin/mmrelay"],
            "WorkingDir": "/data",
            "Volumes": {"/data": {}},
            "StopSignal": "SIGTERM",
            "Healthcheck": {
                "Test": ["CMD", "/usr/bin/mmrelay", "health"],
                "Interval": 60 * NS,
                "Timeout": 10 * NS,
                "StartPeriod": 120 * NS,
                "Retries": 3,
            },
            "Labels": {
                "org.opencontainers.image.title": "mmrelay",
                "org.opencontainers.image.version": ver,
                "org.opencontainers.image.licenses": "GPL-3.0-or-later",
            },
        },
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]},
        "history": [{"created": created, "created_by": "cross/oci/mkimage.py"}],
    })
    config_desc = layout.json_blob(config, "application/vnd.oci.image.config.v1+json")
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config_desc,
        "layers": [layer_desc],
    }
    return layout.json_blob(manifest, manifest["mediaType"], platform=dict(PLATFORMS[platform]))


def main(argv):
    args, ca_bundle, level = [], "/etc/ssl/certs/ca-certificates.crt", 9
    it = iter(argv)
    for a in it:
        if a == "--ca-bundle":
            ca_bundle = next(it, None) or fail("--ca-bundle needs a file")
        elif a == "--gzip-level":
            level = int(next(it, "9"))
        elif a in ("-h", "--help"):
            print(__doc__)
            return 0
        else:
            args.append(a)
    if len(args) < 2:
        fail("usage: mkimage.py OUT PLATFORM=BINARY... (see --help)")
    out, pairs = args[0], args[1:]
    if not os.path.isfile(ca_bundle):
        fail(f"no CA bundle at {ca_bundle} (Debian package ca-certificates, or --ca-bundle FILE)")
    ver = version()
    if os.path.exists(out):
        fail(f"{out} exists; remove it first")
    layout = Layout(out)
    manifests = []
    for pair in pairs:
        platform, _, binary = pair.partition("=")
        if platform not in PLATFORMS:
            fail(f"unknown platform '{platform}' (known: {', '.join(PLATFORMS)})")
        if not os.path.isfile(binary):
            fail(f"no binary at {binary} for {platform}")
        manifests.append(image(layout, platform, binary, ca_bundle, level, ver))
    # index.json names one image, the multi-platform index, by its tag (as `docker buildx`
    # writes it), so that skopeo and the engines find it by name and pick their platform.
    platforms = layout.json_blob(
        {"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests}, INDEX)
    platforms["annotations"] = {
        "org.opencontainers.image.ref.name": ver,
        "io.containerd.image.name": f"docker.io/library/mmrelay:{ver}",
    }
    index = {"schemaVersion": 2, "mediaType": INDEX, "manifests": [platforms]}
    with open(os.path.join(out, "index.json"), "w", encoding="utf-8") as f:
        json.dump(index, f, sort_keys=True)
    with open(os.path.join(out, "oci-layout"), "w", encoding="utf-8") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with tarfile.open(out + ".tar", "w", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, _, files in sorted(os.walk(out)):
            for name in sorted(files):
                path = os.path.join(dirpath, name)
                info = tar.gettarinfo(path, os.path.relpath(path, out))
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.mtime = EPOCH
                with open(path, "rb") as f:
                    tar.addfile(info, f)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
