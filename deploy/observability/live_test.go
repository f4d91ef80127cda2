package observability

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/gridedge/gridedge/cloud/collector"
	"github.com/gridedge/gridedge/edge/agent"
	"github.com/gridedge/gridedge/edge/config"
	"github.com/gridedge/gridedge/edge/sim/household"
	"github.com/gridedge/gridedge/hardware/sensor"
	"github.com/gridedge/gridedge/shared/mqtttest"
	"github.com/gridedge/gridedge/shared/poll"
	"github.com/gridedge/gridedge/shared/wire"
)

// waitLimit bounds every wait of the live test.
const waitLimit = 90 * time.Second

// grafanaVars are what Grafana substitutes in the dashboards' PromQL, for a
// 1 s scrape interval.
var grafanaVars = strings.NewReplacer("$__rate_interval", "1m", "$__interval", "5s", "$__range", "5m")

// dashboardExprs returns the PromQL of every Prometheus panel target of the
// shipped dashboards, with Grafana's variables substituted.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, p := range glob(t, "../grafana/dashboards/*.json") {
		for _, pn := range dashboard(t, p).Panels {
			for _, tg := range pn.Targets {
				if tg.Datasource.UID != "gridedge-prometheus" {
					continue
				}
				expr := grafanaVars.Replace(tg.Expr)
				if strings.Contains(expr, "$") {
					t.Errorf("%s: panel %q: variable left after substitution: %s", p, pn.Title, expr)
				}
				out = append(out, expr)
			}
		}
	}
	return out
}

// Debian's prometheus scrapes a running collector and agent (over a real
// Mosquitto) with the shipped rules loaded: every rule evaluates without
// error, and every operand of every rule and every dashboard expression
// returns data.
func TestEveryExpressionReturnsData(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Prometheus, a collector and an agent: not in -short")
	}
	need(t, "prometheus")
	if _, err := mqtttest.Binary(); err != nil {
		t.Skip(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	broker := mqtttest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	ccfg := collector.DefaultConfig()
	ccfg.MQTTURL, ccfg.DataDir, ccfg.HTTPAddr, ccfg.ClientID = broker.URL(), t.TempDir(), "127.0.0.1:0", "observability-collector"
	ccfg.Partitions, ccfg.CommitInterval, ccfg.MinFreeBytes = 1, 100*time.Millisecond, 16<<20
	col, err := collector.New(ccfg, collector.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	colDone := make(chan error, 1)
	go func() { colDone <- col.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-colDone; err != nil {
			t.Errorf("collector: %v", err)
		}
	})
	select {
	case <-col.Ready():
	case err := <-colDone:
		t.Fatalf("collector stopped: %v", err)
	case <-time.After(waitLimit):
		t.Fatal("collector not subscribed")
	}

	dir := t.TempDir()
	acfg, err := config.Parse(fmt.Appendf(nil, `device_id: obs-0001
site: obs
state_dir: %s
status_interval: 1s
metrics_addr: 127.0.0.1:0
mqtt:
  url: %s
buffer:
  dir: %s
channels:
  - {name: mains, driver: sim-household, interval: 1s, quantities: [active_power, energy]}
`, filepath.Join(dir, "state"), broker.URL(), filepath.Join(dir, "buffer")))
	if err != nil {
		t.Fatal(err)
	}
	reg := sensor.NewRegistry()
	reg.Register(household.Driver())
	ag, err := agent.New(acfg, agent.WithRegistry(reg), agent.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	agDone := make(chan error, 1)
	go func() { agDone <- ag.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-agDone; err != nil {
			t.Errorf("agent: %v", err)
		}
	})
	agentAddr := poll.For(t, waitLimit, "agent metrics address", func() (string, error) { return ag.MetricsAddr(), nil },
		func(s string) bool { return s != "" })

	// A device that said goodbye, so the per-device offline series exists.
	goodbye(t, broker.URL())

	// Prometheus with the shipped rules, scraping both every second.
	promAddr := startPrometheus(t, col.HTTPAddr(), agentAddr)

	poll.For(t, waitLimit, "both targets scraped and up", func() ([]string, error) {
		var r struct {
			Data struct {
				ActiveTargets []struct {
					Labels map[string]string
					Health string
				}
			}
		}
		err := getJSON("http://"+promAddr+"/api/v1/targets", &r)
		var up []string
		for _, tg := range r.Data.ActiveTargets {
			if tg.Health == "up" {
				up = append(up, tg.Labels["job"])
			}
		}
		slices.Sort(up)
		return up, err
	}, func(up []string) bool { return slices.Equal(up, []string{"gridedge-agent", "gridedge-collector"}) })

	alerts, exprs := rules(t)
	poll.For(t, waitLimit, "every rule evaluated without error", func() ([]string, error) {
		var r struct {
			Data struct {
				Groups []struct {
					Rules []struct {
						Name, Health, LastError string
					}
				}
			}
		}
		err := getJSON("http://"+promAddr+"/api/v1/rules", &r)
		var bad []string
		n := 0
		for _, g := range r.Data.Groups {
			for _, rl := range g.Rules {
				n++
				if rl.Health != "ok" {
					bad = append(bad, fmt.Sprintf("%s: %s %s", rl.Name, rl.Health, rl.LastError))
				}
			}
		}
		if n != len(exprs) {
			bad = append(bad, fmt.Sprintf("%d rules loaded, want %d", n, len(exprs)))
		}
		return bad, err
	}, func(bad []string) bool { return len(bad) == 0 })

	var queries []string
	for _, e := range exprs {
		queries = append(queries, operands(e)...)
	}
	dash := dashboardExprs(t)
	if len(dash) < 20 {
		t.Fatalf("only %d dashboard expressions", len(dash))
	}
	queries = append(queries, dash...)
	slices.Sort(queries)
	queries = slices.Compact(queries)
	t.Logf("%d alerts, %d distinct queries", len(alerts), len(queries))
	for _, q := range queries {
		poll.For(t, waitLimit, "data for "+q, func() (int, error) { return query(promAddr, q) },
			func(n int) bool { return n > 0 })
	}
	// And each whole rule and dashboard expression is a valid query.
	for _, q := range append(exprs, dash...) {
		if _, err := query(promAddr, q); err != nil {
			t.Errorf("%s: %v", q, err)
		}
	}
}

// goodbye publishes the retained offline status of a device the collector
// has not otherwise seen.
func goodbye(t *testing.T, brokerURL string) {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(brokerURL).SetClientID("observability-goodbye"))
	if tok := c.Connect(); !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	p, err := wire.EncodeStatus(&wire.Status{SchemaVersion: wire.SchemaVersion, DeviceId: "gone-0001", Online: false,
		ClockQuality: wire.TimeQuality_TIME_QUALITY_SYNCED})
	if err != nil {
		t.Fatal(err)
	}
	if tok := c.Publish("gridedge/v1/obs/gone-0001/status", 1, true, p); !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
}

