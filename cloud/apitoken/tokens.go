package apitoken

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Tokens authenticates bearer tokens against a tokens file, rereading it
// when it changes. It is safe for concurrent use.
type Tokens struct {
	path string
	log  *slog.Logger

	mu       sync.Mutex
	byDigest map[[sha256.Size]byte]Entry
	mtime    time.Time
	size     int64
	statAt   time.Time
}

// Load reads the tokens file at path. A missing, unreadable or broken
// file, or one without a token, is an error.
func Load(path string, log *slog.Logger) (*Tokens, error) {
	t := &Tokens{path: path, log: log}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("apitoken: %w", err)
	}
	if err := t.read(fi); err != nil {
		return nil, err
	}
	if len(t.byDigest) == 0 {
		return nil, fmt.Errorf("%w (%s): add one with `gridedge-collector tokens add`", ErrNoTokens, path)
	}
	return t, nil
}

func (t *Tokens) read(fi os.FileInfo) error {
	if fi.Size() > MaxFileBytes {
		return fmt.Errorf("apitoken: %s: %d bytes, limit %d", t.path, fi.Size(), MaxFileBytes)
	}
	data, err := os.ReadFile(t.path)
	if err != nil {
		return fmt.Errorf("apitoken: %w", err)
	}
	es, err := Parse(data)
	if err != nil {
		return fmt.Errorf("apitoken: %s: %w", t.path, err)
	}
	m := make(map[[sha256.Size]byte]Entry, len(es))
	for _, e := range es {
		m[e.Digest] = e
	}
	t.byDigest, t.mtime, t.size = m, fi.ModTime(), fi.Size()
	return nil
}

// reload rereads the file if its metadata changed (looked at at most once
// a second). A broken file is logged and the tokens loaded before stay.
func (t *Tokens) reload() {
	now := time.Now()
	if now.Sub(t.statAt) < time.Second {
		return
	}
	t.statAt = now
	fi, err := os.Stat(t.path)
	if err != nil {
		t.log.Error("API tokens file unreadable; keeping the tokens loaded before", "path", t.path, "err", err)
		return
	}
	if fi.ModTime().Equal(t.mtime) && fi.Size() == t.size {
		return
	}
	if err := t.read(fi); err != nil {
		t.log.Error("API tokens file broken; keeping the tokens loaded before", "err", err)
		return
	}
	t.log.Info("API tokens reloaded", "path", t.path, "tokens", len(t.byDigest))
}

// Authenticate returns the entry of token; ok is false for an unknown one.
func (t *Tokens) Authenticate(token string) (e Entry, ok bool) {
	d := Digest(token)
	t.mu.Lock()
	t.reload()
	e, ok = t.byDigest[d]
	t.mu.Unlock()
	// The lookup is by digest; compare it once more in constant time.
	if !ok || subtle.ConstantTimeCompare(e.Digest[:], d[:]) != 1 {
		return Entry{}, false
	}
	return e, true
}
