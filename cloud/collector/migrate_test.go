package collector

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/shared/mqtttest"
	"github.com/gridedge/gridedge/shared/wire"
)

// writeOldStore writes readings, a device and a status in the earlier
// release's Badger layout.
func writeOldStore(t *testing.T, dir string, readings []*wire.Reading) {
	t.Helper()
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(txn *badger.Txn) error {
		info, _ := json.Marshal(map[string]any{"id": "old-1", "site": "home", "readings_stored": len(readings)})
		st, _ := json.Marshal(map[string]any{"device": "old-1", "site": "home", "online": true, "time_zone": "Europe/Paris", "received": t0})
		if err := txn.Set([]byte("iold-1"), info); err != nil {
			return err
		}
		if err := txn.Set([]byte("sold-1"), st); err != nil {
			return err
		}
		for _, r := range readings {
			k := append([]byte("rold-1\x00"+r.Channel+"\x00"), 0, 0, 0, byte(r.Quantity))
			k = binary.BigEndian.AppendUint64(k, uint64(r.WallNs)^(1<<63))
			k = binary.BigEndian.AppendUint64(k, 5)
			k = binary.BigEndian.AppendUint64(k, r.Seq)
			v := binary.BigEndian.AppendUint64(nil, math.Float64bits(r.Value))
			v = binary.BigEndian.AppendUint64(v, 0)
			v = binary.BigEndian.AppendUint64(v, uint64(t0.UnixNano()))
			v = append(v, byte(r.TimeQuality))
			if err := txn.Set(k, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A data directory of the earlier release is refused with directions, and
// migrate carries its readings and statuses over: the collector on the new
// directory stores every reading once and computes its windows.
func TestMigrateFromTheEarlierRelease(t *testing.T) {
	old := t.TempDir()
	readings := makeBatch("old-1", 5, 0, 600).Readings
	writeOldStore(t, old, readings)
	b := mqtttest.Start(t)
	if _, err := New(testConfig(t, b.URL(), old)); !errors.Is(err, store.ErrOldFormat) {
		t.Fatalf("a collector on the earlier release's directory: %v, want store.ErrOldFormat", err)
	}
	dir := filepath.Join(t.TempDir(), "new")
	st, err := Migrate(context.Background(), old, dir, 2, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if st.Readings != 600 || st.Devices != 1 || st.Statuses != 1 {
		t.Fatalf("migrated %+v", st)
	}
	c, _ := start(t, testConfig(t, b.URL(), dir))
	waitFor(t, "600 readings stored", func() bool { return readingsStored(t, c.HTTPAddr(), "old-1") == 600 })
	checkWindows(t, c.HTTPAddr(), "old-1", readings, time.Minute)
	sts, err := c.Store().Statuses()
	if err != nil || sts["old-1"].TimeZone != "Europe/Paris" {
		t.Fatalf("status after migration: %+v, %v", sts["old-1"], err)
	}
}
