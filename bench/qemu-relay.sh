#!/bin/sh
# Runs an ARM build of mmrelay under qemu-user in the benchmark's place, on the oldest CPU it
# is for, so that its resident code can be read from the emulator's smaps (qemu-user maps the
# guest binary from its file; docs/performance.md):
#
#   MMRELAY_BENCH_IMAGE=target/cross/arm-unknown-linux-musleabihf/release/mmrelay \
#     bench/run.sh --ours --binary bench/qemu-relay.sh
#
# Only memory figures mean anything under emulation; CPU and latency do not.
set -eu
bin=${MMRELAY_BENCH_IMAGE:?name the ARM mmrelay binary in MMRELAY_BENCH_IMAGE}
case $(file -b "$bin") in
  *aarch64*) exec qemu-aarch64 -cpu cortex-a53 "$bin" "$@" ;;
  *"ARM, EABI5"*)
    if readelf -A "$bin" | grep -q 'Tag_CPU_arch: v6'; then cpu=arm1176; else cpu=cortex-a7; fi
    exec qemu-arm -cpu "$cpu" "$bin" "$@" ;;
  *) echo "error: $bin is not an ARM binary" >&2; exit 2 ;;
esac
