package deploy_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMosquittoAcceptsConfigs starts the real Mosquitto with the shipped
// broker configurations (paths and ports rewritten to a temporary
// directory) and checks both listeners accept connections, the TLS one with
// a certificate from the configured CA.
func TestMosquittoAcceptsConfigs(t *testing.T) {
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
			if _, serr := os.Stat(p); serr == nil {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		t.Skip("mosquitto not installed (make deps)")
	}
	cases := []struct {
		file  string
		paths map[string]string // configured path prefix → under the temp dir
	}{
		{"mosquitto/mosquitto.conf", map[string]string{"/var/lib/mosquitto/": "data/", "/etc/mosquitto/certs/": "certs/", "/etc/mosquitto/": ""}},
		{"compose/mosquitto.conf", map[string]string{"/mosquitto/data/": "data/", "/mosquitto/certs/": "certs/", "/mosquitto/config/": ""}},
		{"k8s/10-mosquitto.yaml", map[string]string{"/mosquitto/data/": "data/", "/mosquitto/certs/": "certs/", "/mosquitto/auth/": "", "/mosquitto/config/": ""}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			dir := t.TempDir()
			// Mosquitto started as root drops to its own user before
			// reading the password, ACL and certificate files.
			for _, d := range []string{filepath.Dir(dir), dir} {
				must(t, os.Chmod(d, 0o755))
			}
			ca := writeCerts(t, filepath.Join(dir, "certs"))
			must(t, os.MkdirAll(filepath.Join(dir, "data"), 0o777))
			must(t, os.Chmod(filepath.Join(dir, "data"), 0o777))
			must(t, os.WriteFile(filepath.Join(dir, "passwd"), nil, 0o644))
			acl, err := os.ReadFile("mosquitto/acl")
			must(t, err)
			must(t, os.WriteFile(filepath.Join(dir, "acl"), acl, 0o644))

			conf := brokerConfig(t, c.file)
			plain, tlsPort := freePort(t), freePort(t)
			var out []string
			for _, line := range strings.Split(string(conf), "\n") {
				f := strings.Fields(line)
				switch {
				case len(f) >= 2 && f[0] == "listener" && f[1] == "1883":
					line = fmt.Sprintf("listener %d 127.0.0.1", plain)
				case len(f) >= 2 && f[0] == "listener" && f[1] == "8883":
					line = fmt.Sprintf("listener %d 127.0.0.1", tlsPort)
				case len(f) == 2 && strings.HasPrefix(f[1], "/"):
					for from, to := range c.paths {
						if strings.HasPrefix(f[1], from) {
							line = f[0] + " " + filepath.Join(dir, to, strings.TrimPrefix(f[1], from))
							if strings.HasSuffix(f[1], "/") {
								line += "/"
							}
							break
						}
					}
				}
				out = append(out, line)
			}
			confPath := filepath.Join(dir, "mosquitto.conf")
			must(t, os.WriteFile(confPath, []byte(strings.Join(out, "\n")), 0o644))

			cmd := exec.Command(bin, "-c", confPath)
			var logs bytes.Buffer
			cmd.Stdout, cmd.Stderr = &logs, &logs
			must(t, cmd.Start())
			exited := make(chan struct{})
			var waitErr error
			go func() { waitErr = cmd.Wait(); close(exited) }()
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				<-exited
			})

			addr := "127.0.0.1:" + strconv.Itoa(plain)
			deadline := time.Now().Add(15 * time.Second)
			for {
				conn, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
				if err == nil {
					conn.Close()
					break
				}
				select {
				case <-exited:
					t.Fatalf("mosquitto exited (%v) with the shipped config:\n%s", waitErr, logs.String())
				default:
				}
				if time.Now().After(deadline) {
					t.Fatalf("mosquitto did not listen on %s:\n%s", addr, logs.String())
				}
				time.Sleep(50 * time.Millisecond)
			}
			pool := x509.NewCertPool()
			pool.AddCert(ca)
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp",
				"127.0.0.1:"+strconv.Itoa(tlsPort), &tls.Config{RootCAs: pool, ServerName: "localhost"})
			if err != nil {
				t.Fatalf("TLS listener: %v\n%s", err, logs.String())
			}
			conn.Close()
		})
	}
}

// brokerConfig is the Mosquitto configuration in file: the file itself, or
// the mosquitto.conf key of the ConfigMap in a Kubernetes manifest.
func brokerConfig(t *testing.T, file string) []byte {
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
		if conf, ok := data["mosquitto.conf"].(string); ok {
			return []byte(conf)
		}
	}
	t.Fatalf("%s: no ConfigMap with mosquitto.conf", file)
	return nil
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// writeCerts writes ca.crt, server.crt and server.key (for localhost) into
// dir and returns the CA certificate.
func writeCerts(t *testing.T, dir string) *x509.Certificate {
	t.Helper()
	must(t, os.MkdirAll(dir, 0o755))
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gridedge test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	must(t, err)
	ca, err := x509.ParseCertificate(caDER)
	must(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	must(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	must(t, err)
	write := func(name, typ string, b []byte) {
		must(t, os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o644))
	}
	write("ca.crt", "CERTIFICATE", caDER)
	write("server.crt", "CERTIFICATE", der)
	write("server.key", "EC PRIVATE KEY", keyDER)
	return ca
}
