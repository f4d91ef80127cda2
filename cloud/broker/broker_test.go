package broker

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/gridedge/gridedge/shared/poll"
	"github.com/gridedge/gridedge/shared/topic"
)

func connect(t *testing.T, url, id string, handler paho.MessageHandler) paho.Client {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(id).SetDefaultPublishHandler(handler))
	if tok := c.Connect(); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// Two members of one shared-subscription group each get some of the
// messages and together get every message exactly once.
func TestSharedSubscriptionSplitsMessages(t *testing.T) {
	b, err := Start("127.0.0.1:0", WithAnonymous(), WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	var mu sync.Mutex
	got := map[string]map[string]int{} // member -> topic -> count
	total := 0
	member := func(name string) paho.MessageHandler {
		return func(_ paho.Client, m paho.Message) {
			mu.Lock()
			defer mu.Unlock()
			if got[name] == nil {
				got[name] = map[string]int{}
			}
			got[name][m.Topic()]++
			total++
		}
	}
	for _, name := range []string{"a", "b"} {
		c := connect(t, b.URL(), "member-"+name, member(name))
		if tok := c.Subscribe(topic.Shared("gridedge", topic.Data), 1, nil); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe: %v", tok.Error())
		}
	}
	pub := connect(t, b.URL(), "publisher", nil)
	const n = 200
	for i := 0; i < n; i++ {
		tok := pub.Publish(topic.For("site", fmt.Sprintf("dev-%d", i), topic.Data), 1, false, []byte{byte(i)})
		if !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %d: %v", i, tok.Error())
		}
	}
	poll.Until(t, 30*time.Second, "every message delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return total >= n
	})
	mu.Lock()
	defer mu.Unlock()
	seen := map[string]int{}
	for _, topics := range got {
		for tp, c := range topics {
			seen[tp] += c
		}
	}
	if len(seen) != n {
		t.Fatalf("%d distinct topics delivered, want %d", len(seen), n)
	}
	for tp, c := range seen {
		if c != 1 {
			t.Fatalf("%s delivered %d times to the group, want once", tp, c)
		}
	}
	if len(got["a"]) == 0 || len(got["b"]) == 0 {
		t.Fatalf("one member got nothing: a=%d b=%d", len(got["a"]), len(got["b"]))
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
