package collector

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/api"
	"github.com/gridedge/gridedge/cloud/readlog"
	"github.com/gridedge/gridedge/cloud/sink/postgres"
	"github.com/gridedge/gridedge/cloud/sink/postgres/pgsinktest"
	"github.com/gridedge/gridedge/cloud/sink/postgres/pgtest"
	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/shared/mqtttest"
	"github.com/gridedge/gridedge/shared/wire"
)

// pgStart is the first reading of the PostgreSQL end-to-end run: the data
// crosses midnight in Europe/Paris, so daily windows close.
var pgStart = time.Date(2026, 11, 20, 20, 0, 0, 0, time.UTC)

// circuitBatch is ten minutes of a device's four circuits (mains and three
// sub-circuits, one active-power reading each per 30 s), batch i from
// pgStart.
func circuitBatch(device string, i int) *wire.Batch {
	b := &wire.Batch{SchemaVersion: wire.SchemaVersion, DeviceId: device, SeqEpoch: 3, BootId: "boot"}
	for k := range 20 {
		at := pgStart.Add(time.Duration(i)*10*time.Minute + time.Duration(k)*30*time.Second)
		for c, ch := range []string{"mains", "sub1", "sub2", "sub3"} {
			seq := uint64(i*80 + k*4 + c)
			v := float64(100 + 50*c + (i*7+k)%40)
			if ch == "mains" {
				v = 1000 + float64((i*3+k)%100)
			}
			b.Readings = append(b.Readings, &wire.Reading{Seq: seq, Channel: ch, Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER,
				Value: v, WallNs: at.UnixNano(), TimeQuality: wire.TimeQuality_TIME_QUALITY_SYNCED})
		}
	}
	return b
}

type sentBatch struct {
	device string
	first  uint64
	b      *wire.Batch
}

