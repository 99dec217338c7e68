#!/usr/bin/env bash
# Runs mmrelay's whole test suite. On a fresh Debian machine it first installs what the tests
# need (idempotently): a C compiler for bundled C code, Python for the golden-frame check,
# Synapse for the Matrix tests, and for the ARM run the cross compilers, Debian's rustc-web and
# qemu-user.
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

cargo test --locked "$@"

# The host-independent tests again, built for aarch64 and run under qemu-user, then the ARM
# binaries themselves (--version, config, a radio handshake with the ARM simulator); see
# cross/build.sh. MMRELAY_SKIP_CROSS=1 leaves this out (it adds about 10 minutes on 2 cores).
if [ "${MMRELAY_SKIP_CROSS:-0}" != 1 ]; then
  bash cross/build.sh --test --profile dev aarch64
fi
