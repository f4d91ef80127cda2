package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/gridedge/gridedge/edge/buffer"
	"github.com/gridedge/gridedge/edge/publish"
	"github.com/gridedge/gridedge/hardware/sensor"
	"github.com/gridedge/gridedge/shared/topic"
	"github.com/gridedge/gridedge/shared/wire"
	"github.com/gridedge/gridedge/shared/yamlpath"
)

// Defaults applied to fields left empty.
const (
	DefaultSampleInterval   = 10 * time.Second
	DefaultKeepAlive        = 30 * time.Second
	DefaultAckTimeout       = 30 * time.Second
	DefaultMaxBatchReadings = 500
	DefaultMaxBatchBytes    = 64 << 10
	DefaultSyncInterval     = time.Second
	DefaultQuotaBytes       = 256 << 20
	DefaultStatusInterval   = 5 * time.Second
	DefaultMinFreeBytes     = 64 << 20
)

// Config is the whole agent configuration.
type Config struct {
	DeviceID string `yaml:"device_id"`
	Site     string `yaml:"site"`
	// TimeZone is the site's IANA zone, reported in status messages.
	TimeZone string `yaml:"time_zone"`
	MQTT     MQTT   `yaml:"mqtt"`
	Buffer   Buffer `yaml:"buffer"`
	// StateDir holds state that must survive a wiped buffer: the sequence
	// epoch and counter, status file, driver state.
	StateDir string `yaml:"state_dir"`
	// SampleInterval is the interval of channels that do not set their own.
	SampleInterval Duration  `yaml:"sample_interval"`
	Channels       []Channel `yaml:"channels"`
	// StatusInterval is how often the agent writes status.json into
	// StateDir and republishes its retained status.
	StatusInterval Duration `yaml:"status_interval"`
	// MetricsAddr is the listen address of the Prometheus /metrics endpoint,
	// e.g. "127.0.0.1:9273"; empty disables it.
	MetricsAddr string `yaml:"metrics_addr"`
	// Clock configures the time source.
	Clock Clock `yaml:"clock"`
}

// Clock configures the time source.
type Clock struct {
	// RTCBus is the I²C bus of a DS3231 real-time clock ("1"); empty when
	// none is fitted. It dates readings taken before NTP syncs.
	RTCBus string `yaml:"rtc_i2c_bus"`
}

// MQTT is the broker connection.
type MQTT struct {
	// URL is tcp://host:1883, ssl://host:8883 (or mqtts://, tls://) or ws(s)://.
	URL string `yaml:"url"`
	// ClientID defaults to Username when one is set (gridedge's brokers
	// require a device's client id to equal its username,
	// "<site>/<device_id>"), else to "gridedge-<device_id>".
	ClientID string `yaml:"client_id"`
	// Username is "<site>/<device_id>" on gridedge's brokers (the embedded
	// one and the shipped Mosquitto); Password is the secret printed by
	// `gridedge-collector devices add` or set with mosquitto_passwd.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// CAFile verifies the broker; CertFile and KeyFile are the client's
	// certificate for mutual TLS. All PEM.
	CAFile    string   `yaml:"ca_file"`
	CertFile  string   `yaml:"cert_file"`
	KeyFile   string   `yaml:"key_file"`
	KeepAlive Duration `yaml:"keepalive"`
	// AckTimeout is how long a sent batch may wait for the collector's
	// end-to-end ack before it is sent again.
	AckTimeout       Duration `yaml:"ack_timeout"`
	MaxBatchReadings int      `yaml:"max_batch_readings"`
	MaxBatchBytes    int      `yaml:"max_batch_bytes"`
	// ReplayRate bounds backlog readings sent per second after an outage
	// (0 = unlimited). Live readings are never held back by it.
	ReplayRate int `yaml:"replay_rate"`
}

