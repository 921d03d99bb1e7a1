#!/usr/bin/env bash
# make demo: a real dubbo-go consumer calls real dubbo-go providers through
# metaproxy, then everything started here is stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
BIN=$PWD/bin
mkdir -p "$BIN"
echo "==> building metaproxy and the dubbo-go peers (the first build downloads dubbo-go: a minute or two)"
CGO_ENABLED=0 go build -o "$BIN/metaproxy" ./cmd/metaproxy
(cd test && go build -o "$BIN/dubbopeer" ./peers/dubbo/dubbopeer)

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in 20880 20881 20883 19901; do
  if port_busy $p; then echo "port $p is already in use: stop what listens there first" >&2; exit 1; fi
done
LOG=$(mktemp -d)
echo "==> starting two dubbo-go providers on 127.0.0.1:20881 and :20883 (logs in $LOG)"
"$BIN/dubbopeer" -mode provider -port 20881 -tag provider-1 >"$LOG/provider-1.log" 2>&1 & pids+=($!)
"$BIN/dubbopeer" -mode provider -port 20883 -tag provider-2 >"$LOG/provider-2.log" 2>&1 & pids+=($!)
wait_port 20881; wait_port 20883
echo "==> starting metaproxy on 127.0.0.1:20880 (demo/dubbo-bootstrap.yaml)"
"$BIN/metaproxy" -c demo/dubbo-bootstrap.yaml >"$LOG/metaproxy.log" 2>&1 & pids+=($!)
wait_port 20880
echo "==> a dubbo-go consumer calls DemoService.sayHello 4 times through metaproxy; each call is balanced on its own"
"$BIN/dubbopeer" -mode consumer -url dubbo://127.0.0.1:20880 -name Aeraki -n 4
echo "==> metaproxy stats (admin on 127.0.0.1:19901/stats)"
curl -s 127.0.0.1:19901/stats | grep -E '\.(request|response_success|cx_total):' || true
