package mqttclient

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// Environment variables (and keys of a credentials file) naming the
// collector's MQTT username and password.
const (
	EnvUsername = "GRIDEDGE_MQTT_USERNAME"
	EnvPassword = "GRIDEDGE_MQTT_PASSWORD"
)

// maxCredentialsFile bounds what is read from a credentials file.
const maxCredentialsFile = 64 << 10

// Credentials are an MQTT username and password.
type Credentials struct {
	Username string
	Password string
}

// Set reports whether a username is given.
func (c Credentials) Set() bool { return c.Username != "" }

// ParseFile reads KEY=VALUE lines (the format of a systemd EnvironmentFile):
// GRIDEDGE_MQTT_USERNAME and GRIDEDGE_MQTT_PASSWORD, blank lines and '#'
// comments ignored, an optional "export " prefix, values optionally in
// matching single or double quotes. Other keys are errors (a typo must not
// leave the collector without credentials silently). Errors name the line
// but never echo a value.
func ParseFile(data []byte) (Credentials, error) {
	if len(data) > maxCredentialsFile {
		return Credentials{}, fmt.Errorf("%d bytes: larger than %d", len(data), maxCredentialsFile)
	}
	var c Credentials
	seen := map[string]int{}
	for n, line := range bytes.Split(data, []byte("\n")) {
		text := strings.TrimSpace(strings.TrimSuffix(string(line), "\r"))
		if text == "" || text[0] == '#' {
			continue
		}
		text = strings.TrimPrefix(text, "export ")
		key, val, ok := strings.Cut(text, "=")
		key = strings.TrimSpace(key)
		if !ok {
			return Credentials{}, fmt.Errorf("line %d: want KEY=VALUE", n+1)
		}
		if prev, dup := seen[key]; dup {
			return Credentials{}, fmt.Errorf("line %d: %s already set on line %d", n+1, key, prev)
		}
		seen[key] = n + 1
		val = strings.TrimSpace(val)
		if len(val) >= 2 && (val[0] == '"' || val[0] == '\'') && val[len(val)-1] == val[0] {
			val = val[1 : len(val)-1]
		} else if strings.ContainsAny(val, "\"'") {
			return Credentials{}, fmt.Errorf("line %d: %s: unbalanced quotes", n+1, key)
		}
		switch key {
		case EnvUsername:
			c.Username = val
		case EnvPassword:
			c.Password = val
		default:
			return Credentials{}, fmt.Errorf("line %d: unknown key %q (want %s or %s)", n+1, key, EnvUsername, EnvPassword)
		}
	}
	if c.Username == "" {
		return Credentials{}, fmt.Errorf("%s missing or empty", EnvUsername)
	}
	return c, nil
}

// LoadFile reads a credentials file (ParseFile).
func LoadFile(path string) (Credentials, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Credentials{}, fmt.Errorf("mqtt credentials: %w", err)
	}
	c, err := ParseFile(data)
	if err != nil {
		return Credentials{}, fmt.Errorf("mqtt credentials %s: %w", path, err)
	}
	return c, nil
}

// FromEnv reads GRIDEDGE_MQTT_USERNAME and GRIDEDGE_MQTT_PASSWORD through
// getenv (os.Getenv). A password without a username is an error.
func FromEnv(getenv func(string) string) (Credentials, error) {
	c := Credentials{Username: getenv(EnvUsername), Password: getenv(EnvPassword)}
	if c.Username == "" && c.Password != "" {
		return Credentials{}, fmt.Errorf("%s is set but %s is not", EnvPassword, EnvUsername)
	}
	return c, nil
}

// SplitURL removes user:password from a broker URL: it returns the URL
// without them (safe to log) and the credentials it carried.
func SplitURL(raw string) (string, Credentials, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", Credentials{}, errors.New("broker URL does not parse") // the URL may hold a password: not echoed
	}
	if u.User == nil {
		return raw, Credentials{}, nil
	}
	pass, _ := u.User.Password()
	c := Credentials{Username: u.User.Username(), Password: pass}
	u.User = nil
	return u.String(), c, nil
}

// Redact returns raw with any password replaced by "xxxxx", for logs.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.LastIndex(raw, "@"); i >= 0 {
			return "xxxxx" + raw[i:]
		}
		return raw
	}
	return u.Redacted()
}
