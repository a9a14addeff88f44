#!/bin/sh
# zhiyin preremove: on removal (not on upgrade), stop and disable the daemon
# and its optional socket, so no enablement link is left pointing at a
# removed unit.
#
# Called as:  deb prerm   remove | upgrade | deconfigure | failed-upgrade
#             rpm %preun  0 (erase) | 1+ (upgrade)
set -e

case "$1" in
remove | 0) ;;
*) exit 0 ;;
esac

if [ -d /run/systemd/system ]; then
	systemctl disable --now zhiyin.service zhiyin.socket >/dev/null 2>&1 || true
elif command -v systemctl >/dev/null 2>&1; then
	# No running manager (chroot, container): drop the links only.
	systemctl --no-reload disable zhiyin.service zhiyin.socket >/dev/null 2>&1 || true
fi
exit 0
