//go:build tools

package deps

import (
	_ "github.com/dgraph-io/badger/v4"
	_ "github.com/eclipse/paho.mqtt.golang"
	_ "github.com/goreleaser/nfpm/v2"
	_ "github.com/jackc/pgx/v5"
	_ "github.com/mochi-mqtt/server/v2"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/twmb/franz-go/pkg/kfake"
	_ "github.com/twmb/franz-go/pkg/kgo"
	_ "golang.org/x/sys/unix"
	_ "google.golang.org/protobuf/proto"
	_ "gopkg.in/yaml.v3"
	_ "periph.io/x/conn/v3/i2c/i2ctest"
	_ "periph.io/x/host/v3"
)
