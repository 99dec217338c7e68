# shellcheck shell=bash
# Helpers shared by the project's scripts (sourced, not run). Everything here is idempotent.

# Runs a command as root (directly, or through sudo).
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "error: '$*' needs root; run it as root or install sudo" >&2; return 1; fi
}

# Installs the Debian packages that are not installed yet.
ensure_debs() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "==> installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# The crate's version, from the project's Cargo.toml.
crate_version() {
  sed -n 's/^version = "\(.*\)"/\1/p' "$(dirname "${BASH_SOURCE[0]}")/../Cargo.toml" | head -1
}

# Makes sure cargo is there (rustup's or Debian's).
ensure_cargo() {
  if command -v cargo >/dev/null; then return 0; fi
  [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH" && return 0
  echo "error: cargo not found. Install Rust 1.89 or newer with rustup (https://rustup.rs); Debian's own cargo is too old." >&2
  return 1
}

# ensure_venv DIR PACKAGE...: a Python venv at DIR holding the given pip requirements.
ensure_venv() {
  local dir=$1; shift
  local stamp="$dir/.mmrelay-reqs"
  local want="$*"
  if [ -x "$dir/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then return 0; fi
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then ensure_debs python3-venv; fi
  echo "==> preparing Python venv $dir: $want"
  python3 -m venv "$dir"
  "$dir/bin/pip" install -q --disable-pip-version-check "$@"
  echo "$want" > "$stamp"
}
