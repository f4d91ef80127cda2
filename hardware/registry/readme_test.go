package registry

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/gridedge/gridedge/hardware/sensor"
	"github.com/gridedge/gridedge/shared/wire"
)

// TestReadmeChannelsDecode builds every channel shown in hardware/README.md
// through the registry with an Env that has no buses: each must get past
// option decoding and quantity checks and fail only for want of hardware,
// so the documented configuration is accepted by the drivers as written.
func TestReadmeChannelsDecode(t *testing.T) {
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(raw), -1)
	r := sensor.NewRegistry()
	Register(r)
	seen := map[string]bool{}
	for _, b := range blocks {
		text := b[1]
		if !strings.HasPrefix(text, "channels:") {
			text = "channels:\n" + text
		}
		var doc struct {
			Channels []struct {
				Name       string         `yaml:"name"`
				Driver     string         `yaml:"driver"`
				Quantities []string       `yaml:"quantities"`
				Options    map[string]any `yaml:"options"`
			} `yaml:"channels"`
		}
		if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
			t.Errorf("README block does not parse: %v\n%s", err, text)
			continue
		}
		for _, ch := range doc.Channels {
			cfg := sensor.Config{Channel: ch.Name, Driver: ch.Driver, Options: ch.Options}
			for _, q := range ch.Quantities {
				qq, err := wire.ParseQuantity(q)
				if err != nil {
					t.Errorf("channel %s: %v", ch.Name, err)
				}
				cfg.Quantities = append(cfg.Quantities, qq)
			}
			_, err := r.New(cfg, sensor.Env{})
			if err == nil || !strings.Contains(err.Error(), "this platform has no") {
				t.Errorf("channel %s (%s): err = %v, want only the missing bus", ch.Name, ch.Driver, err)
			}
			seen[ch.Driver] = true
		}
	}
	for _, d := range r.Names() {
		if !seen[d] {
			t.Errorf("README has no configuration example for driver %s", d)
		}
	}
}
