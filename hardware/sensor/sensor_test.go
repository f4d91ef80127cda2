package sensor

import (
	"errors"
	"strings"
	"testing"
)

type opts struct {
	Bus     string `yaml:"bus"`
	Address uint16 `yaml:"address"`
}

func TestDecodeOptionsNamesTheOption(t *testing.T) {
	cfg := Config{Channel: "mains", Driver: "chip", Options: map[string]any{"adress": 0x41, "bus": []any{1}}}
	var o opts
	err := cfg.DecodeOptions(&o)
	if err == nil {
		t.Fatal("accepted")
	}
	want := []string{
		`options.adress: unknown field (did you mean "address"?); known: bus, address`,
		`options.bus: want a text value, got a list`,
	}
	if got := strings.Split(err.Error(), "\n"); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("error lines %q, want %q", got, want)
	}
	cfg.Options = map[string]any{"address": 0x41, "bus": "1"}
	if err := cfg.DecodeOptions(&o); err != nil || o.Address != 0x41 || o.Bus != "1" {
		t.Fatalf("decoded %+v, %v", o, err)
	}
}

func TestRegistryCheck(t *testing.T) {
	r := NewRegistry()
	r.Register(Driver{Name: "chip", Check: func(cfg Config) error {
		var o opts
		if err := cfg.DecodeOptions(&o); err != nil {
			return err
		}
		if o.Address > 0x7f {
			return errors.New("options.address: above 0x7f")
		}
		return nil
	}})
	r.Register(Driver{Name: "unchecked"})
	if err := r.Check(Config{Channel: "a", Driver: "chip", Options: map[string]any{"address": 0x400}}); err == nil ||
		err.Error() != `options.address: above 0x7f` {
		t.Fatalf("err = %v", err)
	}
	if err := r.Check(Config{Channel: "a", Driver: "chip", Options: map[string]any{"address": 0x40}}); err != nil {
		t.Fatal(err)
	}
	if err := r.Check(Config{Channel: "a", Driver: "unchecked"}); err != nil {
		t.Fatal(err)
	}
	if err := r.Check(Config{Channel: "a", Driver: "nope"}); err == nil || err.Error() != `driver: unknown driver "nope" (known: [chip unchecked])` {
		t.Fatalf("err = %v", err)
	}
}