// startPrometheus runs Debian's prometheus on a free loopback port with the
// shipped rule files and 1 s scrapes of the collector and the agent under
// the shipped job names, until the test ends.
func startPrometheus(t *testing.T, collectorAddr, agentAddr string) string {
	t.Helper()
	dir := t.TempDir()
	rulesGlob, err := filepath.Abs("../prometheus/rules/*.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: gridedge-collector
    static_configs: [{targets: [%q]}]
  - job_name: gridedge-agent
    static_configs: [{targets: [%q]}]
`, rulesGlob, collectorAddr, agentAddr)
	must(t, os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644))
	addr := freeAddr(t)
	cmd := exec.Command("prometheus", "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--storage.tsdb.retention.time=1h",
		"--web.listen-address="+addr, "--log.level=warn")
	var logs lockedBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("prometheus log:\n%s", logs.String())
		}
	})
	poll.Until(t, waitLimit, "prometheus ready", func() bool {
		select {
		case <-exited:
			t.Fatalf("prometheus exited:\n%s", logs.String())
		default:
		}
		resp, err := http.Get("http://" + addr + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return addr
}

// query runs an instant query and returns the number of samples (1 for a
// scalar or string result).
func query(addr, q string) (int, error) {
	var r struct {
		Status, Error string
		Data          struct {
			ResultType string
			Result     json.RawMessage
		}
	}
	if err := getJSON("http://"+addr+"/api/v1/query?query="+url.QueryEscape(q), &r); err != nil {
		return 0, err
	}
	if r.Status != "success" {
		return 0, fmt.Errorf("query failed: %s", r.Error)
	}
	if r.Data.ResultType == "scalar" || r.Data.ResultType == "string" {
		return 1, nil
	}
	var samples []json.RawMessage
	if err := json.Unmarshal(r.Data.Result, &samples); err != nil {
		return 0, err
	}
	return len(samples), nil
}

func getJSON(u string, v any) error {
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%s: %s: %w", u, regexp.MustCompile(`\s+`).ReplaceAllString(string(body), " "), err)
	}
	return nil
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
