#!/usr/bin/env bash
# Makes mmrelay's packages from the binaries cross/build.sh built, and checks each one.
#
#   cross/package.sh [--profile NAME] PACKAGE...
#
# PACKAGE is one of (the binary it takes in brackets; build it first with cross/build.sh):
#   deb-arm64   Debian / Pi OS 64-bit package            [aarch64]
#   deb-armhf   Debian / Pi OS 32-bit, every Pi          [armv6: ARMv6, starts on a Pi Zero too]
#   ipk         OpenWrt packages for 64-bit and 32-bit ARM routers  [aarch64-musl, armv7-musl]
#   oci         container image for amd64, arm64, arm/v7 and arm/v6
#               [x86_64-musl, aarch64-musl, armv7-musl, armv6]
#   oci-amd64   the container image for amd64 only      [x86_64-musl]
#   all         every package above
#
# --profile takes the binaries of that profile (release by default; dev for quick checks).
# Packages go to target/cross/packages/. Each is checked: its files, modes and metadata, and
# the binary taken from the package itself run under qemu on the CPU it is for (--version,
# config generate and check); the amd64 image's entrypoint runs as a container would run it
# (cross/oci/run.py: its user, environment and a mounted /data folder; needs root).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/lib.sh

profile=release
wanted=()
while [ $# -gt 0 ]; do
  case $1 in
    --profile) [ $# -ge 2 ] || { echo "error: --profile needs a name" >&2; exit 2; }; profile=$2; shift ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    all) wanted+=(deb-arm64 deb-armhf ipk oci) ;;
    deb-arm64|deb-armhf|ipk|oci|oci-amd64) wanted+=("$1") ;;
    *) echo "error: unknown package '$1' (deb-arm64, deb-armhf, ipk, oci, oci-amd64, all; see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ ${#wanted[@]} -gt 0 ] || { echo "error: name a package: deb-arm64, deb-armhf, ipk, oci, oci-amd64 or all (see --help)" >&2; exit 2; }
dir_profile=$profile
[ "$profile" = dev ] && dir_profile=debug
out=$root/target/cross/packages
mkdir -p "$out"
ensure_debs dpkg binutils file qemu-user python3 ca-certificates util-linux skopeo

# bin SHORT TRIPLE: the built binary for TRIPLE, or one line saying how to build it.
bin() {
  local f=$root/target/cross/$2/$dir_profile/mmrelay
  [ -f "$f" ] || { echo "error: no $2 binary at $f; build it with: cross/build.sh --profile $profile $1" >&2; exit 1; }
  echo "$f"
}

# try_binary FILE QEMU...: runs a packaged binary on its CPU model: --version, config generate
# and check (which must fail for want of Matrix credentials, naming them).
try_binary() {
  local f=$1 home; shift
  home=$(mktemp -d)
  grep -q '^mmrelay ' <<<"$("$@" "$f" --version)" || { echo "error: $f --version under $* failed" >&2; exit 1; }
  "$@" "$f" --home "$home" config generate >/dev/null
  if "$@" "$f" --home "$home" config check >"$home/out" 2>&1 || ! grep -q credentials "$home/out"; then
    echo "error: config check of $f under $* did not report the missing credentials:" >&2; cat "$home/out" >&2; exit 1
  fi
  rm -rf "$home"
}

# check_deb DEB ARCH QEMU...: the control fields, the files, and the binary run from the package.
check_deb() {
  local deb=$1 arch=$2 x; shift 2
  x=$(mktemp -d)
  dpkg-deb --field "$deb" Package Architecture Depends | tee "$x/control"
  grep -qx "Architecture: $arch" "$x/control" || { echo "error: $deb is not for $arch" >&2; exit 1; }
  dpkg-deb --contents "$deb" > "$x/list"
  for f in ./usr/bin/mmrelay ./usr/lib/systemd/system/mmrelay.service ./usr/lib/systemd/user/mmrelay.service \
           ./usr/share/doc/mmrelay/config.yaml.sample ./usr/share/doc/mmrelay/copyright; do
    grep -q " $f\$" "$x/list" || { echo "error: $deb lacks $f" >&2; exit 1; }
  done
  grep -q '^-rwxr-xr-x root/root .* ./usr/bin/mmrelay$' "$x/list" || { echo "error: $deb: /usr/bin/mmrelay is not root's 0755" >&2; exit 1; }
  grep -qx './postinst' <<<"$(dpkg-deb --ctrl-tarfile "$deb" | tar -t)" || { echo "error: $deb has no postinst" >&2; exit 1; }
  dpkg-deb -x "$deb" "$x/root"
  try_binary "$x/root/usr/bin/mmrelay" "$@"
  rm -rf "$x"
  echo "==> $deb: checked"
}

# check_ipk IPK ARCH QEMU...: the control file, the files, a static binary run from the package.
check_ipk() {
  local ipk=$1 arch=$2 x; shift 2
  x=$(mktemp -d)
  tar -xzf "$ipk" -C "$x"
  tar -xzOf "$x/control.tar.gz" ./control > "$x/control"
  grep -qx "Architecture: $arch" "$x/control" || { echo "error: $ipk is not for $arch" >&2; exit 1; }
  mkdir "$x/root" && tar -xzf "$x/data.tar.gz" -C "$x/root"
  [ -x "$x/root/etc/init.d/mmrelay" ] || { echo "error: $ipk has no /etc/init.d/mmrelay" >&2; exit 1; }
  grep -Eq 'static(ally|-pie) linked' <<<"$(file -b "$x/root/usr/bin/mmrelay")" || { echo "error: $ipk: the binary is not static" >&2; exit 1; }
  try_binary "$x/root/usr/bin/mmrelay" "$@"
  rm -rf "$x"
  echo "==> $ipk: checked"
}

