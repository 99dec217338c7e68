#!/usr/bin/env bash
# Builds mmrelay for ARM (glibc) without Docker and tests it under qemu-user.
#
#   cross/build.sh [--test] [--release] [--profile NAME] TARGET...
#
# TARGET is aarch64 (aarch64-unknown-linux-gnu) or armv7 (armv7-unknown-linux-gnueabihf).
#   --test      build and run the host-independent tests (codec, framing, relay rules, store,
#               golden frames, properties, the link against the simulator over TCP) under qemu.
#               The pty tests are left out: qemu-user does not emulate the termios2 ioctls
#               (TCGETS2/TCSETS2) the serial library sets the baud rate with.
#   --release   build the binaries with the release profile (or --profile NAME, e.g. cross-ci),
#               run them under qemu (--version, config generate/check, a radio handshake with
#               the ARM simulator) and print their sizes. Release builds also rebuild the
#               standard library for size (needs rust-web-src; see the comment below).
#
# The pieces (Debian packages; see README "Building for ARM"): rustc-web (a second rustc,
# /usr/bin/rustc, driven by rustup's cargo), the target's standard library (Debian's prebuilt
# libstd-rust-web-dev for arm64/armhf, or built from rust-web-src when that cannot be had), the
# Debian cross gcc for the C parts (bundled SQLite, aws-lc) and the link, qemu-user as runner.
# Everything is installed idempotently; artifacts go to target/cross so the host build stays warm.
# Users with Docker can use `cross build --release --target ...` instead (Cross.toml).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/lib.sh

test=0
release=0
profile=release
targets=()
while [ $# -gt 0 ]; do
  case $1 in
    --test) test=1 ;;
    --release) release=1 ;;
    --profile) release=1; profile=$2; shift ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    aarch64|armv7) targets+=("$1") ;;
    *) echo "error: unknown argument '$1' (targets: aarch64, armv7; see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ ${#targets[@]} -eq 0 ]; then
  echo "error: name at least one target: aarch64, armv7 (see --help)" >&2; exit 2
fi
if [ $test = 0 ] && [ $release = 0 ]; then release=1; fi

work=$root/.build/cross
mkdir -p "$work"
export CARGO_TARGET_DIR=$root/target/cross

ensure_debs rustc-web rust-web-src qemu-user gcc g++ libc6-dev python3
ensure_cargo
rust_version=$(dpkg-query -W -f='${Version}' rustc-web)

# target_info NAME: sets triple, debarch, gnu (the GNU triple of the cross gcc), qemu.
target_info() {
  case $1 in
    aarch64) triple=aarch64-unknown-linux-gnu; debarch=arm64; gnu=aarch64-linux-gnu; qemu="qemu-aarch64" ;;
    armv7) triple=armv7-unknown-linux-gnueabihf; debarch=armhf; gnu=arm-linux-gnueabihf; qemu="qemu-arm" ;;
  esac
}

# prebuilt_std: extracts Debian's libstd-rust-web-dev for $debarch into $work/std-$debarch.
# Uses an apt lists folder of its own holding only amd64 and $debarch, so a broken index of
# another architecture cannot get in the way. Returns 1 when the package cannot be had.
prebuilt_std() {
  local dir=$work/std-$debarch
  [ -d "$dir/usr/lib/rustlib/$triple/lib" ] && [ "$(cat "$dir/.version" 2>/dev/null)" = "$rust_version" ] && return 0
  local lists=$work/apt-lists-$debarch
  local opts=(-o "APT::Architectures::=amd64" -o "APT::Architectures::=$debarch" -o "Dir::State::Lists=$lists")
  mkdir -p "$lists/partial"
  dpkg --print-foreign-architectures | grep -qx "$debarch" || as_root dpkg --add-architecture "$debarch"
  echo "==> fetching Debian's Rust standard library for $debarch ($rust_version)"
  as_root apt-get "${opts[@]}" update -qq || return 1
  rm -rf "$dir" "$work/deb-$debarch"
  mkdir -p "$work/deb-$debarch"
  (cd "$work/deb-$debarch" && as_root apt-get "${opts[@]}" download "libstd-rust-web-dev:$debarch=$rust_version") || return 1
  dpkg -x "$work"/deb-"$debarch"/libstd-rust-web-dev_*.deb "$dir"
  echo "$rust_version" > "$dir/.version"
}

# sysroot: a sysroot for $triple that pairs rustc-web's host library with the target's.
sysroot() {
  local sr=$work/sysroot-$triple
  rm -rf "$sr"
  mkdir -p "$sr/lib/rustlib"
  ln -s /usr/lib/rustlib/x86_64-unknown-linux-gnu "$sr/lib/rustlib/x86_64-unknown-linux-gnu"
  [ -d /usr/lib/rustlib/etc ] && ln -s /usr/lib/rustlib/etc "$sr/lib/rustlib/etc"
  ln -s "$work/std-$debarch/usr/lib/rustlib/$triple" "$sr/lib/rustlib/$triple"
  echo "$sr"
}

