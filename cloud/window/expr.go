package window

import (
	"fmt"
	"strconv"
	"strings"
)

// Expr is a parsed derived-series expression: a signed sum of terms, each a
// numeric constant or a reference channel.aggregate to another series'
// result in the same window.
type Expr struct {
	Terms []Term
}

// Term is one addend of an Expr. Channel and Aggregate are empty for a
// constant.
type Term struct {
	Sign               float64 // +1 or -1
	Channel, Aggregate string
	Const              float64
}

// ParseExpr parses expressions such as "mains.energy - sub1.energy - 0.5".
// Identifiers are channel.aggregate (letters, digits, '_'; the channel is
// everything before the last '.'); operators are + and -. Errors name the
// 1-based character position.
func ParseExpr(src string) (*Expr, error) {
	p := exprParser{src: src}
	e := &Expr{}
	sign := 1.0
	expectTerm := true
	for {
		p.skipSpace()
		if p.pos >= len(src) {
			break
		}
		c := src[p.pos]
		switch {
		case c == '+' || c == '-':
			if !expectTerm {
				expectTerm = true
				sign = 1
			} else if len(e.Terms) > 0 || sign != 1 {
				return nil, p.errorf("unexpected %q (two operators in a row)", c)
			}
			if c == '-' {
				sign = -sign
			}
			p.pos++
		case !expectTerm:
			return nil, p.errorf("expected + or - before %q", c)
		case c >= '0' && c <= '9' || c == '.':
			start := p.pos
			for p.pos < len(src) && strings.IndexByte("0123456789.eE", src[p.pos]) >= 0 {
				if (src[p.pos] == 'e' || src[p.pos] == 'E') && p.pos+1 < len(src) && (src[p.pos+1] == '-' || src[p.pos+1] == '+') {
					p.pos++
				}
				p.pos++
			}
			v, err := strconv.ParseFloat(src[start:p.pos], 64)
			if err != nil {
				p.pos = start
				return nil, p.errorf("bad number %q", src[start:p.pos])
			}
			e.Terms = append(e.Terms, Term{Sign: sign, Const: v})
			expectTerm = false
		case isIdentByte(c):
			start := p.pos
			for p.pos < len(src) && (isIdentByte(src[p.pos]) || src[p.pos] >= '0' && src[p.pos] <= '9' || src[p.pos] == '.') {
				p.pos++
			}
			id := src[start:p.pos]
			dot := strings.LastIndexByte(id, '.')
			if dot <= 0 || dot == len(id)-1 {
				p.pos = start
				return nil, p.errorf("identifier %q must be channel.aggregate", id)
			}
			e.Terms = append(e.Terms, Term{Sign: sign, Channel: id[:dot], Aggregate: id[dot+1:]})
			expectTerm = false
		default:
			return nil, p.errorf("unexpected character %q", c)
		}
	}
	if expectTerm {
		if len(e.Terms) == 0 {
			return nil, p.errorf("empty expression")
		}
		return nil, p.errorf("expression ends with an operator")
	}
	return e, nil
}

func isIdentByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}

type exprParser struct {
	src string
	pos int
}

func (p *exprParser) skipSpace() {
	for p.pos < len(p.src) && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t') {
		p.pos++
	}
}

func (p *exprParser) errorf(format string, args ...any) error {
	return fmt.Errorf("expression %q: position %d: %s", p.src, p.pos+1, fmt.Sprintf(format, args...))
}

// Eval evaluates e with lookup resolving channel.aggregate references. It
// reports false when any reference is missing (the derived value is then not
// defined for that window).
func (e *Expr) Eval(lookup func(channel, aggregate string) (float64, bool)) (float64, bool) {
	var sum float64
	for _, t := range e.Terms {
		v := t.Const
		if t.Channel != "" {
			var ok bool
			if v, ok = lookup(t.Channel, t.Aggregate); !ok {
				return 0, false
			}
		}
		sum += t.Sign * v
	}
	return sum, true
}