// sendUntilAcked publishes batches (again, through a new agent connection
// when one was lost) until every one is acked.
func sendUntilAcked(t *testing.T, url string, name string, batches []sentBatch) {
	t.Helper()
	ag := newAgent(t, url, name, nil)
	acked := func() map[string]bool {
		ag.mu.Lock()
		defer ag.mu.Unlock()
		out := map[string]bool{}
		for _, a := range ag.acks {
			out[fmt.Sprint(a.DeviceId, a.Ranges[0].First)] = true
		}
		return out
	}
	deadline := time.Now().Add(waitLimit)
	for {
		done := acked()
		missing := 0
		for _, sb := range batches {
			if !done[fmt.Sprint(sb.device, sb.first)] {
				missing++
				ag.publish("s", sb.device, encode(t, sb.b))
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d batches not acked", missing, len(batches))
		}
		waitUntil(3*time.Second, func() bool { return len(acked()) >= len(batches) })
	}
}

// pgCaughtUp waits until the sink has written every record of the feed.
func pgCaughtUp(t *testing.T, c *Collector) {
	t.Helper()
	waitFor(t, "the PostgreSQL sink caught up", func() bool {
		for p := range c.rlog.Partitions() {
			if pos, ok := c.pg.Position(p); !ok || pos != c.store.FeedStats(p).Next {
				return false
			}
		}
		return true
	})
}

// workersIdle waits until the workers have committed everything logged.
func workersIdle(t *testing.T, c *Collector) {
	t.Helper()
	waitFor(t, "the workers committed every logged record", func() bool {
		ws := c.workers.stats()
		for p, ps := range c.rlog.Stats().Partitions {
			if ws[p].Committed != ps.Durable {
				return false
			}
		}
		return true
	})
}

// End to end through Mosquitto into PostgreSQL, with a broker SIGKILL and
// a PostgreSQL SIGKILL: while PostgreSQL is down every batch is still
// acked and the API answers; after its restart PostgreSQL holds exactly
// the store's results, late readings, devices and statuses. Then every SQL
// panel of the shipped Grafana dashboards runs against that database.
func TestPostgresSinkEndToEnd(t *testing.T) {
	b := mqtttest.Start(t)
	pg := pgtest.Start(t)
	dbURL := pg.CreateDB("gridedge")
	cfg := testConfig(t, b.URL(), t.TempDir())
	cfg.Postgres.URL = dbURL
	cfg.Postgres.History = true
	cfg.Postgres.Readings = true
	cfg.Postgres.ReadingsRetention = 100 * 366 * 24 * time.Hour // the test's readings are of 2026-11-20
	cfg.Partitions = 2
	c, _ := start(t, cfg)

	devices := []string{"house-1", "house-2"}
	var phases [3][]sentBatch
	const perDevice = 36 // six hours
	for i := range perDevice {
		for _, d := range devices {
			bt := circuitBatch(d, i)
			phases[i*3/perDevice] = append(phases[i*3/perDevice], sentBatch{d, bt.Readings[0].Seq, bt})
		}
	}
	ag := newAgent(t, b.URL(), "pg-status", nil)
	for _, d := range devices {
		st, _ := wire.EncodeStatus(&wire.Status{SchemaVersion: wire.SchemaVersion, DeviceId: d, Online: true, TimeZone: "Europe/Paris",
			ClockQuality: wire.TimeQuality_TIME_QUALITY_SYNCED, AgentVersion: "test"})
		if tok := ag.client.Publish("gridedge/v1/s/"+d+"/status", 1, true, st); !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	sendUntilAcked(t, b.URL(), "pg-agent-1", phases[0])
	// The broker crashes and comes back.
	b.Kill()
	b.Restart()
	sendUntilAcked(t, b.URL(), "pg-agent-2", phases[1][:len(phases[1])/2])
	workersIdle(t, c)
	pgCaughtUp(t, c)

	// PostgreSQL crashes: acks, the store and the API go on.
	pg.Kill()
	sendUntilAcked(t, b.URL(), "pg-agent-3", phases[1][len(phases[1])/2:])
	workersIdle(t, c)
	resp, err := httpClient.Get("http://" + c.HTTPAddr() + "/api/v1/devices")
	if err != nil {
		t.Fatalf("API while PostgreSQL is down: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("API while PostgreSQL is down: %d", resp.StatusCode)
	}
	waitFor(t, "the sink reports PostgreSQL down", func() bool { return !c.pgConnected() && c.pg.Lag() > 0 })
	pg.Restart()
	sendUntilAcked(t, b.URL(), "pg-agent-4", phases[2])
	// A reading two hours behind the watermark: late for power_1m, a new
	// revision of its quarter hour and its day.
	late := &wire.Batch{SchemaVersion: wire.SchemaVersion, DeviceId: "house-1", SeqEpoch: 3, BootId: "boot", Readings: []*wire.Reading{{
		Seq: 1_000_000, Channel: "sub1", Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER, Value: 5000,
		WallNs: pgStart.Add(3*time.Hour + 30*time.Second).UnixNano(), TimeQuality: wire.TimeQuality_TIME_QUALITY_SYNCED}}}
	sendUntilAcked(t, b.URL(), "pg-agent-5", []sentBatch{{"house-1", 1_000_000, late}})
	workersIdle(t, c)
	pgCaughtUp(t, c)

	// The last minute and five minutes of each series close only when
	// their device goes idle (provisional, 5 s): wait for those, then for
	// PostgreSQL to follow.
	pipes := pipelineNames(collectorPipelines(cfg))
	waitFor(t, "the idle devices' last windows", func() bool {
		n := 0
		for _, q := range []store.ResultQuery{{Pipeline: "windows_1m", From: pgStart.Add(359 * time.Minute)}, {Pipeline: "windows_5m", From: pgStart.Add(355 * time.Minute)}} {
			_ = c.Store().Results(q, func(*store.WindowResult) error { n++; return nil })
		}
		return n == 16
	})
	waitFor(t, "PostgreSQL equal to the store", func() bool {
		diffs, _, err := pgsinktest.ResultsDiff(context.Background(), dbURL, c.Store(), pipes)
		return err == nil && len(diffs) == 0
	})
	n := pgsinktest.RequireEqual(t, dbURL, c.Store(), pipes...)
	var storeLate int
	for _, d := range devices {
		if err := c.Store().LateReadings(store.LateQuery{Device: d}, func(*store.LateReading) error { storeLate++; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if storeLate == 0 {
		t.Fatal("no late reading in the store")
	}
	if got := pgCount(t, dbURL, "SELECT count(*) FROM gridedge.late_readings"); got != int64(storeLate) {
		t.Fatalf("%d late readings in PostgreSQL, %d in the store", got, storeLate)
	}
	if got := pgCount(t, dbURL, "SELECT count(*) FROM gridedge.devices d JOIN gridedge.device_status s USING (device) WHERE s.online"); got != 2 {
		t.Fatalf("%d online devices in PostgreSQL, want 2", got)
	}
	if got := pgCount(t, dbURL, "SELECT count(*) FROM gridedge.results WHERE pipeline = 'energy_daily' AND channel = 'rest' AND NOT provisional"); got == 0 {
		t.Fatal("no final daily rest in PostgreSQL")
	}
	var stored uint64
	for _, ws := range c.workers.stats() {
		stored += ws.Stored
	}
	if got := pgCount(t, dbURL, "SELECT count(*) FROM gridedge.readings"); got != int64(stored) || stored != 2*perDevice*80+1 {
		t.Fatalf("%d raw readings in PostgreSQL, %d stored, want %d", got, stored, 2*perDevice*80+1)
	}
	if got := pgCount(t, dbURL, "SELECT count(*) FROM gridedge.result_history WHERE revision > 1"); got == 0 {
		t.Fatal("no later revision in the history")
	}
	t.Logf("%d results equal in PostgreSQL and the store", n)
	apiFromPostgres(t, c, dbURL, pipes)
	checkDashboards(t, dbURL, pgStart.Add(-24*time.Hour), pgStart.Add(48*time.Hour))
}

func (c *Collector) pgConnected() bool {
	mfs, err := c.reg.Gather()
	if err != nil {
		return false
	}
	for _, mf := range mfs {
		if mf.GetName() == "gridedge_sink_connected" {
			return mf.GetMetric()[0].GetGauge().GetValue() == 1
		}
	}
	return false
}

// apiFromPostgres checks that the API served from PostgreSQL
// (postgres.serve_api) answers results, late readings and devices exactly
// as the store-backed API does.
func apiFromPostgres(t *testing.T, c *Collector, dbURL string, pipes []string) {
	t.Helper()
	reader, err := postgres.NewReader(dbURL, "", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	fromPG := httptest.NewServer(api.New(c.Store(), api.WithResults(reader), api.WithPipelines(pipes), api.WithDefaultTimeZone(c.cfg.SiteTZ)))
	defer fromPG.Close()
	paths := []string{"/api/v1/devices", "/api/v1/late?device=house-1", "/api/v1/results?pipeline=energy_15m&history=1&limit=100000"}
	for _, p := range pipes {
		for _, d := range []string{"house-1", "house-2"} {
			paths = append(paths, "/api/v1/results?pipeline="+p+"&device="+d+"&limit=100000")
		}
	}
	for _, path := range paths {
		var want, got map[string]any
		getJSON(t, "http://"+c.HTTPAddr()+path, &want)
		getJSON(t, fromPG.URL+path, &got)
		// PostgreSQL keeps times to the microsecond.
		if !reflect.DeepEqual(toMicros(want), got) {
			w, _ := json.Marshal(want)
			g, _ := json.Marshal(got)
			t.Fatalf("%s differs from PostgreSQL:\nstore:      %.600s\npostgresql: %.600s", path, w, g)
		}
	}
}

// toMicros truncates every RFC 3339 time in a decoded JSON value to
// microseconds.
func toMicros(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = toMicros(e)
		}
	case []any:
		for i, e := range x {
			x[i] = toMicros(e)
		}
	case string:
		if t, err := time.Parse(time.RFC3339Nano, x); err == nil && strings.Contains(x, "T") {
			b, _ := t.Truncate(time.Microsecond).MarshalJSON()
			return strings.Trim(string(b), `"`)
		}
	}
	return v
}

// The PostgreSQL settings are checked, naming the key, and the password
// file's first line is the password.
func TestPostgresConfig(t *testing.T) {
	for key, mutate := range map[string]func(*Config){
		"postgres.url":           func(c *Config) { c.Postgres.URL = "mysql://x/y" },
		"postgres.serve_api":     func(c *Config) { c.Postgres.ServeAPI = true },
		"postgres.batch_records": func(c *Config) { c.Postgres.URL, c.Postgres.BatchRecords = "postgres://h/db", 0 },
		"postgres.readings_retention": func(c *Config) {
			c.Postgres.URL, c.Postgres.Readings, c.Postgres.ReadingsRetention = "postgres://h/db", true, time.Hour
		},
		"feed_max_bytes": func(c *Config) { c.FeedMaxBytes = 10 },
		"feed_retention": func(c *Config) { c.FeedRetention = time.Second },
	} {
		cfg := testConfig(t, "tcp://127.0.0.1:1", t.TempDir())
		mutate(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: error %v does not name it", key, err)
		}
	}
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("s3cret\nignored\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := PostgresConfig{URL: "postgres://u@h/db", PasswordFile: pw, ServeAPI: true, MaxConns: 2}
	if got, err := p.password(); err != nil || got != "s3cret" {
		t.Fatalf("password %q, %v", got, err)
	}
	cfg := testConfig(t, "tcp://127.0.0.1:1", t.TempDir())
	cfg.Postgres = p
	opts, reader, err := postgresAPI(cfg)
	if err != nil || reader == nil || len(opts) != 1 {
		t.Fatalf("serve_api: %d options, reader %v, %v", len(opts), reader, err)
	}
	reader.Close()
}

// In the cluster wiring every worker node writes its partitions into one
// PostgreSQL database, and with serve_api each node's API answers for
// every device, including those of partitions another node runs.
func TestClusterServesTheAPIFromPostgres(t *testing.T) {
	b := mqtttest.Start(t)
	k := kafkaCluster(t)
	pg := pgtest.Start(t)
	dbURL := pg.CreateDB("cluster")
	var ws []*WorkerNode
	for i := range 2 {
		cfg := clusterConfig(t, RoleWorker, "", k)
		cfg.Kafka.InstanceID = fmt.Sprintf("pg-worker-%d", i)
		cfg.Postgres.URL, cfg.Postgres.ServeAPI = dbURL, true
		w, _ := startWorker(t, cfg)
		ws = append(ws, w)
	}
	startIntake(t, clusterConfig(t, RoleIntake, b.URL(), k))
	waitFor(t, "every partition owned by one worker", func() bool { return everyPartitionOnce(ws...) && len(ws[0].Owned()) > 0 && len(ws[1].Owned()) > 0 })
	devices := []string{"m-01", "m-02", "m-03", "m-04", "m-05", "m-06", "m-07", "m-08"}
	ag := newAgent(t, b.URL(), "pg-cluster-agents", nil)
	for _, d := range devices {
		ag.publish("site", d, encode(t, makeBatch(d, 3, 0, 120)))
	}
	waitFor(t, "every batch acknowledged", func() bool { return ag.ackCount() >= len(devices) })
	// Either node's API lists every device, with its readings stored.
	for _, w := range ws {
		waitFor(t, "every device through "+w.HTTPAddr(), func() bool {
			var out struct{ Devices []deviceJSON }
			getJSON(t, "http://"+w.HTTPAddr()+"/api/v1/devices", &out)
			n := 0
			for _, d := range out.Devices {
				if d.ReadingsStored == 120 {
					n++
				}
			}
			return n == len(devices)
		})
	}
	// A device of the other node's partitions has its windows on this one.
	other := ""
	for _, d := range devices {
		if !slices.Contains(ws[0].Owned(), readlog.PartitionFor([]byte(d), clusterPartitions)) {
			other = d
		}
	}
	waitFor(t, other+"'s results through the other node", func() bool {
		var out struct{ Results []store.WindowResult }
		getJSON(t, "http://"+ws[0].HTTPAddr()+"/api/v1/results?pipeline=windows_1m&device="+other, &out)
		return len(out.Results) > 0
	})
}
