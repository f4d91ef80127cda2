package apitoken

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestAddAuthenticateRevoke(t *testing.T) {
	path := filepath.Join(t.TempDir(), "etc", "api-tokens")
	rd, err := Add(path, RoleRead, "grafana")
	if err != nil {
		t.Fatal(err)
	}
	ad, err := Add(path, RoleAdmin, "ops")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Add(path, RoleRead, "grafana"); err == nil {
		t.Fatal("a second token under one name: want an error")
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), rd) || strings.Contains(string(data), ad) {
		t.Fatal("the tokens file contains a token in clear")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("tokens file mode %v, want 0600", fi.Mode().Perm())
	}
	tk, err := Load(path, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := tk.Authenticate(rd); !ok || e.Role != RoleRead || e.Name != "grafana" {
		t.Fatalf("read token: %+v %v", e, ok)
	}
	if e, ok := tk.Authenticate(ad); !ok || !e.Role.Allows(RoleRead) || !e.Role.Allows(RoleAdmin) {
		t.Fatalf("admin token: %+v %v", e, ok)
	}
	if RoleRead.Allows(RoleAdmin) {
		t.Fatal("read allows admin")
	}
	for _, bad := range []string{"", rd + "x", rd[:len(rd)-1], strings.ToUpper(rd)} {
		if _, ok := tk.Authenticate(bad); ok {
			t.Fatalf("token %q accepted", bad)
		}
	}
	if err := Revoke(path, "grafana"); err != nil {
		t.Fatal(err)
	}
	// The running set rereads the file (at most once a second).
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := tk.Authenticate(rd); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("revoked token still accepted after 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, ok := tk.Authenticate(ad); !ok {
		t.Fatal("the other token stopped working")
	}
}

func TestLoadRefusesAnEmptyOrBrokenFile(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("# nothing\n"), 0o600)
	if _, err := Load(empty, quiet()); err == nil {
		t.Fatal("empty tokens file: want an error")
	}
	broken := filepath.Join(dir, "broken")
	os.WriteFile(broken, []byte("read deadbeef grafana\n"), 0o600)
	if _, err := Load(broken, quiet()); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("broken file: %v, want an error naming line 1", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("read 0000000000000000000000000000000000000000000000000000000000000000 grafana\n# c\n\nadmin " +
		"1111111111111111111111111111111111111111111111111111111111111111 ops\n"))
	f.Add([]byte("admin zz x"))
	f.Fuzz(func(t *testing.T, data []byte) {
		es, err := Parse(data)
		if err != nil {
			return
		}
		again, err := Parse(Format(es))
		if err != nil || len(again) != len(es) {
			t.Fatalf("Format/Parse round trip: %d entries, then %d, %v", len(es), len(again), err)
		}
		for i := range es {
			if again[i] != es[i] {
				t.Fatalf("entry %d: %+v became %+v", i, es[i], again[i])
			}
		}
	})
}
