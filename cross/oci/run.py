#!/usr/bin/env python3
"""Runs an image that mkimage.py wrote, as a container engine would, without one.

    cross/oci/run.py LAYOUT PLATFORM DATA_DIR [ARG...]

Unpacks the image for PLATFORM from the OCI layout folder LAYOUT into a fresh root, mounts
DATA_DIR at its /data (as `docker run -v DATA_DIR:/data` would), and runs the image's
entrypoint with ARG... inside it: chroot, the image's user and environment (the working
folder is /).
Extra environment for the container comes from MMRELAY_* variables of the caller (as
`docker run -e` would pass them). Needs root (a mount namespace and chroot) and a PLATFORM the
machine runs natively. Exits with the entrypoint's status.
"""

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile


def blob(layout, digest):
    return os.path.join(layout, "blobs", *digest.split(":", 1))


def manifest_for(layout, platform):
    with open(os.path.join(layout, "index.json"), encoding="utf-8") as f:
        index = json.load(f)
    # index.json may name a multi-platform index rather than the images themselves.
    while len(index["manifests"]) == 1 and index["manifests"][0]["mediaType"].endswith("index.v1+json"):
        with open(blob(layout, index["manifests"][0]["digest"]), encoding="utf-8") as f:
            index = json.load(f)
    for m in index["manifests"]:
        p = m.get("platform", {})
        name = "/".join(x for x in (p.get("os"), p.get("architecture"), p.get("variant")) if x)
        if name == platform or (platform == "linux/arm64" and name == "linux/arm64/v8"):
            with open(blob(layout, m["digest"]), encoding="utf-8") as f:
                return json.load(f)
    sys.exit(f"error: {layout} has no image for {platform}")


def main(argv):
    if len(argv) < 3:
        sys.exit("usage: run.py LAYOUT PLATFORM DATA_DIR [ARG...] (see --help)")
    layout, platform, data, args = argv[0], argv[1], os.path.abspath(argv[2]), argv[3:]
    if os.geteuid() != 0:
        sys.exit("error: run.py needs root (a mount namespace and chroot); run it as root")
    manifest = manifest_for(layout, platform)
    with open(blob(layout, manifest["config"]["digest"]), encoding="utf-8") as f:
        config = json.load(f)["config"]
    tools = {t: shutil.which(t) for t in ("unshare", "mount", "chroot")}
    missing = [t for t, p in tools.items() if not p]
    if missing:
        sys.exit(f"error: run.py needs {', '.join(missing)} (Debian packages util-linux, coreutils)")
    # The image's environment, then MMRELAY_* from the caller, as `docker run -e` passes them.
    env = dict(e.partition("=")[::2] for e in config.get("Env", []))
    env.update({k: v for k, v in os.environ.items() if k.startswith("MMRELAY_")})
    user = config.get("User", "0:0")
    cmd = config.get("Entrypoint", []) + (args or config.get("Cmd") or [])
    script = ('data=$1 root=$2 user=$3; shift 3; '
              f'{tools["mount"]} --bind "$data" "$root/data" || exit 125; '
              f'exec {tools["chroot"]} --userspec="$user" "$root" "$@"')
    with tempfile.TemporaryDirectory() as rootfs:
        # A container's / is 0755 whatever the layers hold; the image's user must reach it.
        os.chmod(rootfs, 0o755)
        for layer in manifest["layers"]:
            with tarfile.open(blob(layout, layer["digest"])) as tar:
                tar.extractall(rootfs, numeric_owner=True, filter="fully_trusted")
        outer = [tools["unshare"], "--mount", "--propagation", "private", "--",
                 "/bin/sh", "-c", script, "sh", data, rootfs, user] + cmd
        return subprocess.run(outer, env=env, check=False).returncode


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        sys.exit(0)
    sys.exit(main(sys.argv[1:]))
