#!/bin/sh
# channel-bench.sh: load-test the generic webhook channel end to end on this
# machine: signed inbound POSTs → inbox commit → dialogue (embedded domain,
# NLU through ONNX Runtime) → outbox committed with the turn → signed reply
# POST to the load generator, which measures receipt to reply.
#   scripts/channel-bench.sh                    (2000 msg/s for 20 s)
#   RATE=3000 DURATION=30s scripts/channel-bench.sh
# Then a platform-down run: the receiver answers 503 for DOWN_DURATION while
# messages keep coming; the replies wait on disk, and the daemon's memory is
# reported before and after.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
DURATION=${DURATION:-20s}
RATE=${RATE:-2000}
DOWN_RATE=${DOWN_RATE:-1000}
DOWN_DURATION=${DOWN_DURATION:-60s}
PORT=${PORT:-18797}
RPORT=${RPORT:-18796}
SECRET=bench-secret-0123456789abcdef
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
mkdir -p bin
go build -o bin/zhiyin ./cmd/zhiyin
go build -o bin/channelload ./scripts/channelload
export ZHIYIN_ORT_LIB=${ZHIYIN_ORT_LIB:-$root/third_party/onnxruntime/libonnxruntime.so.1}
[ -f "$ZHIYIN_ORT_LIB" ] || scripts/fetch-deps.sh >/dev/null

work=$(mktemp -d)
cleanup() {
	[ -n "${zpid:-}" ] && kill "$zpid" 2>/dev/null && wait "$zpid" 2>/dev/null
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
channels:
  outbox:
    backoff_min: 1s
    backoff_max: 1m
  webhook:
    enabled: true
    secret: $SECRET
    outbound_url: http://127.0.0.1:$RPORT/replies
    timeout: 5s
YAML
bin/zhiyin serve --config "$work/zhiyin.yaml" >"$work/zhiyin.log" 2>&1 &
zpid=$!
i=0
until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -lt 600 ] || { echo "zhiyin did not become ready" >&2; cat "$work/zhiyin.log" >&2; exit 1; }
	sleep 0.1
done
rss() { awk '/VmRSS/ {print $2}' "/proc/$zpid/status"; }

echo "# warm-up (5 s at 500 msg/s)" >&2
bin/channelload -url "http://127.0.0.1:$PORT" -listen "127.0.0.1:$RPORT" -secret "$SECRET" -rate 500 -duration 5s -drain 5s >/dev/null
echo "# $RATE msg/s for $DURATION" >&2
bin/channelload -url "http://127.0.0.1:$PORT" -listen "127.0.0.1:$RPORT" -secret "$SECRET" -rate "$RATE" -duration "$DURATION" -pid "$zpid"
echo "# daemon's own receipt-to-reply histogram (inbox commit → first part accepted):" >&2
curl -s "http://127.0.0.1:$PORT/metrics" | grep -E '^zhiyin_channel_receipt_to_reply_seconds_(bucket\{channel="webhook",le="0.(016|032|064|128)"\}|count)' >&2 || true

echo "# platform down: $DOWN_RATE msg/s for $DOWN_DURATION, every reply refused" >&2
before=$(rss)
bin/channelload -url "http://127.0.0.1:$PORT" -listen "127.0.0.1:$RPORT" -secret "$SECRET" -rate "$DOWN_RATE" -duration "$DOWN_DURATION" -down -pid "$zpid"
after=$(rss)
queued=$(sqlite3 "file:$work/data/zhiyin.db?mode=ro" "SELECT count(*) FROM channel_outbox WHERE state = 'queued'" 2>/dev/null || echo "?")
backlog=$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^zhiyin_channel_outbox_backlog\{channel="webhook"\}/ {print $2}')
echo "{\"down_rss_before_kb\":$before,\"down_rss_after_kb\":$after,\"queued_on_disk\":$queued,\"backlog_in_memory\":${backlog:-0}}"
