package sim

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"
)

// portsPerSource is how many meters one loopback source address serves
// before another is added: below Linux's default ephemeral range
// (32768–60999, 28,232 ports per source and destination pair) with room
// for the broker's and the collector's own connections.
const portsPerSource = 20_000

// sourceAddrs returns the local addresses the meters connect from:
// Config.SourceAddrs, or, for more meters than one address has ports
// towards a loopback IPv4 broker, 127.0.0.1, 127.0.0.2, ... as many as
// needed (the whole 127.0.0.0/8 is loopback on Linux). Otherwise none: the
// kernel picks.
func sourceAddrs(cfg Config) ([]netip.Addr, error) {
	if len(cfg.SourceAddrs) > 0 {
		return cfg.SourceAddrs, nil
	}
	if cfg.Meters <= portsPerSource {
		return nil, nil
	}
	u, err := url.Parse(cfg.MQTTURL)
	if err != nil {
		return nil, fmt.Errorf("mqtt url: %w", err)
	}
	host := u.Hostname()
	ip, err := netip.ParseAddr(host)
	if err != nil {
		ips, lerr := net.LookupIP(host)
		if lerr != nil || len(ips) == 0 {
			return nil, nil
		}
		ip, _ = netip.AddrFromSlice(ips[0].To4())
	}
	if !ip.Is4() || !ip.IsLoopback() {
		return nil, nil
	}
	n := (cfg.Meters + portsPerSource - 1) / portsPerSource
	out := make([]netip.Addr, n)
	for i := range out {
		out[i] = netip.AddrFrom4([4]byte{127, 0, 0, byte(1 + i)})
	}
	return out, nil
}

// ParseSourceAddrs reads a comma-separated list of IP addresses.
func ParseSourceAddrs(s string) ([]netip.Addr, error) {
	if s == "" {
		return nil, nil
	}
	var out []netip.Addr
	for _, f := range strings.Split(s, ",") {
		a, err := netip.ParseAddr(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("source address %q: %v", f, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// ReadCredentials reads a credentials file: one "<site>/<device_id>
// <secret>" per line; blank lines and lines starting with '#' are skipped.
// A malformed or repeated entry is an error naming its line.
func ReadCredentials(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	defer f.Close()
	return parseCredentials(f, path)
}

func parseCredentials(r io.Reader, name string) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		if len(fields) != 2 {
			return nil, fmt.Errorf("credentials: %s line %d: want \"<site>/<device_id> <secret>\"", name, line)
		}
		site, device, ok := strings.Cut(fields[0], "/")
		if !ok || site == "" || device == "" || strings.Contains(device, "/") {
			return nil, fmt.Errorf("credentials: %s line %d: user %q is not <site>/<device_id>", name, line, fields[0])
		}
		if _, dup := out[fields[0]]; dup {
			return nil, fmt.Errorf("credentials: %s line %d: %s listed twice", name, line, fields[0])
		}
		out[fields[0]] = fields[1]
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("credentials: %s: %w", name, err)
	}
	return out, nil
}
