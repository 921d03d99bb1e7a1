#!/usr/bin/env bash
# make demo: a real dubbo-go consumer calls real dubbo-go providers through
# metaproxy, then everything started here is stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
source demo/lib.sh
echo "==> building metaproxy and the dubbo-go peers (the first build downloads dubbo-go: a minute or two)"
CGO_ENABLED=0 go build -o "$BIN/metaproxy" ./cmd/metaproxy
(cd test && go build -o "$BIN/dubbopeer" ./peers/dubbo/dubbopeer)
need_free_ports 20880 20881 20883 19901
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
