package publish

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/gridedge/gridedge/edge/buffer"
	"github.com/gridedge/gridedge/edge/clock"
	"github.com/gridedge/gridedge/shared/wire"
)

// flight is a batch that was sent and not yet fully acked.
type flight struct {
	epoch   uint64
	seqs    []uint64 // sorted; removed as acks arrive
	sentAt  time.Time
	backlog bool
}

// sender holds the send loop's state; only sendLoop touches it.
type sender struct {
	cursor  uint64 // highest sequence number sent at least once (the live cursor)
	flights []*flight
	// split > 0 while a backlog is replayed: readings in (backlog, split]
	// are still to be sent, oldest first, rate-limited.
	split, backlog uint64
	tokens         float64
	tokensAt       time.Time
}

func (s *sender) backlogFlights() int {
	n := 0
	for _, f := range s.flights {
		if f.backlog {
			n++
		}
	}
	return n
}

// sendLoop sends, resends and applies acks. It sleeps until there is
// something to do: a Notify (new readings, a new connection), an ack, the
// earliest ack deadline of a batch in flight, or the next round of a
// backlog replay. An idle agent's publisher does not wake.
func (p *Publisher) sendLoop(ctx context.Context, client session) {
	s := &sender{}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		p.heartbeat.Store(time.Now().UnixNano())
		var deadline <-chan time.Time
		if d, ok := p.nextDeadline(s); ok {
			timer.Reset(d)
			deadline = timer.C
		}
		p.idle.Store(true)
		select {
		case <-ctx.Done():
			p.idle.Store(false)
			return
		case ack := <-p.acks:
			p.applyAck(s, ack)
		case <-p.wake:
		case <-deadline:
		}
		p.idle.Store(false)
		timer.Stop()
		// Apply every queued ack before deciding what to send.
		for drained := false; !drained; {
			select {
			case ack := <-p.acks:
				p.applyAck(s, ack)
			default:
				drained = true
			}
		}
		// Data waits for the birth message of this connection: a collector
		// learns the site's time zone and the agent's state from it before
		// the first reading arrives.
		if !p.connected.Load() || !client.IsConnectionOpen() {
			continue
		}
		p.resendExpired(ctx, client, s)
		p.sendNew(ctx, client, s)
		p.inFlightN.Store(int64(len(s.flights)))
	}
}

// nextDeadline is how long the send loop may sleep before it has work
// nobody will wake it for: the earliest ack deadline of a batch in flight,
// or the next round of a backlog replay. ok is false when it can sleep
// until woken (nothing in flight, or not connected: the connection's
// Notify wakes it).
func (p *Publisher) nextDeadline(s *sender) (d time.Duration, ok bool) {
	if !p.connected.Load() {
		return 0, false
	}
	// The cadence of a backlog replay, and the retry interval of a resend
	// that failed (its deadline has passed).
	round := min(p.cfg.AckTimeout/4, time.Second)
	if s.split != 0 {
		return round, true
	}
	if len(s.flights) == 0 {
		return 0, false
	}
	earliest := s.flights[0].sentAt
	for _, f := range s.flights[1:] {
		if f.sentAt.Before(earliest) {
			earliest = f.sentAt
		}
	}
	if d = time.Until(earliest.Add(p.cfg.AckTimeout)); d <= 0 {
		d = round
	}
	return d, true
}

func (p *Publisher) applyAck(s *sender, ack *wire.Ack) {
	// Only what this process has sent can have been stored by the
	// collector: a buggy or forged ack for the rest must not delete it.
	ranges := clip(ack.Ranges, s.sentRanges())
	if !sameRanges(ranges, ack.Ranges) {
		p.log.Warn("ack names readings not sent by this process; ignoring those", "ranges", len(ack.Ranges))
	}
	n, err := p.buf.Delete(ack.SeqEpoch, ranges...)
	if err != nil {
		p.log.Error("delete acked readings", "err", err)
		return
	}
	p.ackCount.Add(1)
	p.acked.Add(uint64(n))
	s.flights = slices.DeleteFunc(s.flights, func(f *flight) bool {
		if f.epoch == ack.SeqEpoch {
			f.seqs = slices.DeleteFunc(f.seqs, func(q uint64) bool { return inRanges(q, ack.Ranges) })
		}
		return len(f.seqs) == 0
	})
	p.inFlightN.Store(int64(len(s.flights)))
	if p.o.onAck != nil {
		p.o.onAck(n)
	}
}

