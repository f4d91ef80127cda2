// Package quickstart keeps a newcomer's first hour true. Its tests run what
// README.md tells a new user to run, against a fresh build:
//
//   - every fenced shell block of README.md marked ```sh runnable, in order,
//     as one bash script with set -euo pipefail in a scratch directory (bin/
//     is the fresh build; the repository's edge/, deploy/ and testdata/ are
//     linked in; 127.0.0.1:8080 and 127.0.0.1:1883 become free ports; make
//     runs in the repository with BIN pointing at the scratch bin/; curl
//     fails on an HTTP error);
//   - `make demo` on free ports: it serves the API, the blocks marked
//     ```sh runnable=demo run against it, and an interrupt (Ctrl-C, sent to
//     its process group as a terminal does) stops it cleanly, leaving no
//     process behind.
//
// Blocks that need a gateway's hardware or root (installing the .deb,
// systemctl, probing real buses) are not marked and not run.
package quickstart
