package observability

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

// operands splits a PromQL expression at its top-level comparison and set
// operators (or, and, unless, ==, !=, <, >, <=, >=), recursively, and
// returns the pieces that are not number literals: each must return data
// when the metrics it reads exist, whether or not the whole expression (an
// alert condition) holds.
func operands(expr string) []string {
	expr = unwrap(strings.TrimSpace(expr))
	if i, j, ok := topLevelOp(expr); ok {
		return append(operands(expr[:i]), operands(skipModifiers(expr[j:]))...)
	}
	if _, err := strconv.ParseFloat(expr, 64); err == nil || expr == "" {
		return nil
	}
	return []string{expr}
}

func isIdent(c byte) bool {
	return c == '_' || c == ':' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// unwrap removes parentheses around the whole expression.
func unwrap(expr string) string {
	for strings.HasPrefix(expr, "(") && closing(expr, 0) == len(expr)-1 {
		expr = strings.TrimSpace(expr[1 : len(expr)-1])
	}
	return expr
}

// closing returns the index of the bracket closing the one at open (-1 if
// none), skipping quoted strings.
func closing(s string, open int) int {
	depth := 0
	for i := open; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\'', '`':
			i = endQuote(s, i)
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

func endQuote(s string, i int) int {
	q := s[i]
	for i++; i < len(s); i++ {
		if s[i] == '\\' {
			i++
			continue
		}
		if s[i] == q {
			return i
		}
	}
	return len(s)
}

// topLevelOp finds the rightmost operator of the lowest precedence outside
// brackets: [i, j) is its span.
func topLevelOp(s string) (i, j int, ok bool) {
	type hit struct{ i, j, prec int }
	var best *hit
	depth := 0
	for k := 0; k < len(s); k++ {
		c := s[k]
		switch {
		case c == '"' || c == '\'' || c == '`':
			k = endQuote(s, k)
			continue
		case c == '(' || c == '[' || c == '{':
			depth++
			continue
		case c == ')' || c == ']' || c == '}':
			depth--
			continue
		}
		if depth != 0 {
			continue
		}
		var h *hit
		for _, w := range []struct {
			word string
			prec int
		}{{"or", 0}, {"and", 1}, {"unless", 1}} {
			end := k + len(w.word)
			if strings.HasPrefix(s[k:], w.word) && (k == 0 || !isIdent(s[k-1])) && (end == len(s) || !isIdent(s[end])) {
				h = &hit{k, end, w.prec}
			}
		}
		if h == nil {
			for _, op := range []string{"==", "!=", "<=", ">=", "<", ">"} {
				if strings.HasPrefix(s[k:], op) {
					h = &hit{k, k + len(op), 2}
					break
				}
			}
		}
		if h != nil {
			if best == nil || h.prec <= best.prec {
				best = h
			}
			k = h.j - 1
		} else if isIdent(c) {
			for k+1 < len(s) && isIdent(s[k+1]) {
				k++
			}
		}
	}
	if best == nil {
		return 0, 0, false
	}
	return best.i, best.j, true
}

// skipModifiers drops bool, on(...), ignoring(...), group_left(...) and
// group_right(...) from the start of an operator's right-hand side.
func skipModifiers(s string) string {
	for {
		s = strings.TrimSpace(s)
		word := s
		if k := strings.IndexFunc(s, func(r rune) bool { return r > 127 || !isIdent(byte(r)) }); k >= 0 {
			word = s[:k]
		}
		switch word {
		case "bool":
			s = s[len(word):]
		case "on", "ignoring", "group_left", "group_right":
			rest := strings.TrimSpace(s[len(word):])
			if strings.HasPrefix(rest, "(") {
				rest = rest[closing(rest, 0)+1:]
			}
			s = rest
		default:
			return s
		}
	}
}

func TestOperands(t *testing.T) {
	for _, c := range []struct {
		expr string
		want []string
	}{
		{`up{job="gridedge-collector"} == 0`, []string{`up{job="gridedge-collector"}`}},
		{`gridedge_agent_clock_quality{quality!="synced"} == 1`, []string{`gridedge_agent_clock_quality{quality!="synced"}`}},
		{`time() - x > 900 and x > 0`, []string{`time() - x`, `x`}},
		{"sum(a) / clamp_min(sum(b), 1) > 0.1", []string{"sum(a) / clamp_min(sum(b), 1)"}},
		{"(a > 1) or on (instance) group_left (site) b < bool 2", []string{"a", "b"}},
		{`sum by (instance, reason) (increase(d[15m])) > 0`, []string{`sum by (instance, reason) (increase(d[15m]))`}},
		{`free >= 0 and free < 2 * reserve`, []string{"free", "free", "2 * reserve"}},
		{`max by (device, site) (x{a=~"b|c",d="e>f"}) > 600`, []string{`max by (device, site) (x{a=~"b|c",d="e>f"})`}},
		{"random_orders unless band", []string{"random_orders", "band"}},
	} {
		if got := operands(c.expr); !slices.Equal(got, c.want) {
			t.Errorf("operands(%q) = %q, want %q", c.expr, got, c.want)
		}
	}
}
