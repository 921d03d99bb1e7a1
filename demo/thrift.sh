#!/usr/bin/env bash
# make demo-thrift: Apache Thrift clients of three kinds call two Apache
# Thrift servers through metaproxy, then everything started here is stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
BIN=$PWD/bin
mkdir -p "$BIN"
echo "==> building metaproxy and the Apache Thrift peers"
CGO_ENABLED=0 go build -o "$BIN/metaproxy" ./cmd/metaproxy
(cd test && go build -o "$BIN/thriftpeer" ./peers/thrift/thriftpeer)

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { for _ in $(seq 1 100); do port_busy "$1" && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
for p in 9090 9091 9093 19902; do
  if port_busy $p; then echo "port $p is already in use: stop what listens there first" >&2; exit 1; fi
done

LOG=$(mktemp -d)
echo "==> starting two Apache Thrift THeader servers on 127.0.0.1:9091 and :9093 (logs in $LOG)"
"$BIN/thriftpeer" -mode server -addr 127.0.0.1:9091 -transport header -protocol header -tag server-1 >"$LOG/server-1.log" 2>&1 & pids+=($!)
"$BIN/thriftpeer" -mode server -addr 127.0.0.1:9093 -transport header -protocol header -tag server-2 >"$LOG/server-2.log" 2>&1 & pids+=($!)
wait_port 9091; wait_port 9093
echo "==> starting metaproxy on 127.0.0.1:9090 (demo/thrift-bootstrap.yaml)"
"$BIN/metaproxy" -c demo/thrift-bootstrap.yaml >"$LOG/metaproxy.log" 2>&1 & pids+=($!)
wait_port 9090
for kind in "framed binary" "buffered compact" "header header"; do
  set -- $kind
  echo "==> a $1/$2 client calls Hello.sayHello twice through metaproxy"
  for _ in 1 2; do "$BIN/thriftpeer" -mode client -addr 127.0.0.1:9090 -transport "$1" -protocol "$2" -name Aeraki; done
done
echo "==> metaproxy stats (admin on 127.0.0.1:19902/stats)"
curl -s 127.0.0.1:19902/stats | grep -E '\.(request|response_success|cx_total):' || true
