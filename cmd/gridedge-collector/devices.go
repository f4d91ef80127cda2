package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/gridedge/gridedge/cloud/collector"
	"github.com/gridedge/gridedge/cloud/devices"
)

const devicesUsage = `Usage: gridedge-collector devices add [flags] <site>/<device_id>|<collector-name> ...
       gridedge-collector devices revoke [flags] <username> ...
       gridedge-collector devices list [flags]

Manages the MQTT identities the embedded broker accepts. A device's username
is "<site>/<device_id>" and its client id must equal it; a name without a
slash is a collector identity (reads every device's data, publishes acks).
add generates a secret per identity and prints "<username> <secret>" once:
only a bcrypt hash is stored. A running collector picks changes up within a
second; a revoked identity is disconnected at its next packet.

Flags:
`

// runDevices is the devices subcommand.
func runDevices(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "add" && args[0] != "revoke" && args[0] != "list") {
		fmt.Fprint(stderr, devicesUsage)
		return errors.New("devices: want add, revoke or list")
	}
	verb := args[0]
	fs := flag.NewFlagSet("gridedge-collector devices "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := collector.DefaultConfig()
	var (
		file       = fs.String("devices-file", "", "the registry file (default: broker.devices_file of -config, else \"devices\" in -data-dir)")
		dataDir    = fs.String("data-dir", def.DataDir, "the collector's data directory")
		configPath = fs.String("config", "", "the collector's YAML configuration, for data_dir and broker.devices_file")
		cost       = fs.Int("cost", devices.DefaultCost, fmt.Sprintf("bcrypt cost of new hashes (%d..%d); each verification takes about 2^cost × 70 µs, paid once per identity per broker start", devices.MinCost, devices.MaxCost))
		secretsOut = fs.String("secrets-out", "", "append \"<username> <secret>\" lines to this file (mode 0600) instead of printing the secrets, e.g. for gridedge-sim -credentials")
	)
	fs.Usage = func() { fmt.Fprint(stderr, devicesUsage); fs.PrintDefaults() }
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	path := *file
	if path == "" {
		cfg := def
		if *configPath != "" {
			var err error
			if cfg, err = collector.LoadConfig(*configPath); err != nil {
				return err
			}
		}
		if isSet(fs, "data-dir") || *configPath == "" {
			cfg.DataDir = *dataDir
		}
		path = cfg.Broker.DevicesPath(cfg.DataDir)
	}
	names := fs.Args()
	switch verb {
	case "add":
		if len(names) == 0 {
			return errors.New("devices add: name at least one identity, e.g. site-1/gw-0001")
		}
		secrets, err := devices.Add(path, *cost, names...)
		if err != nil {
			return err
		}
		for i, name := range names {
			if *secretsOut != "" {
				if err := devices.AppendSecret(*secretsOut, name, secrets[i]); err != nil {
					return err
				}
				continue
			}
			fmt.Fprintf(stdout, "%s %s\n", name, secrets[i])
		}
		if *secretsOut != "" {
			fmt.Fprintf(stderr, "added %d identities to %s; secrets appended to %s\n", len(names), path, *secretsOut)
		} else {
			fmt.Fprintf(stderr, "added %d identities to %s; each secret above is shown once (agent.yaml: mqtt.username, mqtt.password)\n", len(names), path)
		}
	case "revoke":
		if len(names) == 0 {
			return errors.New("devices revoke: name at least one identity")
		}
		for _, name := range names {
			if err := devices.Revoke(path, name); err != nil {
				return err
			}
		}
		fmt.Fprintf(stderr, "revoked %d identities in %s\n", len(names), path)
	case "list":
		if len(names) > 0 {
			return fmt.Errorf("devices list: unexpected argument %q", names[0])
		}
		ids, err := devices.List(path)
		if err != nil {
			return err
		}
		for _, id := range ids {
			kind := "device"
			if !id.IsDevice() {
				kind = "collector"
			}
			fmt.Fprintf(stdout, "%s\t%s\n", id.Username, kind)
		}
	}
	return nil
}

func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
