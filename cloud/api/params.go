package api

import (
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/shared/wire"
)

// Limits of the query parameters. Every list is streamed, so a limit bounds
// the time and bytes of one answer, not the collector's memory.
const (
	MaxReadings    = 1_000_000
	MaxResults     = 100_000
	MaxDeadLetters = 10_000
	MaxConflicts   = 10_000
	MaxDevices     = 100_000
)

// Times a query can name: those whose nanoseconds since 1970 fit an int64
// (1677-09-21 to 2262-04-11); beyond them time arithmetic would wrap.
var (
	minQueryTime = time.Unix(0, math.MinInt64)
	maxQueryTime = time.Unix(0, math.MaxInt64)
)

// parseTime parses an optional RFC 3339 parameter (zero when absent).
func parseTime(name, raw string) (time.Time, *Error) {
	if raw == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, raw)
	if err != nil {
		return t, &Error{Parameter: name, Error: fmt.Sprintf("%s %q: want RFC 3339 time, e.g. 2026-11-23T10:00:00Z", name, raw)}
	}
	if t.Before(minQueryTime) || t.After(maxQueryTime) {
		return t, &Error{Parameter: name, Error: fmt.Sprintf("%s %q: outside the representable times 1677-09-21..2262-04-11", name, raw)}
	}
	return t, nil
}

// timeRange parses optional from and to parameters; to must be after from.
func timeRange(v url.Values) (from, to time.Time, perr *Error) {
	if from, perr = parseTime("from", v.Get("from")); perr != nil {
		return
	}
	if to, perr = parseTime("to", v.Get("to")); perr != nil {
		return
	}
	if !from.IsZero() && !to.IsZero() && !to.After(from) {
		return from, to, &Error{Parameter: "to", Error: "to must be after from"}
	}
	return from, to, nil
}

// parseLimit parses an optional limit 1..maxLimit (def when absent).
func parseLimit(raw string, def, maxLimit int) (int, *Error) {
	if raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > maxLimit {
		return 0, &Error{Parameter: "limit", Error: fmt.Sprintf("limit %q: want an integer 1..%d", raw, maxLimit)}
	}
	return n, nil
}

// parseDevice checks a device parameter; required says whether it may be
// absent.
func parseDevice(v url.Values, required bool) (string, *Error) {
	d := v.Get("device")
	if d == "" {
		if required {
			return "", &Error{Parameter: "device", Error: "device is required"}
		}
		return "", nil
	}
	if err := wire.ValidateDeviceID(d); err != nil {
		return "", &Error{Parameter: "device", Error: "device " + err.Error()}
	}
	return d, nil
}

// parseQuantity parses an optional quantity, which needs a channel.
func parseQuantity(v url.Values, channel string) (wire.Quantity, *Error) {
	name := v.Get("quantity")
	if name == "" {
		return 0, nil
	}
	q, err := wire.ParseQuantity(name)
	if err != nil {
		return 0, &Error{Parameter: "quantity", Error: "quantity: " + err.Error()}
	}
	if channel == "" {
		return 0, &Error{Parameter: "quantity", Error: "quantity needs channel"}
	}
	return q, nil
}

func parseWindowQuery(v url.Values, sizes []time.Duration) (store.WindowQuery, *Error) {
	q := store.WindowQuery{Channel: v.Get("channel"), Size: sizes[0]}
	var perr *Error
	if q.Device, perr = parseDevice(v, true); perr != nil {
		return q, perr
	}
	if q.Quantity, perr = parseQuantity(v, q.Channel); perr != nil {
		return q, perr
	}
	if sz := v.Get("size"); sz != "" {
		d, err := time.ParseDuration(sz)
		if err != nil || !slices.Contains(sizes, d) {
			return q, &Error{Parameter: "size", Error: fmt.Sprintf("size %q: must be one of the configured window sizes %v", sz, sizes)}
		}
		q.Size = d
	}
	if q.From, q.To, perr = timeRange(v); perr != nil {
		return q, perr
	}
	q.Limit, perr = parseLimit(v.Get("limit"), 1000, MaxResults)
	return q, perr
}

