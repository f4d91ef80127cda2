package devices

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a settable clock for the reload rate limit.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func TestAddAuthenticateRevoke(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "devices")
	secrets, err := Add(path, MinCost, "site-1/gw-1", "site-1/gw-2", "dashboard")
	if err != nil {
		t.Fatal(err)
	}
	if len(secrets) != 3 || len(secrets[0]) != 43 || secrets[0] == secrets[1] {
		t.Fatalf("secrets %q", secrets)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets {
		if strings.Contains(string(raw), s) {
			t.Fatal("the registry file holds a secret in clear")
		}
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("registry mode %v, want 0600", fi.Mode().Perm())
	}
	clk := &fakeClock{}
	reg, err := Open(path, WithClock(clk.now))
	if err != nil {
		t.Fatal(err)
	}
	id, err := reg.Authenticate("site-1/gw-1", secrets[0])
	if err != nil || id.Site != "site-1" || id.Device != "gw-1" || !id.IsDevice() {
		t.Fatalf("device: %+v %v", id, err)
	}
	// Second time from the remembered digest; still checked.
	if _, err := reg.Authenticate("site-1/gw-1", secrets[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Authenticate("site-1/gw-1", secrets[1]); !errors.Is(err, ErrBadSecret) {
		t.Fatalf("another device's secret: %v", err)
	}
	if id, err := reg.Authenticate("dashboard", secrets[2]); err != nil || id.IsDevice() {
		t.Fatalf("collector identity: %+v %v", id, err)
	}
	for _, bad := range []struct{ user, secret string }{
		{"site-1/gw-9", secrets[0]}, {"", ""}, {"site-1/gw-1", ""}, {"site-1/gw-1", strings.Repeat("x", 100)},
	} {
		if _, err := reg.Authenticate(bad.user, bad.secret); err == nil {
			t.Errorf("Authenticate(%q, %q) accepted", bad.user, bad.secret)
		}
	}
	if _, err := Add(path, MinCost, "site-1/gw-2"); err == nil || !strings.Contains(err.Error(), "already provisioned") {
		t.Fatalf("double add: %v", err)
	}
	if _, err := Add(path, MinCost, ReservedCollector); err == nil {
		t.Fatal("the reserved collector name was added")
	}
	if err := Revoke(path, "site-1/gw-1"); err != nil {
		t.Fatal(err)
	}
	if err := Revoke(path, "site-1/gw-1"); err == nil {
		t.Fatal("revoking twice succeeded")
	}
	// Within the reload interval the old file still counts; after it the
	// revocation holds, also for the remembered digest.
	if !reg.Known("site-1/gw-1") {
		t.Fatal("reloaded before the interval")
	}
	clk.advance(2 * reloadEvery)
	if reg.Known("site-1/gw-1") {
		t.Fatal("revoked identity still known")
	}
	if _, err := reg.Authenticate("site-1/gw-1", secrets[0]); !errors.Is(err, ErrUnknown) {
		t.Fatalf("revoked: %v", err)
	}
	ids, err := List(path)
	if err != nil || len(ids) != 2 || ids[0].Username != "site-1/gw-2" || ids[1].Username != "dashboard" {
		t.Fatalf("list: %+v %v", ids, err)
	}
}

// A file broken by a manual edit keeps the identities loaded before: it
// neither locks the fleet out nor brings a revoked device back.
func TestMalformedReloadKeepsPreviousIdentities(t *testing.T) {
	path := filepath.Join(t.TempDir(), "devices")
	secrets, err := Add(path, MinCost, "s/a")
	if err != nil {
		t.Fatal(err)
	}
	clk := &fakeClock{}
	reg, err := Open(path, WithClock(clk.now))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("s/a not-a-hash\ns/b not-a-hash\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	clk.advance(2 * reloadEvery)
	if _, err := reg.Authenticate("s/a", secrets[0]); err != nil {
		t.Fatalf("previous identity lost: %v", err)
	}
	if reg.Known("s/b") {
		t.Fatal("malformed file loaded")
	}
}

func TestOpenMissingFileIsEmptyAndMalformedIsError(t *testing.T) {
	dir := t.TempDir()
	reg, err := Open(filepath.Join(dir, "none"))
	if err != nil || reg.Len() != 0 {
		t.Fatalf("missing file: %v", err)
	}
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("s/a x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(bad); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("malformed file: %v", err)
	}
}

// Concurrent adds under the file lock lose nothing.
func TestConcurrentAddsAllLand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "devices")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if _, err := Add(path, MinCost, "s/d"+string(rune('a'+i))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	ids, err := List(path)
	if err != nil || len(ids) != 8 {
		t.Fatalf("%d identities after 8 concurrent adds: %v", len(ids), err)
	}
}

func TestAppendSecret(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secrets")
	for _, u := range []string{"s/a", "s/b"} {
		if err := AppendSecret(path, u, "sec-"+u); err != nil {
			t.Fatal(err)
		}
	}
	raw, _ := os.ReadFile(path)
	if string(raw) != "s/a sec-s/a\ns/b sec-s/b\n" {
		t.Fatalf("secrets file %q", raw)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode().Perm())
	}
}

// BenchmarkAuthenticateRemembered is the cost of a reconnect once the
// secret has been verified (no bcrypt).
func BenchmarkAuthenticateRemembered(b *testing.B) {
	path := filepath.Join(b.TempDir(), "devices")
	secrets, err := Add(path, DefaultCost, "s/a")
	if err != nil {
		b.Fatal(err)
	}
	reg, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := reg.Authenticate("s/a", secrets[0]); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := reg.Authenticate("s/a", secrets[0]); err != nil {
			b.Fatal(err)
		}
	}
}
