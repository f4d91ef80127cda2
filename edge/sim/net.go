package sim

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
)

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
