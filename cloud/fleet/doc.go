// Package fleet summarises the devices a collector knows into a few
// Prometheus gauges whose number of series does not grow with the fleet:
// devices online and offline, online devices by clock quality, the longest
// time an online device's clock has gone unsynchronised, and the readings
// the fleet's agents report buffered.
//
// Per-device series exist only for offline devices and only up to an
// explicit limit (WithDeviceLimit, default 100): the devices that went
// offline most recently are listed, so an alert can name them, and the
// count left out is a gauge of its own. With 50,000 devices the collector
// thus exposes at most 112 fleet series (12 plus the limit), not 50,000.
//
// The summary is computed at scrape time by one scan of the device source,
// at most once per minimum interval (WithMinInterval, default 10 s): an idle
// collector nobody scrapes does no work, and several scrapers share one
// scan.
package fleet
