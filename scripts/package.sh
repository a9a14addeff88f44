#!/usr/bin/env bash
# Builds the zhiyin .deb and .rpm with nfpm from what `make build` and
# scripts/fetch-deps.sh left in bin/ and third_party/, and prints their sizes.
# `make package` runs setup and build first; this script only packages.
#
#   scripts/package.sh [--version V] [--out DIR] [--only deb|rpm]
#
#   --version V   package version (default: the VERSION file)
#   --out DIR     where the packages go (default: dist)
#   --only KIND   build one kind only (the package test's upgrade build)
#
# Output: DIR/zhiyin_<ver>_amd64.deb and DIR/zhiyin-<ver>.x86_64.rpm; older
# zhiyin packages in DIR are removed first so that exactly one of each is
# there. Archive timestamps are the last commit's time (SOURCE_DATE_EPOCH),
# so the same tree gives the same archives.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

version=$(<VERSION)
out=dist
kinds=(deb rpm)
while (($#)); do
  case "$1" in
  --version) version=$2; shift 2 ;;
  --out) out=$2; shift 2 ;;
  --only) kinds=("$2"); shift 2 ;;
  *) echo "package: unknown argument $1 (see the comment at the top of $0)" >&2; exit 2 ;;
  esac
done

die() { echo "package: $*" >&2; exit 1; }

nfpm=$root/bin/tools/nfpm
[[ -x $nfpm ]] || nfpm=$(command -v nfpm) || die "nfpm not found: run scripts/setup.sh test (installs it into bin/tools)"
for f in bin/zhiyin third_party/onnxruntime/libonnxruntime.so.1 third_party/models/silero-vad/silero_vad.onnx; do
  [[ -f $f ]] || die "$f is missing: run 'make build' and scripts/fetch-deps.sh (or simply 'make package')"
done
[[ -f packaging/zhiyin.yaml ]] || die "packaging/zhiyin.yaml (the shipped /etc/zhiyin/zhiyin.yaml) is missing"

# Stage the bundled models with normalised modes. A bundled model is a folder
# of third_party/models/ (weights fetched by scripts/fetch-deps.sh, pinned),
# joined by the committed files of the folder of the same name in models/
# (its model.yaml manifest). Nothing else from models/ ships: catalog.yaml is
# embedded in the binary, testdata/ holds test contract models.
stage=$root/dist/.stage
rm -rf "$stage"
mkdir -p "$stage/models"
for dir in third_party/models/*/; do
  name=$(basename "$dir")
  cp -R --no-preserve=mode,ownership,timestamps "$dir" "$stage/models/$name"
  if [[ -d models/$name ]]; then
    cp -R --no-preserve=mode,ownership,timestamps "models/$name/." "$stage/models/$name/"
  fi
done
chmod -R u=rwX,go=rX "$stage"

export ZHIYIN_VERSION=$version
SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
export SOURCE_DATE_EPOCH

mkdir -p "$out"
built=()
for kind in "${kinds[@]}"; do
  case "$kind" in
  deb) rm -f "$out"/zhiyin_*_amd64.deb; target=$out/zhiyin_${version}_amd64.deb ;;
  rpm) rm -f "$out"/zhiyin-*.x86_64.rpm; target=$out/zhiyin-${version}.x86_64.rpm ;;
  *) die "unknown package kind $kind (deb or rpm)" ;;
  esac
  "$nfpm" package --config packaging/nfpm.yaml --packager "$kind" --target "$target" >/dev/null
  built+=("$target")
done
rm -rf "$stage"

for f in "${built[@]}"; do
  printf 'package: %-40s %6s (%d bytes)\n' "$f" "$(du -h "$f" | cut -f1)" "$(stat -c %s "$f")"
done
