#!/usr/bin/env bash
# mmrelay's benchmark, side by side with the Python MMRelay (PyPI mmrelay 1.4.1).
#
#   bench/run.sh            both relays, the full workload (about 10 minutes)
#   bench/run.sh --ours     mmrelay only
#   bench/run.sh --quick    a shorter workload (5 + 5 texts, burst of 30, 10 s idle)
#   bench/run.sh --plugins  with every bot command active (the config's plugins: section)
#   bench/run.sh --without-recovery   mmrelay logged in without a recovery key (no key backup)
#   bench/run.sh --binary PATH   measure that mmrelay build instead of the host release build
#                           (for example target/cross/x86_64-unknown-linux-musl/release/mmrelay)
#
# It installs what it needs (Synapse and MMRelay in venvs under .build/, idempotently), builds
# the release binary, then runs bench/driver.rs: a Synapse of its own on 127.0.0.1, the
# simulated radio on TCP, a second Matrix client in an encrypted room, and for each relay the
# workload launch → relaying both ways; 20 mesh texts; 20 Matrix texts; a burst of 200 mesh
# texts; 60 s idle. It prints one table (figures from /proc/PID of each relay), then the
# decoder's throughput and the binary sizes per target. Not part of the test suite.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/lib.sh

python=1
driver_args=()
binary=
while [ $# -gt 0 ]; do
  a=$1; shift
  case $a in
    --ours) python=0 ;;
    --binary) [ $# -ge 1 ] || { echo "error: --binary needs a path" >&2; exit 2; }
      binary=$(realpath "$1"); shift
      [ -x "$binary" ] || { echo "error: no mmrelay binary at $binary" >&2; exit 2; } ;;
    --quick) driver_args+=(--quick) ;;
    --plugins) driver_args+=(--plugins) ;;
    --without-recovery) driver_args+=(--without-recovery) ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown argument '$a' (see --help)" >&2; exit 2 ;;
  esac
done

ensure_debs gcc libc6-dev python3 ca-certificates
ensure_cargo
bash scripts/synapse.sh install
if [ $python = 1 ]; then
  ensure_venv .build/venv-mmrelay "mmrelay[e2e]==1.4.1"
  driver_args+=(--python-mmrelay "$root/.build/venv-mmrelay")
fi

echo "==> building the release binary and the benchmark driver"
if [ -z "$binary" ]; then
  cargo build --locked --release --bin mmrelay
  binary=$root/target/release/mmrelay
fi
cargo build --locked --example relay_bench
cargo build --locked --release --example decoder

echo "==> machine: $(nproc) cores, $(uname -m), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
echo "==> measuring $binary"
target/debug/examples/relay_bench --mmrelay "$binary" "${driver_args[@]}"

echo
target/release/examples/decoder 3

echo
echo "| binary | bytes |"
echo "|---|---:|"
for f in target/release/mmrelay target/cross/*/release/mmrelay; do
  if [ -f "$f" ]; then printf '| %s | %s |\n' "$f" "$(stat -c %s "$f")"; fi
done
