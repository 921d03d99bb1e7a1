#!/usr/bin/env bash
# make bench: the core-path micro-benchmarks, then the side-by-side load
# benchmark (test/bench): dubbo-go and Apache Thrift peers direct, through
# HAProxy (TCP mode), through metaproxy (plain, +mirror, +ringhash) and
# through metaprotocol.so in the ABI host; the scale benchmarks (routes,
# endpoints, idle connections). Writes
# bench/results/latest.{md,png,json}; see bench/README.md.
#
# Knobs (environment):
#   BENCH_ARGS   extra flags for the load benchmark, e.g.
#                "-duration 10s -workers 1,16,64 -protocols dubbo -rounds 5"
#                or "-proxies direct,haproxy,metaproxy,metaproxy.so" (no feature rows)
#   BENCH_OUT    where to write latest.*, default bench/results (the committed run)
#   PROFILE=1    also perf-profile metaproxy under the largest load
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
root=$PWD
out=${BENCH_OUT:-$root/bench/results}
mkdir -p "$out"
out=$(cd "$out" && pwd)

# HAProxy is the L4 baseline; Redis and MariaDB are the Redis and MySQL
# benchmarks' servers; perf only for PROFILE=1.
need=()
command -v haproxy >/dev/null || need+=(haproxy)
command -v redis-server >/dev/null || need+=(redis-server redis-tools)  # BenchmarkRedis (redis-benchmark)
command -v mariadbd >/dev/null || need+=(mariadb-server mariadb-client) # BenchmarkMySQL (mariadb-slap)
[ "${PROFILE:-0}" = 1 ] && ! command -v perf >/dev/null && need+=(linux-perf)
if [ ${#need[@]} -gt 0 ]; then
	sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
	echo "==> installing ${need[*]} (apt)"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

echo "==> core path micro-benchmarks (go test -bench CorePath -benchmem ./proxy)"
micro=$(mktemp)
scale=$(mktemp)
trap 'rm -f "$micro" "$scale"' EXIT
go test -run '^$' -bench CorePath -benchmem -count 1 ./proxy | tee "$micro"

echo "==> scale: route matching (10 / 1,000 / 10,000 routes), endpoints (pick, update, memory), idle connections, 1 / 100 / 10,000 connections at one call rate"
# Their result lines go to the report's Scale section and the chart.
go test -run '^$' -bench 'MatchScale' -benchmem -count 1 ./router | tee -a "$scale"
# A pick is ~100 ns: 200 of them (what an update can afford) is one timer tick of noise.
go test -run '^$' -bench 'ScalePick' -benchtime 200000x -benchmem -count 1 ./cluster | tee -a "$scale"
go test -run '^$' -bench 'ScaleUpdate' -benchtime 200x -benchmem -count 1 ./cluster | tee -a "$scale"
(cd test && go test -run '^$' -bench IdleConnections -benchtime 1x -count 1 ./bench) | tee -a "$scale"
(cd test && go test -run '^$' -bench ConnectionScale -benchtime 1x -count 1 ./bench) | tee -a "$scale"
go test -run '^$' -bench 'RDSUpdate|EDSUpdate' -benchtime 20x -benchmem -count 1 ./xds

echo "==> Redis: redis-benchmark direct and through metaproxy, same run (ratios, proxy CPU per command)"
(cd test && go test -run '^$' -bench Redis -benchtime 1x -count 1 ./bench)

echo "==> MySQL: mariadb-slap direct and through metaproxy, same run"
(cd test && go test -run '^$' -bench MySQL -benchtime 1x -count 1 ./bench)

echo "==> tRPC: trpc-go unary calls direct and through metaproxy, same run"
(cd test && go test -run '^$' -bench TRPC -benchtime 1x -count 1 ./bench)

echo "==> side-by-side load benchmark (builds the peers, metaproxy, the ABI host and metaprotocol.so first)"
args=(-sidebyside -out "$out" -micro "$micro" -scale "$scale")
[ "${PROFILE:-0}" = 1 ] && args+=(-profile)
# shellcheck disable=SC2086 # BENCH_ARGS is a list of flags
cd test && go test -run '^TestSideBySide$' -count 1 -timeout 30m -v ./bench -args "${args[@]}" ${BENCH_ARGS:-} |
	grep -v -e '^=== ' -e '^--- PASS' -e '^    --- PASS'
echo "==> wrote $out/latest.md, latest.png, latest.json"
