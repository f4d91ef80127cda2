package drv

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/gridedge/gridedge/hardware/sensor"
	"github.com/gridedge/gridedge/shared/wire"
)

// CheckQuantities returns an error naming every quantity cfg asks for that
// the driver cannot measure, so a configuration mistake fails at start-up
// instead of producing a channel that silently never reports it.
func CheckQuantities(cfg sensor.Config, offered ...wire.Quantity) error {
	var missing []string
	for _, q := range cfg.Quantities {
		found := false
		for _, o := range offered {
			found = found || o == q
		}
		if !found {
			missing = append(missing, q.Name())
		}
	}
	if len(missing) > 0 {
		names := make([]string, len(offered))
		for i, o := range offered {
			names[i] = o.Name()
		}
		return fmt.Errorf("driver %s cannot measure %s (it offers %s)", cfg.Driver, strings.Join(missing, ", "), strings.Join(names, ", "))
	}
	return nil
}

// Values collects the values a channel wants.
type Values struct {
	cfg sensor.Config
	out []sensor.Value
}

// NewValues starts an empty collection for cfg.
func NewValues(cfg sensor.Config) *Values { return &Values{cfg: cfg} }

// Add keeps v if the channel wants q.
func (v *Values) Add(q wire.Quantity, x float64) {
	if v.cfg.Wants(q) {
		v.out = append(v.out, sensor.Value{Quantity: q, Value: x})
	}
}

// List returns the collected values.
func (v *Values) List() []sensor.Value { return v.out }

// Logger returns l, or a logger that discards when l is nil.
func Logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// Missing is the error for an Env without the opener a driver needs.
func Missing(what string) error {
	return fmt.Errorf("this platform has no %s (env opener is nil)", what)
}
