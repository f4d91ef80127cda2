#!/bin/sh
# gridedge-agent preinst: create the service account and the bus groups
# before the files are unpacked, so their ownership resolves.
set -e

ensure_group() {
	if ! getent group "$1" >/dev/null; then
		groupadd --system "$1"
	fi
}

case "$1" in
install | upgrade)
	ensure_group gridedge
	if ! getent passwd gridedge >/dev/null; then
		useradd --system --gid gridedge --home-dir /var/lib/gridedge \
			--no-create-home --shell /usr/sbin/nologin \
			--comment "gridedge meter agent" gridedge
	fi
	# systemd refuses to start a unit whose SupplementaryGroups= names a
	# missing group. Raspberry Pi OS ships i2c, spi and gpio; plain Debian
	# ships dialout only.
	for g in i2c spi gpio dialout; do
		ensure_group "$g"
	done
	usermod --append --groups i2c,spi,gpio,dialout gridedge
	;;
esac
exit 0
