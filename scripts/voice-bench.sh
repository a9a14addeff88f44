#!/bin/sh
# voice-bench.sh: the phone line's figures on this machine.
#   scripts/voice-bench.sh
# 1. Parts: call setup (INVITE → 200), 100 RTP streams' send jitter and
#    per-packet cost, TTS time to first audio, the call engine's barge-in,
#    turn latency, idle memory per call and 100 concurrent calls.
# 2. Through the real daemon over SIP/RTP on loopback (contract speech
#    model, espeak-ng): last voiced frame → first answer packet, and 100
#    concurrent calls (send jitter from kernel timestamps, CPU, memory).
set -eu
# sipgo warns on its global logger mid-line; keep benchmark rows whole.
rows() { sed -E 's#[0-9]{4}/[0-9]{2}/[0-9]{2} [0-9:]+ WARN UDP ref went negative.*##' | grep -E 'Benchmark|ns/op' | paste -sd ' ' | sed 's/ Benchmark/\nBenchmark/g'; echo; }
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export ZHIYIN_ORT_LIB=${ZHIYIN_ORT_LIB:-$root/third_party/onnxruntime/libonnxruntime.so.1}
[ -f "$ZHIYIN_ORT_LIB" ] && [ -f third_party/models/silero-vad/silero_vad.onnx ] || scripts/fetch-deps.sh >/dev/null
go build -o bin/zhiyin ./cmd/zhiyin
export ZHIYIN_TEST_BINARY="$root/bin/zhiyin"

echo "== parts"
go test -run '^$' -benchtime 300x -bench 'CallSetup' ./channels/sip 2>&1 | rows
go test -run '^$' -benchtime 1x -bench 'Streams100|IdleStreamMemory' ./channels/sip/media 2>&1 | rows
go test -run '^$' -bench 'ReceivePacket' ./channels/sip/media 2>&1 | rows
go test -run '^$' -benchtime 20x -bench 'Speak' ./asr/tts 2>&1 | rows
go test -run '^$' -benchtime 5x -bench 'BargeIn|EndOfSpeech|IdleCallMemory' ./channels/voice 2>&1 | rows
go test -run '^$' -benchtime 1x -bench 'ConcurrentCalls' ./channels/voice 2>&1 | rows
echo "== through the daemon"
go test -run '^$' -benchtime 15x -bench 'VoiceTurnLatency' ./cmd/zhiyin 2>&1 | rows
go test -run '^$' -benchtime 1x -bench 'VoiceConcurrentCalls' -timeout 15m ./cmd/zhiyin 2>&1 | rows
