package main

import (
	"go/build"
	"path/filepath"
	"strings"
	"testing"
)

const modulePath = "github.com/gridedge/gridedge"

// moduleDeps returns every package of this module that the package in dir
// imports, directly or not, for the platform the test runs on. It reads the
// sources with go/build, so it needs no go command (it also runs under
// qemu-user).
func moduleDeps(t *testing.T, dir string) map[string]bool {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var visit func(dir string)
	visit = func(dir string) {
		pkg, err := build.ImportDir(dir, 0)
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		for _, imp := range pkg.Imports {
			rel, ok := strings.CutPrefix(imp, modulePath+"/")
			if !ok || seen[imp] {
				continue
			}
			seen[imp] = true
			visit(filepath.Join(root, filepath.FromSlash(rel)))
		}
	}
	visit(dir)
	return seen
}

// The agent offers the simulated household driver but must not link the
// simulator (its engine, virtual clock and truth files) to do so.
func TestAgentDoesNotLinkTheSimulator(t *testing.T) {
	deps := moduleDeps(t, ".")
	if !deps[modulePath+"/edge/sim/household"] {
		t.Fatalf("the agent no longer imports the household driver; deps: %v", deps)
	}
	if deps[modulePath+"/edge/sim"] {
		t.Fatalf("gridedge-agent links %s/edge/sim", modulePath)
	}
	for dep := range deps {
		if strings.HasPrefix(dep, modulePath+"/cloud/") {
			t.Errorf("gridedge-agent links %s", dep)
		}
	}
}
