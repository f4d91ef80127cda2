package publish

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/gridedge/gridedge/shared/wire"
)

func (p *Publisher) statusMessage(online bool) []byte {
	var st *wire.Status
	if p.o.status != nil {
		st = p.o.status()
	}
	if st == nil {
		st = &wire.Status{}
	}
	st.DeviceId = p.cfg.DeviceID
	st.Online = online
	st.AgentVersion = p.o.version
	if st.WallNs == 0 {
		now := p.src.Now()
		st.WallNs, st.BootId, st.ClockQuality = now.WallNs, now.BootID, p.src.Quality()
	}
	out, err := wire.EncodeStatus(st)
	if err != nil {
		p.log.Error("encode status", "err", err)
		return nil
	}
	return out
}

// connectLoop keeps the client connected: connect, subscribe to acks, send
// the birth message, wait for a loss, back off with jitter, repeat.
func (p *Publisher) connectLoop(ctx context.Context, client session) {
	backoff := p.o.minBackoff
	sleep := func() bool {
		// Full jitter in [backoff/2, backoff): a fleet does not reconnect in lockstep.
		d := backoff/2 + rand.N(backoff/2+1)
		backoff = min(backoff*2, p.o.maxBackoff)
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for ctx.Err() == nil {
		select {
		case <-p.lost: // drop a stale loss signal
		default:
		}
		done, err := wait(ctx, client.Connect(), p.o.connectTimeout+time.Second)
		if !done || err != nil {
			if ctx.Err() == nil {
				p.connectFails.Add(1)
				p.log.Warn("connect failed", "url", p.cfg.URL, "err", err, "retry_in_max", backoff)
			}
			client.Disconnect(0)
			if !sleep() {
				return
			}
			continue
		}
		done, err = wait(ctx, client.Subscribe(p.ackTopic, 1, p.onAckMessage), p.o.connectTimeout)
		if !done || err != nil {
			if ctx.Err() == nil {
				p.connectFails.Add(1)
			}
			p.log.Warn("subscribe to acks failed", "topic", p.ackTopic, "err", err)
			client.Disconnect(0)
			if !sleep() {
				return
			}
			continue
		}
		p.publishStatus(ctx, client)
		backoff = p.o.minBackoff
		p.connects.Add(1)
		p.connected.Store(true)
		p.log.Info("connected", "url", p.cfg.URL)
		p.Notify()
		statusTick := time.NewTicker(p.o.statusInterval)
	connected:
		for {
			select {
			case <-ctx.Done():
				statusTick.Stop()
				return
			case <-p.lost:
				break connected
			case <-statusTick.C:
				p.publishStatus(ctx, client)
			}
		}
		statusTick.Stop()
		if !sleep() {
			return
		}
	}
}

func (p *Publisher) publishStatus(ctx context.Context, client session) {
	msg := p.statusMessage(true)
	if msg == nil {
		return
	}
	if _, err := wait(ctx, client.Publish(p.statusTopic, 1, true, msg), p.o.publishTimeout); err != nil {
		p.log.Warn("publish status", "err", err)
	}
}

func (p *Publisher) onAckMessage(topic string, payload []byte) {
	ack, err := wire.DecodeAck(payload)
	if err == nil && ack.DeviceId != p.cfg.DeviceID {
		err = fmt.Errorf("ack for device %q on %s", ack.DeviceId, topic)
	}
	if err != nil {
		p.badAcks.Add(1)
		p.log.Warn("ack rejected", "err", err)
		return
	}
	// Handlers run on their own goroutines (order does not matter for
	// acks), so waiting here does not stall the client.
	select {
	case p.acks <- ack:
	case <-time.After(30 * time.Second):
		p.log.Warn("ack queue full, ack dropped (the readings are resent and acked again)")
	}
}
