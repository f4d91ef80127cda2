package analytics

import (
	"errors"
	"fmt"
	"time"
)

// Config says which results the analytics read and what they write.
type Config struct {
	// Source is the pipeline whose results are modelled (energy_15m) and
	// Value the aggregate read from them (energy).
	Source string `yaml:"source"`
	Value  string `yaml:"value"`
	// Resolution is the source pipeline's window size; it must divide a day
	// and be at least a minute.
	Resolution time.Duration `yaml:"resolution"`
	// Anomaly and Forecast name the pipelines of the results written.
	Anomaly  string `yaml:"anomaly_pipeline"`
	Forecast string `yaml:"forecast_pipeline"`
	// Every is the refit schedule.
	Every time.Duration `yaml:"every"`
	// History is how much of the source is read to fit a model.
	History time.Duration `yaml:"history"`
	// Horizon is how far ahead forecasts reach.
	Horizon time.Duration `yaml:"horizon"`
	// Lookback is how far back windows are scored (windows that arrived or
	// were revised within it and have no current anomaly result).
	Lookback time.Duration `yaml:"lookback"`
	// MaxDevicesPerCycle bounds the devices refitted per cycle; the others
	// wait for the next cycle, least recently refitted first.
	MaxDevicesPerCycle int `yaml:"max_devices_per_cycle"`
	// MaxSeriesPerDevice bounds the series modelled per device.
	MaxSeriesPerDevice int `yaml:"max_series_per_device"`
	// TimeZone places the calendar slots of devices whose status names no
	// zone (IANA name; empty is UTC).
	TimeZone string `yaml:"time_zone"`
	// Params tune the model and the detector.
	Params Params `yaml:"params"`
}

// DefaultConfig models energy_15m: anomaly_15m and forecast_15m refitted
// every 10 minutes from 15 days, 24 hours ahead.
func DefaultConfig() Config {
	return Config{
		Source: "energy_15m", Value: "energy", Resolution: 15 * time.Minute,
		Anomaly: "anomaly_15m", Forecast: "forecast_15m",
		Every: 10 * time.Minute, History: 15 * 24 * time.Hour, Horizon: 24 * time.Hour, Lookback: 24 * time.Hour,
		MaxDevicesPerCycle: 500, MaxSeriesPerDevice: 16, Params: DefaultParams(),
	}
}

// Pipelines are the names of the pipelines the analytics write.
func (c Config) Pipelines() []string { return []string{c.Anomaly, c.Forecast} }

// Validate reports a configuration the runner cannot use.
func (c Config) Validate() error {
	var errs []error
	if c.Source == "" || c.Value == "" || c.Anomaly == "" || c.Forecast == "" {
		errs = append(errs, errors.New("source, value, anomaly_pipeline and forecast_pipeline are required"))
	}
	if c.Anomaly == c.Forecast || c.Anomaly == c.Source || c.Forecast == c.Source {
		errs = append(errs, errors.New("source, anomaly_pipeline and forecast_pipeline must differ"))
	}
	if c.Resolution < time.Minute || (24*time.Hour)%c.Resolution != 0 || c.Resolution%time.Second != 0 {
		errs = append(errs, fmt.Errorf("resolution %v: want at least 1m, whole seconds, dividing a day", c.Resolution))
	}
	if c.Every <= 0 || c.History < 24*time.Hour || c.Horizon <= 0 || c.Lookback <= 0 {
		errs = append(errs, errors.New("every, horizon and lookback must be positive, history at least 1d"))
	}
	if c.History > 60*24*time.Hour || c.Horizon > 7*24*time.Hour || c.Lookback > c.History {
		errs = append(errs, errors.New("history is at most 60d, horizon 7d, lookback at most history"))
	}
	if c.MaxDevicesPerCycle <= 0 || c.MaxSeriesPerDevice <= 0 {
		errs = append(errs, errors.New("max_devices_per_cycle and max_series_per_device must be positive"))
	}
	p := c.Params
	if p.Neighbours < 0 || p.Shrink < 0 || p.Z <= 0 || p.SpikeZ < p.Z || p.Persist < 1 || p.FloorShare < 0 || p.ZeroRunFactor < 1 || p.HighQuantile < 0 || p.HighQuantile > 1 {
		errs = append(errs, errors.New("params: neighbours ≥ 0, shrink ≥ 0, z > 0, spike_z ≥ z, persist ≥ 1, floor_share ≥ 0, zero_run_factor ≥ 1, high_quantile in [0, 1]"))
	}
	if _, err := time.LoadLocation(c.TimeZone); err != nil {
		errs = append(errs, fmt.Errorf("time_zone: %w", err))
	}
	return errors.Join(errs...)
}
