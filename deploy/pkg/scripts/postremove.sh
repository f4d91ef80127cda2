#!/bin/sh
# gridedge-agent postrm: purge deletes the buffer and state, including
# readings the collector has not acknowledged. Remove keeps them. The
# gridedge account is kept (files elsewhere may still belong to it).
set -e

case "$1" in
purge)
	rm -rf /var/lib/gridedge
	rm -f /etc/gridedge/agent.yaml
	rmdir /etc/gridedge 2>/dev/null || true
	;;
remove)
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload || true
	fi
	;;
esac
exit 0
