#!/usr/bin/env bash
# Runs mmrelay's whole test suite. On a fresh Debian machine it first installs what the tests
# need (idempotently): a C compiler for bundled C code, Python for the golden-frame check,
# Synapse for the Matrix tests, and for the gateway builds Debian's rustc-web and rust-web-src,
# qemu-user and zig (PyPI cargo-zigbuild).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/lib.sh

ensure_debs gcc libc6-dev python3 ca-certificates shellcheck systemd
ensure_cargo

# Golden frames: the committed fixtures must be exactly what the independent encoder (PyPI
# meshtastic) writes today; the Rust tests then decode and re-encode each of them.
ensure_venv .build/venv-meshtastic "meshtastic==2.7.11"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
.build/venv-meshtastic/bin/python tests/gen_fixtures.py "$tmp" >/dev/null
if ! diff -r tests/fixtures "$tmp" >/dev/null; then
  echo "error: tests/fixtures differ from what tests/gen_fixtures.py writes; regenerate and commit them" >&2
  exit 1
fi
echo "==> golden fixtures match the meshtastic package's encoder"

# The Matrix tests start their own Synapse from this venv (on 127.0.0.1, a free port).
bash scripts/synapse.sh install

# The habits: formatted code, no lint warnings.
cargo fmt --check || { echo "error: run 'cargo fmt' and commit the result" >&2; exit 1; }
cargo clippy --locked --all-targets -- -D warnings

cargo test --locked "$@"

# The gateway builds (cross/build.sh, docs/testing.md): the host-independent tests built for
# ARMv6 (the Pi Zero) and run under qemu's ARM1176 model; the ARMv6 and the static amd64
# binaries checked and run; the armhf package and the amd64 container image made from them
# and checked. MMRELAY_SKIP_CROSS=1 leaves this out.
if [ "${MMRELAY_SKIP_CROSS:-0}" != 1 ]; then
  bash cross/build.sh --test armv6
  bash cross/build.sh --profile dev armv6 x86_64-musl
  bash cross/package.sh --profile dev deb-armhf oci-amd64
fi
