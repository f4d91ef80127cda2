package devices

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"

	"golang.org/x/crypto/bcrypt"

	"github.com/gridedge/gridedge/shared/atomicfile"
)

// DefaultCost is the bcrypt cost of stored hashes: about 70 ms of one core
// per verification on a shared x86 core, paid once per identity per broker
// start. MinCost (about 1 ms) suits simulated fleets of thousands.
const (
	DefaultCost = 10
	MinCost     = bcrypt.MinCost
	MaxCost     = 14
)

// GenerateSecret returns 32 random bytes in base64url without padding (43
// characters): safe in YAML, shell words and MQTT password fields.
func GenerateSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("devices: generate secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Add provisions usernames in the registry file at path (created with mode
// 0600 if missing), hashing with bcrypt at cost, and returns their
// generated secrets in the same order. Secrets are stored only as hashes:
// show them once. All or none are added: a username already listed, given
// twice or invalid is an error (revoke it first to issue a new secret).
func Add(path string, cost int, usernames ...string) ([]string, error) {
	if cost < MinCost || cost > MaxCost {
		return nil, fmt.Errorf("devices: bcrypt cost %d outside %d..%d", cost, MinCost, MaxCost)
	}
	if len(usernames) == 0 {
		return nil, errors.New("devices: no username given")
	}
	fresh := make([]Entry, len(usernames))
	secrets := make([]string, len(usernames))
	seen := map[string]bool{}
	for i, name := range usernames {
		if _, err := ParseUsername(name); err != nil {
			return nil, fmt.Errorf("devices: %w", err)
		}
		if name == ReservedCollector {
			return nil, fmt.Errorf("devices: %q is reserved for the collector's own connection", name)
		}
		if seen[name] {
			return nil, fmt.Errorf("devices: %s given twice", name)
		}
		seen[name] = true
		secret, err := GenerateSecret()
		if err != nil {
			return nil, err
		}
		hash, err := bcrypt.GenerateFromPassword([]byte(secret), cost)
		if err != nil {
			return nil, fmt.Errorf("devices: hash: %w", err)
		}
		fresh[i], secrets[i] = Entry{Username: name, Hash: string(hash)}, secret
	}
	err := update(path, func(entries []Entry) ([]Entry, error) {
		for _, e := range entries {
			if seen[e.Username] {
				return nil, fmt.Errorf("%s is already provisioned (revoke it first to issue a new secret)", e.Username)
			}
		}
		return append(entries, fresh...), nil
	})
	if err != nil {
		return nil, err
	}
	return secrets, nil
}

// Revoke removes username from the registry file. A running broker refuses
// it from its next connect, publish or subscribe (within a second).
func Revoke(path, username string) error {
	return update(path, func(entries []Entry) ([]Entry, error) {
		i := slices.IndexFunc(entries, func(e Entry) bool { return e.Username == username })
		if i < 0 {
			return nil, fmt.Errorf("%s is not provisioned", username)
		}
		return slices.Delete(entries, i, i+1), nil
	})
}

// List returns the identities in the registry file, in file order. A
// missing file lists nothing.
func List(path string) ([]Identity, error) {
	entries, err := read(path)
	if err != nil {
		return nil, err
	}
	out := make([]Identity, 0, len(entries))
	for _, e := range entries {
		id, err := ParseUsername(e.Username)
		if err != nil {
			return nil, fmt.Errorf("devices: %w", err) // Parse already checked; kept for safety
		}
		out = append(out, id)
	}
	return out, nil
}

// AppendSecret appends "<username> <secret>" to a provisioning file at path
// (created with mode 0600), the format gridedge-sim -credentials reads.
func AppendSecret(path, username, secret string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("devices: secrets file: %w", err)
	}
	if _, err := fmt.Fprintf(f, "%s %s\n", username, secret); err != nil {
		f.Close()
		return fmt.Errorf("devices: secrets file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("devices: secrets file %s: %w", path, err)
	}
	return nil
}

func read(path string) ([]Entry, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("devices: %w", err)
	}
	entries, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("devices: %s: %w", path, err)
	}
	return entries, nil
}

// update rewrites the file under an exclusive lock (concurrent commands
// do not lose each other's changes), atomically (a reader never sees a torn
// file).
func update(path string, change func([]Entry) ([]Entry, error)) error {
	err := atomicfile.Update(path, func(old []byte) ([]byte, error) {
		entries, err := Parse(old)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if entries, err = change(entries); err != nil {
			return nil, err
		}
		return Format(entries), nil
	})
	if err != nil {
		return fmt.Errorf("devices: %w", err)
	}
	return nil
}
