package window

import (
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML returns the shipped pipeline configuration (power_1m,
// energy_15m, energy_daily).
func DefaultYAML() []byte { return append([]byte(nil), defaultYAML...) }

// DefaultPipelines parses the shipped configuration.
func DefaultPipelines() []Pipeline {
	ps, err := ParseConfig(defaultYAML)
	if err != nil {
		panic(fmt.Sprintf("window: shipped default.yaml is invalid: %v", err))
	}
	return ps
}

// ParseConfig reads pipelines from YAML:
//
//	time_zone: Europe/Paris          # default for every pipeline
//	pipelines:
//	  - name: power_1m
//	    inputs: [{device: "*", channel: "*", quantity: active_power}]
//	    window: {kind: tumbling, size: 1m}   # sliding: size, slide; session: gap, min_duration, max_duration; day, week, month
//	    aggregations: [count, mean, {name: e, func: energy_integral}]
//	    out_of_orderness: 10s
//	    allowed_lateness: 3d
//	    idle_timeout: 2m
//	    max_gap: 5s
//	    derived: [{name: rest, expr: "mains.e - sub1.e"}]
//	    join: [mains, kettle]
//	    active: kettle                       # rows count only while kettle != 0
//	    active_any: [kettle, oven]           # or: while any of them != 0
//	    requires: [{quantity: state}]        # only devices with such a series
//
// Errors name the line and the problem. Every pipeline is validated.
func ParseConfig(data []byte) ([]Pipeline, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("window config: %w", err)
	}
	if len(doc.Content) == 0 {
		return nil, errors.New("window config: empty document")
	}
	root := doc.Content[0]
	var zone string
	var pipes []Pipeline
	var lines []int
	err := eachKey(root, func(key string, v *yaml.Node) error {
		switch key {
		case "time_zone":
			return scalar(v, &zone)
		case "pipelines":
			if v.Kind != yaml.SequenceNode {
				return lineErr(v, "pipelines must be a list")
			}
			for _, pn := range v.Content {
				p, err := parsePipeline(pn)
				if err != nil {
					return err
				}
				pipes = append(pipes, p)
				lines = append(lines, pn.Line)
			}
			return nil
		}
		return lineErr(v, "unknown key %q (want time_zone, pipelines)", key)
	})
	if err != nil {
		return nil, fmt.Errorf("window config: %w", err)
	}
	if len(pipes) == 0 {
		return nil, errors.New("window config: no pipelines")
	}
	names := map[string]int{}
	for i := range pipes {
		if pipes[i].TimeZone == "" {
			pipes[i].TimeZone = zone
		}
		if err := pipes[i].Validate(); err != nil {
			return nil, fmt.Errorf("window config: line %d: %w", lines[i], err)
		}
		if l, dup := names[pipes[i].Name]; dup {
			return nil, fmt.Errorf("window config: line %d: pipeline %s already defined at line %d", lines[i], pipes[i].Name, l)
		}
		names[pipes[i].Name] = lines[i]
	}
	return pipes, nil
}

func lineErr(n *yaml.Node, format string, args ...any) error {
	return fmt.Errorf("line %d: %s", n.Line, fmt.Sprintf(format, args...))
}

// eachKey calls fn for each key of a mapping node, in order.
func eachKey(n *yaml.Node, fn func(key string, v *yaml.Node) error) error {
	if n.Kind != yaml.MappingNode {
		return lineErr(n, "expected a mapping")
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if seen[k.Value] {
			return lineErr(k, "key %q repeated", k.Value)
		}
		seen[k.Value] = true
		if err := fn(k.Value, n.Content[i+1]); err != nil {
			return err
		}
	}
	return nil
}

func scalar(n *yaml.Node, dst *string) error {
	if n.Kind != yaml.ScalarNode {
		return lineErr(n, "expected a single value")
	}
	*dst = n.Value
	return nil
}

func duration(n *yaml.Node, dst *time.Duration) error {
	var s string
	if err := scalar(n, &s); err != nil {
		return err
	}
	d, err := ParseDuration(s)
	if err != nil {
		return lineErr(n, "%v", err)
	}
	*dst = d
	return nil
}

// ParseDuration accepts time.ParseDuration syntax plus whole days ("3d").
func ParseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("duration %q: days must be a whole number", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: %w", s, err)
	}
	if d < 0 {
		return 0, fmt.Errorf("duration %q is negative", s)
	}
	return d, nil
}