// readingsQuery selects raw readings of one series.
type readingsQuery struct {
	device, channel string
	quantity        wire.Quantity
	from, to        time.Time
	limit           int
}

func parseReadingsQuery(v url.Values) (readingsQuery, *Error) {
	q := readingsQuery{channel: v.Get("channel")}
	var perr *Error
	if q.device, perr = parseDevice(v, true); perr != nil {
		return q, perr
	}
	if q.channel == "" {
		return q, &Error{Parameter: "channel", Error: "channel is required"}
	}
	if v.Get("quantity") == "" {
		return q, &Error{Parameter: "quantity", Error: "quantity is required"}
	}
	if q.quantity, perr = parseQuantity(v, q.channel); perr != nil {
		return q, perr
	}
	if q.from, q.to, perr = timeRange(v); perr != nil {
		return q, perr
	}
	q.limit, perr = parseLimit(v.Get("limit"), 10_000, MaxReadings)
	return q, perr
}

func parseResultQuery(v url.Values, pipelines []string) (store.ResultQuery, *Error) {
	q := store.ResultQuery{Pipeline: v.Get("pipeline"), Channel: v.Get("channel")}
	if !slices.Contains(pipelines, q.Pipeline) {
		msg := fmt.Sprintf("pipeline %q: want one of %v", q.Pipeline, pipelines)
		if q.Pipeline == "" {
			msg = fmt.Sprintf("pipeline is required, one of %v", pipelines)
		}
		return q, &Error{Parameter: "pipeline", Error: msg}
	}
	var perr *Error
	if q.Device, perr = parseDevice(v, false); perr != nil {
		return q, perr
	}
	if q.Device == "" && q.Channel != "" {
		return q, &Error{Parameter: "channel", Error: "channel needs device"}
	}
	if q.Quantity, perr = parseQuantity(v, q.Channel); perr != nil {
		return q, perr
	}
	switch h := v.Get("history"); h {
	case "", "0", "false":
	case "1", "true":
		q.History = true
	default:
		return q, &Error{Parameter: "history", Error: fmt.Sprintf("history %q: want 1 or 0", h)}
	}
	if q.From, q.To, perr = timeRange(v); perr != nil {
		return q, perr
	}
	q.Limit, perr = parseLimit(v.Get("limit"), 1000, MaxResults)
	return q, perr
}

func parseLateQuery(v url.Values) (store.LateQuery, *Error) {
	var q store.LateQuery
	var perr *Error
	if q.Device, perr = parseDevice(v, true); perr != nil {
		return q, perr
	}
	if q.From, q.To, perr = timeRange(v); perr != nil {
		return q, perr
	}
	q.Limit, perr = parseLimit(v.Get("limit"), 1000, MaxResults)
	return q, perr
}

func parseConflictQuery(v url.Values) (store.ConflictQuery, *Error) {
	var q store.ConflictQuery
	var perr *Error
	if q.Device, perr = parseDevice(v, false); perr != nil {
		return q, perr
	}
	q.Limit, perr = parseLimit(v.Get("limit"), 100, MaxConflicts)
	return q, perr
}

// devicesQuery pages through devices in id order.
type devicesQuery struct {
	after string
	limit int
}

func parseDevicesQuery(v url.Values) (devicesQuery, *Error) {
	q := devicesQuery{after: v.Get("after")}
	if q.after != "" {
		if err := wire.ValidateDeviceID(q.after); err != nil {
			return q, &Error{Parameter: "after", Error: "after " + err.Error()}
		}
	}
	var perr *Error
	q.limit, perr = parseLimit(v.Get("limit"), MaxDevices, MaxDevices)
	return q, perr
}
