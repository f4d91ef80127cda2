package devices

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Authentication failures. Both are wrapped with the username.
var (
	// ErrUnknown: the username is not in the registry (never provisioned,
	// revoked, or not a valid username).
	ErrUnknown = errors.New("unknown identity")
	// ErrBadSecret: the username is known and the secret is wrong.
	ErrBadSecret = errors.New("wrong secret")
)

// maxSecretBytes is bcrypt's input limit; longer secrets are refused
// before hashing.
const maxSecretBytes = 72

// reloadEvery bounds how often the file's metadata is checked for changes.
const reloadEvery = time.Second

// Registry checks credentials against the registry file. It is safe for
// concurrent use. Memory: one entry per identity in the file, plus one
// 32-byte digest per identity that has authenticated since the broker
// started.
type Registry struct {
	path string
	log  *slog.Logger
	now  func() time.Time
	key  []byte        // keys the digests of verified secrets; random per process
	sem  chan struct{} // bounds concurrent bcrypt verifications

	// entries maps username → bcrypt hash; replaced whole on reload, never
	// modified, so lookups take no lock.
	entries atomic.Pointer[map[string]string]
	checked atomic.Int64 // unix ns of the last look at the file's metadata

	mu       sync.Mutex          // guards stamp, verified and reloading
	stamp    fileStamp           // the version of the file loaded
	verified map[string][32]byte // username → digest of the secret that matched its current hash
}

// RegistryOption changes a Registry.
type RegistryOption func(*Registry)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) RegistryOption { return func(r *Registry) { r.log = l } }

// WithClock replaces time.Now for the reload rate limit (tests).
func WithClock(now func() time.Time) RegistryOption { return func(r *Registry) { r.now = now } }

// fileStamp identifies one version of the file.
type fileStamp struct {
	exists bool
	mod    time.Time
	size   int64
	ino    uint64
}

// Open loads the registry at path. A missing file is an empty registry
// (every device refused, with a warning naming the command that adds one);
// an unreadable or malformed file is an error.
func Open(path string, opts ...RegistryOption) (*Registry, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("devices: %w", err)
	}
	r := &Registry{path: path, log: slog.Default(), now: time.Now, key: key,
		sem: make(chan struct{}, max(1, runtime.GOMAXPROCS(0))), verified: map[string][32]byte{}}
	for _, o := range opts {
		o(r)
	}
	st, err := stampOf(path)
	if err != nil {
		return nil, fmt.Errorf("devices: %w", err)
	}
	entries, err := load(path, st)
	if err != nil {
		return nil, err
	}
	r.entries.Store(&entries)
	r.stamp = st
	r.checked.Store(r.now().UnixNano())
	if !st.exists {
		r.log.Warn("no MQTT identities provisioned yet: every device will be refused; add one with `gridedge-collector devices add <site>/<device_id>`", "file", path)
	}
	return r, nil
}

// Path is the registry file.
func (r *Registry) Path() string { return r.path }

// Len is the number of identities loaded.
func (r *Registry) Len() int { return len(*r.entries.Load()) }

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fileStamp{}, nil
	}
	if err != nil {
		return fileStamp{}, err
	}
	st := fileStamp{exists: true, mod: fi.ModTime(), size: fi.Size()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = uint64(sys.Ino)
	}
	return st, nil
}

func load(path string, st fileStamp) (map[string]string, error) {
	entries := map[string]string{}
	if !st.exists {
		return entries, nil
	}
	if st.size > MaxFileBytes {
		return nil, fmt.Errorf("devices: %s: %d bytes, larger than the %d-byte limit", path, st.size, MaxFileBytes)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("devices: %w", err)
	}
	list, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("devices: %s: %w", path, err)
	}
	for _, e := range list {
		entries[e.Username] = e.Hash
	}
	return entries, nil
}

// refresh reloads the file if it changed, at most once per reloadEvery. A
// file that became malformed keeps the previous identities (logged): a
// botched manual edit must neither lock the fleet out nor bring back a
// revoked device.
func (r *Registry) refresh() {
	now := r.now().UnixNano()
	last := r.checked.Load()
	if now-last < int64(reloadEvery) || !r.checked.CompareAndSwap(last, now) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	st, err := stampOf(r.path)
	if err != nil {
		r.log.Error("device registry unreadable; keeping the identities loaded before", "file", r.path, "err", err)
		return
	}
	if st == r.stamp {
		return
	}
	entries, err := load(r.path, st)
	if err != nil {
		r.log.Error("device registry changed but is not valid; keeping the identities loaded before", "err", err)
		r.stamp = st // report once per change, not once a second
		return
	}
	for user := range r.verified {
		if _, ok := entries[user]; !ok {
			delete(r.verified, user)
		}
	}
	r.log.Info("device registry reloaded", "file", r.path, "identities", len(entries), "before", r.Len())
	r.entries.Store(&entries)
	r.stamp = st
}

// Known reports whether username is (still) in the registry. The broker
// asks on every publish and subscribe, so a revoked device loses its
// connection at its next packet.
func (r *Registry) Known(username string) bool {
	r.refresh()
	_, ok := (*r.entries.Load())[username]
	return ok
}

// Authenticate checks secret against username's hash and returns whom the
// username names. Errors wrap ErrUnknown or ErrBadSecret.
func (r *Registry) Authenticate(username, secret string) (Identity, error) {
	id, err := ParseUsername(username)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %v", ErrUnknown, err)
	}
	if len(secret) > maxSecretBytes || secret == "" {
		return Identity{}, fmt.Errorf("%s: %w", username, ErrBadSecret)
	}
	r.refresh()
	hash, ok := (*r.entries.Load())[username]
	r.mu.Lock()
	cached, isCached := r.verified[username]
	r.mu.Unlock()
	if !ok {
		return Identity{}, fmt.Errorf("%s: %w", username, ErrUnknown)
	}
	digest := r.digest(hash, secret)
	if isCached && hmac.Equal(cached[:], digest[:]) {
		return id, nil
	}
	r.sem <- struct{}{}
	err = bcrypt.CompareHashAndPassword([]byte(hash), []byte(secret))
	<-r.sem
	if err != nil {
		return Identity{}, fmt.Errorf("%s: %w", username, ErrBadSecret)
	}
	r.mu.Lock()
	if (*r.entries.Load())[username] == hash {
		r.verified[username] = digest
	}
	r.mu.Unlock()
	return id, nil
}

// digest binds a secret to the hash it matched, so a changed hash (the
// device re-provisioned) invalidates what was remembered.
func (r *Registry) digest(hash, secret string) [32]byte {
	m := hmac.New(sha256.New, r.key)
	m.Write([]byte(hash))
	m.Write([]byte{0})
	m.Write([]byte(secret))
	var out [32]byte
	copy(out[:], m.Sum(nil))
	return out
}