// Buffer is the on-disk queue.
type Buffer struct {
	Dir string `yaml:"dir"`
	// SyncInterval bounds how much acknowledged-by-nobody data a power cut
	// can lose: the buffer is fsynced at this interval.
	SyncInterval Duration `yaml:"sync_interval"`
	// QuotaBytes bounds the buffer's size on disk.
	QuotaBytes int64 `yaml:"quota_bytes"`
	// MinFreeBytes is the free space the file system must keep; below it
	// new readings are refused (and counted) rather than risk Badger
	// crashing on a full disk.
	MinFreeBytes int64 `yaml:"min_free_bytes"`
	// Backend is the storage engine: "auto" (default: bolt on 32-bit
	// platforms, badger on 64-bit), "badger" or "bolt". Badger is refused
	// on 32-bit platforms, where it loses data (docs/soak.md).
	Backend string `yaml:"backend"`
}

// Channel is one measured channel.
type Channel struct {
	Name   string `yaml:"name"`
	Driver string `yaml:"driver"`
	// Interval is the channel's sampling interval; nil takes the top-level
	// sample_interval. (A pointer so an explicit "0s" is reported, not
	// silently replaced.)
	Interval *Duration `yaml:"interval"`
	// Aggregate, when set, publishes per-interval summaries instead of
	// every sample: mean (under the channel name), min and max (channels
	// <name>.min and <name>.max) of each quantity, counters' last value, and
	// energy integrated from active power when the channel asks for energy
	// and the driver gives none. It must be a multiple of Interval.
	Aggregate  *Duration      `yaml:"aggregate"`
	Quantities []string       `yaml:"quantities"`
	Options    map[string]any `yaml:"options"`
}

// Duration is a time.Duration written as "10s", "1m30s" in YAML.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML accepts Go duration strings.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if n.Kind != yaml.ScalarNode || n.Decode(&s) != nil {
		return errors.New(`want a duration like "10s" or "1m30s"`)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf(`want a duration like "10s" or "1m30s", got %q`, s)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes d as a duration string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// Load reads, defaults and validates the file at path.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	cfg, err := Parse(data)
	if err != nil {
		return Config{}, eachLine("config "+path, err)
	}
	return cfg, nil
}

// eachLine prefixes every problem in err (one per line) with prefix, so
// each line stands alone in a log.
func eachLine(prefix string, err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var errs []error
		for _, e := range j.Unwrap() {
			errs = append(errs, eachLine(prefix, e))
		}
		return errors.Join(errs...)
	}
	return fmt.Errorf("%s: %w", prefix, err)
}

// Placeholder marks the values of the shipped configuration that the
// installer must replace (device_id: CHANGE-ME). Parse rejects a
// configuration that still contains it anywhere, naming each field.
const Placeholder = "CHANGE-ME"

