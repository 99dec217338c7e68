#!/usr/bin/env bash
# Builds mmrelay for every gateway without Docker and tests the binaries under qemu-user.
#
#   cross/build.sh [--test] [--release] [--profile NAME] TARGET...
#
# TARGET is a target triple or its short name:
#   aarch64       aarch64-unknown-linux-gnu        Pi 3/4/5 with a 64-bit OS (glibc 2.34+)
#   armv7         armv7-unknown-linux-gnueabihf    Pi 2/3/4/5 with a 32-bit OS (glibc 2.34+)
#   aarch64-musl  aarch64-unknown-linux-musl       OpenWrt on 64-bit ARM; any arm64 Linux
#   armv7-musl    armv7-unknown-linux-musleabihf   OpenWrt on 32-bit ARMv7 (Cortex-A7/A9/A15)
#   armv6         arm-unknown-linux-musleabihf     Pi Zero, Zero W, Pi 1; every 32-bit Pi
#   x86_64-musl   x86_64-unknown-linux-musl        the amd64 container image; any x86_64 Linux
#   all           every target above
#
#   --test      build and run the host-independent tests (codec, framing, relay rules, store,
#               golden frames, properties, the link against the simulator over TCP) under qemu.
#               The pty tests are left out: qemu-user does not emulate the termios2 ioctls
#               (TCGETS2/TCSETS2) the serial library sets the baud rate with.
#   --release   build the binaries with the release profile (or --profile NAME, e.g. cross-ci),
#               check their architecture, run them under qemu (--version, config generate and
#               check, a radio handshake with the simulator built for the same target) and
#               print their sizes. Release builds rebuild the standard library for size;
#               the ARM binaries but armv7 glibc are built at opt-level "z" (smaller, for
#               13-20 % more CPU per message; CARGO_PROFILE_RELEASE_OPT_LEVEL=s overrides it).
#               MMRELAY_EXTRA_RUSTFLAGS is added to the release builds' compiler flags.
#
# Two routes, both from Debian's and PyPI's packages, installed idempotently (docs/building.md):
# the glibc targets link with Debian's cross gcc against Debian's prebuilt standard library for
# the architecture; the musl targets and ARMv6 use zig (PyPI cargo-zigbuild with ziglang, pinned)
# as C compiler and linker, with the standard library built from Debian's rust-web-src. Both use
# Debian's rustc-web as the compiler. qemu models the oldest CPU each binary is for: ARM1176
# (Pi Zero) for ARMv6, Cortex-A7 for armv7, Cortex-A53 for aarch64. Artifacts go to
# target/cross/<triple>/; the host build stays warm. With Docker, `cross` works too (Cross.toml).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/lib.sh
. cross/targets.sh

test=0
release=0
profile=release
names=()
while [ $# -gt 0 ]; do
  case $1 in
    --test) test=1 ;;
    --release) release=1 ;;
    --profile) [ $# -ge 2 ] || { echo "error: --profile needs a name (release, cross-ci, dev)" >&2; exit 2; }
      release=1; profile=$2; shift ;;
    -h|--help) sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    all) names+=(aarch64 armv7 aarch64-musl armv7-musl armv6 x86_64-musl) ;;
    -*) echo "error: unknown option '$1' (see --help)" >&2; exit 2 ;;
    *) target_info "$1" || exit 2; names+=("$1") ;;
  esac
  shift
