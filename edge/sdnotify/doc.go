// Package sdnotify tells systemd how a Type=notify service is doing: ready,
// alive (watchdog keep-alive), stopping, and a free-text status line.
//
// It speaks the sd_notify datagram protocol directly (no libsystemd, no
// cgo): one datagram per message to the unix socket named in NOTIFY_SOCKET,
// where a leading '@' names a socket in the abstract namespace. When the
// process does not run under systemd (NOTIFY_SOCKET unset) every call is a
// no-op, so the agent runs the same way from a shell or a test.
package sdnotify
