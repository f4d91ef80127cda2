package topic

import "testing"

func TestForAndParseRoundTrip(t *testing.T) {
	for _, k := range []Kind{Data, Ack, Status} {
		got := For("home-1", "meter.7", k)
		site, dev, kind, err := Parse(got)
		if err != nil {
			t.Fatalf("Parse(%q): %v", got, err)
		}
		if site != "home-1" || dev != "meter.7" || kind != k {
			t.Errorf("Parse(%q) = %q %q %q", got, site, dev, kind)
		}
	}
}

func TestParseRejects(t *testing.T) {
	for _, bad := range []string{
		"",
		"gridedge/v2/s/d/data",
		"gridedge/v1/s/d",
		"gridedge/v1/s/d/data/extra",
		"gridedge/v1/s/d/telemetry",
		"gridedge/v1/s/de+v/data",
		"gridedge/v1//d/data",
		"gridedge/v1/s//data",
	} {
		if _, _, _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q): want error", bad)
		}
	}
}

func TestFilters(t *testing.T) {
	if got, want := Filter(Data), "gridedge/v1/+/+/data"; got != want {
		t.Errorf("Filter = %q, want %q", got, want)
	}
	if got, want := Shared("collectors", Data), "$share/collectors/gridedge/v1/+/+/data"; got != want {
		t.Errorf("Shared = %q, want %q", got, want)
	}
}
