// Command pkg builds the gridedge-agent Debian packages from the
// cross-compiled binaries in bin/ (make cross) into dist/, one per Debian
// architecture:
//
//	armhf  from bin/gridedge-agent-linux-armv6 (GOARM=6: runs on every
//	       Raspberry Pi, including Zero/1, whose Raspberry Pi OS armhf port
//	       targets ARMv6; Debian's own armhf is ARMv7 and runs it too)
//	arm64  from bin/gridedge-agent-linux-arm64
//	amd64  from bin/gridedge-agent-linux-amd64
//
// Usage (from the repository root):
//
//	go run ./deploy/pkg -version "$(git describe --tags --always --dirty)"
//
// Each package installs the binary, the systemd unit, a default config as a
// conffile that upgrades never overwrite, udev rules for the bus groups and
// /var/lib/gridedge, and maintainer scripts that create the gridedge system
// user and groups. It uses nfpm as a library, so no packaging tool is needed
// on the build host.
package main
