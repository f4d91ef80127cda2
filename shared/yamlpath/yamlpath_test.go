package yamlpath

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

type dur time.Duration

func (d *dur) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("want a duration, got %q", n.Value)
	}
	*d = dur(v)
	return nil
}

type line struct {
	Port string `yaml:"port"`
	Baud int    `yaml:"baud"`
}

type item struct {
	line  `yaml:",inline"`
	Name  string         `yaml:"name"`
	Every *dur           `yaml:"every"`
	Addr  uint8          `yaml:"address"`
	On    bool           `yaml:"on"`
	Gain  float64        `yaml:"gain"`
	Extra map[string]any `yaml:"extra"`
	Skip  string         `yaml:"-"`
}

type doc struct {
	Items []item          `yaml:"items"`
	Tags  map[string]int  `yaml:"tags"`
	Inner struct{ A int } `yaml:"inner"`
}

func decode(t *testing.T, src string) (doc, error) {
	t.Helper()
	n, err := Parse([]byte(src))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	var d doc
	return d, Decode(n, &d, "")
}

func TestDecodeAccepts(t *testing.T) {
	d, err := decode(t, `
base: &b {port: /dev/ttyS0, baud: 9600}
items:
  - <<: *b
    name: one
    every: 10s
    address: 0x40
    on: true
    gain: 1.5
    extra: {anything: [1, 2]}
  - {name: two, every: ~}
tags: {x: 1}
inner: {a: 3}
`[1:])
	if err == nil || !strings.Contains(err.Error(), "base (line 1): unknown field") {
		t.Fatalf("err = %v, want the unknown top-level key named", err)
	}
	d, err = decode(t, `
items:
  - {port: /dev/ttyS0, baud: 9600, name: one, every: 10s, address: 0x40, on: true, gain: 1.5, extra: {anything: [1, 2]}}
  - {name: two, every: ~}
tags: {x: 1}
inner: {a: 3}
`)
	if err != nil {
		t.Fatal(err)
	}
	if it := d.Items[0]; it.Port != "/dev/ttyS0" || it.Baud != 9600 || time.Duration(*it.Every) != 10*time.Second || it.Addr != 0x40 || !it.On || it.Gain != 1.5 {
		t.Fatalf("decoded %+v", it)
	}
	if d.Items[1].Every != nil || d.Tags["x"] != 1 || d.Inner.A != 3 {
		t.Fatalf("decoded %+v", d)
	}
}

func TestDecodeFollowsMergeKeysAndAliases(t *testing.T) {
	n, err := Parse([]byte(`
items:
  - &first {name: one, port: /dev/ttyS0}
  - *first
  - <<: *first
    baud: 19200
`))
	if err != nil {
		t.Fatal(err)
	}
	var d doc
	if err := Decode(n, &d, ""); err != nil {
		t.Fatal(err)
	}
	if len(d.Items) != 3 || d.Items[1].Name != "one" || d.Items[2].Port != "/dev/ttyS0" || d.Items[2].Baud != 19200 {
		t.Fatalf("decoded %+v", d.Items)
	}
}

func TestDecodeNamesEveryProblemOnItsOwnLine(t *testing.T) {
	_, err := decode(t, `
items:
  - name: one
    adress: 0x40
    every: fast
    address: 0x400
    on: maybe
    gain: high
    baud: [1]
  - name: {a: 1}
tags: {x: y}
inner: [1]
`)
	want := []string{
		`items[0].adress (line 4): unknown field (did you mean "address"?); known: port, baud, name, every, address, on, gain, extra`,
		`items[0].every (line 5): want a duration, got "fast"`,
		`items[0].address (line 6): want a whole number from 0 to 255, got "0x400"`,
		`items[0].on (line 7): want true or false, got "maybe"`,
		`items[0].gain (line 8): want a number, got "high"`,
		`items[0].baud (line 9): want a whole number from`,
		`items[1].name (line 10): want a text value, got a mapping`,
		`tags.x (line 11): want a whole number from`,
		`inner (line 12): want a mapping (key: value lines), got a list`,
	}
	if err == nil {
		t.Fatal("accepted")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%v", len(lines), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q, want prefix %q", i, lines[i], w)
		}
	}
}

// Nodes built with Encode have no position: no "(line 0)".
func TestDecodeWithoutPositions(t *testing.T) {
	var n yaml.Node
	if err := n.Encode(map[string]any{"adress": 3}); err != nil {
		t.Fatal(err)
	}
	var it item
	err := Decode(&n, &it, "options")
	if err == nil || err.Error() != `options.adress: unknown field (did you mean "address"?); known: port, baud, name, every, address, on, gain, extra` {
		t.Fatalf("err = %v", err)
	}
}

func TestParseEmptyAndSyntax(t *testing.T) {
	if _, err := Parse([]byte("# nothing\n")); !errors.Is(err, ErrEmpty) {
		t.Fatalf("err = %v, want ErrEmpty", err)
	}
	if _, err := Parse([]byte("a: [1,\n")); err == nil || !strings.Contains(err.Error(), "line") {
		t.Fatalf("syntax error without a line: %v", err)
	}
}

func TestScalarsPaths(t *testing.T) {
	n, err := Parse([]byte("a: {b: [x, {c: y}]}\nd: z\n"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	Scalars(n, "", func(path string, n *yaml.Node) { got = append(got, path+"="+n.Value) })
	if strings.Join(got, " ") != "a.b[0]=x a.b[1].c=y d=z" {
		t.Fatalf("got %v", got)
	}
}

// FuzzDecode: arbitrary YAML never panics, every problem is one line, and
// what Decode accepts the strict standard decoder accepts too.
func FuzzDecode(f *testing.F) {
	f.Add("items: [{name: a, every: 1s, address: 3}]\ntags: {a: 1}")
	f.Add("items: [{adress: 3}]")
	f.Add("inner: &x {a: 1}\nitems: [{<<: *x}]")
	f.Fuzz(func(t *testing.T, in string) {
		n, err := Parse([]byte(in))
		if err != nil {
			return
		}
		var d doc
		if err := Decode(n, &d, ""); err != nil {
			for _, l := range strings.Split(err.Error(), "\n") {
				if !strings.Contains(l, ": ") {
					t.Fatalf("problem line without a path: %q", l)
				}
			}
			return
		}
		var strict doc
		dec := yaml.NewDecoder(bytes.NewReader([]byte(in)))
		dec.KnownFields(true)
		if err := dec.Decode(&strict); err != nil {
			t.Fatalf("Decode accepted what the strict decoder rejects: %v", err)
		}
	})
}
