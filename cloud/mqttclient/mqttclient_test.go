package mqttclient

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/gridedge/gridedge/cloud/broker"
	"github.com/gridedge/gridedge/cloud/devices"
)

func TestParseFile(t *testing.T) {
	c, err := ParseFile([]byte("# collector\nGRIDEDGE_MQTT_USERNAME=collector\r\nexport GRIDEDGE_MQTT_PASSWORD=\"s3cr=t x\"\n"))
	if err != nil || c.Username != "collector" || c.Password != "s3cr=t x" {
		t.Fatalf("%+v %v", c, err)
	}
	c, err = ParseFile([]byte("GRIDEDGE_MQTT_USERNAME='a b'\nGRIDEDGE_MQTT_PASSWORD=\n"))
	if err != nil || c.Username != "a b" || c.Password != "" {
		t.Fatalf("%+v %v", c, err)
	}
	for in, want := range map[string]string{
		"GRIDEDGE_MQTT_PASSWORD=topsecret\n":                             "GRIDEDGE_MQTT_USERNAME missing",
		"GRIDEDGE_MQTT_USERNAME=a\nGRIDEDGE_MQTT_USERNAME=b\n":           "line 2: GRIDEDGE_MQTT_USERNAME already set on line 1",
		"GRIDEDGE_MQTT_USER=a\n":                                         "line 1: unknown key",
		"GRIDEDGE_MQTT_USERNAME=a\ntopsecret\n":                          "line 2: want KEY=VALUE",
		"GRIDEDGE_MQTT_USERNAME=a\nGRIDEDGE_MQTT_PASSWORD=\"topsecret\n": "unbalanced quotes",
	} {
		_, err := ParseFile([]byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseFile(%q) = %v, want %q", in, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "topsecret") {
			t.Errorf("error %q echoes a secret", err)
		}
	}
}

// FuzzParseFile: any input is rejected or yields a username; an error
// never echoes the input's values.
func FuzzParseFile(f *testing.F) {
	f.Add([]byte("GRIDEDGE_MQTT_USERNAME=collector\nGRIDEDGE_MQTT_PASSWORD='x'\n"))
	f.Add([]byte("export GRIDEDGE_MQTT_USERNAME=\"a\"\r\n# c\n"))
	f.Add([]byte("=\n'\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseFile(data)
		if err != nil {
			if bytes.Contains(data, []byte("SECRETVALUE")) && strings.Contains(err.Error(), "SECRETVALUE") {
				t.Fatalf("error echoes a value: %v", err)
			}
			return
		}
		if c.Username == "" {
			t.Fatal("accepted without a username")
		}
	})
}

func TestFromEnv(t *testing.T) {
	env := map[string]string{EnvUsername: "collector", EnvPassword: "p"}
	c, err := FromEnv(func(k string) string { return env[k] })
	if err != nil || c != (Credentials{"collector", "p"}) {
		t.Fatalf("%+v %v", c, err)
	}
	delete(env, EnvUsername)
	if _, err := FromEnv(func(k string) string { return env[k] }); err == nil {
		t.Fatal("password without username accepted")
	}
}

func TestSplitURLAndRedact(t *testing.T) {
	clean, c, err := SplitURL("tcp://collector:hunter2@127.0.0.1:1883")
	if err != nil || clean != "tcp://127.0.0.1:1883" || c != (Credentials{"collector", "hunter2"}) {
		t.Fatalf("%q %+v %v", clean, c, err)
	}
	if clean, c, _ := SplitURL("tcp://127.0.0.1:1883"); clean != "tcp://127.0.0.1:1883" || c.Set() {
		t.Fatalf("%q %+v", clean, c)
	}
	for _, raw := range []string{"tcp://collector:hunter2@127.0.0.1:1883", "tcp://collector:hunter2@[bad"} {
		if r := Redact(raw); strings.Contains(r, "hunter2") {
			t.Errorf("Redact(%q) = %q", raw, r)
		}
	}
}

func TestStableClientID(t *testing.T) {
	dir := t.TempDir()
	a, err := StableClientID(dir, "gridedge-collector")
	if err != nil || !strings.HasPrefix(a, "gridedge-collector-") || len(a) != len("gridedge-collector-")+16 {
		t.Fatalf("%q %v", a, err)
	}
	b, err := StableClientID(dir, "gridedge-collector")
	if err != nil || a != b {
		t.Fatalf("not stable: %q then %q (%v)", a, b, err)
	}
	other, err := StableClientID(t.TempDir(), "gridedge-collector")
	if err != nil || other == a {
		t.Fatalf("two data directories share id %q (%v)", a, err)
	}
	if err := os.WriteFile(filepath.Join(dir, ClientIDFile), []byte("a/b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := StableClientID(dir, "x"); err == nil {
		t.Fatal("an id with a slash was used")
	}
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// An unreachable broker is a WARN naming it, with the password redacted.
func TestKeeperLogsUnreachableBroker(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	k := NewKeeper(log, "tcp://collector:hunter2@127.0.0.1:1")
	client := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://127.0.0.1:1").SetAutoReconnect(false).SetConnectTimeout(time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { k.Run(ctx, client); close(done) }()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(logs.String(), "level=WARN msg=\"mqtt broker unreachable\"") {
		if time.Now().After(deadline) {
			t.Fatalf("no warning logged:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	if strings.Contains(logs.String(), "hunter2") {
		t.Fatalf("password logged:\n%s", logs.String())
	}
}

// A broker that refuses the credentials is an ERROR with its reason.
func TestKeeperLogsRefusalWithTheBrokersReason(t *testing.T) {
	reg, err := devices.Open(filepath.Join(t.TempDir(), "devices"), devices.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := broker.Start("127.0.0.1:0", broker.WithRegistry(reg), broker.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var logs syncBuffer
	k := NewKeeper(slog.New(slog.NewTextHandler(&logs, nil)), b.URL())
	client := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()).SetClientID("collector-x").
		SetUsername("collector").SetPassword("wrong").SetAutoReconnect(false))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { k.Run(ctx, client); close(done) }()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(logs.String(), `level=ERROR msg="mqtt broker refused the connection"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no error logged:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	if !strings.Contains(logs.String(), "connack_code=5") || !strings.Contains(logs.String(), "not authorised") {
		t.Fatalf("the broker's reason is not in the log:\n%s", logs.String())
	}
}
