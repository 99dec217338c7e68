#!/usr/bin/env bash
# Regenerates cross/order-x86_64.txt, the function order the x86_64 linker (cross/ordered-cc)
# gives the release binary: the functions a running relay executes, hottest first.
#
#   bench/order.sh     (about 10 minutes; then commit cross/order-x86_64.txt)
#
# It links the release binary unstripped (the same code, MMRELAY_KEEP_SYMBOLS=1), runs the
# benchmark's short workload (bench/driver.rs --quick: start, both directions, a burst, idle) on
# it under valgrind's callgrind, and lists every function callgrind saw executed. Run it after
# large changes or a dependency update: names the list no longer matches are laid out as usual,
# so a stale list costs resident memory (bench/run.sh shows it), never correctness.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/lib.sh

ensure_debs gcc libc6-dev python3 valgrind
ensure_cargo
bash scripts/synapse.sh install

work=target/order
rm -rf "$work"
mkdir -p "$work"
echo "==> linking the release binary with its symbols"
touch src/main.rs # relink
MMRELAY_KEEP_SYMBOLS=1 cargo build --locked --release --bin mmrelay
cargo build --locked --example relay_bench
cp target/release/mmrelay "$work/mmrelay"

cat >"$work/callgrind.sh" <<SH
#!/bin/sh
exec valgrind --tool=callgrind --callgrind-out-file=$root/$work/cg.%p.out \\
  --demangle=no --compress-strings=no --compress-pos=no \\
  $root/$work/mmrelay "\$@" 2>>$root/$work/valgrind.log
SH
chmod +x "$work/callgrind.sh"
echo "==> the short workload under callgrind"
target/debug/examples/relay_bench --mmrelay "$root/$work/callgrind.sh" --quick \
  --out "$root/$work/run" >"$work/bench.txt"
python3 bench/order.py "$work"/cg.*.out >"$work/order.txt"
[ -s "$work/order.txt" ] || { echo "error: no functions found (see $work/)" >&2; exit 1; }
mv "$work/order.txt" cross/order-x86_64.txt
echo "==> cross/order-x86_64.txt: $(wc -l <cross/order-x86_64.txt) functions; relinking"
touch src/main.rs
cargo build --locked --release --bin mmrelay
