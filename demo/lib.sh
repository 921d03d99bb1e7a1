# Shared by the demo scripts: process cleanup and port checks.
# shellcheck shell=bash
export GOTOOLCHAIN=local
BIN=$PWD/bin
mkdir -p "$BIN"
LOG=$(mktemp -d)

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_port PORT: wait up to 10 s for 127.0.0.1:PORT to accept connections.
wait_port() {
  for _ in $(seq 1 100); do port_busy "$1" && return 0; sleep 0.1; done
  echo "port $1 never opened (logs in $LOG)" >&2
  exit 1
}

# need_free_ports PORT...: refuse to start over something already listening.
need_free_ports() {
  for p in "$@"; do
    if port_busy "$p"; then echo "port $p is already in use: stop what listens there first" >&2; exit 1; fi
  done
}
