package broker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"time"

	"github.com/gridedge/gridedge/cloud/devices"
)

// Config is the embedded broker's part of the collector's configuration
// (its `broker:` section).
type Config struct {
	// DevicesFile is the registry of MQTT identities (cloud/devices);
	// empty means "devices" in the collector's data directory.
	DevicesFile string `yaml:"devices_file"`
	// AllowAnonymous lets clients connect without credentials and use any
	// topic. Development only; logged as a warning.
	AllowAnonymous bool `yaml:"allow_anonymous"`
	// TLSListener, with TLSCert and TLSKey (PEM files), adds a listener
	// serving MQTT over TLS, e.g. 0.0.0.0:8883 for gateways.
	TLSListener string `yaml:"tls_listener"`
	TLSCert     string `yaml:"tls_cert"`
	TLSKey      string `yaml:"tls_key"`
	// MaxPacketBytes limits any packet a client sends.
	MaxPacketBytes uint32 `yaml:"max_packet_bytes"`
	// SessionExpiry is how long a disconnected client's session is kept.
	SessionExpiry time.Duration `yaml:"session_expiry"`
}

// DefaultConfig is the configuration for every field not set.
func DefaultConfig() Config {
	return Config{MaxPacketBytes: DefaultMaxPacketBytes, SessionExpiry: DefaultSessionExpiry}
}

// DevicesPath is DevicesFile, or "devices" in dataDir when it is empty.
func (c Config) DevicesPath(dataDir string) string {
	if c.DevicesFile != "" {
		return c.DevicesFile
	}
	return filepath.Join(dataDir, "devices")
}

// Validate names the first wrong field by its YAML key (under broker.).
func (c Config) Validate() error {
	if c.MaxPacketBytes < 1024 {
		return fmt.Errorf("broker.max_packet_bytes: %d is below 1024", c.MaxPacketBytes)
	}
	if c.SessionExpiry < time.Second || c.SessionExpiry.Seconds() > math.MaxUint32 {
		return fmt.Errorf("broker.session_expiry: %v is outside 1s..136y", c.SessionExpiry)
	}
	if set := c.TLSListener != ""; set != (c.TLSCert != "") || set != (c.TLSKey != "") {
		return errors.New("broker.tls_listener: set tls_listener, tls_cert and tls_key together")
	}
	if c.AllowAnonymous && c.DevicesFile != "" {
		return errors.New("broker.allow_anonymous: cannot be combined with broker.devices_file")
	}
	return nil
}

// Options turns the configuration into Start's options: it opens the
// device registry (unless anonymous access is allowed) and loads the TLS
// key pair.
func (c Config) Options(dataDir string, log *slog.Logger) ([]Option, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	opts := []Option{WithLogger(log), WithMaxPacketSize(c.MaxPacketBytes), WithSessionExpiry(c.SessionExpiry)}
	if c.AllowAnonymous {
		opts = append(opts, WithAnonymous())
	} else {
		reg, err := devices.Open(c.DevicesPath(dataDir), devices.WithLogger(log))
		if err != nil {
			return nil, fmt.Errorf("broker.devices_file: %w", err)
		}
		opts = append(opts, WithRegistry(reg))
	}
	if c.TLSListener != "" {
		pair, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("broker.tls_cert/tls_key: %w", err)
		}
		opts = append(opts, WithTLSListener(c.TLSListener, &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}}))
	}
	return opts, nil
}
