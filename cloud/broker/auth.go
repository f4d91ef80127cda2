package broker

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/gridedge/gridedge/cloud/devices"
)

// errRevoked ends the connection of an identity removed from the registry.
var errRevoked = errors.New("identity revoked")

// refusalLogEvery bounds the log lines about refused connections: a client
// retrying with a wrong secret, or a scan, must not fill the log.
const refusalLogEvery = 5 * time.Second

// authHook authenticates every connection and applies the topic rules
// (package documentation). It decides at CONNECT, before the broker looks
// at existing sessions, so a refused client never takes over anyone's
// session.
type authHook struct {
	mqtt.HookBase
	srv             *mqtt.Server
	reg             *devices.Registry
	anonymous       bool
	collectorSecret string
	log             *slog.Logger

	refused      atomic.Uint64
	loggedAt     atomic.Int64
	loggedRefuse atomic.Uint64 // refused count at the last log line
}

func (h *authHook) ID() string { return "gridedge-auth" }

func (h *authHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnACLCheck}, []byte{b})
}

// OnConnect admits or refuses the connection, answering a refusal with a
// CONNACK that says why (identifier rejected, not authorised).
func (h *authHook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	if h.anonymous {
		return nil
	}
	code, reason := h.admit(cl, pk)
	if code == packets.CodeSuccess {
		return nil
	}
	n := h.refused.Add(1)
	now := time.Now().UnixNano()
	if last := h.loggedAt.Load(); now-last > int64(refusalLogEvery) && h.loggedAt.CompareAndSwap(last, now) {
		h.log.Warn("connection refused", "client_id", cl.ID, "username", string(pk.Connect.Username),
			"remote", cl.Net.Remote, "reason", reason, "refused_since_last_line", n-h.loggedRefuse.Swap(n))
	}
	if code == packets.ErrNotAuthorized && cl.Properties.ProtocolVersion < 5 {
		code = packets.ErrBadUsernameOrPassword // MQTT 3.1.1 return code 5, "not authorised"
	}
	_ = h.srv.SendConnack(cl, code, false, nil)
	return code
}

func (h *authHook) admit(cl *mqtt.Client, pk packets.Packet) (packets.Code, string) {
	user, secret := string(pk.Connect.Username), string(pk.Connect.Password)
	if user == "" {
		return packets.ErrBadUsernameOrPassword, "no username (anonymous access is off)"
	}
	// The client id binding is checked before the secret: it needs no
	// hashing and reveals nothing but the rule.
	if strings.Contains(user, "/") {
		if cl.ID != user {
			return packets.ErrClientIdentifierNotValid, "a device's client id must equal its username"
		}
	} else if strings.Contains(cl.ID, "/") {
		return packets.ErrClientIdentifierNotValid, "a collector's client id may not contain '/' (device client ids do)"
	}
	var id devices.Identity
	if user == devices.ReservedCollector {
		if subtle.ConstantTimeCompare([]byte(secret), []byte(h.collectorSecret)) != 1 {
			return packets.ErrBadUsernameOrPassword, "wrong secret for the collector's own identity"
		}
		id = devices.Identity{Username: user}
	} else {
		var err error
		if id, err = h.reg.Authenticate(user, secret); err != nil {
			return packets.ErrBadUsernameOrPassword, err.Error()
		}
	}
	if pk.Connect.WillFlag && !mayPublish(id, pk.Connect.WillTopic) {
		return packets.ErrNotAuthorized, "last will on a topic the identity may not publish to: " + pk.Connect.WillTopic
	}
	return packets.CodeSuccess, ""
}

// OnConnectAuthenticate accepts: OnConnect has already refused every
// connection that failed.
func (h *authHook) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }

// OnACLCheck applies the topic rules to a publish (write), a subscription
// filter or a delivery (read). An identity revoked since it connected is
// disconnected.
func (h *authHook) OnACLCheck(cl *mqtt.Client, t string, write bool) bool {
	if h.anonymous {
		return true
	}
	user := string(cl.Properties.Username)
	var id devices.Identity
	if user == devices.ReservedCollector {
		id = devices.Identity{Username: user}
	} else {
		if !h.reg.Known(user) {
			h.log.Warn("disconnecting a revoked identity", "username", user, "client_id", cl.ID)
			cl.Stop(errRevoked)
			return false
		}
		var err error
		if id, err = devices.ParseUsername(user); err != nil {
			return false
		}
	}
	if write {
		return mayPublish(id, t)
	}
	return mayRead(id, t)
}
