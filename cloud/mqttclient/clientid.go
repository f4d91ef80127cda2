package mqttclient

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/gridedge/gridedge/shared/atomicfile"
)

// ClientIDFile is where StableClientID keeps the id, in the data directory.
const ClientIDFile = "mqtt-client-id"

// StableClientID returns the client id kept in dir, creating it at first
// use: prefix, a dash and 16 random hexadecimal digits (64 bits). It stays
// the same across restarts (the broker keeps the collector's persistent
// session, and the messages queued for it, under it), and nobody can
// predict it.
func StableClientID(dir, prefix string) (string, error) {
	path := filepath.Join(dir, ClientIDFile)
	raw, err := os.ReadFile(path)
	if err == nil {
		id := strings.TrimSpace(string(raw))
		if id == "" || len(id) > 128 || strings.ContainsAny(id, "/+#") {
			return "", fmt.Errorf("mqtt client id in %s: %q is not a usable id (delete the file to get a new one)", path, id)
		}
		return id, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("mqtt client id: %w", err)
	}
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("mqtt client id: %w", err)
	}
	id := prefix + "-" + hex.EncodeToString(b)
	if err := atomicfile.Write(path, []byte(id+"\n")); err != nil {
		return "", fmt.Errorf("mqtt client id: %w", err)
	}
	return id, nil
}
