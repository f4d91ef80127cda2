package config

import (
	_ "embed"
	"strings"
	"testing"
	"time"

	"github.com/gridedge/gridedge/shared/wire"
)

//go:embed example.yaml
var example []byte

func TestExampleParses(t *testing.T) {
	cfg, err := Parse(example)
	if err != nil {
		t.Fatalf("example.yaml: %v", err)
	}
	if cfg.DeviceID != "gw-0001" || cfg.MQTT.AckTimeout.D() != 30*time.Second {
		t.Fatalf("unexpected values: %+v", cfg)
	}
	sc := cfg.SensorConfigs()
	if len(sc) != 2 || sc[0].Channel != "mains" || len(sc[0].Quantities) != 3 || sc[0].Quantities[0] != wire.Quantity_QUANTITY_ACTIVE_POWER {
		t.Fatalf("sensor configs: %+v", sc)
	}
	if sc[0].Options["bus"] != "1" {
		t.Fatalf("options not carried: %+v", sc[0].Options)
	}
	// A channel without its own interval takes sample_interval.
	if cfg.Channels[1].Every() != 10*time.Second {
		t.Fatalf("default interval: %v", cfg.Channels[1].Interval)
	}
}

const minimal = `
device_id: dev-1
site: s1
state_dir: /tmp/state
mqtt: {url: "tcp://127.0.0.1:1883"}
buffer: {dir: /tmp/buf}
channels:
  - {name: mains, driver: fake}
`

func TestDefaults(t *testing.T) {
	cfg, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MQTT.ClientID != "gridedge-dev-1" || cfg.MQTT.MaxBatchReadings != DefaultMaxBatchReadings ||
		cfg.Buffer.SyncInterval.D() != DefaultSyncInterval || cfg.Channels[0].Every() != DefaultSampleInterval {
		t.Fatalf("defaults not applied: %+v", cfg)
	}
}

