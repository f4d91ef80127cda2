package devices

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/gridedge/gridedge/shared/topic"
	"github.com/gridedge/gridedge/shared/wire"
)

// MaxFileBytes bounds the registry file read into memory: 16 MiB holds about
// 200,000 identities.
const MaxFileBytes = 16 << 20

// ReservedCollector is the username of the collector process's own
// connection to its embedded broker. Its secret is generated at every start
// and never written down, so the file may not name it.
const ReservedCollector = "gridedge-collector"

// Identity is who an MQTT username names.
type Identity struct {
	// Username is the MQTT username: "<site>/<device_id>" for a device,
	// a plain name for a collector.
	Username string
	// Site and Device are set for a device and empty for a collector.
	Site, Device string
}

// IsDevice reports whether the identity is a device (not a collector).
func (id Identity) IsDevice() bool { return id.Device != "" }

// ParseUsername checks a username and says whom it names: a device
// ("<site>/<device_id>", both with the device-id characters A-Z a-z 0-9 . _ -)
// or a collector (one such name, no slash).
func ParseUsername(name string) (Identity, error) {
	site, dev, isDevice := strings.Cut(name, "/")
	if !isDevice {
		if err := wire.ValidateDeviceID(name); err != nil {
			return Identity{}, fmt.Errorf("collector name %w", err)
		}
		return Identity{Username: name}, nil
	}
	if err := topic.ValidateSite(site); err != nil {
		return Identity{}, fmt.Errorf("username %q: %w", name, err)
	}
	if err := wire.ValidateDeviceID(dev); err != nil {
		return Identity{}, fmt.Errorf("username %q: device id %w", name, err)
	}
	return Identity{Username: name, Site: site, Device: dev}, nil
}

// Entry is one line of the registry file.
type Entry struct {
	Username string
	// Hash is the bcrypt hash of the secret ($2a$, $2b$ or $2y$).
	Hash string
}

// Parse reads a registry file: one "<username> <bcrypt hash>" per line,
// blank lines and lines starting with '#' ignored. Every error names its
// line. A username listed twice is an error, so a revocation cannot be
// undone by a forgotten duplicate.
func Parse(data []byte) ([]Entry, error) {
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("%d bytes: larger than the %d-byte limit", len(data), MaxFileBytes)
	}
	var out []Entry
	seen := map[string]int{}
	for n, line := range bytes.Split(data, []byte("\n")) {
		lineNo := n + 1
		text := strings.TrimSpace(strings.TrimSuffix(string(line), "\r"))
		if text == "" || text[0] == '#' {
			continue
		}
		fields := strings.Fields(text)
		if len(fields) != 2 {
			return nil, fmt.Errorf("line %d: want \"<username> <bcrypt hash>\", got %d fields", lineNo, len(fields))
		}
		id, err := ParseUsername(fields[0])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", lineNo, err)
		}
		if id.Username == ReservedCollector {
			return nil, fmt.Errorf("line %d: %q is reserved for the collector's own connection", lineNo, id.Username)
		}
		if err := checkHash(fields[1]); err != nil {
			return nil, fmt.Errorf("line %d (%s): %w", lineNo, id.Username, err)
		}
		if prev, dup := seen[id.Username]; dup {
			return nil, fmt.Errorf("line %d: %s is already listed on line %d", lineNo, id.Username, prev)
		}
		seen[id.Username] = lineNo
		out = append(out, Entry{Username: id.Username, Hash: fields[1]})
	}
	return out, nil
}

// checkHash accepts bcrypt hashes only, with a cost bcrypt accepts.
func checkHash(h string) error {
	if !strings.HasPrefix(h, "$2a$") && !strings.HasPrefix(h, "$2b$") && !strings.HasPrefix(h, "$2y$") {
		return errors.New("not a bcrypt hash ($2a$, $2b$ or $2y$)")
	}
	if len(h) != 60 {
		return fmt.Errorf("bcrypt hash of %d characters, want 60", len(h))
	}
	if _, err := bcrypt.Cost([]byte(h)); err != nil {
		return fmt.Errorf("bcrypt hash: %w", err)
	}
	return nil
}

// Format writes entries in the file format, with a header comment.
func Format(entries []Entry) []byte {
	var b bytes.Buffer
	b.WriteString("# gridedge MQTT identities: <username> <bcrypt hash of the secret>.\n")
	b.WriteString("# Managed with: gridedge-collector devices add|revoke|list\n")
	for _, e := range entries {
		b.WriteString(e.Username)
		b.WriteByte(' ')
		b.WriteString(e.Hash)
		b.WriteByte('\n')
	}
	return b.Bytes()
}