# setup NAME: installs the cross gcc and the standard library, exports cargo's settings.
setup() {
  target_info "$1"
  ensure_debs "gcc-$gnu" "g++-$gnu" "libc6-dev-$debarch-cross"
  local up=${triple^^}; up=${up//-/_}
  local low=${triple//-/_}
  export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
  export "CARGO_TARGET_${up}_LINKER=$gnu-gcc"
  export "CARGO_TARGET_${up}_RUNNER=$qemu -L /usr/$gnu"
  export "CC_${low}=$gnu-gcc" "CXX_${low}=$gnu-g++" "AR_${low}=$gnu-ar"
  build_std=()
  unset RUSTC_BOOTSTRAP
  if prebuilt_std; then
    local sr
    sr=$(sysroot)
    export "CARGO_TARGET_${up}_RUSTFLAGS=--sysroot $sr"
  else
    echo "==> no prebuilt standard library for $debarch: building it from rust-web-src"
    # cargo finds the source through rustc-web's sysroot: /usr/lib/rustlib/src/rust.
    [ -d /usr/lib/rustlib/src/rust/library ] || { echo "error: rust-web-src is not installed" >&2; exit 1; }
    export RUSTC_BOOTSTRAP=1
    build_std=("-Zbuild-std=std,panic_abort,test")
  fi
}

run_qemu() { $qemu -L "/usr/$gnu" "$@"; }

for t in "${targets[@]}"; do
  setup "$t"
  echo "==> $triple with $(/usr/bin/rustc --version)"
  if [ $test = 1 ]; then
    start=$(date +%s)
    cargo test --locked "${build_std[@]}" --target "$triple" \
      --lib --test golden --test prop --test link_tcp
    echo "==> $triple: tests passed under qemu in $(( $(date +%s) - start )) s"
  fi
  if [ $release = 1 ]; then
    start=$(date +%s)
    flags=("${build_std[@]}")
    if [ "$profile" != dev ]; then
      # For size: the standard library rebuilt with the profile's opt-level and without its
      # backtrace printer, no unwind tables (panic=abort never unwinds; panics still print
      # their message), Thumb-2 code on armv7 (Debian's armhf gcc makes Thumb-2 already).
      up=${triple^^}; up=${up//-/_}
      low=${triple//-/_}
      export RUSTC_BOOTSTRAP=1
      flags=("-Zbuild-std=std,panic_abort" "-Zbuild-std-features=optimize_for_size")
      rf="-C force-unwind-tables=no"
      [ "$t" = armv7 ] && rf="$rf -C target-feature=+thumb-mode"
      export "CARGO_TARGET_${up}_RUSTFLAGS=$rf"
      export "CFLAGS_${low}=-fno-asynchronous-unwind-tables -fno-unwind-tables"
    fi
    cargo build --locked "${flags[@]}" --target "$triple" --profile "$profile" --bins
    dir=$CARGO_TARGET_DIR/$triple/$profile
    [ "$profile" = dev ] && dir=$CARGO_TARGET_DIR/$triple/debug
    echo "==> $triple: $profile build took $(( $(date +%s) - start )) s"
    run_qemu "$dir/mmrelay" --version
    home=$(mktemp -d)
    run_qemu "$dir/mmrelay" --home "$home" config generate >/dev/null
    # The sample names no Matrix login, so `config check` must fail, naming what is missing.
    if run_qemu "$dir/mmrelay" --home "$home" config check >"$home/check.txt" 2>&1; then
      echo "error: config check accepted a config without Matrix credentials" >&2; exit 1
    fi
    grep -q "credentials" "$home/check.txt" || { cat "$home/check.txt" >&2; exit 1; }
    # A radio handshake between two ARM binaries: the simulator and `mmrelay radio info`.
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    run_qemu "$dir/mmrelay-sim" --tcp "127.0.0.1:$port" --me '!0a0b0c0d:Qemu Node:QEMU' </dev/null >"$home/sim.log" 2>&1 &
    sim=$!
    ok=0
    for _ in $(seq 50); do
      if run_qemu "$dir/mmrelay" radio info --timeout 20 --tcp "127.0.0.1:$port" >"$home/info.txt" 2>&1; then ok=1; break; fi
      sleep 0.2
    done
    kill "$sim" 2>/dev/null || true
    if [ $ok = 0 ] || ! grep -q "Qemu Node" "$home/info.txt"; then
      echo "error: radio info under qemu failed:" >&2; cat "$home/info.txt" "$home/sim.log" >&2; exit 1
    fi
    rm -rf "$home"
    printf '==> %s %s: mmrelay %s bytes, mmrelay-sim %s bytes\n' "$triple" "$profile" \
      "$(stat -c %s "$dir/mmrelay")" "$(stat -c %s "$dir/mmrelay-sim")"
  fi
done
