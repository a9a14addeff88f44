#!/usr/bin/env bash
# Installs the built zhiyin .deb into clean Debian bookworm chroots and
# checks what an integrator would get; inspects the .rpm and installs it into
# an empty rpm root. Run as root, after `make package` (`make package-test`
# does both).
#
#   scripts/package-test.sh
#
# Two chroots, both from `debootstrap --variant=minbase bookworm`:
#   systemd   minbase + systemd, like a real server: the maintainer scripts
#             take the systemd-sysusers / systemd-tmpfiles path. Here run:
#             zhiyin version, check-config, doctor and models verify (as
#             the zhiyin user),
#             user, directory and conffile checks, `zhiyin serve` on a
#             socket-activated listener (answers /healthz, stops cleanly), an upgrade to a next
#             version that must keep a locally edited /etc/zhiyin/zhiyin.yaml,
#             systemd-analyze verify on the installed units, remove + purge
#             keeping /var/lib/zhiyin.
#   minbase   no systemd (containers): the useradd fallback.
# Dependencies (libportaudio2, …) come from deb.debian.org through apt.
#
# Cache (.cache/pkgtest, git-ignored): the two pristine chroots, debootstrap's
# and apt's downloaded .debs. A chroot counts only when its marker file holds
# the expected key and is less than two weeks old; a half-made one (an
# interrupted run) is unmounted, deleted and rebuilt. Each run works on throwaway copies, so reruns start from the
# same clean state. Everything mounted is unmounted on exit, also on failure.
# Cold (empty cache) a few minutes, warm well under one.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

