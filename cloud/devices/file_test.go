package devices

import (
	"bytes"
	"strings"
	"testing"
)

const testHash = "$2a$04$WaBUl.ZsM75JCP6FDZYfye5vNPfRCMPnVS4dwzWTJdRizdaDnW6GG" // bcrypt of "x" at cost 4

func TestParseUsername(t *testing.T) {
	for _, c := range []struct {
		in           string
		site, device string
		ok           bool
	}{
		{"site-1/gw-0001", "site-1", "gw-0001", true},
		{"dashboard", "", "", true},
		{"a/b/c", "", "", false},
		{"/gw", "", "", false},
		{"site/", "", "", false},
		{"site/gw+", "", "", false},
		{"site/gw#", "", "", false},
		{"", "", "", false},
		{"caf\u00e9/gw", "", "", false},
	} {
		id, err := ParseUsername(c.in)
		if (err == nil) != c.ok {
			t.Errorf("ParseUsername(%q) error %v, want ok=%v", c.in, err, c.ok)
			continue
		}
		if c.ok && (id.Site != c.site || id.Device != c.device || id.Username != c.in || id.IsDevice() != (c.device != "")) {
			t.Errorf("ParseUsername(%q) = %+v", c.in, id)
		}
	}
}

func TestParseRejectsNamingTheLine(t *testing.T) {
	for _, c := range []struct{ file, want string }{
		{"s/d " + testHash + "\ns/d " + testHash + "\n", "line 2: s/d is already listed on line 1"},
		{"# c\n\ns/d\n", "line 3"},
		{"s/d plain-secret\n", "line 1 (s/d): not a bcrypt hash"},
		{"s/d $2a$04$short\n", "line 1 (s/d): bcrypt hash of"},
		{"s/d+ " + testHash + "\n", "line 1: username"},
		{ReservedCollector + " " + testHash + "\n", "reserved"},
		{"s/d " + testHash + " extra\n", "got 3 fields"},
	} {
		_, err := Parse([]byte(c.file))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q) = %v, want it to contain %q", c.file, err, c.want)
		}
	}
}

func TestParseFormatRoundTrip(t *testing.T) {
	in := []Entry{{"site-1/gw-1", testHash}, {"dashboard", testHash}}
	out, err := Parse(Format(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || out[0] != in[0] || out[1] != in[1] {
		t.Fatalf("round trip %+v", out)
	}
	// CRLF line ends and comments are tolerated.
	out, err = Parse([]byte("# x\r\nsite-1/gw-1 " + testHash + "\r\n"))
	if err != nil || len(out) != 1 {
		t.Fatalf("CRLF: %+v %v", out, err)
	}
}

func TestParseRefusesOversizedFile(t *testing.T) {
	if _, err := Parse(bytes.Repeat([]byte("#"), MaxFileBytes+1)); err == nil {
		t.Fatal("a file over MaxFileBytes was accepted")
	}
}

// FuzzParse: any input is either rejected with an error or parsed into
// valid entries that survive Format and Parse unchanged.
func FuzzParse(f *testing.F) {
	f.Add([]byte("site-1/gw-1 " + testHash + "\n# comment\ndashboard " + testHash + "\n"))
	f.Add([]byte("s/d " + testHash + "\ns/d " + testHash))
	f.Add([]byte("\r\n\t \n"))
	f.Add([]byte("a/b/c $2b$10$x"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := Parse(data)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, e := range entries {
			if _, err := ParseUsername(e.Username); err != nil {
				t.Fatalf("accepted invalid username %q: %v", e.Username, err)
			}
			if err := checkHash(e.Hash); err != nil {
				t.Fatalf("accepted invalid hash %q: %v", e.Hash, err)
			}
			if seen[e.Username] {
				t.Fatalf("accepted duplicate %q", e.Username)
			}
			seen[e.Username] = true
		}
		again, err := Parse(Format(entries))
		if err != nil {
			t.Fatalf("formatted entries do not parse: %v", err)
		}
		if len(again) != len(entries) {
			t.Fatalf("round trip: %d entries, want %d", len(again), len(entries))
		}
		for i := range again {
			if again[i] != entries[i] {
				t.Fatalf("round trip: %+v, want %+v", again[i], entries[i])
			}
		}
	})
}
