#!/bin/sh
# chat-bench.sh: load-test POST /v1/chat of the real daemon (embedded domain,
# NLU through ONNX Runtime, policy, SQLite persistence with encryption) and a
# bare fiber handler with the same load generator, on this machine.
#   scripts/chat-bench.sh            (defaults: 20 s per run)
#   DURATION=60s RATE=3000 scripts/chat-bench.sh
# Prints one JSON line per run, then the ratios. The daemon and the load
# generator share the machine's cores, as they would on a 2-core appliance
# under test.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
DURATION=${DURATION:-20s}
RATE=${RATE:-3000}
CONNS=${CONNS:-1000}
BIGCONNS=${BIGCONNS:-5000}
SEED=${SEED:-100000}
USERS=${USERS:-10000}
PORT=${PORT:-18799}
BAREPORT=${BAREPORT:-18798}
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
mkdir -p bin
go build -o bin/zhiyin ./cmd/zhiyin
go build -o bin/chatload ./scripts/chatload
export ZHIYIN_ORT_LIB=${ZHIYIN_ORT_LIB:-$root/third_party/onnxruntime/libonnxruntime.so.1}
[ -f "$ZHIYIN_ORT_LIB" ] || scripts/fetch-deps.sh >/dev/null

work=$(mktemp -d)
cleanup() {
	[ -n "${zpid:-}" ] && kill "$zpid" 2>/dev/null && wait "$zpid" 2>/dev/null
	[ -n "${bpid:-}" ] && kill "$bpid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT INT TERM
cat >"$work/zhiyin.yaml" <<YAML
data_dir: $work/data
server:
  listen: 127.0.0.1:$PORT
  max_connections: 20000
auth:
  allow_loopback: true
limits:
  exempt_loopback: true
log:
  level: warn
YAML

wait_ready() {
	i=0
	until curl -sf "http://127.0.0.1:$1/readyz" >/dev/null 2>&1 || curl -sf -o /dev/null -X POST "http://127.0.0.1:$1/v1/chat" -H 'Content-Type: application/json' -d '{"user_id":"w","text":"你好"}' 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 600 ] || { echo "server on port $1 did not become ready" >&2; exit 1; }
		sleep 0.1
	done
}

# The bare handler: fiber's floor on this machine.
bin/chatload -bare-listen "127.0.0.1:$BAREPORT" &
bpid=$!
wait_ready "$BAREPORT"
bin/chatload -url "http://127.0.0.1:$BAREPORT/v1/chat" -conns "$CONNS" -rate "$RATE" -duration "$DURATION" | tee "$work/bare.json"
bin/chatload -url "http://127.0.0.1:$BAREPORT/v1/chat" -conns "$CONNS" -rate 0 -duration "$DURATION" | tee "$work/bare-max.json"
kill "$bpid"; bpid=

bin/zhiyin serve --config "$work/zhiyin.yaml" 2>"$work/serve.log" &
zpid=$!
wait_ready "$PORT"
# Seed: $SEED one-turn sessions (the stored sessions the RSS figure is
# about), which also warms everything up. Then the measured runs, where
# $USERS customers hold multi-turn conversations.
bin/chatload -url "http://127.0.0.1:$PORT/v1/chat" -conns 200 -rate 0 -duration 600s -requests "$SEED" -users "$SEED" -user-prefix s -pid "$zpid" | tee "$work/seed.json"
bin/chatload -url "http://127.0.0.1:$PORT/v1/chat" -conns "$CONNS" -rate "$RATE" -duration "$DURATION" -users "$USERS" -user-prefix a -pid "$zpid" | tee "$work/zhiyin.json"
bin/chatload -url "http://127.0.0.1:$PORT/v1/chat" -conns "$CONNS" -rate 0 -duration "$DURATION" -users "$USERS" -user-prefix b -pid "$zpid" | tee "$work/zhiyin-max.json"
bin/chatload -url "http://127.0.0.1:$PORT/v1/chat" -conns "$BIGCONNS" -rate "$RATE" -duration "$DURATION" -users "$USERS" -user-prefix c -pid "$zpid" | tee "$work/zhiyin-5000.json"
sessions=$(sqlite3 "$work/data/zhiyin.db" 'SELECT count(*) FROM sessions' 2>/dev/null || echo "?")
python3 - "$work" "$sessions" <<'PY'
import json, sys
w, sessions = sys.argv[1], sys.argv[2]
r = {n: json.load(open(f"{w}/{n}.json")) for n in ["bare", "bare-max", "zhiyin", "zhiyin-max", "zhiyin-5000"]}
r_seed = json.load(open(f"{w}/seed.json"))
print(f"sessions stored: {sessions}")
print(f"at {r['zhiyin']['target_rps']:.0f} rps, {r['zhiyin']['conns']} conns: zhiyin p50 {r['zhiyin']['p50_ms']} ms p99 {r['zhiyin']['p99_ms']} ms errors {r['zhiyin']['errors']}; bare p99 {r['bare']['p99_ms']} ms")
print(f"closed loop max: zhiyin {r['zhiyin-max']['achieved_rps']:.0f} rps, bare {r['bare-max']['achieved_rps']:.0f} rps, ratio {r['zhiyin-max']['achieved_rps']/r['bare-max']['achieved_rps']:.3f}")
print(f"{r['zhiyin-5000']['conns']} conns: {r['zhiyin-5000']['achieved_rps']:.0f} rps, errors {r['zhiyin-5000']['errors']}, p99 {r['zhiyin-5000']['p99_ms']} ms")
print(f"seeding {r_seed['requests']} new sessions: {r_seed['achieved_rps']:.0f} rps")
print(f"server RSS {r['zhiyin-5000'].get('server_rss_kb',0)/1024:.0f} MiB, peak {r['zhiyin-5000'].get('server_hwm_kb',0)/1024:.0f} MiB")
PY
