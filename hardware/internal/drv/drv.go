package drv

import (
	"errors"
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
		return fmt.Errorf("quantities: driver %s cannot measure %s (it offers %s)", cfg.Driver, strings.Join(missing, ", "), strings.Join(names, ", "))
	}
	return nil
}

// Problems collects what is wrong with a channel's configuration, one line
// per problem naming the option ("options.address: …"), so a driver's Check
// and its Factory report the same thing.
type Problems struct{ errs []error }

// Option records a problem with option name.
func (p *Problems) Option(name, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("options.%s: %s", name, fmt.Sprintf(format, args...)))
}

// Add records err when it is not nil.
func (p *Problems) Add(err error) {
	if err != nil {
		p.errs = append(p.errs, err)
	}
}

// Err joins the problems; nil when there are none.
func (p *Problems) Err() error { return errors.Join(p.errs...) }

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
