#!/usr/bin/env bash
# Fuzzes the stream decoder for SECONDS (default 60). Not part of the test suite.
# cargo-fuzz needs unstable compiler flags; RUSTC_BOOTSTRAP=1 allows them on a stable toolchain.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
RUSTC_BOOTSTRAP=1 cargo fuzz run stream_decoder -- -max_total_time="${1:-60}" -max_len=4096
