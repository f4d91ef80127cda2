package mqtttest

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
	"sync"
	"syscall"
	"testing"
	"time"
)

// Shipped is a Mosquitto process running a shipped configuration file,
// rewritten only where a test must: its listeners on ports 1883 and 8883
// move to free loopback ports, and absolute paths move into a temporary
// directory (so the password file, ACL, certificates and persistence are the
// test's). Everything else (authentication, ACL, client id binding, limits)
// is the shipped text.
type Shipped struct {
	t                   testing.TB
	bin, passwdBin, dir string
	plain, tls          int
	ca                  *x509.Certificate
	cmd                 *exec.Cmd
	done                chan struct{}
	mu                  sync.Mutex
	logs                bytes.Buffer
}

// ShippedFiles are the files a shipped configuration refers to.
type ShippedFiles struct {
	// Paths maps each absolute path prefix used in the configuration to a
	// directory under the temporary directory ("" for its root), e.g.
	// {"/var/lib/mosquitto/": "data/", "/etc/mosquitto/certs/": "certs/",
	// "/etc/mosquitto/": ""}. Longer prefixes must be listed too: the
	// longest matching one wins.
	Paths map[string]string
	// ACL is the content of the file the configuration names "acl".
	ACL []byte
	// Users are written to the file named "passwd" with mosquitto_passwd.
	Users map[string]string
}

// StartShipped starts Mosquitto with conf and stops it when the test ends.
// A certificate authority, and a server certificate for "localhost" signed
// by it, are written as ca.crt, server.crt and server.key into the
// directory the "certs/" prefix maps to.
func StartShipped(t testing.TB, conf []byte, files ShippedFiles) *Shipped {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	passwdBin, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		t.Fatal("mosquitto_passwd not found: it comes with Debian's mosquitto package (make deps)")
	}
	dir := t.TempDir()
	// Mosquitto started as root drops to its own user before reading the
	// password, ACL and certificate files.
	for _, d := range []string{filepath.Dir(dir), dir} {
		must(t, os.Chmod(d, 0o755))
	}
	s := &Shipped{t: t, bin: bin, passwdBin: passwdBin, dir: dir}
	s.ca = WriteCerts(t, filepath.Join(dir, "certs"))
	must(t, os.MkdirAll(filepath.Join(dir, "data"), 0o777))
	must(t, os.Chmod(filepath.Join(dir, "data"), 0o777))
	must(t, os.WriteFile(filepath.Join(dir, "acl"), files.ACL, 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "passwd"), nil, 0o644))
	for u, p := range files.Users {
		s.SetPassword(u, p)
	}
	if s.plain, err = freePort(); err != nil {
		t.Fatal(err)
	}
	if s.tls, err = freePort(); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(conf), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && f[0] == "listener" && f[1] == "1883":
			line = fmt.Sprintf("listener %d 127.0.0.1", s.plain)
		case len(f) >= 2 && f[0] == "listener" && f[1] == "8883":
			line = fmt.Sprintf("listener %d 127.0.0.1", s.tls)
		case len(f) == 2 && strings.HasPrefix(f[1], "/"):
			best := ""
			for from := range files.Paths {
				if strings.HasPrefix(f[1], from) && len(from) > len(best) {
					best = from
				}
			}
			if best != "" {
				line = f[0] + " " + filepath.Join(dir, files.Paths[best], strings.TrimPrefix(f[1], best))
				if strings.HasSuffix(f[1], "/") {
					line += "/"
				}
			}
		}
		out = append(out, line)
	}
	must(t, os.WriteFile(filepath.Join(dir, "mosquitto.conf"), []byte(strings.Join(out, "\n")), 0o644))
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *Shipped) start() {
	s.t.Helper()
	cmd := exec.Command(s.bin, "-c", filepath.Join(s.dir, "mosquitto.conf"))
	cmd.Stdout, cmd.Stderr = s, s
	must(s.t, cmd.Start())
	s.cmd, s.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(s.plain), 500*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-s.done:
			s.t.Fatalf("mosquitto exited with the shipped configuration:\n%s", s.Logs())
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("mosquitto did not listen on port %d:\n%s", s.plain, s.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Shipped) stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	if s.t.Failed() {
		s.t.Logf("mosquitto log:\n%s", s.Logs())
	}
}

// Write collects the broker's log (io.Writer for its stdout and stderr).
func (s *Shipped) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.Write(p)
}

// Logs is what the broker has logged so far.
func (s *Shipped) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

// PlainURL is the listener shipped on 1883, tcp://127.0.0.1:PORT.
func (s *Shipped) PlainURL() string { return "tcp://127.0.0.1:" + strconv.Itoa(s.plain) }

// PlainPort is the port that replaced 1883.
func (s *Shipped) PlainPort() int { return s.plain }

// TLSURL is the listener shipped on 8883, ssl://localhost:PORT.
func (s *Shipped) TLSURL() string { return "ssl://localhost:" + strconv.Itoa(s.tls) }

// TLSAddr is the TLS listener as 127.0.0.1:PORT.
func (s *Shipped) TLSAddr() string { return "127.0.0.1:" + strconv.Itoa(s.tls) }

// TLSConfig is a client configuration trusting the test CA.
func (s *Shipped) TLSConfig() *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(s.ca)
	return &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}
}

// CAFile is the PEM file of the test CA.
func (s *Shipped) CAFile() string { return filepath.Join(s.dir, "certs", "ca.crt") }

// SetPassword adds or changes a user in the password file with
// mosquitto_passwd. A running broker sees it after Reload.
func (s *Shipped) SetPassword(user, password string) {
	s.t.Helper()
	s.passwd("-b", filepath.Join(s.dir, "passwd"), user, password)
}

// RemoveUser deletes a user from the password file (after Reload).
func (s *Shipped) RemoveUser(user string) {
	s.t.Helper()
	s.passwd("-D", filepath.Join(s.dir, "passwd"), user)
}

func (s *Shipped) passwd(args ...string) {
	s.t.Helper()
	if out, err := exec.Command(s.passwdBin, args...).CombinedOutput(); err != nil {
		s.t.Fatalf("mosquitto_passwd %s: %v\n%s", args[0], err, out)
	}
	// mosquitto_passwd may tighten the mode; the broker reads the file
	// after dropping root.
	must(s.t, os.Chmod(filepath.Join(s.dir, "passwd"), 0o644))
}

// Reload sends SIGHUP: Mosquitto rereads its password and ACL files.
func (s *Shipped) Reload() {
	s.t.Helper()
	must(s.t, s.cmd.Process.Signal(syscall.SIGHUP))
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// WriteCerts writes ca.crt, server.crt and server.key (for localhost) into
// dir and returns the CA certificate.
func WriteCerts(t testing.TB, dir string) *x509.Certificate {
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
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
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