// Parse decodes YAML, applies defaults and validates the result. Every
// problem is reported on its own line naming the field by its YAML path
// (channels[2].interval) and the line: unknown fields, values of the wrong
// type, placeholders left from the shipped file, invalid values.
func Parse(data []byte) (Config, error) {
	root, err := yamlpath.Parse(data)
	if err != nil {
		if errors.Is(err, yamlpath.ErrEmpty) {
			return Config{}, errors.New("empty configuration")
		}
		return Config{}, err
	}
	var cfg Config
	if err := yamlpath.Decode(root, &cfg, ""); err != nil {
		return Config{}, err
	}
	var placeholders []error
	yamlpath.Scalars(root, "", func(path string, n *yaml.Node) {
		if strings.Contains(n.Value, Placeholder) {
			placeholders = append(placeholders, yamlpath.At(path, n, "still the placeholder %q: replace it with this installation's value", n.Value))
		}
	})
	if len(placeholders) > 0 {
		return Config{}, errors.Join(placeholders...)
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// ApplyDefaults fills fields left at their zero value.
func (c *Config) ApplyDefaults() {
	if c.SampleInterval == 0 {
		c.SampleInterval = Duration(DefaultSampleInterval)
	}
	if c.StatusInterval == 0 {
		c.StatusInterval = Duration(DefaultStatusInterval)
	}
	if c.MQTT.ClientID == "" {
		c.MQTT.ClientID = publish.DefaultClientID(c.MQTT.Username, c.DeviceID)
	}
	if c.MQTT.KeepAlive == 0 {
		c.MQTT.KeepAlive = Duration(DefaultKeepAlive)
	}
	if c.MQTT.AckTimeout == 0 {
		c.MQTT.AckTimeout = Duration(DefaultAckTimeout)
	}
	if c.MQTT.MaxBatchReadings == 0 {
		c.MQTT.MaxBatchReadings = DefaultMaxBatchReadings
	}
	if c.MQTT.MaxBatchBytes == 0 {
		c.MQTT.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if c.Buffer.SyncInterval == 0 {
		c.Buffer.SyncInterval = Duration(DefaultSyncInterval)
	}
	if c.Buffer.QuotaBytes == 0 {
		c.Buffer.QuotaBytes = DefaultQuotaBytes
	}
	if c.Buffer.MinFreeBytes == 0 {
		c.Buffer.MinFreeBytes = DefaultMinFreeBytes
	}
	if c.Buffer.Backend == "" {
		c.Buffer.Backend = string(buffer.BackendAuto)
	}
	for i := range c.Channels {
		if c.Channels[i].Interval == nil {
			d := c.SampleInterval
			c.Channels[i].Interval = &d
		}
	}
}

var channelName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// minBatchBytes leaves room for a batch header and at least one reading.
const minBatchBytes = 1024

// Validate checks every field and returns all problems found, one per line,
// each naming the field.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if err := wire.ValidateDeviceID(c.DeviceID); err != nil {
		bad("device_id", "%v", err)
	}
	if err := topic.ValidateSite(c.Site); err != nil {
		bad("site", "%v", err)
	}
	if c.TimeZone != "" {
		if _, err := time.LoadLocation(c.TimeZone); err != nil {
			bad("time_zone", "unknown IANA time zone %q", c.TimeZone)
		}
	}
	c.MQTT.validate(bad)
	if c.Buffer.Dir == "" {
		bad("buffer.dir", "must be set")
	}
	if c.Buffer.SyncInterval < 0 {
		bad("buffer.sync_interval", "must be > 0, got %q", c.Buffer.SyncInterval)
	}
	if c.Buffer.MinFreeBytes < 16<<20 {
		bad("buffer.min_free_bytes", "must be at least 16 MiB (16777216) for Badger's flushes, got %d", c.Buffer.MinFreeBytes)
	}
	if _, err := buffer.Resolve(buffer.Backend(c.Buffer.Backend)); err != nil {
		bad("buffer.backend", "%v", err)
	}
	if c.Buffer.QuotaBytes < 8<<20 {
		bad("buffer.quota_bytes", "must be at least 8 MiB (8388608), got %d", c.Buffer.QuotaBytes)
	}
	if c.StateDir == "" {
		bad("state_dir", "must be set")
	} else if c.Buffer.Dir != "" && cleanDir(c.StateDir) == cleanDir(c.Buffer.Dir) {
		bad("state_dir", "must differ from buffer.dir (%q) so wiping the buffer keeps the sequence counter", c.Buffer.Dir)
	}
	if c.SampleInterval <= 0 {
		bad("sample_interval", "must be > 0, got %q", c.SampleInterval)
	}
	if c.StatusInterval <= 0 {
		bad("status_interval", "must be > 0, got %q", c.StatusInterval)
	}
	if len(c.Channels) == 0 {
		bad("channels", "at least one channel is required")
	}
	seen := map[string]int{}
	for i, ch := range c.Channels {
		f := fmt.Sprintf("channels[%d]", i)
		switch {
		case !channelName.MatchString(ch.Name):
			bad(f+".name", "must be 1..64 characters of A-Z a-z 0-9 . _ -, got %q", ch.Name)
		default:
			if j, dup := seen[ch.Name]; dup {
				bad(f+".name", "%q already used by channels[%d]", ch.Name, j)
			}
			seen[ch.Name] = i
		}
		if ch.Driver == "" {
			bad(f+".driver", "must be set")
		}
		if ch.Interval == nil || *ch.Interval <= 0 {
			bad(f+".interval", "must be > 0, got %q", ch.Every())
		} else if ch.Aggregate != nil {
			switch agg := ch.Aggregate.D(); {
			case agg <= ch.Every():
				bad(f+".aggregate", "must be longer than interval (%s), got %q", ch.Every(), agg)
			case agg%ch.Every() != 0:
				bad(f+".aggregate", "must be a multiple of interval (%s), got %q", ch.Every(), agg)
			case len(ch.Name) > 60:
				bad(f+".name", "at most 60 characters when aggregating (room for .min/.max), got %d", len(ch.Name))
			}
		}
		for k, q := range ch.Quantities {
			if _, err := wire.ParseQuantity(q); err != nil {
				bad(fmt.Sprintf("%s.quantities[%d]", f, k), "%v", err)
			}
		}
	}
	return errors.Join(errs...)
}

func (m *MQTT) validate(bad func(field, format string, args ...any)) {
	if m.URL == "" {
		bad("mqtt.url", "must be set, e.g. tcp://broker:1883 or ssl://broker:8883")
	} else if u, err := url.Parse(m.URL); err != nil || u.Host == "" {
		bad("mqtt.url", "want scheme://host:port, got %q", m.URL)
	} else {
		switch u.Scheme {
		case "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss":
		default:
			bad("mqtt.url", "scheme %q not supported (tcp, mqtt, ssl, tls, mqtts, ws, wss)", u.Scheme)
		}
	}
	if m.ClientID == "" || len(m.ClientID) > 128 {
		bad("mqtt.client_id", "must be 1..128 characters, got %q", m.ClientID)
	}
	if (m.CertFile == "") != (m.KeyFile == "") {
		bad("mqtt.cert_file", "cert_file and key_file must be set together")
	}
	if m.KeepAlive < Duration(time.Second) {
		bad("mqtt.keepalive", "must be >= 1s, got %q", m.KeepAlive)
	}
	if m.AckTimeout <= 0 {
		bad("mqtt.ack_timeout", "must be > 0, got %q", m.AckTimeout)
	}
	if m.MaxBatchReadings < 1 || m.MaxBatchReadings > wire.MaxReadingsPerBatch {
		bad("mqtt.max_batch_readings", "must be 1..%d, got %d", wire.MaxReadingsPerBatch, m.MaxBatchReadings)
	}
	if m.MaxBatchBytes < minBatchBytes || m.MaxBatchBytes > 256<<20 {
		bad("mqtt.max_batch_bytes", "must be %d..%d, got %d", minBatchBytes, 256<<20, m.MaxBatchBytes)
	}
	if m.ReplayRate < 0 {
		bad("mqtt.replay_rate", "must be >= 0 (0 = unlimited), got %d", m.ReplayRate)
	}
}

func cleanDir(p string) string { return strings.TrimRight(p, "/") }

// SensorConfigs converts the channels into the sensor registry's form. The
// configuration must have been validated.
func (c *Config) SensorConfigs() []sensor.Config {
	out := make([]sensor.Config, 0, len(c.Channels))
	for _, ch := range c.Channels {
		sc := sensor.Config{Channel: ch.Name, Driver: ch.Driver, Options: ch.Options}
		for _, name := range ch.Quantities {
			if q, err := wire.ParseQuantity(name); err == nil {
				sc.Quantities = append(sc.Quantities, q)
			}
		}
		out = append(out, sc)
	}
	return out
}

// AggregateEvery is the channel's aggregation interval, 0 when it publishes
// every sample.
func (ch Channel) AggregateEvery() time.Duration {
	if ch.Aggregate == nil {
		return 0
	}
	return ch.Aggregate.D()
}

// Every is the channel's sampling interval (0 before defaults are applied).
func (ch Channel) Every() time.Duration {
	if ch.Interval == nil {
		return 0
	}
	return ch.Interval.D()
}