func stringList(n *yaml.Node) ([]string, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, lineErr(n, "expected a list")
	}
	var out []string
	for _, c := range n.Content {
		var s string
		if err := scalar(c, &s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// selectors reads a list of {device, channel, quantity} globs.
func selectors(v *yaml.Node, what string) ([]Selector, error) {
	if v.Kind != yaml.SequenceNode {
		return nil, lineErr(v, "%s must be a list of {device, channel, quantity}", what)
	}
	var out []Selector
	for _, in := range v.Content {
		var sel Selector
		if err := eachKey(in, func(k string, vv *yaml.Node) error {
			switch k {
			case "device":
				return scalar(vv, &sel.Device)
			case "channel":
				return scalar(vv, &sel.Channel)
			case "quantity":
				return scalar(vv, &sel.Quantity)
			}
			return lineErr(vv, "unknown %s key %q (want device, channel, quantity)", what, k)
		}); err != nil {
			return nil, err
		}
		out = append(out, sel)
	}
	return out, nil
}

func parsePipeline(n *yaml.Node) (Pipeline, error) {
	var p Pipeline
	err := eachKey(n, func(key string, v *yaml.Node) error {
		switch key {
		case "name":
			return scalar(v, &p.Name)
		case "inputs":
			var err error
			p.Inputs, err = selectors(v, "inputs")
			return err
		case "requires":
			var err error
			p.Requires, err = selectors(v, "requires")
			return err
		case "active_any":
			var err error
			p.ActiveAny, err = stringList(v)
			return err
		case "window":
			return parseWindow(v, &p.Window)
		case "aggregations":
			if v.Kind != yaml.SequenceNode {
				return lineErr(v, "aggregations must be a list")
			}
			for _, a := range v.Content {
				agg, err := parseAggregation(a)
				if err != nil {
					return err
				}
				p.Aggregations = append(p.Aggregations, agg)
			}
			return nil
		case "out_of_orderness":
			return duration(v, &p.OutOfOrderness)
		case "allowed_lateness":
			return duration(v, &p.AllowedLateness)
		case "idle_timeout":
			return duration(v, &p.IdleTimeout)
		case "max_gap":
			return duration(v, &p.MaxGap)
		case "time_zone":
			if err := scalar(v, &p.TimeZone); err != nil {
				return err
			}
			if _, err := time.LoadLocation(p.TimeZone); err != nil {
				return lineErr(v, "time zone %q: %v", p.TimeZone, err)
			}
			return nil
		case "join":
			var err error
			p.Join, err = stringList(v)
			return err
		case "active":
			return scalar(v, &p.Active)
		case "derived":
			if v.Kind != yaml.SequenceNode {
				return lineErr(v, "derived must be a list of {name, expr}")
			}
			for _, dn := range v.Content {
				var d Derived
				if err := eachKey(dn, func(k string, vv *yaml.Node) error {
					switch k {
					case "name":
						return scalar(vv, &d.Name)
					case "expr":
						if err := scalar(vv, &d.Expr); err != nil {
							return err
						}
						if _, err := ParseExpr(d.Expr); err != nil {
							return lineErr(vv, "%v", err)
						}
						return nil
					}
					return lineErr(vv, "unknown derived key %q (want name, expr)", k)
				}); err != nil {
					return err
				}
				p.Derived = append(p.Derived, d)
			}
			return nil
		}
		return lineErr(v, "unknown pipeline key %q", key)
	})
	if err == nil && p.Name == "" {
		err = lineErr(n, "pipeline without a name")
	}
	return p, err
}

func parseWindow(n *yaml.Node, w *WindowSpec) error {
	return eachKey(n, func(key string, v *yaml.Node) error {
		switch key {
		case "kind":
			var s string
			if err := scalar(v, &s); err != nil {
				return err
			}
			for k, name := range kindNames {
				if name == s {
					w.Kind = k
					return nil
				}
			}
			return lineErr(v, "unknown window kind %q (want tumbling, sliding, session, day, week, month)", s)
		case "size":
			return duration(v, &w.Size)
		case "slide":
			return duration(v, &w.Slide)
		case "gap":
			return duration(v, &w.Gap)
		case "min_duration":
			return duration(v, &w.MinDuration)
		case "max_duration":
			return duration(v, &w.MaxDuration)
		}
		return lineErr(v, "unknown window key %q", key)
	})
}

func parseAggregation(n *yaml.Node) (Aggregation, error) {
	if n.Kind == yaml.ScalarNode {
		f, err := ParseFunc(n.Value)
		if err != nil {
			return Aggregation{}, lineErr(n, "%v", err)
		}
		return Aggregation{Name: n.Value, Func: f}, nil
	}
	var a Aggregation
	err := eachKey(n, func(key string, v *yaml.Node) error {
		switch key {
		case "name":
			return scalar(v, &a.Name)
		case "func":
			var s string
			if err := scalar(v, &s); err != nil {
				return err
			}
			f, err := ParseFunc(s)
			if err != nil {
				return lineErr(v, "%v", err)
			}
			a.Func = f
			return nil
		}
		return lineErr(v, "unknown aggregation key %q (want name, func)", key)
	})
	if err == nil && (a.Name == "" || a.Func == 0) {
		err = lineErr(n, "aggregation needs name and func")
	}
	return a, err
}
