package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Handler is told which partitions a group member owns. Its methods are
// called one at a time, from the member's group loop; while one runs, the
// group's rebalance waits for it (within the rebalance timeout, 60 s).
type Handler interface {
	// Assigned gives partitions newly assigned to this member.
	Assigned(ctx context.Context, partitions []int)
	// Revoked takes partitions away in an orderly rebalance, or when the
	// member leaves: return once their work is committed and stopped, so
	// the next owner starts after it.
	Revoked(ctx context.Context, partitions []int)
	// Lost says the membership was lost (session expired, fenced): the
	// partitions may already belong to another member. Stop their work.
	Lost(partitions []int)
}

// Member is this process's membership of a consumer group over the
// readings topic. It fetches nothing: the handler's workers read their
// partitions with their own Readers, from their own stored offsets.
type Member struct {
	l     *Log
	group string
	cl    *kgo.Client

	mu    sync.Mutex
	owned map[int]bool

	closeOnce sync.Once
}

// Join makes this process a member of group. The member joins in the
// background; h learns of its partitions. Close leaves the group (revoking
// every partition through h first).
func (l *Log) Join(group string, h Handler) (*Member, error) {
	if l.closed.Load() {
		return nil, errors.New("readlog/kafka: join: log closed")
	}
	if group == "" || h == nil {
		return nil, errors.New("readlog/kafka: join needs a group and a handler")
	}
	m := &Member{l: l, group: group, owned: map[int]bool{}}
	l.mu.Lock()
	if l.members[group] != nil {
		l.mu.Unlock()
		return nil, fmt.Errorf("readlog/kafka: this process is already a member of group %s", group)
	}
	l.members[group] = m
	l.mu.Unlock()
	base, err := l.o.clientOpts()
	if err != nil {
		return nil, err
	}
	ps := func(assigned map[string][]int32) []int {
		var out []int
		for _, p := range assigned[l.o.topic] {
			out = append(out, int(p))
		}
		slices.Sort(out)
		return out
	}
	opts := append(base,
		kgo.ConsumerGroup(l.o.groupPrefix+group),
		kgo.ConsumeTopics(l.o.topic),
		kgo.DisableAutoCommit(),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.SessionTimeout(l.o.sessionTimeout),
		kgo.HeartbeatInterval(l.o.sessionTimeout/3),
		kgo.FetchMaxBytes(1), // it never polls; keep what a fetch could buffer minimal
		kgo.FetchMaxPartitionBytes(1),
		kgo.OnPartitionsAssigned(func(ctx context.Context, _ *kgo.Client, a map[string][]int32) {
			p := ps(a)
			if len(p) == 0 {
				return
			}
			m.set(p, true)
			l.o.log.Info("partitions assigned", "group", group, "partitions", p)
			h.Assigned(ctx, p)
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, _ *kgo.Client, r map[string][]int32) {
			p := ps(r)
			if len(p) == 0 {
				return
			}
			l.o.log.Info("partitions revoked", "group", group, "partitions", p)
			h.Revoked(ctx, p)
			m.set(p, false)
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
			p := ps(lost)
			if len(p) == 0 {
				return
			}
			l.o.log.Warn("group membership lost; stopping the partitions' workers", "group", group, "partitions", p)
			h.Lost(p)
			m.set(p, false)
		}),
	)
	if l.o.instanceID != "" {
		opts = append(opts, kgo.InstanceID(l.o.instanceID))
	}
	// A member never fetches: its topic is paused at once (at most one
	// minimal fetch can happen before).
	m.cl, err = kgo.NewClient(opts...)
	if err != nil {
		l.mu.Lock()
		delete(l.members, group)
		l.mu.Unlock()
		return nil, fmt.Errorf("readlog/kafka: group %s: %w", group, err)
	}
	m.cl.PauseFetchTopics(l.o.topic)
	return m, nil
}

func (m *Member) set(ps []int, owned bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range ps {
		if owned {
			m.owned[p] = true
		} else {
			delete(m.owned, p)
		}
	}
}

// Owned lists the partitions this member owns now, in order.
func (m *Member) Owned() []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]int, 0, len(m.owned))
	for p := range m.owned {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// commit stores the group offset of p with the member's generation.
func (m *Member) commit(p int, offset int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	var cerr error
	m.cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{m.l.o.topic: {int32(p): {Epoch: -1, Offset: offset}}},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			if err != nil {
				cerr = err
				return
			}
			for _, t := range resp.Topics {
				for _, pr := range t.Partitions {
					if err := kerr.ErrorForCode(pr.ErrorCode); err != nil && cerr == nil {
						cerr = err
					}
				}
			}
		})
	if cerr != nil {
		return fmt.Errorf("readlog/kafka: commit %s partition %d at %d: %w", m.group, p, offset, cerr)
	}
	return nil
}

// Close leaves the group: the handler's Revoked runs for every owned
// partition (a static member, WithInstanceID, keeps its partitions until
// its session times out instead, and Lost-free restarts get them back).
func (m *Member) Close() {
	m.closeOnce.Do(func() {
		m.cl.Close()
		m.l.mu.Lock()
		delete(m.l.members, m.group)
		m.l.mu.Unlock()
	})
}
