# shellcheck shell=bash disable=SC2034,SC2154
# The targets cross/build.sh knows and how each is built (sourced by it; needs scripts/lib.sh,
# and $work, $rust_version set by the caller).

known_targets="aarch64, armv7, aarch64-musl, armv7-musl, armv6, x86_64-musl"
zig_pins=("cargo-zigbuild==0.24.1" "ziglang==0.17.1")
# The standard library's source, from Debian's rust-web-src (-Zbuild-std builds it).
std_src=/usr/lib/rustlib/src/rust/library

# target_info NAME: sets triple, route (debian or zig), debarch and gnu (Debian's cross gcc),
# qemu (the runner, as an array; empty on x86_64), cpu_arch (readelf's Tag_CPU_arch, 32-bit ARM)
# machine (what `file` says of the binary) and opt (the release opt-level: "z" for the ARM
# binaries, whose routers and boards count flash in megabytes, but armv7 glibc, which is well
# under 12 MB at "s"; "s", the profile's, for x86_64). Returns 1 with a message for an unknown name.
target_info() {
  debarch='' gnu='' cpu_arch='' opt=s
  case $1 in
    aarch64|aarch64-unknown-linux-gnu)
      triple=aarch64-unknown-linux-gnu route=debian debarch=arm64 gnu=aarch64-linux-gnu opt=z
      qemu=(qemu-aarch64 -cpu cortex-a53 -L /usr/aarch64-linux-gnu) machine="ARM aarch64" ;;
    armv7|armv7-unknown-linux-gnueabihf)
      triple=armv7-unknown-linux-gnueabihf route=debian debarch=armhf gnu=arm-linux-gnueabihf
      qemu=(qemu-arm -cpu cortex-a7 -L /usr/arm-linux-gnueabihf) machine="ARM, EABI5" cpu_arch=v7 ;;
    aarch64-musl|aarch64-unknown-linux-musl)
      triple=aarch64-unknown-linux-musl route=zig opt=z
      qemu=(qemu-aarch64 -cpu cortex-a53) machine="ARM aarch64" ;;
    armv7-musl|armv7-unknown-linux-musleabihf)
      triple=armv7-unknown-linux-musleabihf route=zig opt=z
      qemu=(qemu-arm -cpu cortex-a7) machine="ARM, EABI5" cpu_arch=v7 ;;
    armv6|arm-unknown-linux-musleabihf)
      triple=arm-unknown-linux-musleabihf route=zig opt=z
      qemu=(qemu-arm -cpu arm1176) machine="ARM, EABI5" cpu_arch=v6 ;;
    x86_64-musl|x86_64-unknown-linux-musl)
      triple=x86_64-unknown-linux-musl route=zig qemu=() machine="x86-64" ;;
    *) echo "error: unknown target '$1' (targets: $known_targets, all; see --help)" >&2; return 1 ;;
  esac
  up=${triple^^}; up=${up//-/_}
  low=${triple//-/_}
}

# need_debs WHY PACKAGE...: installs Debian packages, or fails with one line naming them.
need_debs() {
  local why=$1; shift
  if ! ensure_debs "$@" >"$work/apt.log" 2>&1; then
    echo "error: could not install the Debian packages $* ($why); run 'apt-get install $*' as root (apt's output: $work/apt.log)" >&2
    exit 1
  fi
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
  grep -qx "$debarch" <<<"$(dpkg --print-foreign-architectures)" || as_root dpkg --add-architecture "$debarch"
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

# setup_target: installs what $triple needs and exports cargo's settings. Sets build_cmd and
# test_cmd (cargo, or cargo-zigbuild), test_flags (the standard library for tests and dev
# builds), build_std and base_rustflags (kept by size_flags).
setup_target() {
  export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
  [ -d "$std_src" ] || { echo "error: the standard library's source is missing (Debian package rust-web-src); run 'apt-get install rust-web-src'" >&2; exit 1; }
  if [ ${#qemu[@]} -gt 0 ]; then
    local cpus
    cpus=$("${qemu[0]}" -cpu help 2>/dev/null || true)
    grep -qw -- "${qemu[2]}" <<<"$cpus" || {
      echo "error: ${qemu[0]} has no CPU model ${qemu[2]} (Debian package qemu-user); run 'apt-get install qemu-user'" >&2; exit 1; }
    export "CARGO_TARGET_${up}_RUNNER=${qemu[*]}"
  fi
  build_std=("-Zbuild-std=std,panic_abort")
  test_flags=()
  unset RUSTC_BOOTSTRAP
  if [ "$route" = debian ]; then
    need_debs "the C compiler and linker for $triple" "gcc-$gnu" "g++-$gnu" "libc6-dev-$debarch-cross"
    build_cmd=(cargo build) test_cmd=(cargo test)
    export "CARGO_TARGET_${up}_LINKER=$gnu-gcc"
    export "CC_${low}=$gnu-gcc" "CXX_${low}=$gnu-g++" "AR_${low}=$gnu-ar"
    base_rustflags=""
    if prebuilt_std; then
      export "CARGO_TARGET_${up}_RUSTFLAGS=--sysroot $(sysroot)"
    else
      echo "==> no prebuilt standard library for $debarch: building it from rust-web-src"
      export RUSTC_BOOTSTRAP=1
      test_flags=("-Zbuild-std=std,panic_abort,test")
    fi
  else
    local venv=$root/.build/venv-zig
    if ! ensure_venv "$venv" "${zig_pins[@]}" >"$work/pip.log" 2>&1; then
      echo "error: could not install zig for $triple (PyPI ${zig_pins[*]}) into $venv; check that pypi.org is reachable (pip's output: $work/pip.log)" >&2
      exit 1
    fi
    build_cmd=("$venv/bin/cargo-zigbuild" zigbuild) test_cmd=("$venv/bin/cargo-zigbuild" test)
    export PATH="$venv/bin:$PATH"
    export ZIG_GLOBAL_CACHE_DIR=$root/.build/zig-cache/global ZIG_LOCAL_CACHE_DIR=$root/.build/zig-cache/local
    export CARGO_ZIGBUILD_CACHE_DIR=$root/.build/zig-cache/zigbuild
    # The standard library is built from source, and zig supplies musl's crt files, libc and
    # libunwind (rustc's own copies are not there for a std built this way).
    export RUSTC_BOOTSTRAP=1
    test_flags=("-Zbuild-std=std,panic_abort,test")
    base_rustflags="-C link-self-contained=no"
    export "CARGO_TARGET_${up}_RUSTFLAGS=$base_rustflags"
  fi
}

# size_flags: the release builds' settings for size: the target's opt-level (unless
# CARGO_PROFILE_RELEASE_OPT_LEVEL is set; the crypto crates stay at 3), the standard library
# rebuilt with it and without its backtrace printer, no unwind tables (panic=abort never
# unwinds; panics still print their message), Thumb-2 code on armv7, the machine outliner on
# 32-bit ARM, code that is not position-independent in the static ARM binaries, and on the zig
# route the link of cross/zig-link; on every route source paths relative to their crate; then
# $MMRELAY_EXTRA_RUSTFLAGS.
size_flags() {
  export RUSTC_BOOTSTRAP=1
  export "CARGO_PROFILE_RELEASE_OPT_LEVEL=${user_opt:-$opt}"

  local rf="$base_rustflags -C force-unwind-tables=no"
  # Panic messages name files as tokio-1.54.1/src/..., library/core/src/... and src/...,
  # not by the builder's paths: 0.6-0.8 % smaller, and no home directory in the binary. The
  # crates are fetched first so that their folder is there to name on a fresh machine.
  cargo fetch --locked --quiet
  local d
  for d in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/; do
    if [ -d "$d" ]; then rf="$rf --remap-path-prefix=${d%/}="; fi
  done
  rf="$rf --remap-path-prefix=$std_src=library --remap-path-prefix=$root/="
  [ "$cpu_arch" = v7 ] && rf="$rf -C target-feature=+thumb-mode"
  # 32-bit ARM: LLVM's machine outliner, which replaces repeated instruction sequences with
  # calls to one copy (on aarch64 it already runs on code built at "z"): 10 % smaller.
  [ -n "$cpu_arch" ] && rf="$rf -C llvm-args=-enable-machine-outliner=always"
  # The static ARM binaries are plain executables, not position-independent ones (Rust makes
  # static-pie only for x86_64): their code may address data directly, without the sums with
  # the program counter that PIC needs (ARMv6 2.5 % smaller). The loader sees no difference.
  local cflags="-fno-asynchronous-unwind-tables -fno-unwind-tables"
  case $triple in
    x86_64-*) ;;
    *musl*) rf="$rf -C relocation-model=static" cflags="$cflags -fno-pic" ;;
  esac
  if [ "$route" = zig ]; then
    # The functions a relay runs laid out together (cross/zig-link).
    # Legacy symbol names, as the x86_64 build's, so that the order list's names match.
    rf="$rf -Zunstable-options -Csymbol-mangling-version=legacy -C linker=$root/cross/zig-link"
    export MMRELAY_TARGET_UP=$up
  fi
  # The builder's own flags last, e.g. the terser diagnostics of docs/building.md.
  [ -z "${MMRELAY_EXTRA_RUSTFLAGS:-}" ] || rf="$rf $MMRELAY_EXTRA_RUSTFLAGS"
  export "CARGO_TARGET_${up}_RUSTFLAGS=${rf# }"
  export "CFLAGS_${low}=$cflags"
}

# check_binary FILE: fails unless FILE is for $triple: the machine, static linking for musl,
# and on 32-bit ARM the CPU architecture (so that no build falls back to another one).
check_binary() {
  local f=$1 desc tag
  desc=$(file -b "$f")
  case $desc in *"$machine"*) ;; *) echo "error: $f is not a $triple binary: $desc" >&2; exit 1 ;; esac
  case $triple in *musl*)
    case $desc in *"statically linked"*|*"static-pie linked"*) ;;
      *) echo "error: $f is not statically linked: $desc" >&2; exit 1 ;; esac ;;
  esac
  if [ -n "$cpu_arch" ]; then
    tag=$(readelf -A "$f" | sed -n 's/^ *Tag_CPU_arch: //p')
    [ "$tag" = "$cpu_arch" ] || { echo "error: $f is built for ARM $tag, not $cpu_arch" >&2; exit 1; }
  fi
  echo "==> $f: $desc${cpu_arch:+, Tag_CPU_arch: $cpu_arch}"
}
