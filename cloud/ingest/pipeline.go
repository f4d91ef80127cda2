package ingest

import (
	"strings"
	"sync"
	"time"

	"github.com/gridedge/gridedge/shared/topic"
)

// Message is one received MQTT payload.
type Message struct {
	Topic    string
	Payload  []byte
	Received time.Time
}

// Completion is called once per submitted message with its outcome: for a
// data message the Outcome and error of HandleData, for a status message the
// error of HandleStatus (and a zero Outcome).
type Completion func(Outcome, error)

// Pipeline handles messages of different devices in parallel and those of
// one device in order, and completes every message in submission order.
//
// Parallel transactions are what make ingest fast on a real disk: Badger
// writes and fsyncs concurrent commits together, so N workers share one
// fsync. In-order completion keeps the MQTT rule that a client acknowledges
// QoS 1 messages in the order it received them.
type Pipeline struct {
	in      *Ingester
	workers []chan *job
	pending chan *job
	done    chan struct{}
	wg      sync.WaitGroup

	closeOnce sync.Once
}

type job struct {
	msg      Message
	complete Completion
	out      Outcome
	err      error
	handled  chan struct{}
}

// NewPipeline starts a pipeline with the given number of workers (devices are
// spread over them by id) and room for queue messages in flight; Submit
// blocks while it is full.
func (in *Ingester) NewPipeline(workers, queue int) *Pipeline {
	workers, queue = max(workers, 1), max(queue, 1)
	p := &Pipeline{in: in, workers: make([]chan *job, workers), pending: make(chan *job, queue), done: make(chan struct{})}
	for i := range p.workers {
		ch := make(chan *job, queue)
		p.workers[i] = ch
		p.wg.Go(func() {
			for j := range ch {
				p.handle(j)
				close(j.handled)
			}
		})
	}
	go func() {
		defer close(p.done)
		for j := range p.pending {
			<-j.handled
			j.complete(j.out, j.err)
		}
	}()
	return p
}

// Submit queues a message. complete is called from the pipeline's single
// completion goroutine, in submission order. Submit must not be called
// concurrently with Close or after it.
func (p *Pipeline) Submit(m Message, complete Completion) {
	j := &job{msg: m, complete: complete, handled: make(chan struct{})}
	p.pending <- j
	p.workers[p.shard(m.Topic)] <- j
}

// Close waits until every submitted message is handled and completed, and
// stops the workers. Later calls only wait for the first to finish.
func (p *Pipeline) Close() {
	p.closeOnce.Do(func() {
		for _, ch := range p.workers {
			close(ch)
		}
		p.wg.Wait()
		close(p.pending)
	})
	<-p.done
}

func (p *Pipeline) handle(j *job) {
	if strings.HasSuffix(j.msg.Topic, "/"+string(topic.Status)) {
		j.err = p.in.HandleStatus(j.msg.Topic, j.msg.Payload, j.msg.Received)
		return
	}
	j.out, j.err = p.in.HandleData(j.msg.Topic, j.msg.Payload, j.msg.Received)
}

// shard keeps every message of one device on one worker. Topics that do not
// parse go to worker 0 (they are dead-lettered without touching device state).
func (p *Pipeline) shard(t string) int {
	_, device, _, err := topic.Parse(t)
	if err != nil {
		return 0
	}
	h := uint32(2166136261)
	for i := 0; i < len(device); i++ {
		h ^= uint32(device[i])
		h *= 16777619
	}
	return int(h % uint32(len(p.workers)))
}
