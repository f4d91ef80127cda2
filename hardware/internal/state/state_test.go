package state

import (
	"os"
	"path/filepath"
	"testing"
)

type counter struct {
	EnergyWh float64 `json:"energy_wh"`
}

func TestSaveLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "energy.json")
	var c counter
	if found, err := Load(path, &c); found || err != nil {
		t.Fatalf("missing file: found %v err %v", found, err)
	}
	for _, v := range []float64{1.5, 123456.25} {
		if err := Save(path, counter{EnergyWh: v}); err != nil {
			t.Fatal(err)
		}
		if found, err := Load(path, &c); !found || err != nil || c.EnergyWh != v {
			t.Fatalf("Load = %v, %v, %v; want %v", c, found, err, v)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
	if err := os.WriteFile(path, []byte("{torn"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, &c); err == nil {
		t.Error("damaged file loaded without error")
	}
	if err := Save(filepath.Join(t.TempDir(), "no", "such", "dir"), c); err == nil {
		t.Error("save into a missing directory succeeded")
	}
}