done
if [ ${#names[@]} -eq 0 ]; then
  echo "error: name at least one target: $known_targets, or all (see --help)" >&2; exit 2
fi
if [ $test = 0 ] && [ $release = 0 ]; then release=1; fi

work=$root/.build/cross
user_opt=${CARGO_PROFILE_RELEASE_OPT_LEVEL:-}
mkdir -p "$work"
export CARGO_TARGET_DIR=$root/target/cross

need_debs "the compiler, std source, qemu and C tools" rustc-web rust-web-src qemu-user gcc g++ libc6-dev python3 file binutils
ensure_cargo
# The dependencies need Rust 1.89 (ruma); bookworm's own rustc-web is older, bookworm-security's
# is new enough: upgrade an old one in place.
min_rust=1.89
rust_version=$(dpkg-query -W -f='${Version}' rustc-web)
if dpkg --compare-versions "$rust_version" lt "$min_rust"; then
  echo "==> rustc-web $rust_version is older than $min_rust: upgrading it"
  { as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rustc-web rust-web-src; } >"$work/apt.log" 2>&1 || true
  rust_version=$(dpkg-query -W -f='${Version}' rustc-web)
  if dpkg --compare-versions "$rust_version" lt "$min_rust"; then
    echo "error: Debian's rustc-web is $rust_version, the build needs $min_rust or newer (bookworm-security has it); add bookworm-security to apt's sources and run 'apt-get install rustc-web rust-web-src'" >&2
    exit 1
  fi
fi

sim=
stop_sim() { if [ -n "$sim" ]; then kill "$sim" 2>/dev/null || true; wait "$sim" 2>/dev/null || true; sim=; fi; }
trap stop_sim EXIT

# smoke DIR: runs the binaries in DIR under qemu: --version, config generate and check, and a
# radio handshake between `mmrelay radio info` and the simulator, both built for the target.
smoke() {
  local dir=$1 home port ok=0
  home=$(mktemp -d)
  "${qemu[@]}" "$dir/mmrelay" --version
  "${qemu[@]}" "$dir/mmrelay" --home "$home" config generate >/dev/null
  # The sample names no Matrix login, so `config check` must fail, naming what is missing.
  if "${qemu[@]}" "$dir/mmrelay" --home "$home" config check >"$home/check.txt" 2>&1; then
    echo "error: config check accepted a config without Matrix credentials" >&2; exit 1
  fi
  grep -q "credentials" "$home/check.txt" || { cat "$home/check.txt" >&2; exit 1; }
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "${qemu[@]}" "$dir/mmrelay-sim" --tcp "127.0.0.1:$port" --me '!0a0b0c0d:Qemu Node:QEMU' </dev/null >"$home/sim.log" 2>&1 &
  sim=$!
  for _ in $(seq 50); do
    if "${qemu[@]}" "$dir/mmrelay" radio info --timeout 20 --tcp "127.0.0.1:$port" >"$home/info.txt" 2>&1; then ok=1; break; fi
    sleep 0.2
  done
  stop_sim
  if [ $ok = 0 ] || ! grep -q "Qemu Node" "$home/info.txt"; then
    echo "error: radio info under qemu failed:" >&2; cat "$home/info.txt" "$home/sim.log" >&2; exit 1
  fi
  rm -rf "$home"
}

for name in "${names[@]}"; do
  target_info "$name"
  setup_target
  echo "==> $triple ($route route) with $(/usr/bin/rustc --version)"
  if [ $test = 1 ]; then
    start=$(date +%s)
    "${test_cmd[@]}" --locked "${test_flags[@]}" --target "$triple" \
      --lib --test golden --test prop --test link_tcp
    echo "==> $triple: tests passed under ${qemu[*]} in $(( $(date +%s) - start )) s"
  fi
  if [ $release = 1 ]; then
    start=$(date +%s)
    flags=("${test_flags[@]}")
    if [ "$profile" != dev ]; then
      size_flags
      flags=("${build_std[@]}" "-Zbuild-std-features=optimize_for_size")
    fi
    "${build_cmd[@]}" --locked "${flags[@]}" --target "$triple" --profile "$profile" --bins
    dir=$CARGO_TARGET_DIR/$triple/$profile
    [ "$profile" = dev ] && dir=$CARGO_TARGET_DIR/$triple/debug
    echo "==> $triple: $profile build${CARGO_PROFILE_RELEASE_OPT_LEVEL:+ (opt-level $CARGO_PROFILE_RELEASE_OPT_LEVEL)} took $(( $(date +%s) - start )) s"
    check_binary "$dir/mmrelay"
    if [ "$route" = zig ] && [ "$profile" != dev ]; then
      # shellcheck disable=SC2012
      order=$(ls -t "$dir"/deps/mmrelay-*.order 2>/dev/null | head -n 1)
      [ -n "$order" ] || { echo "error: $dir/mmrelay was not linked by cross/zig-link" >&2; exit 1; }
      echo "==> link order: $(wc -l <"$order") functions laid out first (cross/zig-link)"
    fi
    smoke "$dir"
    printf '==> %s %s: mmrelay %s bytes, mmrelay-sim %s bytes\n' "$triple" "$profile" \
      "$(stat -c %s "$dir/mmrelay")" "$(stat -c %s "$dir/mmrelay-sim")"
  fi
done
