#!/usr/bin/env bash
# Packs a cross-built mmrelay into an OpenWrt .ipk (opkg) without the OpenWrt SDK.
#
#   cross/openwrt/mkipk.sh BINARY ARCH [OUTDIR]
#
# BINARY is a static mmrelay for the router (cross/build.sh aarch64-musl or armv7-musl), ARCH the
# package architecture opkg expects on the router (`opkg print-architecture`), for example
# aarch64_cortex-a53 or arm_cortex-a7_neon-vfpv4. The package installs /usr/bin/mmrelay and the
# procd script /etc/init.d/mmrelay; config and state live in /etc/mmrelay (not part of the package, so kept on upgrade and removal).
# The layout is ipkg-build's: a gzipped tar holding debian-binary, control.tar.gz, data.tar.gz.
# With the OpenWrt SDK, cross/openwrt/Makefile builds the same package.
set -euo pipefail
if [ $# -lt 2 ]; then sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2; fi
bin=$1 arch=$2 out=${3:-.}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
[ -f "$bin" ] || { echo "error: no binary at $bin" >&2; exit 1; }
# shellcheck source=scripts/lib.sh
. "$root/scripts/lib.sh"
version=$(crate_version)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$tmp/data/usr/bin" "$tmp/data/etc/init.d" "$tmp/data/etc/mmrelay" "$tmp/control"
install -m 0755 "$bin" "$tmp/data/usr/bin/mmrelay"
install -m 0755 "$here/mmrelay.init" "$tmp/data/etc/init.d/mmrelay"
chmod 0700 "$tmp/data/etc/mmrelay"
size=$(du -sk --apparent-size "$tmp/data" | cut -f1)

cat > "$tmp/control/control" <<TEXT
Package: mmrelay
Version: $version-1
Depends: ca-bundle
License: GPL-3.0-or-later
Section: net
Architecture: $arch
Installed-Size: $((size * 1024))
Description: Relay between a Meshtastic LoRa mesh and Matrix rooms (E2EE included).
 Config and state in /etc/mmrelay; create the config with
 MMRELAY_HOME=/etc/mmrelay mmrelay config generate, then mmrelay auth login.
TEXT
cat > "$tmp/control/postinst" <<'TEXT'
#!/bin/sh
[ -n "$IPKG_INSTROOT" ] && exit 0
/etc/init.d/mmrelay enable
[ -f /etc/mmrelay/config.yaml ] && /etc/init.d/mmrelay restart
exit 0
TEXT
cat > "$tmp/control/prerm" <<'TEXT'
#!/bin/sh
[ -n "$IPKG_INSTROOT" ] && exit 0
/etc/init.d/mmrelay stop
/etc/init.d/mmrelay disable
exit 0
TEXT
chmod 0755 "$tmp/control/postinst" "$tmp/control/prerm"
echo "2.0" > "$tmp/pkg-debian-binary"

tarit() { tar --numeric-owner --owner=0 --group=0 --sort=name -czf "$1" -C "$2" .; }
mkdir -p "$tmp/pkg"
tarit "$tmp/pkg/data.tar.gz" "$tmp/data"
tarit "$tmp/pkg/control.tar.gz" "$tmp/control"
mv "$tmp/pkg-debian-binary" "$tmp/pkg/debian-binary"
mkdir -p "$out"
ipk=$out/mmrelay_${version}-1_${arch}.ipk
tar --numeric-owner --owner=0 --group=0 -czf "$ipk" -C "$tmp/pkg" ./debian-binary ./data.tar.gz ./control.tar.gz
echo "$ipk"
