package window_test

import (
	"testing"

	"github.com/gridedge/gridedge/cloud/window"
)

// Configuration is operator input: any bytes give pipelines or an error,
// never a panic, and accepted pipelines build an engine.
func FuzzParseConfig(f *testing.F) {
	f.Add(window.DefaultYAML())
	f.Add([]byte("pipelines:\n  - name: a\n    inputs: [{channel: x}]\n    window: {kind: sliding, size: 15s, slide: 1s}\n    aggregations: [readings]\n"))
	f.Add([]byte("pipelines: [{name: s, inputs: [{}], window: {kind: session, gap: 5s}, aggregations: [count], join: [a, b], active: b}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ps, err := window.ParseConfig(data)
		if err != nil {
			return
		}
		if _, err := window.New(ps); err != nil {
			t.Fatalf("ParseConfig accepted pipelines New rejects: %v", err)
		}
	})
}

func FuzzParseExpr(f *testing.F) {
	for _, s := range []string{"mains.energy - sub1.energy", "-a.b+1e3", "a.b - - c.d", "1.2.3", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		x, err := window.ParseExpr(src)
		if err != nil {
			return
		}
		if len(x.Terms) == 0 {
			t.Fatalf("%q parsed to no terms", src)
		}
		x.Eval(func(string, string) (float64, bool) { return 1, true })
	})
}
