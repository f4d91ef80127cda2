// Routing: a reading's (device, channel, quantity) resolves once to the
// series of every pipeline that selects it.

package window

import (
	"math"
	"slices"
	"time"

	"github.com/gridedge/gridedge/shared/wire"
)

type routeKey struct {
	device, channel string
	q               wire.Quantity
}

// Route is a pre-resolved (device, channel, quantity) series; ApplyRoute
// with it skips the lookup Apply does per reading.
type Route int32

type route struct {
	key     routeKey
	dev     int32
	targets []target
}

// target is one series a route feeds, with its column in the pipeline's
// Join (-1 if none); one slice keeps the hot path to one cache line.
type target struct {
	series int32
	join   int8
}

type device struct {
	name     string
	has      bool
	maxT     int64
	lastSeen int64
	zone     string
	loc      *time.Location
	dps      []int32
	routes   []devRoute
	ckDirty  bool // listed in Engine.dirtyDevs
	unloaded bool // its windows are out of memory (Unload)
}

// devRoute is one of a device's routes with the part of its key Resolve
// compares, so matching a reading scans one small array instead of
// visiting a route (its own cache line) per candidate.
type devRoute struct {
	channel string
	q       wire.Quantity
	route   int32
}

func (e *Engine) deviceIndex(name string) int32 {
	if i := e.devIndex.find(name, e.devs); i >= 0 {
		return i
	}
	i := int32(len(e.devs))
	e.devs = append(e.devs, device{name: name, maxT: noTime})
	e.devIndex.insert(name, i, e.devs)
	return i
}

// Resolve returns the route of a series, creating its state on first use.
// A route is valid for the engine that returned it; resolve again after
// Restore.
func (e *Engine) Resolve(device, channel string, q wire.Quantity) Route {
	di := e.lastDev
	if di < 0 || device != e.lastDevName {
		di = e.deviceIndex(device)
		e.lastDev, e.lastDevName = di, e.devs[di].name
	}
	if e.devs[di].unloaded {
		e.load(di)
	}
	for i := range e.devs[di].routes {
		if dr := &e.devs[di].routes[i]; dr.q == q && dr.channel == channel {
			return Route(dr.route)
		}
	}
	return Route(e.newRoute(routeKey{device, channel, q}))
}

func (e *Engine) newRoute(k routeKey) int32 {
	dev := e.deviceIndex(k.device)
	d := &e.devs[dev]
	k.device = d.name // intern
	rt := route{dev: dev, key: k}
	// Pipelines whose Requires this series meets for the first time on the
	// device: they take the device's earlier series too, from now on.
	var newlyMet []*pipe
	for _, p := range e.pipes {
		if len(p.spec.Requires) == 0 {
			continue
		}
		if p.spec.requiresMet(k.device, k.channel, k.q) && !e.requiresMet(dev, p) {
			newlyMet = append(newlyMet, p)
		}
	}
	for _, p := range e.pipes {
		if !p.selects(k.device, k.channel, k.q) {
			continue
		}
		if len(p.spec.Requires) > 0 && !e.requiresMet(dev, p) && !slices.Contains(newlyMet, p) {
			continue
		}
		e.addTarget(&rt, p)
	}
	if len(rt.targets) == 0 {
		e.log.Debug("window: series selected by no pipeline", "device", k.device, "channel", k.channel, "quantity", k.q.Name())
	}
	i := int32(len(e.routeTab))
	for _, p := range newlyMet {
		for _, dr := range e.devs[dev].routes {
			if r := &e.routeTab[dr.route]; p.selects(r.key.device, r.key.channel, r.key.q) {
				e.addTarget(r, p)
			}
		}
	}
	e.routeTab = append(e.routeTab, rt)
	d = &e.devs[dev]
	d.routes = append(d.routes, devRoute{channel: k.channel, q: k.q, route: i})
	return i
}

// requiresMet reports whether device dev already has a series that meets
// p's Requires.
func (e *Engine) requiresMet(dev int32, p *pipe) bool {
	for _, dr := range e.devs[dev].routes {
		if p.spec.requiresMet(e.devs[dev].name, dr.channel, dr.q) {
			return true
		}
	}
	return false
}

