#!/bin/sh
# asr-bench.sh: the speech path's figures on this machine.
#   scripts/asr-bench.sh              (MINUTES=60 by default)
# 1. Component benchmarks (× real time per core): resampling 8 → 16 kHz,
#    fbank, fbank+LFR+CMVN, Silero VAD (go test -bench, -cpu 1).
# 2. End to end on the contract SenseVoice model: × real time and the share
#    of process CPU time spent outside ONNX Runtime (BenchmarkTranscribe).
# 3. `zhiyin transcribe` of a MINUTES-long file: wall time, real-time
#    factor and peak RSS (GNU time).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
MINUTES=${MINUTES:-60}
export ZHIYIN_ORT_LIB=${ZHIYIN_ORT_LIB:-$root/third_party/onnxruntime/libonnxruntime.so.1}
[ -f "$ZHIYIN_ORT_LIB" ] && [ -f third_party/models/silero-vad/silero_vad.onnx ] || scripts/fetch-deps.sh >/dev/null

echo "== components (-cpu 1)"
go test -run '^$' -cpu 1 -benchtime 3s -bench 'Resample8to16$' ./asr/audio | grep -E '^Benchmark'
go test -run '^$' -cpu 1 -benchtime 3s -bench 'Fbank$|Frontend$' ./asr/features | grep -E '^Benchmark'
go test -run '^$' -cpu 1 -benchtime 3s -bench 'VAD$' ./asr/vad | grep -E '^Benchmark'
echo "== end to end, contract model"
go test -run '^$' -benchtime 5x -bench 'Transcribe' ./asr | grep -E '^Benchmark'

echo "== zhiyin transcribe, $MINUTES minutes"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
go build -o "$work/zhiyin" ./cmd/zhiyin
go run ./scripts/asrlong -minutes "$MINUTES" -out "$work/long.wav"
cat >"$work/zhiyin.yaml" <<YAML
data_dir: $work/data
inference:
  model_dirs: [$root/third_party/models]
YAML
"$work/zhiyin" models install models/testdata/asr/sherpa-onnx-sense-voice-zh-en-ja-ko-yue-2024-07-17 --config "$work/zhiyin.yaml" >/dev/null
/usr/bin/time -f '%e s wall, %U s user, %S s sys, peak RSS %M KiB' \
	"$work/zhiyin" transcribe --config "$work/zhiyin.yaml" --json --progress never "$work/long.wav" >"$work/out.json"
python3 -c '
import json,sys
r=json.load(open(sys.argv[1]))
print("audio %.0f s, %d segments, %d characters, rtf %.4f (%.0f× real time)" % (r["duration"], len(r["segments"]), len(r["text"]), r["rtf"], 1/r["rtf"]))
' "$work/out.json"
