#!/bin/sh
# zhiyin preinstall: create the zhiyin system user and its groups before the
# files are unpacked, so that /etc/zhiyin (root:zhiyin 0750) and the shipped
# configuration (root:zhiyin 0640) land with the right group.
#
# Called as:  deb preinst  install|upgrade [<old-version>]
#             rpm %pre     1 (install) | 2+ (upgrade)
# Idempotent: an existing user or group is left as it is (it only gains the
# missing supplementary groups).
set -e

create_user() {
	if command -v systemd-sysusers >/dev/null 2>&1; then
		# The same lines as /usr/lib/sysusers.d/zhiyin.conf (systemd/zhiyin.sysusers;
		# packaging_test.go keeps the two identical). --replace makes sysusers treat
		# them as that file, which is not unpacked yet.
		systemd-sysusers --replace=/usr/lib/sysusers.d/zhiyin.conf - <<'SYSUSERS'
u zhiyin - "zhiyin customer service daemon" /var/lib/zhiyin /usr/sbin/nologin
m zhiyin audio
m zhiyin video
m zhiyin render
SYSUSERS
		return
	fi

	# No systemd (containers, sysvinit): shadow-utils (Debian: passwd, which
	# is Priority: required; RHEL: shadow-utils).
	shell=/usr/sbin/nologin
	[ -x "$shell" ] || shell=/sbin/nologin
	[ -x "$shell" ] || shell=/bin/false
	for g in zhiyin audio video render; do
		getent group "$g" >/dev/null || groupadd --system "$g"
	done
	if ! getent passwd zhiyin >/dev/null; then
		useradd --system --gid zhiyin --groups audio,video,render \
			--home-dir /var/lib/zhiyin --no-create-home --shell "$shell" \
			--comment "zhiyin customer service daemon" zhiyin
	fi
	for g in audio video render; do
		id -nG zhiyin | tr ' ' '\n' | grep -qx "$g" || usermod --append --groups "$g" zhiyin
	done
}

case "$1" in
install | upgrade | [0-9]*) create_user ;;
esac
exit 0
