#!/bin/sh
# zhiyin postinstall: create the state directories, tell systemd about the
# new unit, and on an upgrade restart the daemon if it was running. A first
# installation does NOT start or enable the daemon: the integrator must edit
# the configuration and copy the models in first.
#
# Called as:  deb postinst configure [<old-version>] | abort-upgrade | …
#             rpm %post    1 (install) | 2+ (upgrade)
set -e

case "$1" in
configure) if [ -n "$2" ]; then action=upgrade; else action=install; fi ;;
1) action=install ;;
[0-9]*) action=upgrade ;;
*) exit 0 ;; # abort-upgrade, abort-remove, abort-deconfigure: nothing to undo
esac

# /var/lib/zhiyin (database, models): zhiyin:zhiyin 0750. Never emptied.
if command -v systemd-tmpfiles >/dev/null 2>&1; then
	systemd-tmpfiles --create /usr/lib/tmpfiles.d/zhiyin.conf
else
	install -d -m 0750 -o zhiyin -g zhiyin /var/lib/zhiyin /var/lib/zhiyin/models
fi

# Only when systemd is the running init; in a chroot or container there is
# no manager to talk to.
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null || true
	if [ "$action" = upgrade ]; then
		# try-restart: restarts the daemon only if it was running.
		systemctl try-restart zhiyin.service || true
	fi
fi

if [ "$action" = install ]; then
	cat <<'MSG'
zhiyin is installed but not started. Next steps:
  1. edit /etc/zhiyin/zhiyin.yaml (then: zhiyin check-config)
  2. copy the model folders to /var/lib/zhiyin/models (owned by zhiyin)
  3. zhiyin doctor
  4. systemctl enable --now zhiyin
MSG
fi
exit 0
