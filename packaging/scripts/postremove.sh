#!/bin/sh
# zhiyin postremove: tell systemd the unit is gone. Removes NOTHING of the
# customer's data, not even on purge: /var/lib/zhiyin (conversations
# database, installed models) and the zhiyin user stay until an operator
# deletes them. (dpkg --purge itself deletes /etc/zhiyin/zhiyin.yaml, as it
# does every package's configuration files; rpm -e keeps a modified one as
# zhiyin.yaml.rpmsave.)
#
# Called as:  deb postrm   remove | purge | upgrade | disappear | abort-* | failed-upgrade
#             rpm %postun  0 (erase) | 1+ (upgrade)
set -e

if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi

case "$1" in
remove | purge | 0)
	if [ -d /var/lib/zhiyin ]; then
		echo "zhiyin: kept /var/lib/zhiyin and the zhiyin user (customer data); delete them by hand if intended."
	fi
	;;
esac
exit 0
