package publish

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gridedge/gridedge/shared/mqtttest"
	"github.com/gridedge/gridedge/shared/poll"
)

// testPKI writes a CA, a server certificate for 127.0.0.1 and a client
// certificate, all PEM, into dir.
func testPKI(t *testing.T, dir string) (ca, serverCert, serverKey, clientCert, clientKey string) {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	// Mosquitto started as root drops to its own user before loading
	// certificates: the (throw-away) files must be world-readable.
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	now := time.Now()
	caKey := newKey()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gridedge test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leaf := func(name string, serial int64, usage x509.ExtKeyUsage, ips []net.IP) (string, string) {
		k := newKey()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{usage},
			KeyUsage: x509.KeyUsageDigitalSignature, IPAddresses: ips}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kd, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return write(name+".pem", "CERTIFICATE", der), write(name+".key", "EC PRIVATE KEY", kd)
	}
	ca = write("ca.pem", "CERTIFICATE", caDER)
	serverCert, serverKey = leaf("server", 2, x509.ExtKeyUsageServerAuth, []net.IP{net.ParseIP("127.0.0.1")})
	clientCert, clientKey = leaf("client", 3, x509.ExtKeyUsageClientAuth, nil)
	return
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestMutualTLS publishes through a Mosquitto TLS listener that requires a
// client certificate signed by the test CA.
func TestMutualTLS(t *testing.T) {
	dir, err := os.MkdirTemp("", "gridedge-tls-") // not t.TempDir: its parents are 0700
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ca, sc, sk, cc, ck := testPKI(t, dir)
	port := freePort(t)
	broker := mqtttest.Start(t, mqtttest.WithConfig(fmt.Sprintf(
		"listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\n", port, ca, sc, sk)))
	col := newCollector(t, broker.URL(), true) // the collector uses the plain listener
	b := newBuffer(t)
	seqs := fill(t, b, "boot", 10)
	url := fmt.Sprintf("ssl://127.0.0.1:%d", port)
	p := start(t, url, b, Config{CAFile: ca, CertFile: cc, KeyFile: ck, AckTimeout: 5 * time.Second})
	poll.Until(t, 45*time.Second, "readings delivered over TLS and acked", func() bool { return col.hasAll(seqs) && b.Len() == 0 })
	if p.Stats().Connects == 0 {
		t.Fatal("never connected")
	}

	// Without a client certificate the broker refuses the connection: the
	// publisher keeps retrying and sends nothing. Two refused attempts show
	// it did try (and retry) before the "never connected" assertion.
	b2 := newBuffer(t)
	fill(t, b2, "boot", 3)
	p2 := start(t, url, b2, Config{CAFile: ca})
	poll.Until(t, 45*time.Second, "two refused connection attempts", func() bool { return p2.Stats().ConnectFailures >= 2 })
	if st := p2.Stats(); st.Connects != 0 || st.Sent != 0 || b2.Len() != 3 {
		t.Fatalf("connected without a client certificate: %+v, %d buffered", st, b2.Len())
	}
}

func TestTLSFileErrorsNameTheField(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "x.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	cases := []struct {
		cfg  Config
		want string
	}{
		{Config{URL: "ssl://127.0.0.1:1", CAFile: filepath.Join(dir, "missing.pem")}, "mqtt.ca_file"},
		{Config{URL: "ssl://127.0.0.1:1", CAFile: notPEM}, "mqtt.ca_file: " + notPEM + " holds no PEM certificate"},
		{Config{URL: "ssl://127.0.0.1:1", CertFile: notPEM, KeyFile: notPEM}, "mqtt.cert_file/key_file"},
	}
	for _, tc := range cases {
		tc.cfg.Site, tc.cfg.DeviceID = site, device
		p, err := New(tc.cfg, newBuffer(t), fakeClock{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = p.Run(ctx)
		cancel()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("error %v, want it to mention %q", err, tc.want)
		}
	}
}
