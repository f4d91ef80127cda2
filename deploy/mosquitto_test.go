package deploy_test

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gridedge/gridedge/shared/mqtttest"
)

// shippedBrokers are the Mosquitto configurations shipped, with where their
// absolute paths go in a test.
var shippedBrokers = []struct {
	file  string
	paths map[string]string
}{
	{"mosquitto/mosquitto.conf", map[string]string{"/var/lib/mosquitto/": "data/", "/etc/mosquitto/certs/": "certs/", "/etc/mosquitto/": ""}},
	{"compose/mosquitto.conf", map[string]string{"/mosquitto/data/": "data/", "/mosquitto/certs/": "certs/", "/mosquitto/config/": ""}},
	{"k8s/10-mosquitto.yaml", map[string]string{"/mosquitto/data/": "data/", "/mosquitto/certs/": "certs/", "/mosquitto/auth/": "", "/mosquitto/config/": ""}},
}

// TestMosquittoAcceptsConfigs starts the real Mosquitto with the shipped
// broker configurations (paths and ports rewritten to a temporary
// directory) and checks both listeners accept connections, the TLS one with
// a certificate from the configured CA.
func TestMosquittoAcceptsConfigs(t *testing.T) {
	if _, err := mqtttest.Binary(); err != nil {
		t.Skip("mosquitto not installed (make deps)")
	}
	for _, c := range shippedBrokers {
		t.Run(c.file, func(t *testing.T) {
			b := mqtttest.StartShipped(t, brokerConfig(t, c.file), mqtttest.ShippedFiles{Paths: c.paths, ACL: brokerACL(t, c.file)})
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", b.TLSAddr(), b.TLSConfig())
			if err != nil {
				t.Fatalf("TLS listener: %v\n%s", err, b.Logs())
			}
			conn.Close()
		})
	}
}

// brokerConfig is the Mosquitto configuration in file: the file itself, or
// the mosquitto.conf key of the ConfigMap in a Kubernetes manifest.
func brokerConfig(t *testing.T, file string) []byte {
	t.Helper()
	return brokerFile(t, file, "mosquitto.conf")
}

// brokerACL is the ACL that goes with a shipped configuration: the acl key
// of the Kubernetes ConfigMap, else deploy/mosquitto/acl (Compose mounts it).
func brokerACL(t *testing.T, file string) []byte {
	t.Helper()
	if filepath.Ext(file) == ".yaml" {
		return brokerFile(t, file, "acl")
	}
	acl, err := os.ReadFile("mosquitto/acl")
	must(t, err)
	return acl
}

func brokerFile(t *testing.T, file, key string) []byte {
	t.Helper()
	if filepath.Ext(file) != ".yaml" {
		conf, err := os.ReadFile(file)
		must(t, err)
		return conf
	}
	for _, doc := range documents(t, file) {
		if doc["kind"] != "ConfigMap" {
			continue
		}
		data, _ := doc["data"].(map[string]any)
		if conf, ok := data[key].(string); ok {
			return []byte(conf)
		}
	}
	t.Fatalf("%s: no ConfigMap with %s", file, key)
	return nil
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
