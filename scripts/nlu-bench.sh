#!/bin/sh
# nlu-bench.sh: train on each data set's train split and evaluate on its dev
# split with the real binary (int8 models through ONNX Runtime), printing
# training time, model size, intent accuracy, entity F1 and parse latency.
#   scripts/nlu-bench.sh [DATASET...]   (default: all of ../shared/data/nlu)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
data=${ZHIYIN_NLU_DATA:-$root/../shared/data/nlu}
bin=${ZHIYIN_BIN:-$root/bin/zhiyin}
[ -x "$bin" ] || (cd "$root" && go build -o bin/zhiyin ./cmd/zhiyin)
export ZHIYIN_ORT_LIB=${ZHIYIN_ORT_LIB:-$root/third_party/onnxruntime/libonnxruntime.so.1}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
sets=${*:-$(ls "$data")}
printf '%-16s %8s %9s %9s %9s %9s %9s\n' dataset train_s size_MB intent% entityF1% p50_ms p99_ms
for ds in $sets; do
	start=$(date +%s.%N)
	"$bin" train --quiet --data "$data/$ds/train.jsonl" --out "$out/$ds" >/dev/null
	end=$(date +%s.%N)
	size=$(du -sb "$out/$ds" | cut -f1)
	"$bin" nlu eval --config builtin --model "$out/$ds" --data "$data/$ds/dev.jsonl" --json |
		python3 -c "import json,sys; d=json.load(sys.stdin); print('%-16s %8.1f %9.1f %9.2f %9.2f %9.3f %9.3f' % ('$ds', $end-$start, $size/1e6, 100*d['intent_accuracy'], 100*d['entity_f1'], d['latency_p50_ms'], d['latency_p99_ms']))"
done
