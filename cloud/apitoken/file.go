package apitoken

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/gridedge/gridedge/shared/atomicfile"
)

// Role is what a token may do.
type Role string

const (
	// RoleRead may read every API resource and the metrics.
	RoleRead Role = "read"
	// RoleAdmin may also read raw dead-letter payloads.
	RoleAdmin Role = "admin"
)

// Allows reports whether r includes need.
func (r Role) Allows(need Role) bool { return r == RoleAdmin || r == need }

// MaxFileBytes bounds the tokens file read into memory.
const MaxFileBytes = 1 << 20

// tokenPrefix marks gridedge API tokens (secret scanners can find them).
const tokenPrefix = "gdt_"

// Entry is one line of the tokens file.
type Entry struct {
	Role   Role
	Digest [sha256.Size]byte
	Name   string
}

func validName(n string) error {
	if n == "" || len(n) > 64 {
		return fmt.Errorf("name %q: must be 1..64 characters", n)
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == '@') {
			return fmt.Errorf("name %q: character %q not allowed (use A-Z a-z 0-9 . _ - @)", n, c)
		}
	}
	return nil
}

// Parse reads a tokens file: "<role> <sha256 hex> <name>" lines, blank
// lines and # comments. Errors name the line, never a digest.
func Parse(data []byte) ([]Entry, error) {
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("tokens file of %d bytes, limit %d", len(data), MaxFileBytes)
	}
	var out []Entry
	names := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), MaxFileBytes)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		f := strings.Fields(text)
		if len(f) != 3 {
			return nil, fmt.Errorf("line %d: want \"<role> <sha256 hex> <name>\", got %d fields", line, len(f))
		}
		e := Entry{Role: Role(f[0]), Name: f[2]}
		if e.Role != RoleRead && e.Role != RoleAdmin {
			return nil, fmt.Errorf("line %d: role %q: want read or admin", line, f[0])
		}
		d, err := hex.DecodeString(f[1])
		if err != nil || len(d) != sha256.Size {
			return nil, fmt.Errorf("line %d: not a SHA-256 digest in hex (64 characters)", line)
		}
		copy(e.Digest[:], d)
		if err := validName(e.Name); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if names[e.Name] {
			return nil, fmt.Errorf("line %d: name %s listed twice", line, e.Name)
		}
		names[e.Name] = true
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// Format writes entries in the file format, with a header comment.
func Format(entries []Entry) []byte {
	var b bytes.Buffer
	b.WriteString("# gridedge collector HTTP API tokens: <role> <sha256 of the token> <name>.\n# Managed with `gridedge-collector tokens add|revoke|list`.\n")
	for _, e := range entries {
		fmt.Fprintf(&b, "%s %s %s\n", e.Role, hex.EncodeToString(e.Digest[:]), e.Name)
	}
	return b.Bytes()
}

// Digest is the SHA-256 of a token.
func Digest(token string) [sha256.Size]byte { return sha256.Sum256([]byte(token)) }

// Add generates a token with role under name, stores its digest in the file
// at path (created with mode 0600 if missing) and returns the token: show
// it once, it is not stored. A name already listed is an error (revoke it
// first).
func Add(path string, role Role, name string) (string, error) {
	if role != RoleRead && role != RoleAdmin {
		return "", fmt.Errorf("apitoken: role %q: want read or admin", role)
	}
	if err := validName(name); err != nil {
		return "", fmt.Errorf("apitoken: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("apitoken: generate: %w", err)
	}
	token := tokenPrefix + base64.RawURLEncoding.EncodeToString(raw)
	err := update(path, func(es []Entry) ([]Entry, error) {
		if slices.ContainsFunc(es, func(e Entry) bool { return e.Name == name }) {
			return nil, fmt.Errorf("%s already has a token (revoke it first)", name)
		}
		return append(es, Entry{Role: role, Digest: Digest(token), Name: name}), nil
	})
	if err != nil {
		return "", err
	}
	return token, nil
}

// Revoke removes the token named name from the file at path.
func Revoke(path, name string) error {
	return update(path, func(es []Entry) ([]Entry, error) {
		i := slices.IndexFunc(es, func(e Entry) bool { return e.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("no token named %s", name)
		}
		return slices.Delete(es, i, i+1), nil
	})
}

// List returns the file's entries (roles and names; digests are useless
// without the tokens).
func List(path string) ([]Entry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("apitoken: %w", err)
	}
	es, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("apitoken: %s: %w", path, err)
	}
	return es, nil
}

func update(path string, change func([]Entry) ([]Entry, error)) error {
	err := atomicfile.Update(path, func(old []byte) ([]byte, error) {
		es, err := Parse(old)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if es, err = change(es); err != nil {
			return nil, err
		}
		return Format(es), nil
	})
	if err != nil {
		return fmt.Errorf("apitoken: %w", err)
	}
	return nil
}

// ErrNoTokens is returned by Load for a file without any token.
var ErrNoTokens = errors.New("apitoken: the tokens file lists no token")
