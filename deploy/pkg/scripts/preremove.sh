#!/bin/sh
# gridedge-agent prerm: stop the agent before its files go away. Unsent
# readings stay in /var/lib/gridedge/buffer and are sent after reinstalling.
set -e

case "$1" in
remove | deconfigure)
	if [ -d /run/systemd/system ]; then
		systemctl stop gridedge-agent.service || true
		systemctl disable gridedge-agent.service || true
	fi
	;;
esac
exit 0
