package mqttclient

import (
	"context"
	"errors"
	"log/slog"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Backoff bounds between connection attempts.
const (
	minBackoff = time.Second
	maxBackoff = 30 * time.Second
)

// Keeper keeps one paho client connected. The client must have paho's own
// AutoReconnect and ConnectRetry off and call OnLost from its connection
// lost handler.
type Keeper struct {
	log    *slog.Logger
	broker string // redacted, for logs
	lost   chan error
}

// NewKeeper returns a Keeper logging to log about broker (logged through
// Redact).
func NewKeeper(log *slog.Logger, broker string) *Keeper {
	return &Keeper{log: log, broker: Redact(broker), lost: make(chan error, 1)}
}

// OnLost tells the keeper the connection was lost. It never blocks.
func (k *Keeper) OnLost(err error) {
	select {
	case k.lost <- err:
	default:
	}
}

// Run connects client, and connects it again after every loss, until ctx
// ends. It returns when ctx is done; it does not disconnect.
func (k *Keeper) Run(ctx context.Context, client paho.Client) {
	backoff := minBackoff
	for {
		tok := client.Connect()
		select {
		case <-tok.Done():
		case <-ctx.Done():
			return
		}
		if err := tok.Error(); err != nil {
			k.logFailure(tok, err, backoff)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff = minBackoff
		select {
		case <-k.lost:
		case <-ctx.Done():
			return
		}
	}
}

// refusal names the CONNACK return codes with which a broker refuses
// (MQTT 3.1.1): the ones a retry will not fix are logged at ERROR.
var refusal = map[byte]string{
	1: "unacceptable protocol version",
	2: "identifier rejected (on gridedge's brokers a device's client id must equal its username)",
	3: "server unavailable",
	4: "bad user name or password",
	5: "not authorised (missing or wrong credentials, or the identity may not connect)",
}

func (k *Keeper) logFailure(tok paho.Token, err error, retry time.Duration) {
	var code byte
	if ct, ok := tok.(*paho.ConnectToken); ok {
		code = ct.ReturnCode()
	}
	if reason, refused := refusal[code]; refused && code != 3 {
		k.log.Error("mqtt broker refused the connection", "broker", k.broker, "connack_code", code, "reason", reason,
			"err", err, "retry_in", retry)
		return
	}
	if errors.Is(err, context.Canceled) {
		return
	}
	k.log.Warn("mqtt broker unreachable", "broker", k.broker, "err", err, "retry_in", retry)
}
