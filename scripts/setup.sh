#!/usr/bin/env bash
# Installs what building and testing zhiyin needs on Debian bookworm, as root,
# idempotently: Debian packages (only the missing ones), Go tools pinned by
# version into bin/tools, and the npm artifacts (scripts/fetch-deps.sh).
#
#   scripts/setup.sh run     what `make run` needs
#   scripts/setup.sh test    what `make test` needs (a superset)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mode=${1:-test}

# Debian packages. Build and run: portaudio19-dev (the local sound-card
# channel links libportaudio2), espeak-ng (the always-available Mandarin
# voice of phone calls). Tests: sqlite3 (inspecting databases), debootstrap
# and rpm (package tests), systemd (systemd-analyze, systemd-socket-activate),
# prosody (the XMPP peer), chromium (the web chat's browser test),
# sip-tester (sipp, the SIP/RTP caller), sox (converting test speech to
# 8 kHz G.711), libasound2-plugins (ALSA file/null devices for PortAudio).
run_pkgs=(ca-certificates gcc libc6-dev pkg-config portaudio19-dev espeak-ng)
test_pkgs=(sqlite3 debootstrap rpm systemd prosody chromium sip-tester sox libasound2-plugins)
pkgs=("${run_pkgs[@]}")
[[ "$mode" == test ]] && pkgs+=("${test_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing Debian packages: ${missing[*]}; run as root or install them with apt-get" >&2
    exit 1
  fi
  echo "setup: apt-get install ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Go tools, pinned. nfpm v2.45.2 is the newest that installs here.
if [[ "$mode" == test ]]; then
  tools="$root/bin/tools"
  # `go install` stamps no version into nfpm, so a marker file records it.
  if [[ ! -x "$tools/nfpm" || ! -f "$tools/.nfpm-v2.45.2" ]]; then
    echo "setup: go install nfpm@v2.45.2" >&2
    GOBIN="$tools" go install github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2
    touch "$tools/.nfpm-v2.45.2"
  fi
fi

# npm test peers, pinned, into the git-ignored .cache/npm:
# telegram-test-api (a Bot API server the Telegram adapter talks to).
if [[ "$mode" == test ]]; then
  npmdir="$root/.cache/npm"
  if [[ ! -f "$npmdir/node_modules/telegram-test-api/package.json" ]] ||
     ! grep -q '"version": "4.2.1"' "$npmdir/node_modules/telegram-test-api/package.json"; then
    echo "setup: npm install telegram-test-api@4.2.1" >&2
    mkdir -p "$npmdir"
    npm install --no-audit --no-fund --loglevel=error --prefix "$npmdir" telegram-test-api@4.2.1 >/dev/null
  fi
fi

# Go modules (so that a later offline build works).
(cd "$root" && go mod download)

# ONNX Runtime and Silero VAD from the npm registry, sha256-pinned.
"$root/scripts/fetch-deps.sh"
