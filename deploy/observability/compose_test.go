package observability

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

type composeFile struct {
	Services map[string]struct {
		Image   string
		Secrets []string
		Volumes []string
	}
	Secrets map[string]struct{ File string }
}

type promConfig struct {
	RuleFiles     []string `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		Authorization struct {
			CredentialsFile string `yaml:"credentials_file"`
		}
		StaticConfigs []struct{ Targets []string } `yaml:"static_configs"`
	} `yaml:"scrape_configs"`
}

// Both Compose files run pinned Prometheus and Grafana images with the
// shipped configuration, rules and provisioning mounted where they are
// read; Prometheus scrapes every collector service of its file under the
// job the rules name, with the token secret it mounts.
func TestComposeRunsPrometheusAndGrafana(t *testing.T) {
	for file, want := range map[string]struct {
		config     string
		collectors []string
	}{
		"../compose/docker-compose.yml":         {"prometheus.yml", []string{"collector"}},
		"../compose/docker-compose.cluster.yml": {"prometheus.cluster.yml", []string{"intake-1", "intake-2", "worker-1", "worker-2", "sink"}},
	} {
		var c composeFile
		readYAML(t, file, &c)
		prom, graf := c.Services["prometheus"], c.Services["grafana"]
		if !regexp.MustCompile(`^prom/prometheus:v\d+\.\d+\.\d+$`).MatchString(prom.Image) {
			t.Errorf("%s: prometheus image %q, want prom/prometheus pinned to a release", file, prom.Image)
		}
		if !regexp.MustCompile(`^grafana/grafana:\d+\.\d+\.\d+$`).MatchString(graf.Image) {
			t.Errorf("%s: grafana image %q, want grafana/grafana pinned to a release", file, graf.Image)
		}
		mounts := func(svc []string) map[string]string {
			m := map[string]string{}
			for _, v := range svc {
				parts := strings.Split(v, ":")
				if len(parts) < 2 {
					continue
				}
				m[parts[1]] = parts[0]
				if strings.HasPrefix(parts[0], ".") {
					if _, err := os.Stat(filepath.Join("../compose", parts[0])); err != nil {
						t.Errorf("%s: mount %s: %v", file, v, err)
					}
				}
			}
			return m
		}
		pm, gm := mounts(prom.Volumes), mounts(graf.Volumes)
		for target, src := range map[string]string{
			"/etc/prometheus/prometheus.yml": "../prometheus/" + want.config,
			"/etc/prometheus/rules":          "../prometheus/rules",
			"/etc/prometheus/agents":         "../prometheus/agents",
		} {
			if pm[target] != src {
				t.Errorf("%s: prometheus mounts %q on %s, want %s", file, pm[target], target, src)
			}
		}
		for target, src := range map[string]string{
			"/etc/grafana/provisioning": "../grafana/provisioning",
			grafanaDashboardsPath:       "../grafana/dashboards",
		} {
			if gm[target] != src {
				t.Errorf("%s: grafana mounts %q on %s, want %s", file, gm[target], target, src)
			}
		}
		var cfg promConfig
		readYAML(t, filepath.Join("../prometheus", want.config), &cfg)
		jobs := map[string][]string{}
		for _, sc := range cfg.ScrapeConfigs {
			for _, st := range sc.StaticConfigs {
				for _, tg := range st.Targets {
					host, _, _ := strings.Cut(tg, ":")
					jobs[sc.JobName] = append(jobs[sc.JobName], host)
				}
			}
			if f := sc.Authorization.CredentialsFile; f != "" {
				name := strings.TrimPrefix(f, "/run/secrets/")
				if !strings.Contains(strings.Join(prom.Secrets, " "), name) || c.Secrets[name].File == "" {
					t.Errorf("%s: job %s reads %s, which the prometheus service does not mount as a secret", file, sc.JobName, f)
				}
			}
		}
		if strings.Join(jobs["gridedge-collector"], " ") != strings.Join(want.collectors, " ") {
			t.Errorf("%s: job gridedge-collector scrapes %v, want %v", want.config, jobs["gridedge-collector"], want.collectors)
		}
		for _, host := range want.collectors {
			if _, ok := c.Services[host]; !ok {
				t.Errorf("%s scrapes %s, which %s does not define", want.config, host, file)
			}
		}
		if len(cfg.RuleFiles) != 1 || cfg.RuleFiles[0] != "/etc/prometheus/rules/*.rules.yml" {
			t.Errorf("%s: rule_files %v, want the mounted rules directory", want.config, cfg.RuleFiles)
		}
	}
}
