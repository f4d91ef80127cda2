package sim

import (
	"math"
	"strings"
	"testing"
	"time"
)

const header = householdHeader + "\n"

func TestReadHouseholdConverts(t *testing.T) {
	hf, err := ReadHousehold(strings.NewReader(header +
		"16/12/2006;17:24:00;4.216;0.418;234.840;18.400;0.000;1.000;17.000\n" +
		"1/7/2007;09:05:00;0.5;0;230;2;3;0;0\n"))
	if err != nil {
		t.Fatal(err)
	}
	r := hf.Rows[0]
	// Winter: Paris is UTC+1.
	if want := time.Date(2006, 12, 16, 16, 24, 0, 0, time.UTC); !r.Time.Equal(want) {
		t.Fatalf("time %v, want %v", r.Time, want)
	}
	if r.Power != [4]float64{4216, 0, 60, 1020} {
		t.Fatalf("power %v", r.Power)
	}
	// Summer: UTC+2; single-digit day and month are accepted as written.
	if want := time.Date(2007, 7, 1, 7, 5, 0, 0, time.UTC); !hf.Rows[1].Time.Equal(want) {
		t.Fatalf("summer time %v, want %v", hf.Rows[1].Time, want)
	}
	if got, ok := hf.At(time.Date(2006, 12, 16, 16, 24, 0, 0, time.UTC)); !ok || got.Line != 2 {
		t.Fatalf("At: %+v %v", got, ok)
	}
	if _, ok := hf.At(time.Date(2006, 12, 16, 16, 25, 0, 0, time.UTC)); ok {
		t.Fatal("At found a minute not in the file")
	}
}

func TestReadHouseholdMissingValues(t *testing.T) {
	hf, err := ReadHousehold(strings.NewReader(header +
		"16/12/2006;17:24:00;?;?;?;?;?;?;?\n" +
		"16/12/2006;17:25:00;5.360;0.436;233.630;23.000;0.000;?;16.000\n"))
	if err != nil {
		t.Fatal(err)
	}
	if hf.Missing != 5 {
		t.Fatalf("missing %d, want 5 (4 in line 2, 1 in line 3)", hf.Missing)
	}
	for i := 0; i < 4; i++ {
		if !math.IsNaN(hf.Rows[0].Power[i]) {
			t.Fatalf("row 0 value %d = %v, want NaN", i, hf.Rows[0].Power[i])
		}
	}
	if p := hf.Rows[1].Power; p[0] != 5360 || !math.IsNaN(p[2]) || p[3] != 960 {
		t.Fatalf("row 1 %v", p)
	}
}

func TestReadHouseholdRejectsMalformedRows(t *testing.T) {
	good := "16/12/2006;17:24:00;4.216;0.418;234.840;18.400;0.000;1.000;17.000\n"
	cases := []struct{ name, input, want string }{
		{"header", "Date,Time\n" + good, "line 1: header"},
		{"field count", header + good + "16/12/2006;17:25:00;4.2;0.4\n", "line 3: 4 fields, want 9"},
		{"date", header + "32/12/2006;17:24:00;4.216;0.418;234.840;18.400;0.000;1.000;17.000\n", "line 2: field Date/Time"},
		{"number", header + good + "16/12/2006;17:25:00;4.216;0.418;234.840;18.400;0.000;abc;17.000\n", "line 3: field Sub_metering_2: \"abc\""},
		{"negative", header + "16/12/2006;17:24:00;-4.2;0.418;234.840;18.400;0.000;1.000;17.000\n", "line 2: field Global_active_power"},
		{"backwards", header + good + good, "line 3: field Date/Time"},
		{"empty", header, "no data rows"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadHousehold(strings.NewReader(tc.input))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// FuzzReadHousehold: arbitrary input never panics; what is accepted is
// well-formed (rows strictly increasing in time, finite non-negative power
// or NaN for `?`, NaN count equal to Missing).
func FuzzReadHousehold(f *testing.F) {
	f.Add(header + "16/12/2006;17:24:00;4.216;0.418;234.840;18.400;0.000;1.000;17.000\n")
	f.Add(header + "16/12/2006;17:24:00;?;?;?;?;?;?;?\n16/12/2006;17:25:00;1;2;3;4;5;6;7\n")
	f.Add(header + "31/2/2007;25:61:00;x;;;;;;\n")
	f.Fuzz(func(t *testing.T, in string) {
		hf, err := ReadHousehold(strings.NewReader(in))
		if err != nil {
			return
		}
		nan := 0
		for i, r := range hf.Rows {
			if i > 0 && !r.Time.After(hf.Rows[i-1].Time) {
				t.Fatalf("rows out of order at %d", i)
			}
			for _, p := range r.Power {
				if math.IsNaN(p) {
					nan++
				} else if p < 0 || math.IsInf(p, 0) {
					t.Fatalf("accepted power %v", p)
				}
			}
		}
		if nan != hf.Missing {
			t.Fatalf("%d NaN values, Missing %d", nan, hf.Missing)
		}
	})
}
