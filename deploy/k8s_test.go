package deploy_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// No schema validator can run here without the network (kubeconform fetches
// its JSON schemas at run time), so this checks the fields a cluster would
// reject or silently mis-serve, by structure.

// at walks a decoded YAML document along keys (string: mapping key).
func at(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func str(v any) string { s, _ := v.(string); return s }

func list(v any) []any { l, _ := v.([]any); return l }

type k8sObject struct {
	file string
	doc  map[string]any
}

func (o k8sObject) kind() string { return str(o.doc["kind"]) }
func (o k8sObject) name() string { return str(at(o.doc, "metadata", "name")) }
func (o k8sObject) String() string {
	return fmt.Sprintf("%s %s/%s", filepath.Base(o.file), o.kind(), o.name())
}

func k8sObjects(t *testing.T) []k8sObject {
	t.Helper()
	var out []k8sObject
	for _, p := range k8sManifests(t) {
		for _, d := range documents(t, p) {
			out = append(out, k8sObject{p, d})
		}
	}
	return out
}

// selects reports whether selector (a Service's or StatefulSet's
// matchLabels) picks pods labelled labels.
func selects(selector, labels any) bool {
	sel, _ := selector.(map[string]any)
	lab, _ := labels.(map[string]any)
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if lab[k] != v {
			return false
		}
	}
	return true
}

// Every StatefulSet's serviceName is a headless Service in its namespace
// that selects its pods, and every Service selects some pods.
func TestStatefulSetsHaveHeadlessServices(t *testing.T) {
	objs := k8sObjects(t)
	services := map[string]k8sObject{}
	for _, o := range objs {
		if o.kind() == "Service" {
			services[o.name()] = o
		}
	}
	sets := 0
	for _, o := range objs {
		if o.kind() != "StatefulSet" {
			continue
		}
		sets++
		podLabels := at(o.doc, "spec", "template", "metadata", "labels")
		if !selects(at(o.doc, "spec", "selector", "matchLabels"), podLabels) {
			t.Errorf("%s: spec.selector does not match the pod template's labels", o)
		}
		name := str(at(o.doc, "spec", "serviceName"))
		svc, ok := services[name]
		switch {
		case name == "":
			t.Errorf("%s: no spec.serviceName", o)
		case !ok:
			t.Errorf("%s: spec.serviceName %q names no Service", o, name)
		case str(at(svc.doc, "spec", "clusterIP")) != "None":
			t.Errorf("%s: spec.serviceName %q is not headless (clusterIP: None)", o, name)
		case !selects(at(svc.doc, "spec", "selector"), podLabels):
			t.Errorf("%s: headless Service %q does not select its pods", o, name)
		}
	}
	if sets == 0 {
		t.Fatal("no StatefulSet found")
	}
	for _, svc := range services {
		found := false
		for _, o := range objs {
			if o.kind() == "StatefulSet" && selects(at(svc.doc, "spec", "selector"), at(o.doc, "spec", "template", "metadata", "labels")) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s selects no pods", svc)
		}
		for _, p := range list(at(svc.doc, "spec", "ports")) {
			if at(p, "port") == nil || str(at(p, "name")) == "" {
				t.Errorf("%s: every port needs a name and a port", svc)
			}
		}
	}
}

// Every container has an image with a tag or a kustomize mapping, readiness
// and liveness probes on a declared port, and resource requests and a
// memory limit; the collector's image is mapped to a registry.
func TestContainersAreComplete(t *testing.T) {
	kust := documents(t, "k8s/kustomization.yaml")[0]
	images := map[string]map[string]any{}
	for _, im := range list(kust["images"]) {
		m, _ := im.(map[string]any)
		images[str(m["name"])] = m
	}
	var resources []string
	for _, r := range list(kust["resources"]) {
		resources = append(resources, str(r))
	}
	var manifests []string
	for _, p := range k8sManifests(t) {
		manifests = append(manifests, filepath.Base(p))
	}
	slices.Sort(resources)
	if !slices.Equal(resources, manifests) {
		t.Errorf("kustomization.yaml resources %v, want every manifest %v", resources, manifests)
	}
	containers := 0
	for _, o := range k8sObjects(t) {
		if o.kind() != "StatefulSet" && o.kind() != "Deployment" {
			continue
		}
		for _, c := range list(at(o.doc, "spec", "template", "spec", "containers")) {
			containers++
			name := str(at(c, "name"))
			image := str(at(c, "image"))
			if m, ok := images[image]; ok {
				// Mapped by kustomize: a registry host and an explicit tag.
				host, _, _ := strings.Cut(str(m["newName"]), "/")
				if !strings.ContainsAny(host, ".:") && host != "localhost" {
					t.Errorf("%s: container %s: image %q maps to %q, which names no registry", o, name, image, m["newName"])
				}
				if tag := str(m["newTag"]); tag == "" || tag == "latest" {
					t.Errorf("%s: container %s: image %q needs a version tag, got %q", o, name, image, tag)
				}
			} else if _, tag, ok := strings.Cut(image, ":"); !ok || tag == "latest" {
				t.Errorf("%s: container %s: image %q needs a version tag (or a mapping in kustomization.yaml)", o, name, image)
			}
			ports := map[string]bool{}
			for _, p := range list(at(c, "ports")) {
				ports[str(at(p, "name"))] = true
			}
			for _, probe := range []string{"readinessProbe", "livenessProbe"} {
				pr := at(c, probe)
				if pr == nil {
					t.Errorf("%s: container %s: no %s", o, name, probe)
					continue
				}
				port := at(pr, "httpGet", "port")
				if port == nil {
					port = at(pr, "tcpSocket", "port")
				}
				if p, ok := port.(string); !ok || !ports[p] {
					t.Errorf("%s: container %s: %s port %v is not a named container port", o, name, probe, port)
				}
			}
			if at(c, "resources", "requests", "cpu") == nil || at(c, "resources", "requests", "memory") == nil ||
				at(c, "resources", "limits", "memory") == nil {
				t.Errorf("%s: container %s: needs cpu and memory requests and a memory limit", o, name)
			}
		}
	}
	if containers == 0 {
		t.Fatal("no containers found")
	}
	if _, ok := images["gridedge-collector"]; !ok {
		t.Error("kustomization.yaml does not map the gridedge-collector image to a registry")
	}
}
