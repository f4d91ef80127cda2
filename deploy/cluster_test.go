package deploy_test

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/gridedge/gridedge/cloud/apitoken"
	"github.com/gridedge/gridedge/shared/mqtttest"
)

// get walks nested maps and lists of a decoded YAML document.
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func strs(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// clusterDocs returns the documents of deploy/k8s/cluster by kind and name.
func clusterDocs(t *testing.T) map[string]map[string]any {
	t.Helper()
	paths, err := filepath.Glob("k8s/cluster/*.yaml")
	if err != nil || len(paths) < 2 {
		t.Fatalf("cluster manifests: %v %v", paths, err)
	}
	out := map[string]map[string]any{}
	for _, p := range paths {
		if filepath.Base(p) == "kustomization.yaml" {
			continue
		}
		for _, doc := range documents(t, p) {
			name, _ := get(doc, "metadata", "name").(string)
			if get(doc, "metadata", "namespace") != "gridedge" {
				t.Errorf("%s %s: namespace %v, want gridedge", p, name, get(doc, "metadata", "namespace"))
			}
			out[doc["kind"].(string)+"/"+name] = doc
		}
	}
	return out
}

func TestClusterManifests(t *testing.T) {
	docs := clusterDocs(t)
	intake, worker := docs["Deployment/gridedge-intake"], docs["StatefulSet/gridedge-worker"]
	if intake == nil || worker == nil {
		t.Fatalf("need Deployment/gridedge-intake and StatefulSet/gridedge-worker, have %v", keys(docs))
	}
	if r := get(intake, "spec", "replicas"); r != 2 {
		t.Errorf("intake replicas %v, want 2", r)
	}
	pdb := docs["PodDisruptionBudget/gridedge-intake"]
	if pdb == nil || get(pdb, "spec", "minAvailable") != 1 ||
		get(pdb, "spec", "selector", "matchLabels", "app") != get(intake, "spec", "template", "metadata", "labels", "app") {
		t.Errorf("intake PodDisruptionBudget must keep one intake pod available, selecting its pods: %v", pdb)
	}
	svcName := get(worker, "spec", "serviceName")
	headless := docs["Service/"+svcName.(string)]
	if headless == nil || get(headless, "spec", "clusterIP") != "None" ||
		get(headless, "spec", "selector", "app") != get(worker, "spec", "template", "metadata", "labels", "app") {
		t.Errorf("workers' serviceName %v must be a headless Service selecting them: %v", svcName, headless)
	}
	if get(worker, "spec", "volumeClaimTemplates", 0, "metadata", "name") != "data" {
		t.Error("workers keep their store on a volume claim named data")
	}
	sink := docs["StatefulSet/gridedge-sink"]
	if sink == nil {
		t.Fatalf("need StatefulSet/gridedge-sink (the cluster's API), have %v", keys(docs))
	}
	if h := docs["Service/"+get(sink, "spec", "serviceName").(string)]; h == nil || get(h, "spec", "clusterIP") != "None" {
		t.Errorf("the sink's serviceName must be a headless Service: %v", h)
	}
	if api := docs["Service/gridedge-api"]; api == nil || get(api, "spec", "selector", "app") != get(sink, "spec", "template", "metadata", "labels", "app") {
		t.Errorf("Service gridedge-api must select the sink's pods: %v", api)
	}
	for name, d := range map[string]map[string]any{"intake": intake, "worker": worker, "sink": sink} {
		c := get(d, "spec", "template", "spec", "containers", 0)
		if get(c, "readinessProbe", "httpGet", "path") != "/healthz" {
			t.Errorf("%s: readiness must follow /healthz (MQTT and Kafka connections)", name)
		}
		if get(c, "livenessProbe", "tcpSocket", "port") != "http" {
			t.Errorf("%s: liveness must be the HTTP port answering, not /healthz: an outage of Kafka or the broker must not restart the pods", name)
		}
		if get(c, "resources", "requests", "cpu") == nil || get(c, "resources", "limits", "memory") == nil {
			t.Errorf("%s: needs a cpu request and a memory limit", name)
		}
		if get(c, "securityContext", "readOnlyRootFilesystem") != true || get(d, "spec", "template", "spec", "securityContext", "runAsNonRoot") != true {
			t.Errorf("%s: must run as non-root with a read-only root filesystem", name)
		}
		args := strings.Join(strs(get(c, "args")), " ")
		if !strings.Contains(args, "-role "+name) || !strings.Contains(args, "-kafka-brokers $(KAFKA_BROKERS)") {
			t.Errorf("%s args %q: want -role %s and -kafka-brokers $(KAFKA_BROKERS)", name, args, name)
		}
	}
	if args := strings.Join(strs(get(worker, "spec", "template", "spec", "containers", 0, "args")), " "); !strings.Contains(args, "-kafka-instance-id $(POD_NAME)") {
		t.Errorf("worker args %q: the pod name must be its static group membership id", args)
	}
}

func TestClusterKustomization(t *testing.T) {
	k := documents(t, "k8s/cluster/kustomization.yaml")[0]
	var res []string
	for _, r := range k["resources"].([]any) {
		res = append(res, r.(string))
	}
	paths, _ := filepath.Glob("k8s/cluster/[0-9]*.yaml")
	for i := range paths {
		paths[i] = filepath.Base(paths[i])
	}
	if strings.Join(res, ",") != strings.Join(paths, ",") {
		t.Errorf("cluster kustomization resources %v, want %v", res, paths)
	}
	if get(k, "images", 0, "name") != "gridedge-collector" || get(k, "images", 0, "newTag") == "latest" {
		t.Errorf("cluster kustomization must map the gridedge-collector image to a versioned registry image: %v", k["images"])
	}
}

func keys(m map[string]map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestClusterComposeFile(t *testing.T) {
	doc := documents(t, "compose/docker-compose.cluster.yml")[0]
	services, _ := doc["services"].(map[string]any)
	kafka := services["kafka"]
	if img, _ := get(kafka, "image").(string); !strings.HasPrefix(img, "apache/kafka:") {
		t.Errorf("kafka image %q, want the official apache/kafka", img)
	}
	if get(kafka, "environment", "KAFKA_PROCESS_ROLES") != "broker,controller" {
		t.Error("kafka must run in KRaft mode (KAFKA_PROCESS_ROLES broker,controller)")
	}
	for _, name := range []string{"mosquitto", "intake-1", "intake-2", "worker-1", "worker-2", "sink"} {
		if services[name] == nil {
			t.Errorf("no service %s", name)
		}
	}
	for _, name := range []string{"intake-1", "intake-2", "worker-1", "worker-2", "sink"} {
		cmd := strings.Join(strs(get(services[name], "command")), " ")
		role := strings.TrimRight(name, "-12")
		if !strings.Contains(cmd, "-role "+role) || !strings.Contains(cmd, "-kafka-brokers kafka:9092") {
			t.Errorf("%s command %q: want -role %s -kafka-brokers kafka:9092", name, cmd, role)
		}
	}
}

// TestClusterCommandsBecomeReady runs the collector binary with the
// arguments of the Kubernetes manifests and of the Compose services (the
// brokers replaced by an in-process Kafka and a test Mosquitto): each node
// must become ready (/healthz 200) and stop cleanly on SIGTERM.
func TestClusterCommandsBecomeReady(t *testing.T) {
	k, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	b := mqtttest.Start(t)
	bin := filepath.Join(t.TempDir(), "gridedge-collector")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/gridedge-collector").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	docs := clusterDocs(t)
	compose := documents(t, "compose/docker-compose.cluster.yml")[0]["services"]
	cases := map[string][]string{
		"k8s intake":       strs(get(docs["Deployment/gridedge-intake"], "spec", "template", "spec", "containers", 0, "args")),
		"k8s worker":       strs(get(docs["StatefulSet/gridedge-worker"], "spec", "template", "spec", "containers", 0, "args")),
		"compose intake-1": strs(get(compose, "intake-1", "command")),
		"compose worker-1": strs(get(compose, "worker-1", "command")),
		"k8s sink":         strs(get(docs["StatefulSet/gridedge-sink"], "spec", "template", "spec", "containers", 0, "args")),
		"compose sink":     strs(get(compose, "sink", "command")),
	}
	// The workers' API tokens, from the secret the manifests mount.
	tokens := filepath.Join(t.TempDir(), "api-tokens")
	if _, err := apitoken.Add(tokens, apitoken.RoleRead, "dashboard"); err != nil {
		t.Fatal(err)
	}
	// The workers' PostgreSQL password (no PostgreSQL runs: readiness does
	// not depend on it).
	pgPassword := filepath.Join(t.TempDir(), "postgres-password")
	if err := os.WriteFile(pgPassword, []byte("unused\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := strings.NewReplacer("$(KAFKA_BROKERS)", k.ListenAddrs()[0], "$(KAFKA_PARTITIONS)", "16", "$(POD_NAME)", "pod-0",
		"kafka:9092", k.ListenAddrs()[0], "tcp://mosquitto:1883", b.URL(),
		"/etc/gridedge/api-tokens/tokens", tokens, "/run/secrets/api-tokens", tokens,
		"/run/secrets/postgres-gridedge-password", pgPassword, "/etc/gridedge/postgres/password", pgPassword)
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			for i := range args {
				args[i] = env.Replace(args[i])
			}
			addrFile := filepath.Join(dir, "addr")
			var logs bytes.Buffer
			cmd := exec.Command(bin, append(args, "-http-addr", "127.0.0.1:0", "-http-addr-file", addrFile, "-data-dir", dir)...)
			cmd.Stderr = &logs
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(60 * time.Second)
			for {
				if a, err := os.ReadFile(addrFile); err == nil {
					if resp, err := http.Get("http://" + strings.TrimSpace(string(a)) + "/healthz"); err == nil {
						resp.Body.Close()
						if resp.StatusCode == http.StatusOK {
							break
						}
					}
				}
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					cmd.Wait()
					t.Fatalf("not ready within 60 s:\n%s", logs.String())
				}
				time.Sleep(50 * time.Millisecond)
			}
			cmd.Process.Signal(syscall.SIGTERM)
			if err := cmd.Wait(); err != nil {
				t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
			}
		})
	}
}
