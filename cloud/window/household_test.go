package window_test

import (
	"bufio"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/window"
)

// householdFile prefers the repository's full copy of the UCI data and
// falls back to the excerpt shipped with this package.
func householdFile(t testing.TB) string {
	for _, p := range []string{
		"../../testdata/household/uci-household-2006-12.csv",
		"testdata/household/uci-household-2006-12-excerpt.csv",
	} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal("household data missing: testdata/household/uci-household-2006-12-excerpt.csv is part of this package")
	return ""
}

type householdRow struct {
	t                      time.Time
	activeKW               float64
	sub1Wh, sub2Wh, sub3Wh float64
}

func readHousehold(t testing.TB, path string) []householdRow {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	loc := paris()
	var rows []householdRow
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		if line == 1 {
			continue
		}
		fs := strings.Split(sc.Text(), ";")
		if len(fs) != 9 || strings.Contains(sc.Text(), "?") {
			t.Fatalf("%s:%d: unexpected row %q", path, line, sc.Text())
		}
		tm, err := time.ParseInLocation("02/01/2006 15:04:05", fs[0]+" "+fs[1], loc)
		if err != nil {
			t.Fatalf("%s:%d: %v", path, line, err)
		}
		num := func(s string) float64 {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				t.Fatalf("%s:%d: %v", path, line, err)
			}
			return v
		}
		rows = append(rows, householdRow{tm, num(fs[2]), num(fs[6]), num(fs[7]), num(fs[8])})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

// The shipped energy_daily pipeline, fed one real household (mains in W,
// sub-meters' Wh per minute as mean W), must give each local day's energy
// of mains, every sub-meter and the derived rest exactly as a direct
// computation over the file does: the step rule holds each minute's mean
// power for that minute.
func TestHouseholdDailyEnergy(t *testing.T) {
	rows := readHousehold(t, householdFile(t))
	eng, err := window.New(window.DefaultPipelines())
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.SetTimeZone("sceaux", "Europe/Paris"); err != nil {
		t.Fatal(err)
	}
	type dayEnergy map[string]float64
	want := map[string]dayEnergy{}
	var seq uint64
	for _, r := range rows {
		day := r.t.Format(time.DateOnly)
		if want[day] == nil {
			want[day] = dayEnergy{}
		}
		w := want[day]
		w["mains"] += r.activeKW * 1000 / 60
		w["sub1"] += r.sub1Wh
		w["sub2"] += r.sub2Wh
		w["sub3"] += r.sub3Wh
		for ch, watts := range map[string]float64{"mains": r.activeKW * 1000, "sub1": r.sub1Wh * 60, "sub2": r.sub2Wh * 60, "sub3": r.sub3Wh * 60} {
			seq++
			eng.Apply(&window.Reading{Device: "sceaux", Channel: ch, Quantity: power, TimeNs: r.t.UnixNano(), Value: watts, Quality: synced, SeqEpoch: 1, Seq: seq})
		}
	}
	for _, w := range want {
		w["rest"] = w["mains"] - w["sub1"] - w["sub2"] - w["sub3"]
	}
	got := map[string]dayEnergy{}
	for _, r := range eng.TakeOutput().Results {
		if r.Pipeline != "energy_daily" {
			continue
		}
		day := time.Unix(0, r.Start).In(paris()).Format(time.DateOnly)
		if got[day] == nil {
			got[day] = dayEnergy{}
		}
		v, ok := r.Value("energy")
		if !ok {
			v, _ = r.Value("value")
		}
		got[day][r.Key.Channel] = v
	}
	// Every day but the last (its end is beyond the watermark) is final.
	lastDay := rows[len(rows)-1].t.Format(time.DateOnly)
	checked := 0
	for day, w := range want {
		if day == lastDay {
			if got[day] != nil {
				t.Errorf("%s fired before the watermark passed its end", day)
			}
			continue
		}
		for ch, wh := range w {
			g, ok := got[day][ch]
			if !ok || math.Abs(g-wh) > 1e-9*math.Abs(wh)+1e-9 {
				t.Errorf("%s %s: %v Wh, direct computation %v Wh", day, ch, g, wh)
			}
			checked++
		}
	}
	if checked < 10 {
		t.Fatalf("only %d day/channel values checked", checked)
	}
	t.Logf("%d daily energies checked, e.g. 17 Dec mains %.1f Wh, rest %.1f Wh", checked, got["2006-12-17"]["mains"], got["2006-12-17"]["rest"])
}