// sentRanges are the sequence numbers sent at least once: everything up to
// the live cursor, except the part of a backlog not replayed yet.
func (s *sender) sentRanges() []*wire.SeqRange {
	if s.cursor == 0 {
		return nil
	}
	if s.split == 0 || s.backlog >= s.split {
		return []*wire.SeqRange{{First: 0, Last: s.cursor}}
	}
	out := []*wire.SeqRange{}
	if s.backlog > 0 {
		out = append(out, &wire.SeqRange{First: 0, Last: s.backlog})
	}
	if s.cursor > s.split {
		out = append(out, &wire.SeqRange{First: s.split + 1, Last: s.cursor})
	}
	return out
}

// clip intersects ranges with allowed (both sorted or not; small lists).
func clip(ranges, allowed []*wire.SeqRange) []*wire.SeqRange {
	var out []*wire.SeqRange
	for _, r := range ranges {
		for _, a := range allowed {
			if lo, hi := max(r.First, a.First), min(r.Last, a.Last); lo <= hi {
				out = append(out, &wire.SeqRange{First: lo, Last: hi})
			}
		}
	}
	return out
}

func sameRanges(a, b []*wire.SeqRange) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].First != b[i].First || a[i].Last != b[i].Last {
			return false
		}
	}
	return true
}

func inRanges(q uint64, rs []*wire.SeqRange) bool {
	for _, r := range rs {
		if q >= r.First && q <= r.Last {
			return true
		}
	}
	return false
}

// resendExpired sends again every batch whose ack is overdue, reading it
// back from the buffer (what was deleted meanwhile is skipped).
func (p *Publisher) resendExpired(ctx context.Context, client session, s *sender) {
	now := time.Now()
	for _, f := range s.flights {
		if now.Sub(f.sentAt) < p.cfg.AckTimeout {
			continue
		}
		recs, err := p.buf.ReadRange(f.seqs[0], f.seqs[len(f.seqs)-1], len(f.seqs))
		if err != nil {
			p.log.Error("read for resend", "err", err)
			return
		}
		recs = slices.DeleteFunc(recs, func(r buffer.Record) bool {
			_, found := slices.BinarySearch(f.seqs, r.Seq)
			return !found
		})
		f.seqs = f.seqs[:0]
		for _, r := range recs {
			f.seqs = append(f.seqs, r.Seq)
		}
		f.sentAt = now
		for len(recs) > 0 {
			n := batchLen(recs, p.cfg.MaxBatchReadings, p.cfg.MaxBatchBytes)
			p.publish(ctx, client, recs[:n])
			p.resent.Add(uint64(n))
			recs = recs[n:]
		}
	}
	s.flights = slices.DeleteFunc(s.flights, func(f *flight) bool { return len(f.seqs) == 0 })
}

// sendNew sends what has not been sent yet while the in-flight window has
// room.
//
// After an outage the unsent part of the buffer is a backlog. It is split
// off at the newest reading (s.split): readings after the split are live
// and sent first, every round; the backlog (s.backlog+1 .. s.split) is sent
// oldest first in between, limited to ReplayRate readings/s and to half the
// in-flight window. So live data keeps flowing while hours of backlog
// drain, and the drain does not flood the broker.
func (p *Publisher) sendNew(ctx context.Context, client session, s *sender) {
	if s.split == 0 && p.buf.NextSeq()-1 > s.cursor+uint64(2*p.cfg.MaxBatchReadings) {
		s.split = p.buf.NextSeq() - 1
		s.backlog = s.cursor
		s.cursor = s.split
		p.log.Info("replaying backlog", "from_seq", s.backlog+1, "to_seq", s.split, "rate", p.cfg.ReplayRate)
	}
	for ctx.Err() == nil && len(s.flights) < p.o.maxInFlight {
		sentLive := p.sendLive(ctx, client, s)
		sentBacklog := p.sendBacklog(ctx, client, s)
		if !sentLive && !sentBacklog {
			return
		}
	}
}

// sendLive sends one batch past the live cursor. It reports whether it
// sent anything.
func (p *Publisher) sendLive(ctx context.Context, client session, s *sender) bool {
	if len(s.flights) >= p.o.maxInFlight {
		return false
	}
	recs, err := p.buf.Read(s.cursor, p.cfg.MaxBatchReadings)
	if err != nil || len(recs) == 0 {
		p.logReadErr(err)
		return false
	}
	recs = recs[:batchLen(recs, p.cfg.MaxBatchReadings, p.cfg.MaxBatchBytes)]
	s.cursor = recs[len(recs)-1].Seq
	p.sendFlight(ctx, client, s, recs, false)
	return true
}

