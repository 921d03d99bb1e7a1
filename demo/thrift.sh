#!/usr/bin/env bash
# make demo-thrift: Apache Thrift clients of three kinds call two Apache
# Thrift servers through metaproxy, then everything started here is stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
source demo/lib.sh
echo "==> building metaproxy and the Apache Thrift peers"
CGO_ENABLED=0 go build -o "$BIN/metaproxy" ./cmd/metaproxy
(cd test && go build -o "$BIN/thriftpeer" ./peers/thrift/thriftpeer)

need_free_ports 9090 9091 9093 19902
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
