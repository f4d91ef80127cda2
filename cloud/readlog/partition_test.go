package readlog

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// Reference values of the Kafka Java client's murmur2 (its own unit-test
// vectors), as signed 32-bit integers.
var murmur2Vectors = []struct {
	key  string
	hash int32
}{
	{"", 275646681},
	{"1", -1993445489},
	{"12", 126087238},
	{"123", -267702483},
	{"1234", -1614185708},
	{"12345", -1188365604},
	{"21", -973932308},
	{"abc", 479470107},
	{"foobar", -790332482},
	{"a-little-bit-long-string", -985981536},
	{"a-little-bit-longer-string", -1486304829},
	{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
}

func TestMurmur2MatchesTheJavaClient(t *testing.T) {
	for _, v := range murmur2Vectors {
		if got := Murmur2([]byte(v.key)); got != v.hash {
			t.Errorf("Murmur2(%q) = %d, want %d", v.key, got, v.hash)
		}
	}
}

func TestPartitionForIsToPositiveModulo(t *testing.T) {
	// toPositive(-790332482) = 1357151166; 1357151166 % 50 = 16.
	if got := PartitionFor([]byte("foobar"), 50); got != 16 {
		t.Fatalf("PartitionFor(foobar, 50) = %d, want 16", got)
	}
	for _, v := range murmur2Vectors {
		for _, n := range []int{1, 7, 8, 64} {
			want := int(int64(uint32(v.hash)&0x7fffffff) % int64(n))
			if got := PartitionFor([]byte(v.key), n); got != want {
				t.Errorf("PartitionFor(%q, %d) = %d, want %d", v.key, n, got, want)
			}
		}
	}
}

func TestPartitionForRejectsNonPositiveCount(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("PartitionFor(key, 0) did not panic")
		}
	}()
	PartitionFor([]byte("x"), 0)
}

// deviceIDs returns n device ids in the shapes gateways use: simulator
// names, MAC-derived gateway names and site/meter names, a third each.
func deviceIDs(n int) [][]byte {
	ids := make([][]byte, 0, n)
	for i := 0; len(ids) < n; i++ {
		switch i % 3 {
		case 0:
			ids = append(ids, fmt.Appendf(nil, "sim-%05d", i/3+1))
		case 1:
			// Raspberry Pi OUI b8:27:eb, then a 24-bit NIC part.
			ids = append(ids, fmt.Appendf(nil, "gw-b827eb%06x", (i/3)*2654435761%(1<<24)))
		default:
			ids = append(ids, fmt.Appendf(nil, "site%d-meter-%d", i/3/16+1, i/3%16+1))
		}
	}
	return ids
}

type spread struct {
	n, keys, min, max int
}

func measureSpread(ids [][]byte, n int) spread {
	counts := make([]int, n)
	for _, id := range ids {
		counts[PartitionFor(id, n)]++
	}
	s := spread{n: n, keys: len(ids), min: counts[0], max: counts[0]}
	for _, c := range counts {
		s.min, s.max = min(s.min, c), max(s.max, c)
	}
	return s
}

// TestPartitionSpread places 100,000 realistic device ids on 8, 16 and 64
// partitions and logs min/max keys per partition (go test -v -run
// TestPartitionSpread ./cloud/readlog/). It fails when a partition holds
// more than 15 % above or below the mean: more than five standard
// deviations of a uniform hash at every count here, so only a broken or
// clustering hash trips it.
func TestPartitionSpread(t *testing.T) {
	ids := deviceIDs(100_000)
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if seen[string(id)] {
			t.Fatalf("duplicate device id %s", id)
		}
		seen[string(id)] = true
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-10s %8s %8s %8s %8s %10s\n", "partitions", "keys", "mean", "min", "max", "max/mean")
	for _, n := range []int{8, 16, 64} {
		s := measureSpread(ids, n)
		mean := float64(s.keys) / float64(n)
		fmt.Fprintf(&b, "%-10d %8d %8.0f %8d %8d %10.3f\n", n, s.keys, mean, s.min, s.max, float64(s.max)/mean)
		if float64(s.min) < 0.85*mean || float64(s.max) > 1.15*mean {
			t.Errorf("%d partitions: min %d max %d, mean %.0f: spread beyond ±15 %%", n, s.min, s.max, mean)
		}
	}
	t.Logf("spread of %d device ids:\n%s", len(ids), b.String())
}

func BenchmarkPartitionFor(b *testing.B) {
	ids := deviceIDs(1024)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		PartitionFor(ids[i&1023], 16)
	}
}

func TestTrimmedErrorIsErrTrimmed(t *testing.T) {
	var err error = fmt.Errorf("open: %w", &TrimmedError{Partition: 3, Requested: 5, Available: 100})
	if !errors.Is(err, ErrTrimmed) {
		t.Fatalf("%v is not ErrTrimmed", err)
	}
	var te *TrimmedError
	if !errors.As(err, &te) || te.Available != 100 || te.Requested != 5 {
		t.Fatalf("errors.As gave %+v", te)
	}
}