// addTarget makes route rt feed pipeline p, creating the series.
func (e *Engine) addTarget(rt *route, p *pipe) {
	k := rt.key
	dev := rt.dev
	name := e.devs[dev].name
	ji := int8(-1)
	key := Key{Device: name, Channel: k.channel, Quantity: k.q}
	if p.joinIdx != nil {
		var ok bool
		if ji, ok = p.joinIdx[k.channel]; !ok {
			return
		}
		key = Key{Device: name, Channel: p.joinKey}
	}
	dpi := e.devPipe(dev, p.idx)
	si := int32(-1)
	if p.joinIdx != nil {
		for _, s := range e.dps[dpi].series {
			si = s
		}
	}
	if si < 0 {
		si = int32(len(e.series))
		e.series = append(e.series, series{pipe: p.idx, dp: dpi, dev: dev, q: key.Quantity, channel: key.Channel})
		for _, f := range p.funcs {
			f = f.resolve(key.Quantity)
			e.series[si].needPts = e.series[si].needPts || f.needsPoints()
			e.series[si].needBins = e.series[si].needBins || f == EnergyBinned
			e.series[si].carry = e.series[si].carry || f == EnergyCounter && p.carries()
		}
		e.dps[dpi].series = append(e.dps[dpi].series, si)
	}
	rt.targets = append(rt.targets, target{si, ji})
}

func (p *pipe) selects(device, channel string, q wire.Quantity) bool {
	for _, s := range p.spec.Inputs {
		if s.Matches(device, channel, q) {
			return true
		}
	}
	return false
}

func (e *Engine) devPipe(dev, p int32) int32 {
	for _, dpi := range e.devs[dev].dps {
		if e.dps[dpi].pipe == p {
			return dpi
		}
	}
	dpi := int32(len(e.dps))
	e.dps = append(e.dps, devPipe{pipe: p, dev: dev, nextEvent: never})
	e.devs[dev].dps = append(e.devs[dev].dps, dpi)
	return dpi
}

// Apply feeds one reading. Results and late readings it causes are held
// until TakeOutput. Apply never fails: a reading no pipeline selects is
// counted in Stats.Unrouted.
func (e *Engine) Apply(r *Reading) {
	e.ApplyRoute(e.Resolve(r.Device, r.Channel, r.Quantity), r)
}

// ApplyBatch applies rs in order, after resolving the series of all of
// them: a pipeline with Requires that the batch's first qualifying series
// opens to the device takes every reading of the batch, whatever their
// order within it (a device's first batch holds its power and its states).
func (e *Engine) ApplyBatch(rs []Reading) {
	routes := e.batchRoutes[:0]
	for i := range rs {
		routes = append(routes, e.Resolve(rs[i].Device, rs[i].Channel, rs[i].Quantity))
	}
	for i := range rs {
		e.ApplyRoute(routes[i], &rs[i])
	}
	e.batchRoutes = routes[:0]
}

// ApplyRoute is Apply for a reading whose series was resolved with Resolve;
// r's Device, Channel and Quantity are not read.
func (e *Engine) ApplyRoute(rt Route, r *Reading) {
	if math.IsNaN(r.Value) || math.IsInf(r.Value, 0) || r.TimeNs < 0 || r.TimeNs > MaxTimeNs {
		// wire.DecodeBatch already refuses non-finite values; a NaN would
		// poison every aggregate of its windows, and a time near the int64
		// limit would overflow window arithmetic, so never apply either.
		e.stats.Rejected++
		return
	}
	ro := &e.routeTab[rt]
	if e.devs[ro.dev].unloaded && !e.load(ro.dev) {
		return
	}
	e.stats.Readings++
	e.markDirty(ro.dev)
	d := &e.devs[ro.dev]
	d.lastSeen = e.now
	had, prevMax := d.has, d.maxT
	if len(ro.targets) == 0 {
		e.stats.Unrouted++
	}
	for _, tg := range ro.targets {
		e.add(tg.series, tg.join, r, had, prevMax)
	}
	if had && r.TimeNs <= prevMax {
		return
	}
	d.has, d.maxT = true, r.TimeNs
	for _, dpi := range d.dps {
		dp := &e.dps[dpi]
		if wm := e.pipes[dp.pipe].watermark(true, r.TimeNs); wm >= dp.nextEvent {
			e.advance(dpi, wm)
		}
	}
}