# check_oci LAYOUT: the index's platforms; the amd64 image run as a container: --version, config
# generate into the mounted folder (owned by the image's user), check, MMRELAY_* honoured.
check_oci() {
  local layout=$1 data
  python3 - "$layout" <<'PY'
import json, sys
top = json.load(open(sys.argv[1] + "/index.json"))["manifests"]
assert len(top) == 1 and top[0]["annotations"]["org.opencontainers.image.ref.name"], top
idx = json.load(open(sys.argv[1] + "/blobs/sha256/" + top[0]["digest"].split(":")[1]))
for m in idx["manifests"]:
    p = m["platform"]
    print("==> image for", "/".join(x for x in (p["os"], p["architecture"], p.get("variant")) if x))
PY
  data=$(mktemp -d)
  chown 1000:1000 "$data"; chmod 0700 "$data"
  grep -q '^mmrelay ' <<<"$(python3 cross/oci/run.py "$layout" linux/amd64 "$data" --version)" \
    || { echo "error: the image's entrypoint did not print its version" >&2; exit 1; }
  python3 cross/oci/run.py "$layout" linux/amd64 "$data" config generate >/dev/null
  [ "$(stat -c %u "$data/config.yaml")" = 1000 ] || { echo "error: config.yaml in /data is not the image user's" >&2; exit 1; }
  if python3 cross/oci/run.py "$layout" linux/amd64 "$data" config check >"$data/out" 2>&1 || ! grep -q credentials "$data/out"; then
    echo "error: config check in the container did not report the missing credentials:" >&2; cat "$data/out" >&2; exit 1
  fi
  MMRELAY_MESHTASTIC_SERIAL_PORT=/dev/ttyMESH python3 cross/oci/run.py "$layout" linux/amd64 "$data" config check >"$data/out" 2>&1 || true
  grep -q 'radio serial port /dev/ttyMESH' "$data/out" || {
    echo "error: the container did not honour MMRELAY_MESHTASTIC_SERIAL_PORT:" >&2; cat "$data/out" >&2; exit 1; }
  python3 cross/oci/run.py "$layout" linux/amd64 "$data" health >/dev/null 2>&1 \
    && { echo "error: the health check passed with no relay running" >&2; exit 1; }
  rm -rf "$data"
  echo "==> $layout: checked (entrypoint, /data, MMRELAY_*, health check)"
}

for p in "${wanted[@]}"; do
  case $p in
    deb-arm64)
      deb=$(cross/debian/mkdeb.sh "$(bin aarch64 aarch64-unknown-linux-gnu)" arm64 "$out")
      check_deb "$deb" arm64 qemu-aarch64 -cpu cortex-a53 -L /usr/aarch64-linux-gnu ;;
    deb-armhf)
      deb=$(cross/debian/mkdeb.sh "$(bin armv6 arm-unknown-linux-musleabihf)" armhf "$out")
      check_deb "$deb" armhf qemu-arm -cpu arm1176 ;;
    ipk)
      for a in aarch64_cortex-a53 aarch64_cortex-a72 aarch64_generic; do
        ipk=$(cross/openwrt/mkipk.sh "$(bin aarch64-musl aarch64-unknown-linux-musl)" "$a" "$out")
        check_ipk "$ipk" "$a" qemu-aarch64 -cpu cortex-a53
      done
      for a in arm_cortex-a7_neon-vfpv4 arm_cortex-a9_vfpv3-d16 arm_cortex-a15_neon-vfpv4; do
        ipk=$(cross/openwrt/mkipk.sh "$(bin armv7-musl armv7-unknown-linux-musleabihf)" "$a" "$out")
        check_ipk "$ipk" "$a" qemu-arm -cpu cortex-a7
      done ;;
    oci|oci-amd64)
      args=("linux/amd64=$(bin x86_64-musl x86_64-unknown-linux-musl)") archs=(amd64)
      if [ "$p" = oci ]; then
        archs+=(arm64 arm)
        args+=("linux/arm64=$(bin aarch64-musl aarch64-unknown-linux-musl)"
               "linux/arm/v7=$(bin armv7-musl armv7-unknown-linux-musleabihf)"
               "linux/arm/v6=$(bin armv6 arm-unknown-linux-musleabihf)")
      fi
      version=$(crate_version)
      layout=$out/mmrelay-oci-$version
      rm -rf "$layout" "$layout.tar"
      level=9; [ "$profile" = dev ] && level=1
      python3 cross/oci/mkimage.py "$layout" "${args[@]}" --gzip-level "$level" >/dev/null
      check_oci "$layout"
      # skopeo, as a user imports the archive, must find each platform's image in it.
      for arch in "${archs[@]}"; do
        got=$(skopeo inspect --override-arch "$arch" "oci-archive:$layout.tar" | sed -n 's/^ *"Architecture": "\(.*\)",/\1/p')
        [ "$got" = "$arch" ] || { echo "error: skopeo finds no $arch image in $layout.tar (got '$got')" >&2; exit 1; }
      done
      echo "==> $layout.tar: skopeo finds the ${archs[*]} images"
      echo "==> $layout.tar: import with 'skopeo copy oci-archive:$layout.tar docker-daemon:mmrelay:$version'" ;;
  esac
done
