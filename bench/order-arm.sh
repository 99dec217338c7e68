#!/usr/bin/env bash
# Regenerates cross/order-arm.txt, the second list cross/zig-link lays out first: every
# function the ARMv6 relay runs in the benchmark's short workload, in the order it first ran.
# The x86_64 list (bench/order.sh) misses what only ARM runs (software AES, 32-bit field
# arithmetic, musl) and what another mangling of the standard library hides.
#
#   bench/order-arm.sh     (about 40 minutes; then commit cross/order-arm.txt)
#
# It builds the ARMv6 release binary with its symbols (MMRELAY_KEEP_SYMBOLS=1: the same code
# and layout), runs the workload (bench/driver.rs --quick: a first start, both directions, a
# burst, a restart) with that binary under qemu-arm -cpu arm1176 -d in_asm, and maps every
# translated block to its function (bench/order_arm.py).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/lib.sh

ensure_debs gcc libc6-dev python3 qemu-user binutils
ensure_cargo
bash scripts/synapse.sh install

echo "==> the ARMv6 release binary with its symbols"
touch src/main.rs # relink
MMRELAY_KEEP_SYMBOLS=1 bash cross/build.sh --release armv6
bin=$root/target/cross/arm-unknown-linux-musleabihf/release/mmrelay
cargo build --locked --example relay_bench

work=$root/target/order-arm
rm -rf "$work"
mkdir -p "$work/logs"
cat >"$work/qemu.sh" <<SH
#!/bin/sh
exec qemu-arm -cpu arm1176 -d in_asm -D $work/logs/\$\$.log $bin "\$@"
SH
chmod +x "$work/qemu.sh"
echo "==> the short workload under qemu (its translation log is a few hundred MB)"
target/debug/examples/relay_bench --mmrelay "$work/qemu.sh" --quick --out "$work/run" >"$work/bench.txt"
# shellcheck disable=SC2012,SC2046
python3 bench/order_arm.py "$bin" $(ls -tr "$work"/logs/*.log) >"$work/order.txt"
mv "$work/order.txt" cross/order-arm.txt
rm -rf "$work/logs"
echo "==> cross/order-arm.txt: $(wc -l <cross/order-arm.txt) functions; relinking"
touch src/main.rs
bash cross/build.sh --release armv6
