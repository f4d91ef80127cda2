package yamlpath

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// ErrEmpty is returned by Parse for a document without content.
var ErrEmpty = errors.New("empty document")

// Parse parses one YAML document into its node tree. Syntax errors keep the
// parser's line number.
func Parse(data []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, ErrEmpty
		}
		return nil, err
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		return doc.Content[0], nil
	}
	return &doc, nil
}

// Decode checks n against v's type and, when nothing is wrong, decodes it
// into v (a non-nil pointer). Every problem found is reported, each as one
// line "path (line N): what is wrong", joined with errors.Join; prefix is
// the path of n itself ("" at the document root). The line is left out for
// nodes without a position (built with Node.Encode).
func Decode(n *yaml.Node, v any, prefix string) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("yamlpath: Decode needs a non-nil pointer, got %T", v)
	}
	c := checker{}
	c.check(prefix, n, rv.Type().Elem())
	if len(c.errs) > 0 {
		return errors.Join(c.errs...)
	}
	if err := n.Decode(v); err != nil {
		// Not expected after a clean check; still say where.
		return fmt.Errorf("%s: %w", orRoot(prefix), err)
	}
	return nil
}

// Scalars calls fn for every scalar value below n with its path; mapping
// keys are not values and are skipped.
func Scalars(n *yaml.Node, prefix string, fn func(path string, n *yaml.Node)) {
	n = resolve(n)
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			Scalars(c, prefix, fn)
		}
	case yaml.ScalarNode:
		fn(orRoot(prefix), n)
	case yaml.SequenceNode:
		for i, c := range n.Content {
			Scalars(c, fmt.Sprintf("%s[%d]", prefix, i), fn)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			Scalars(n.Content[i+1], join(prefix, n.Content[i].Value), fn)
		}
	}
}

// At formats a problem at n the way Decode does: "path (line N): msg".
func At(path string, n *yaml.Node, format string, args ...any) error {
	where := orRoot(path)
	if n != nil && n.Line > 0 {
		where += fmt.Sprintf(" (line %d)", n.Line)
	}
	return fmt.Errorf("%s: %s", where, fmt.Sprintf(format, args...))
}

type checker struct{ errs []error }

func (c *checker) bad(path string, n *yaml.Node, format string, args ...any) {
	c.errs = append(c.errs, At(path, n, format, args...))
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

func (c *checker) check(path string, n *yaml.Node, t reflect.Type) {
	n = resolve(n)
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return
		}
		n = resolve(n.Content[0])
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // null leaves the field at its zero value
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			c.bad(path, n, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			c.bad(path, n, "want a mapping (key: value lines), got %s", describe(n))
			return
		}
		fields := map[string]reflect.Type{}
		var names []string
		collectFields(t, fields, &names)
		c.mapping(path, n, func(key *yaml.Node, val *yaml.Node) {
			ft, ok := fields[key.Value]
			if !ok {
				c.bad(join(path, key.Value), key, "unknown field%s; known: %s", suggest(key.Value, names), strings.Join(names, ", "))
				return
			}
			c.check(join(path, key.Value), val, ft)
		})
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			c.bad(path, n, "want a mapping (key: value lines), got %s", describe(n))
			return
		}
		c.mapping(path, n, func(key *yaml.Node, val *yaml.Node) {
			c.check(join(path, key.Value), val, t.Elem())
		})
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			c.bad(path, n, "want a list, got %s", describe(n))
			return
		}
		for i, e := range n.Content {
			c.check(fmt.Sprintf("%s[%d]", path, i), e, t.Elem())
		}
	case reflect.Interface:
		// Any shape goes; the consumer decodes it further.
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			c.bad(path, n, "want a text value, got %s", describe(n))
		}
	case reflect.Bool:
		if !c.scalarDecodes(n, t) {
			c.bad(path, n, "want true or false, got %s", describe(n))
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if !c.scalarDecodes(n, t) {
			bits := t.Bits()
			c.bad(path, n, "want a whole number from %d to %d, got %s", int64(-1)<<(bits-1), int64(1)<<(bits-1)-1, describe(n))
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if !c.scalarDecodes(n, t) {
			c.bad(path, n, "want a whole number from 0 to %s, got %s", strconv.FormatUint(math.MaxUint64>>(64-t.Bits()), 10), describe(n))
		}
	case reflect.Float32, reflect.Float64:
		if !c.scalarDecodes(n, t) {
			c.bad(path, n, "want a number, got %s", describe(n))
		}
	default:
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			c.bad(path, n, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
	}
}

// mapping calls fn for each key of n, following merge keys (<<).
func (c *checker) mapping(path string, n *yaml.Node, fn func(key, val *yaml.Node)) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		if key.Tag == "!!merge" {
			val = resolve(val)
			switch val.Kind {
			case yaml.MappingNode:
				c.mapping(path, val, fn)
			case yaml.SequenceNode:
				for _, m := range val.Content {
					if m = resolve(m); m.Kind == yaml.MappingNode {
						c.mapping(path, m, fn)
					}
				}
			}
			continue
		}
		fn(key, val)
	}
}

func (c *checker) scalarDecodes(n *yaml.Node, t reflect.Type) bool {
	return n.Kind == yaml.ScalarNode && n.Decode(reflect.New(t).Interface()) == nil
}

// collectFields maps yaml keys to field types, descending into inline
// structs, and lists the keys in declaration order.
func collectFields(t reflect.Type, fields map[string]reflect.Type, names *[]string) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() && !f.Anonymous {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(","+opts+",", ",inline,") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				collectFields(ft, fields, names)
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
		*names = append(*names, name)
	}
}

// suggest returns ` (did you mean "x"?)` for the closest known name within
// two edits, else "".
func suggest(key string, names []string) string {
	best, bestD := "", 3
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	for _, n := range sorted {
		if d := distance(strings.ToLower(key), n); d < bestD {
			best, bestD = n, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// distance is the Levenshtein edit distance of a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "…"
		}
		return strconv.Quote(v)
	}
}

func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

func orRoot(path string) string {
	if path == "" {
		return "(document)"
	}
	return path
}
