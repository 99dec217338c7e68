#!/usr/bin/env bash
# Packs a built mmrelay into a Debian / Raspberry Pi OS package with dpkg-deb.
#
#   cross/debian/mkdeb.sh BINARY ARCH [OUTDIR]
#
# ARCH is the Debian architecture: arm64, armhf or amd64. For armhf take the ARMv6 build
# (arm-unknown-linux-musleabihf), which starts on every 32-bit Pi, the Pi Zero and Pi 1
# included; Debian's own armhf is ARMv7. The package installs /usr/bin/mmrelay, the system unit
# (mmrelay.service, for the mmrelay user, files in /var/lib/mmrelay) and the user unit, and
# creates the mmrelay user; the service is enabled by hand once a config exists. A binary that
# links glibc gets the glibc version it needs as a dependency; a static one none.
set -euo pipefail
if [ $# -lt 2 ]; then sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 2; fi
bin=$1 arch=$2 out=${3:-.}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
[ -f "$bin" ] || { echo "error: no binary at $bin" >&2; exit 1; }
case $arch in arm64|armhf|amd64) ;; *) echo "error: unknown Debian architecture '$arch' (arm64, armhf, amd64)" >&2; exit 2 ;; esac
for tool in dpkg-deb readelf; do
  command -v "$tool" >/dev/null || { echo "error: $tool is missing (Debian packages dpkg and binutils)" >&2; exit 1; }
done
# shellcheck source=scripts/lib.sh
. "$root/scripts/lib.sh"
version=$(crate_version)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

pkg=$tmp/pkg
install -D -m 0755 "$bin" "$pkg/usr/bin/mmrelay"
install -D -m 0644 "$root/systemd/mmrelay.service" "$pkg/usr/lib/systemd/system/mmrelay.service"
install -D -m 0644 "$root/systemd/mmrelay-user.service" "$pkg/usr/lib/systemd/user/mmrelay.service"
install -D -m 0644 "$root/README.md" "$pkg/usr/share/doc/mmrelay/README.md"
install -D -m 0644 "$root/src/config/sample.yaml" "$pkg/usr/share/doc/mmrelay/config.yaml.sample"
cat > "$pkg/usr/share/doc/mmrelay/copyright" <<'TEXT'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: mmrelay
Files: *
Copyright: mmrelay developers
License: GPL-3.0-or-later
 On Debian systems the license is in /usr/share/common-licenses/GPL-3.
TEXT

depends=adduser
glibc=$(readelf -V "$pkg/usr/bin/mmrelay" 2>/dev/null | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1 || true)
[ -n "$glibc" ] && depends="libc6 (>= $glibc), $depends"
size=$(du -sk --apparent-size "$pkg" | cut -f1)

mkdir -p "$pkg/DEBIAN"
cat > "$pkg/DEBIAN/control" <<TEXT
Package: mmrelay
Version: $version-1
Architecture: $arch
Maintainer: mmrelay developers
Section: net
Priority: optional
Depends: $depends
Installed-Size: $size
Description: relay between a Meshtastic LoRa mesh and Matrix rooms
 mmrelay bridges a Meshtastic LoRa mesh and Matrix rooms, encrypted rooms
 included. It reads MMRelay's config.yaml and credentials.json, keeps its
 state in SQLite with few writes, and runs as a systemd service with a
 watchdog.
TEXT
sed 's|^#DEBHELPER#$|[ -d /run/systemd/system ] \&\& systemctl daemon-reload >/dev/null 2>\&1 \|\| true|' \
  "$here/postinst" > "$pkg/DEBIAN/postinst"
cat > "$pkg/DEBIAN/prerm" <<'TEXT'
#!/bin/sh
# Stops the service before its binary goes away (not on upgrade: the new one restarts it).
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
	systemctl stop mmrelay.service >/dev/null 2>&1 || true
	systemctl disable mmrelay.service >/dev/null 2>&1 || true
fi
exit 0
TEXT
cat > "$pkg/DEBIAN/postrm" <<'TEXT'
#!/bin/sh
# The bot's files in /var/lib/mmrelay (credentials, E2EE store) stay, even on purge: they are
# the bot's identity. Remove them by hand when it is to be forgotten.
set -e
[ -d /run/systemd/system ] && systemctl daemon-reload >/dev/null 2>&1 || true
exit 0
TEXT
chmod 0755 "$pkg/DEBIAN/postinst" "$pkg/DEBIAN/prerm" "$pkg/DEBIAN/postrm"

mkdir -p "$out"
deb=$out/mmrelay_${version}-1_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$deb" >/dev/null
echo "$deb"
