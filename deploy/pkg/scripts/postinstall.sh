#!/bin/sh
# gridedge-agent postinst: own the data directory and config, register the
# unit. On first install the service is enabled but not started: the shipped
# config has placeholders. On upgrade a running agent is restarted.
set -e

case "$1" in
configure)
	install -d -o gridedge -g gridedge -m 0750 /var/lib/gridedge
	chown root:gridedge /etc/gridedge/agent.yaml
	chmod 0640 /etc/gridedge/agent.yaml
	if command -v udevadm >/dev/null && [ -d /run/udev ]; then
		udevadm control --reload-rules || true
		udevadm trigger --subsystem-match=i2c-dev --subsystem-match=spidev \
			--subsystem-match=gpio || true
	fi
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload
		systemctl enable gridedge-agent.service
		if [ -n "$2" ]; then
			systemctl try-restart gridedge-agent.service
		else
			echo "gridedge-agent: edit /etc/gridedge/agent.yaml, then run: systemctl start gridedge-agent"
		fi
	fi
	;;
esac
exit 0