// sendBacklog sends one backlog batch if the replay rate and the window
// allow. It reports whether it sent anything.
func (p *Publisher) sendBacklog(ctx context.Context, client session, s *sender) bool {
	if s.split == 0 || s.backlogFlights() >= max(p.o.maxInFlight/2, 1) || len(s.flights) >= p.o.maxInFlight {
		return false
	}
	limit := p.cfg.MaxBatchReadings
	if p.cfg.ReplayRate > 0 {
		now := time.Now()
		if s.tokensAt.IsZero() {
			s.tokens, s.tokensAt = float64(min(p.cfg.ReplayRate, limit)), now
		}
		s.tokens = min(s.tokens+now.Sub(s.tokensAt).Seconds()*float64(p.cfg.ReplayRate), float64(max(p.cfg.ReplayRate, limit)))
		s.tokensAt = now
		limit = min(limit, int(s.tokens))
		if limit < 1 {
			return false
		}
	}
	recs, err := p.buf.ReadRange(s.backlog+1, s.split, limit)
	if err != nil {
		p.logReadErr(err)
		return false
	}
	if len(recs) == 0 {
		// Backlog drained: back to one cursor.
		p.log.Info("backlog replayed", "through_seq", s.split)
		s.split, s.backlog, s.tokensAt = 0, 0, time.Time{}
		return false
	}
	recs = recs[:batchLen(recs, limit, p.cfg.MaxBatchBytes)]
	s.backlog = recs[len(recs)-1].Seq
	if p.cfg.ReplayRate > 0 {
		s.tokens -= float64(len(recs))
	}
	p.sendFlight(ctx, client, s, recs, true)
	return true
}

func (p *Publisher) logReadErr(err error) {
	if err != nil && !errors.Is(err, buffer.ErrClosed) {
		p.log.Error("read buffer", "err", err)
	}
}

func (p *Publisher) sendFlight(ctx context.Context, client session, s *sender, recs []buffer.Record, backlog bool) {
	f := &flight{epoch: recs[0].SeqEpoch, sentAt: time.Now(), seqs: make([]uint64, len(recs)), backlog: backlog}
	for i, r := range recs {
		f.seqs[i] = r.Seq
	}
	s.flights = append(s.flights, f)
	p.publish(ctx, client, recs)
	p.sent.Add(uint64(len(recs)))
	if backlog {
		p.backlogSent.Add(uint64(len(recs)))
	}
}

// publish encodes recs (one epoch, one boot) as a batch re-stamped with the
// best time known now and publishes it at QoS 1. Failures are counted and
// logged; the ack timeout brings the readings back.
func (p *Publisher) publish(ctx context.Context, client session, recs []buffer.Record) {
	now := p.src.Now()
	b := &wire.Batch{
		DeviceId: p.cfg.DeviceID, BootId: recs[0].BootID, SeqEpoch: recs[0].SeqEpoch,
		SentBootId: now.BootID, SentMonoNs: now.MonoNs, SentWallNs: now.WallNs, SentTimeQuality: now.Quality,
		AgentVersion: p.o.version, Readings: make([]*wire.Reading, len(recs)),
	}
	for i, rec := range recs {
		r := rec.Reading
		st := p.src.Correct(clock.Stamp{BootID: rec.BootID, MonoNs: r.MonoNs, WallNs: r.WallNs, Quality: r.TimeQuality, ErrorNs: r.TimeErrorNs})
		r.WallNs, r.TimeQuality, r.TimeErrorNs = st.WallNs, st.Quality, st.ErrorNs
		b.Readings[i] = r
	}
	payload, err := wire.EncodeBatch(b)
	if err != nil {
		p.publishErrors.Add(1)
		p.log.Error("encode batch", "err", err)
		return
	}
	p.batches.Add(1)
	done, err := wait(ctx, client.Publish(p.dataTopic, 1, false, payload), p.o.publishTimeout)
	if !done || err != nil {
		p.publishErrors.Add(1)
		if ctx.Err() == nil {
			p.log.Warn("publish batch", "first_seq", recs[0].Seq, "readings", len(recs), "err", err)
		}
	}
}
