package collector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/semaphore"

	"github.com/gridedge/gridedge/cloud/intake"
	"github.com/gridedge/gridedge/cloud/readlog/kafka"
	"github.com/gridedge/gridedge/cloud/store"
)

// IntakeNode is the intake role: the collector's MQTT side (shared
// subscription, validation, dead letters, end-to-end acks) appending to
// Kafka instead of a local log. It keeps no state; a device is acknowledged
// once Kafka (acks=all) has its batch. Run it once.
type IntakeNode struct {
	*Collector
	klog *kafka.Log
}

// kafkaStartTimeout bounds connecting to Kafka and creating topics at start.
const kafkaStartTimeout = 30 * time.Second

// NewIntake validates cfg (role intake), connects to Kafka, makes sure the
// readings and dead-letter topics exist and binds the HTTP listener
// (/healthz, /metrics).
func NewIntake(cfg Config, opts ...Option) (*IntakeNode, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("collector: config: %w", err)
	}
	if cfg.Role != RoleIntake {
		return nil, fmt.Errorf("collector: NewIntake with role %q", cfg.Role)
	}
	c := &Collector{cfg: cfg, log: slog.Default(), now: time.Now, reg: prometheus.NewRegistry(), ready: make(chan struct{})}
	for _, o := range opts {
		o(c)
	}
	c.acks = make(chan ackJob, cfg.AckQueue)
	c.inflight = make(chan *inflight, maxInflight)
	c.inflightBytes = semaphore.NewWeighted(cfg.IntakeInflightBytes)
	kopts, err := kafkaOptions(cfg, c.log)
	if err != nil {
		return nil, fmt.Errorf("collector: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), kafkaStartTimeout)
	defer cancel()
	klog, err := kafka.Open(ctx, kopts...)
	if err != nil {
		return nil, fmt.Errorf("collector: %w", err)
	}
	n := &IntakeNode{Collector: c, klog: klog}
	fail := func(err error) (*IntakeNode, error) {
		c.closeResources()
		klog.Close()
		return nil, fmt.Errorf("collector: %w", err)
	}
	if _, err := klog.EnsureTopic(ctx, cfg.Kafka.DeadLetterTopic, 1); err != nil {
		return fail(err)
	}
	if err := c.registerMetrics(); err != nil {
		return fail(err)
	}
	dl := &kafkaDeadLetters{log: klog, topic: cfg.Kafka.DeadLetterTopic, l: c.log,
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gridedge_collector_deadletters_unpublished_total",
			Help: "Dead letters Kafka did not take (counted in deadletters_total too; logged with their reason).",
		})}
	if err := c.reg.Register(dl.failed); err != nil {
		return fail(err)
	}
	if c.intake, err = intake.New(klog, dl, c.reg, intake.WithLogger(c.log)); err != nil {
		return fail(err)
	}
	if err := c.mqttIdentity(); err != nil {
		return fail(err)
	}
	if c.httpLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return fail(fmt.Errorf("http_addr %s: %w", cfg.HTTPAddr, err))
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := n.health(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(c.reg, promhttp.HandlerOpts{}))
	c.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return n, nil
}

// health is ready when MQTT is connected and subscribed and a Kafka broker
// answers.
func (n *IntakeNode) health(ctx context.Context) error {
	if !n.connected.Load() {
		return errors.New("mqtt: not connected")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return n.klog.Ping(ctx)
}

// Run runs the intake until ctx ends, like Collector.Run. Batches still
// waiting for Kafka one ack_timeout after ctx ends fail (not acknowledged:
// the broker redelivers them, or the agents resend them).
func (n *IntakeNode) Run(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		select {
		case <-done:
			return
		case <-ctx.Done():
		}
		select {
		case <-done:
		case <-time.After(n.cfg.AckTimeout):
			n.log.Warn("kafka has not acknowledged every batch one ack_timeout after shutdown began; failing the rest")
			n.klog.Close()
		}
	}()
	err := n.Collector.Run(ctx)
	close(done)
	return errors.Join(err, n.klog.Close())
}

// Close releases everything when Run is never called.
func (n *IntakeNode) Close() error { return errors.Join(n.Collector.Close(), n.klog.Close()) }

// DeadLetterSchema is the "schema" field of dead letters on the dead-letter
// topic.
const DeadLetterSchema = "gridedge.deadletter.v1"

// kafkaDeadLetters publishes intake's dead letters as JSON objects:
// {"schema","reason","detail","topic","received","payload" (base64)}.
type kafkaDeadLetters struct {
	log    *kafka.Log
	topic  string
	l      *slog.Logger
	failed prometheus.Counter
}

func (d *kafkaDeadLetters) PutDeadLetter(dl store.DeadLetter) (uint64, error) {
	v, err := json.Marshal(struct {
		Schema string `json:"schema"`
		store.DeadLetter
	}{DeadLetterSchema, dl})
	if err != nil {
		return 0, fmt.Errorf("dead letter: %w", err)
	}
	d.log.Publish(context.Background(), d.topic, []byte(dl.Topic), v, func(err error) {
		if err != nil {
			d.failed.Inc()
			d.l.Error("dead letter not published", "topic", dl.Topic, "reason", dl.Reason, "err", err)
		}
	})
	return 0, nil
}