suite=bookworm
mirror=${ZHIYIN_DEBIAN_MIRROR:-http://deb.debian.org/debian}
cache=$root/.cache/pkgtest
# Bump when the way a cached chroot is made changes: old caches get rebuilt.
cache_version=1

version=$(<VERSION)
next_version=$version+pkgtest1
deb=$root/dist/zhiyin_${version}_amd64.deb
rpmfile=$root/dist/zhiyin-${version}.x86_64.rpm

t_start=$SECONDS
failures=0
log() { printf 'package-test: %s\n' "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }
ok() { printf 'package-test: ok   %s\n' "$*" >&2; }
bad() { printf 'package-test: FAIL %s\n' "$*" >&2; failures=$((failures + 1)); }
# check DESCRIPTION GOT WANT
check() { if [[ "$2" == "$3" ]]; then ok "$1"; else bad "$1: got '$2', want '$3'"; fi; }

[[ $(id -u) -eq 0 ]] || die "run as root (debootstrap, chroot and mount need it)"
[[ $root != *[[:space:]]* ]] || die "the repository path must not contain white space: $root"
for tool in debootstrap chroot rpm systemd-analyze dpkg-deb flock; do
  command -v "$tool" >/dev/null || die "$tool is missing: run scripts/setup.sh test"
done
[[ -f $deb && -f $rpmfile ]] || die "no $deb or $rpmfile: run 'make package' first"

logs=$cache/logs
mkdir -p "$cache" "$logs"
exec 9>"$cache/.lock"
flock -n 9 || die "another package test holds $cache/.lock"

# --- mounts and safe deletion -------------------------------------------------

# mounts_under DIR: mount points at or below DIR, deepest first.
mounts_under() {
  awk -v d="$1" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/self/mounts | sort -r
}
unmount_under() {
  local m
  for m in $(mounts_under "$1"); do
    umount "$m" 2>/dev/null || umount -l "$m"
  done
}
# remove DIR: unmount whatever is below it, then delete it without ever
# crossing into another file system (a bind mount of /dev that failed to
# unmount must not be emptied).
remove() {
  [[ -e $1 ]] || return 0
  unmount_under "$1"
  [[ -z $(mounts_under "$1") ]] || die "cannot unmount everything below $1"
  rm -rf --one-file-system "$1"
}
cleanup() {
  local rc=$?
  [[ -z ${serve_pid:-} ]] || kill -KILL "$serve_pid" 2>/dev/null || true
  unmount_under "$cache"
  remove "$cache/work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# chroot_mount DIR: what dpkg, apt and the maintainer scripts need.
chroot_mount() {
  mount -t proc proc "$1/proc"
  mount -t sysfs sysfs "$1/sys"
  mount --bind /dev "$1/dev"
  mount --bind /dev/pts "$1/dev/pts" # apt logs through a pty
  mkdir -p "$cache/apt-archives/partial" "$1/var/cache/apt/archives"
  mount --bind "$cache/apt-archives" "$1/var/cache/apt/archives"
  cp /etc/resolv.conf "$1/etc/resolv.conf"
}
in_chroot() { chroot "$1" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "${@:2}"; }

# --- cached pristine chroots --------------------------------------------------

# ensure_chroot NAME KEY BUILD_FUNCTION: $cache/NAME exists and was finished
# with KEY, else it is rebuilt in NAME.partial and renamed when complete.
ensure_chroot() {
  local name=$1 key=$2 build=$3 dir=$cache/$1
  remove "$dir.partial"
  # Older than two weeks: the mirror has moved on (point releases drop the
  # old .debs), so rebuild rather than update the lists on every run.
  if [[ -f $dir/.zhiyin-pkgtest && $(<"$dir/.zhiyin-pkgtest") == "$key" &&
    -z $(find "$dir/.zhiyin-pkgtest" -mtime +14) ]]; then
    return 0
  fi
  [[ -e $dir ]] && log "cached chroot $name is incomplete or stale: rebuilding"
  remove "$dir"
  local t=$SECONDS
  "$build" "$dir.partial"
  printf '%s\n' "$key" >"$dir.partial/.zhiyin-pkgtest"
  mv "$dir.partial" "$dir"
  log "built chroot $name in $((SECONDS - t))s"
}

build_minbase() {
  mkdir -p "$cache/debootstrap-debs"
  log "debootstrap --variant=minbase $suite from $mirror (cold cache: a few minutes)"
  debootstrap --variant=minbase --cache-dir="$cache/debootstrap-debs" \
    "$suite" "$1" "$mirror" >"$logs/debootstrap.log" 2>&1 ||
    { tail -n 30 "$logs/debootstrap.log" >&2; die "debootstrap failed (log: $logs/debootstrap.log)"; }
  # Never start daemons from maintainer scripts inside the chroot.
  printf '#!/bin/sh\nexit 101\n' >"$1/usr/sbin/policy-rc.d"
  chmod 0755 "$1/usr/sbin/policy-rc.d"
  rm -f "$1"/var/cache/apt/archives/*.deb
  chroot_mount "$1"
  in_chroot "$1" apt-get update -q >"$logs/apt-update.log" 2>&1 ||
    { tail -n 30 "$logs/apt-update.log" >&2; die "apt-get update in the chroot failed"; }
  unmount_under "$1"
}

build_systemd() {
  cp -a "$cache/minbase" "$1"
  rm -f "$1/.zhiyin-pkgtest"
  chroot_mount "$1"
  in_chroot "$1" apt-get install -y -q --no-install-recommends systemd >"$logs/systemd-install.log" 2>&1 ||
    { tail -n 30 "$logs/systemd-install.log" >&2; die "apt-get install systemd in the chroot failed"; }
  unmount_under "$1"
}

minbase_key="v$cache_version $suite minbase $mirror"
ensure_chroot minbase "$minbase_key" build_minbase
# Rebuilt whenever minbase is (its marker's time is part of the key).
ensure_chroot systemd "$minbase_key +systemd $(stat -c %Y "$cache/minbase/.zhiyin-pkgtest")" build_systemd

# --- working copies -----------------------------------------------------------

remove "$cache/work"
mkdir -p "$cache/work"
# new_work NAME: a fresh copy of the cached chroot NAME, mounted.
new_work() {
  local w=$cache/work/$1
  cp -a "$cache/$1" "$w"
  chroot_mount "$w"
  echo "$w"
}

# apt_install CHROOT FILE LOG: installs a .deb with its dependencies. When the
# cached package lists are too old for the mirror, updates them and retries.
apt_install() {
  local w=$1 f=$2 logf=$3
  cp "$f" "$w/tmp/"
  local args=(apt-get install -y -q --no-install-recommends "/tmp/$(basename "$f")")
  if in_chroot "$w" "${args[@]}" >"$logf" 2>&1; then return 0; fi
  log "apt-get install failed; updating the chroot's package lists and retrying"
  in_chroot "$w" apt-get update -q >>"$logf" 2>&1 || true
  in_chroot "$w" "${args[@]}" >>"$logf" 2>&1 && return 0
  tail -n 40 "$logf" >&2
  die "installing $(basename "$f") in the $(basename "$w") chroot failed (log: $logf)"
}

# as_zhiyin CHROOT CMD…: runs CMD as the daemon's user, with its groups.
as_zhiyin() { in_chroot "$1" setpriv --reuid=zhiyin --regid=zhiyin --init-groups --reset-env -- "${@:2}"; }


# check_installed CHROOT: what every installation must leave behind.
check_installed() {
  local w=$1 name
  name=$(basename "$w")
  local pw uid gid home shell
  pw=$(in_chroot "$w" getent passwd zhiyin) || { bad "$name: user zhiyin missing"; return; }
  IFS=: read -r _ _ uid gid _ home shell <<<"$pw"
  check "$name: zhiyin home" "$home" /var/lib/zhiyin
  check "$name: zhiyin shell" "$shell" /usr/sbin/nologin
  ((uid < 1000)) && ok "$name: zhiyin is a system user (uid $uid)" || bad "$name: zhiyin uid $uid is not a system uid"
  check "$name: zhiyin primary group" "$(in_chroot "$w" getent group "$gid" | cut -d: -f1)" zhiyin
  local groups
  groups=$(in_chroot "$w" id -nG zhiyin | tr ' ' '\n' | sort | tr '\n' ' ')
  check "$name: zhiyin groups" "$groups" "audio render video zhiyin "
  check "$name: /var/lib/zhiyin" "$(in_chroot "$w" stat -c '%U:%G %a' /var/lib/zhiyin)" "zhiyin:zhiyin 750"
  check "$name: /var/lib/zhiyin/models" "$(in_chroot "$w" stat -c '%U:%G %a' /var/lib/zhiyin/models)" "zhiyin:zhiyin 750"
  check "$name: /etc/zhiyin" "$(in_chroot "$w" stat -c '%U:%G %a' /etc/zhiyin)" "root:zhiyin 750"
  check "$name: /etc/zhiyin/zhiyin.yaml" "$(in_chroot "$w" stat -c '%U:%G %a' /etc/zhiyin/zhiyin.yaml)" "root:zhiyin 640"
  check "$name: conffiles" "$(in_chroot "$w" dpkg-query -W -f='${Conffiles}' zhiyin | awk 'NF { print $1 }')" /etc/zhiyin/zhiyin.yaml
  [[ ! -e $w/etc/systemd/system/multi-user.target.wants/zhiyin.service ]] &&
    ok "$name: zhiyin.service not enabled by the installation" || bad "$name: zhiyin.service was enabled by the installation"

  local vj
  if vj=$(in_chroot "$w" zhiyin version --json 2>&1); then
    ok "$name: zhiyin version"
    printf '%s\n' "$vj" | sed 's/^/    /' >&2
    check "$name: ONNX Runtime library" "$(jq_field onnxruntime_library <<<"$vj")" /usr/lib/zhiyin/libonnxruntime.so.1
    check "$name: ONNX Runtime loaded" "$(jq_field onnxruntime_error <<<"$vj")" ""
  else
    bad "$name: zhiyin version failed: $vj"
  fi
  local out
  if out=$(as_zhiyin "$w" zhiyin check-config 2>&1); then
    ok "$name: zhiyin check-config as user zhiyin (reads /etc/zhiyin/zhiyin.yaml)"
  else
    bad "$name: zhiyin check-config as user zhiyin failed:"
    printf '%s\n' "$out" | sed 's/^/    /' >&2
  fi
}

# jq_field NAME: a top-level string field of the indented, flat JSON object
# `zhiyin version --json` prints (no escapes in the values checked here).
jq_field() { sed -n "s/^  \"$1\": \"\(.*\)\",\{0,1\}\$/\1/p"; }

# --- systemd chroot: the full tour --------------------------------------------

t=$SECONDS
w=$(new_work systemd)
apt_install "$w" "$deb" "$logs/install-systemd.log"
grep -q 'zhiyin is installed but not started' "$logs/install-systemd.log" &&
  ok "systemd: first install prints the next steps and does not start the daemon" ||
  bad "systemd: first-install message missing (log: $logs/install-systemd.log)"
check_installed "$w"

# doctor as the daemon's user: what it reports is what the service will meet.
set +e
doctor_out=$(as_zhiyin "$w" zhiyin doctor 2>&1)
doctor_rc=$?
set -e
if [[ $doctor_rc -eq 2 && $doctor_out == *'unknown command "doctor"'* ]]; then
  log "SKIP systemd: 'zhiyin doctor' does not exist in this build yet (unknown command); not checked"
else
  printf '%s\n' "$doctor_out" | sed 's/^/    /' >&2
  if [[ $doctor_rc -eq 0 ]]; then ok "systemd: zhiyin doctor (exit 0)"; else bad "systemd: zhiyin doctor exited $doctor_rc"; fi
fi

# The bundled models (/usr/share/zhiyin/models) are found and intact.
set +e
models_out=$(as_zhiyin "$w" zhiyin models verify 2>&1)
models_rc=$?
set -e
if [[ $models_rc -eq 2 && $models_out == *'unknown command "models"'* ]]; then
  log "SKIP systemd: 'zhiyin models' does not exist in this build yet; not checked"
else
  printf '%s\n' "$models_out" | sed 's/^/    /' >&2
  check "systemd: zhiyin models verify (bundled models, as zhiyin) exit status" "$models_rc" 0
  [[ $models_out == *silero-vad* ]] && ok "systemd: the bundled silero-vad model is found" ||
    bad "systemd: zhiyin models verify does not mention silero-vad"
fi

# serve: the installed daemon, as the zhiyin user, on a listener passed the
# way zhiyin.socket passes it (LISTEN_FDS, through systemd-socket-activate,
# which execs zhiyin on the first connection in its own PID). Answers
# /healthz, then SIGTERM must end it with exit status 0 within the unit's
# TimeoutStopSec (45s).
serve_pid=
serve_smoke() {
  local w=$1 port code rc t0 try
  if ! in_chroot "$w" zhiyin serve --help >/dev/null 2>&1; then
    log "SKIP systemd: 'zhiyin serve' does not exist in this build yet; not checked"
    return
  fi
  for try in 1 2 3; do
    port=$((20000 + RANDOM % 20000))
    # setpriv, sh -c exec, systemd-socket-activate and zhiyin keep one PID.
    chroot "$w" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
      setpriv --reuid=zhiyin --regid=zhiyin --init-groups --reset-env -- \
      /bin/sh -c "umask 0027; exec systemd-socket-activate -l 127.0.0.1:$port \
        /usr/bin/zhiyin serve --config /etc/zhiyin/zhiyin.yaml" >"$logs/serve.log" 2>&1 &
    serve_pid=$!
    sleep 0.5
    kill -0 "$serve_pid" 2>/dev/null && break # else the port was taken: another one
    wait "$serve_pid" || true
    serve_pid=
  done
  [[ -n $serve_pid ]] || { bad "systemd: serve: no free port (log: $logs/serve.log)"; return; }
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 120 "http://127.0.0.1:$port/healthz" || true)
  check "systemd: zhiyin serve (socket-activated, as zhiyin) answers /healthz" "$code" 200
  # Readiness (models warm) is reported, not required: what must be ready
  # with the shipped configuration is the daemon's business.
  local ready i
  for i in $(seq 1 30); do
    ready=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/readyz" || true)
    [[ $ready == 200 ]] && break
    sleep 1
  done
  log "     /readyz $ready after ${i}s: $(curl -s --max-time 5 "http://127.0.0.1:$port/readyz" | head -c 300)"
  t0=$SECONDS
  kill -TERM "$serve_pid" 2>/dev/null || true
  rc=0
  wait "$serve_pid" || rc=$?
  serve_pid=
  check "systemd: zhiyin serve exit status after SIGTERM" "$rc" 0
  (( SECONDS - t0 < 45 )) && ok "systemd: zhiyin serve stopped in $((SECONDS - t0))s (< TimeoutStopSec=45s)" ||
    bad "systemd: zhiyin serve took $((SECONDS - t0))s to stop (TimeoutStopSec=45s)"
  local leaks
  leaks=$(in_chroot "$w" find /var/lib/zhiyin ! -user zhiyin -o -perm /o=rwx)
  check "systemd: files the daemon wrote in /var/lib/zhiyin are zhiyin's, none world-accessible" "$leaks" ""
  ((rc == 0)) || sed 's/^/    /' "$logs/serve.log" | tail -n 30 >&2
}
serve_smoke "$w"

# Installed units, checked against the chroot's own systemd units.
verify_out=$(systemd-analyze verify --man=no --root="$w" zhiyin.service zhiyin.socket 2>&1) && verify_rc=0 || verify_rc=$?
if [[ $verify_rc -eq 0 && -z $verify_out ]]; then
  ok "systemd: systemd-analyze verify --root=<chroot> zhiyin.service zhiyin.socket: clean"
else
  bad "systemd: systemd-analyze verify (exit $verify_rc):"
  printf '%s\n' "$verify_out" | sed 's/^/    /' >&2
fi

# Upgrade: a local edit of the configuration survives a newer package.
edit="# package-test: local edit $$"
printf '%s\n' "$edit" >>"$w/etc/zhiyin/zhiyin.yaml"
echo keep >"$w/var/lib/zhiyin/customer-data"
chown 0:0 "$w/var/lib/zhiyin/customer-data"
"$root/scripts/package.sh" --version "$next_version" --out "$cache/work/next" --only deb >/dev/null
apt_install "$w" "$cache/work/next/zhiyin_${next_version}_amd64.deb" "$logs/upgrade-systemd.log"
check "systemd: upgraded version" "$(in_chroot "$w" dpkg-query -W -f='${Version}' zhiyin)" "$next_version"
grep -qxF "$edit" "$w/etc/zhiyin/zhiyin.yaml" && ok "systemd: local edit of /etc/zhiyin/zhiyin.yaml kept on upgrade" ||
  bad "systemd: local edit of /etc/zhiyin/zhiyin.yaml lost on upgrade"
check "systemd: /etc/zhiyin/zhiyin.yaml after upgrade" "$(in_chroot "$w" stat -c '%U:%G %a' /etc/zhiyin/zhiyin.yaml)" "root:zhiyin 640"
leftovers=$(find "$w/etc/zhiyin" -name '*.dpkg-*')
check "systemd: no .dpkg-new/.dpkg-dist after upgrade" "$leftovers" ""

# Remove, then purge: the customer's data and the user stay.
in_chroot "$w" apt-get remove -y -q zhiyin >"$logs/remove-systemd.log" 2>&1 || die "apt-get remove zhiyin failed (log: $logs/remove-systemd.log)"
[[ ! -e $w/usr/bin/zhiyin && -f $w/etc/zhiyin/zhiyin.yaml ]] && ok "systemd: remove keeps the configuration" || bad "systemd: remove: binary still there or configuration gone"
in_chroot "$w" dpkg --purge zhiyin >"$logs/purge-systemd.log" 2>&1 || die "dpkg --purge zhiyin failed (log: $logs/purge-systemd.log)"
check "systemd: purge keeps /var/lib/zhiyin" "$(cat "$w/var/lib/zhiyin/customer-data" 2>&1)" keep
in_chroot "$w" getent passwd zhiyin >/dev/null && ok "systemd: purge keeps the zhiyin user" || bad "systemd: purge removed the zhiyin user"
unmount_under "$w"
log "systemd chroot done in $((SECONDS - t))s"

# --- minbase chroot: no systemd, useradd fallback ------------------------------

t=$SECONDS
w=$(new_work minbase)
[[ ! -e $w/usr/bin/systemd-sysusers ]] || die "the minbase chroot has systemd; the fallback path would not be tested"
apt_install "$w" "$deb" "$logs/install-minbase.log"
check_installed "$w"
unmount_under "$w"
log "minbase chroot done in $((SECONDS - t))s"

# --- rpm ----------------------------------------------------------------------

t=$SECONDS
files=$(rpm -qpl "$rpmfile")
for p in /usr/bin/zhiyin /usr/lib/zhiyin/libonnxruntime.so.1 /usr/lib/zhiyin/libonnxruntime.so \
  /usr/lib/systemd/system/zhiyin.service /usr/lib/systemd/system/zhiyin.socket \
  /usr/lib/sysusers.d/zhiyin.conf /usr/lib/tmpfiles.d/zhiyin.conf /etc/zhiyin/zhiyin.yaml \
  /usr/share/zhiyin/models/silero-vad/silero_vad.onnx /usr/share/doc/zhiyin/README.md; do
  grep -qxF "$p" <<<"$files" && ok "rpm: contains $p" || bad "rpm: $p missing"
done
check "rpm: config files (rpm -qpc)" "$(rpm -qpc "$rpmfile")" /etc/zhiyin/zhiyin.yaml
check "rpm: zhiyin.yaml is %config(noreplace)" \
  "$(rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$rpmfile" | awk '$2 == "/etc/zhiyin/zhiyin.yaml" { print $1 }')" cn
scripts=$(rpm -qp --scripts "$rpmfile")
for s in preinstall postinstall preuninstall postuninstall; do
  grep -q "^$s scriptlet" <<<"$scripts" && ok "rpm: has a $s scriptlet" || bad "rpm: no $s scriptlet"
done
grep -q 'systemctl try-restart zhiyin.service' <<<"$scripts" && ok "rpm: upgrade restarts a running daemon" || bad "rpm: no try-restart in the scriptlets"

# Install into an empty rpm database, edit the configuration, upgrade: rpm
# must keep the edit. Scripts are skipped (no shell in the empty root).
rr=$cache/work/rpmroot
mkdir -p "$rr"
rpm --root "$rr" --initdb
"$root/scripts/package.sh" --version "$next_version" --out "$cache/work/next" --only rpm >/dev/null
rpm_quiet() { rpm --root "$rr" --nodeps --noscripts --nosignature "$@" 2>&1 | grep -vE 'does not exist - using root|use Alien instead|assuming you know what you are doing' || true; }
rpm_quiet -i "$rpmfile"
printf '%s\n' "$edit" >>"$rr/etc/zhiyin/zhiyin.yaml"
rpm_quiet -U "$cache/work/next/zhiyin-${next_version}.x86_64.rpm"
check "rpm: upgraded version" "$(rpm --root "$rr" -q --qf '%{VERSION}' zhiyin)" "$next_version"
grep -qxF "$edit" "$rr/etc/zhiyin/zhiyin.yaml" && ok "rpm: local edit of /etc/zhiyin/zhiyin.yaml kept on upgrade" ||
  bad "rpm: local edit of /etc/zhiyin/zhiyin.yaml lost on upgrade"
log "rpm checks done in $((SECONDS - t))s"

if ((failures)); then
  die "$failures check(s) failed ($((SECONDS - t_start))s)"
fi
log "all checks passed in $((SECONDS - t_start))s"
