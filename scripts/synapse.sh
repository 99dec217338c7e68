#!/usr/bin/env bash
# A throwaway Synapse homeserver for the tests, on 127.0.0.1 only.
#   scripts/synapse.sh install           venv with matrix-synapse under .build/ (idempotent)
#   scripts/synapse.sh config DIR PORT   writes DIR/homeserver.yaml for a test server
#   scripts/synapse.sh run DIR           runs it in the foreground (the tests start it this way)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib.sh"
venv="$root/.build/venv-synapse"
SYNAPSE_VERSION="1.163.2"

case "${1:-}" in
  install)
    ensure_debs gcc libc6-dev python3 ca-certificates
    ensure_venv "$venv" "matrix-synapse==$SYNAPSE_VERSION"
    ;;
  config)
    dir=$2 port=$3
    mkdir -p "$dir"
    if [ ! -f "$dir/homeserver.yaml" ]; then
      (cd "$dir" && "$venv/bin/python" -m synapse.app.homeserver --server-name localhost \
        --config-path homeserver.yaml --generate-config --report-stats=no >/dev/null)
      cat >> "$dir/homeserver.yaml" <<YAML
# --- test settings (appended by scripts/synapse.sh) ---
listeners:
  - port: $port
    bind_addresses: ['127.0.0.1']
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client]
        compress: false
enable_registration: true
enable_registration_without_verification: true
registration_shared_secret: "mmrelay-test-secret"
trusted_key_servers: []
suppress_key_server_warning: true
presence:
  enabled: false
url_preview_enabled: false
rc_message: {per_second: 1000, burst_count: 1000}
rc_registration: {per_second: 1000, burst_count: 1000}
rc_login:
  address: {per_second: 1000, burst_count: 1000}
  account: {per_second: 1000, burst_count: 1000}
  failed_attempts: {per_second: 1000, burst_count: 1000}
rc_joins:
  local: {per_second: 1000, burst_count: 1000}
  remote: {per_second: 1000, burst_count: 1000}
rc_invites:
  per_room: {per_second: 1000, burst_count: 1000}
  per_user: {per_second: 1000, burst_count: 1000}
rc_key_requests: {per_second: 1000, burst_count: 1000}
rc_3pid_validation: {per_second: 1000, burst_count: 1000}
rc_admin_redaction: {per_second: 1000, burst_count: 1000}
rc_delayed_event_mgmt: {per_second: 1000, burst_count: 1000}
# A logged-in session may ask for a login token for a new device (MSC3882), as after single
# sign-on: what mmrelay auth login --token-file is tested with.
login_via_existing_session:
  enabled: true
  require_ui_auth: false
  token_timeout: 5m
YAML
    fi
    ;;
  run)
    dir=$2
    cd "$dir"
    exec "$venv/bin/python" -m synapse.app.homeserver -c homeserver.yaml
    ;;
  *)
    echo "usage: $0 install | config DIR PORT | run DIR" >&2
    exit 2
    ;;
esac