// With a username the client id defaults to it: gridedge's brokers bind a
// device's client id to its username.
func TestClientIDDefaultsToTheUsername(t *testing.T) {
	cfg, err := Parse([]byte(strings.Replace(minimal, `mqtt: {url: "tcp://127.0.0.1:1883"}`,
		`mqtt: {url: "tcp://127.0.0.1:1883", username: s1/dev-1, password: x}`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MQTT.ClientID != "s1/dev-1" {
		t.Fatalf("client id %q, want the username", cfg.MQTT.ClientID)
	}
	cfg, err = Parse([]byte(strings.Replace(minimal, `mqtt: {url: "tcp://127.0.0.1:1883"}`,
		`mqtt: {url: "tcp://127.0.0.1:1883", username: s1/dev-1, client_id: other}`, 1)))
	if err != nil || cfg.MQTT.ClientID != "other" {
		t.Fatalf("explicit client id: %q %v", cfg.MQTT.ClientID, err)
	}
}

func TestErrorsNameTheField(t *testing.T) {
	cases := []struct {
		name, edit, want string
	}{
		{"zero interval", `channels: [{name: a, driver: fake}, {name: b, driver: fake}, {name: c, driver: fake, interval: 0s}]`,
			`channels[2].interval: must be > 0, got "0s"`},
		{"bad quantity", `channels: [{name: a, driver: fake, quantities: [active_power, watts]}]`,
			`channels[0].quantities[1]: unknown quantity "watts"`},
		{"duplicate channel", `channels: [{name: a, driver: fake}, {name: a, driver: fake}]`,
			`channels[1].name: "a" already used by channels[0]`},
		{"bad channel name", `channels: [{name: "a/b", driver: fake}]`, `channels[0].name:`},
		{"no driver", `channels: [{name: a}]`, `channels[0].driver: must be set`},
		{"aggregate short", `channels: [{name: a, driver: fake, interval: 10s, aggregate: 5s}]`, `channels[0].aggregate: must be longer than interval (10s), got "5s"`},
		{"aggregate multiple", `channels: [{name: a, driver: fake, interval: 10s, aggregate: 25s}]`, `channels[0].aggregate: must be a multiple of interval (10s), got "25s"`},
		{"no channels", `channels: []`, `channels: at least one channel is required`},
		{"device id", `device_id: "dev 1"`, `device_id:`},
		{"bad url", `mqtt: {url: "http://x:1"}`, `mqtt.url: scheme "http" not supported`},
		{"cert without key", `mqtt: {url: "ssl://x:8883", cert_file: /c.pem}`, `mqtt.cert_file: cert_file and key_file must be set together`},
		{"batch readings", `mqtt: {url: "tcp://x:1", max_batch_readings: -1}`, `mqtt.max_batch_readings: must be 1..`},
		{"same dirs", `state_dir: /tmp/buf`, `state_dir: must differ from buffer.dir`},
		{"small quota", `buffer: {dir: /tmp/buf, quota_bytes: 1000}`, `buffer.quota_bytes: must be at least 8 MiB`},
		{"unknown backend", `buffer: {dir: /tmp/buf, backend: rocksdb}`, `buffer.backend: buffer: unknown backend "rocksdb"`},
		{"bad zone", `time_zone: Mars/Olympus`, `time_zone: unknown IANA time zone`},
		{"bad duration", `sample_interval: soon`, `sample_interval (line 10): want a duration like "10s" or "1m30s", got "soon"`},
		{"bad channel duration", `channels: [{name: a, driver: fake}, {name: b, driver: fake, interval: fast}]`,
			`channels[1].interval (line 8): want a duration like "10s" or "1m30s", got "fast"`},
		{"unknown field", `buffer: {dir: /tmp/b, size: 3}`, `buffer.size (line 9): unknown field; known: dir, sync_interval,`},
		{"unknown field close to a known one", `mqtt: {uri: "tcp://127.0.0.1:1883"}`, `mqtt.uri (line 9): unknown field (did you mean "url"?); known: url, client_id,`},
		{"unknown top-level field", `channel: [{name: a, driver: fake}]`, `channel (line 10): unknown field (did you mean "channels"?)`},
		{"wrong type", `mqtt: {url: "tcp://x:1", max_batch_readings: many}`, `mqtt.max_batch_readings (line 9): want a whole number from`},
		{"mapping for a list", `channels: {name: a}`, `channels (line 8): want a list, got a mapping`},
		{"placeholder", `device_id: CHANGE-ME`, `device_id (line 9): still the placeholder "CHANGE-ME"`},
		{"placeholder inside a value", `mqtt: {url: "tcp://127.0.0.1:1883", client_id: gridedge-CHANGE-ME}`, `mqtt.client_id (line 9): still the placeholder "gridedge-CHANGE-ME"`},
		{"placeholder in driver options", `channels: [{name: a, driver: fake, options: {port: CHANGE-ME}}]`, `channels[0].options.port (line 8): still the placeholder`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(override(minimal, tc.edit)))
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
			for _, leak := range []string{"config.", "yaml:", "not found in type", "unmarshal"} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("error %q shows decoder internals (%q)", err, leak)
				}
			}
		})
	}
}

func TestEmpty(t *testing.T) {
	if _, err := Parse(nil); err == nil {
		t.Fatal("empty config accepted")
	}
}

// override replaces the top-level key of the first line of edit in base.
func override(base, edit string) string {
	key := edit[:strings.Index(edit, ":")+1]
	var out []string
	skipping := false
	for _, l := range strings.Split(base, "\n") {
		switch {
		case strings.HasPrefix(l, key):
			skipping = true
			continue
		case skipping && strings.HasPrefix(l, " "):
			continue
		}
		skipping = false
		out = append(out, l)
	}
	return strings.Join(out, "\n") + "\n" + edit + "\n"
}

// FuzzParse: arbitrary YAML never panics, and what is accepted validates
// and converts.
func FuzzParse(f *testing.F) {
	f.Add(string(example))
	f.Add(minimal)
	f.Add("channels: [{name: a, driver: x, interval: 1s, aggregate: 1m}]")
	f.Fuzz(func(t *testing.T, in string) {
		cfg, err := Parse([]byte(in))
		if err != nil {
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("accepted config fails validation: %v", err)
		}
		if got := len(cfg.SensorConfigs()); got != len(cfg.Channels) {
			t.Fatalf("%d sensor configs for %d channels", got, len(cfg.Channels))
		}
	})
}
