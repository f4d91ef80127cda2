package publish

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gridedge/gridedge/shared/mqtttest"
	"github.com/gridedge/gridedge/shared/poll"
)

// A publisher with a dialer connects only through it, from the local
// address it chooses, and delivers through that connection; a dialer that
// fails keeps it retrying without losing anything.
func TestDialerChoosesTheConnection(t *testing.T) {
	broker := mqtttest.Start(t)
	col := newCollector(t, broker.URL(), true)
	b := newBuffer(t)
	seqs := fill(t, b, "boot-a", 30)

	var (
		mu     sync.Mutex
		locals []string
		fail   = true
	)
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			fail = false
			return nil, errors.New("link down")
		}
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
		c, err := d.DialContext(ctx, network, addr)
		if err == nil {
			locals = append(locals, c.LocalAddr().(*net.TCPAddr).IP.String())
		}
		return c, err
	}
	start(t, broker.URL(), b, Config{AckTimeout: time.Hour}, WithDialer(dial))
	poll.Until(t, 45*time.Second, "all readings acked", func() bool { return col.hasAll(seqs) && b.Len() == 0 })
	mu.Lock()
	defer mu.Unlock()
	if len(locals) == 0 {
		t.Fatal("the publisher connected without its dialer")
	}
	for _, l := range locals {
		if l != "127.0.0.2" {
			t.Fatalf("connected from %s, want 127.0.0.2", l)
		}
	}
}
