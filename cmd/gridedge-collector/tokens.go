package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/gridedge/gridedge/cloud/apitoken"
)

const tokensUsage = `Usage: gridedge-collector tokens add -tokens-file FILE [-role read|admin] <name>
       gridedge-collector tokens revoke -tokens-file FILE <name> ...
       gridedge-collector tokens list -tokens-file FILE

Manages the bearer tokens of the HTTP API (-http-tokens-file). add prints
the new token once: the file keeps only its SHA-256. Clients send it as
"Authorization: Bearer <token>". read tokens may use every GET route and
the metrics; admin tokens may also read raw dead-letter payloads. A running
collector picks changes up within a second.

Flags:
`

// runTokens is the tokens subcommand.
func runTokens(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "add" && args[0] != "revoke" && args[0] != "list") {
		fmt.Fprint(stderr, tokensUsage)
		return errors.New("tokens: want add, revoke or list")
	}
	verb := args[0]
	fs := flag.NewFlagSet("gridedge-collector tokens "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("tokens-file", "", "the tokens file (the collector's -http-tokens-file)")
	role := fs.String("role", string(apitoken.RoleRead), "role of a new token: read or admin")
	fs.Usage = func() { fmt.Fprint(stderr, tokensUsage); fs.PrintDefaults() }
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *file == "" {
		return errors.New("tokens: -tokens-file is required")
	}
	names := fs.Args()
	switch verb {
	case "add":
		if len(names) != 1 {
			return errors.New("tokens add: name exactly one token, e.g. grafana")
		}
		token, err := apitoken.Add(*file, apitoken.Role(*role), names[0])
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, token)
	case "revoke":
		if len(names) == 0 {
			return errors.New("tokens revoke: name at least one token")
		}
		for _, n := range names {
			if err := apitoken.Revoke(*file, n); err != nil {
				return err
			}
		}
	case "list":
		es, err := apitoken.List(*file)
		if err != nil {
			return err
		}
		for _, e := range es {
			fmt.Fprintf(stdout, "%s %s\n", e.Name, e.Role)
		}
	}
	return nil
}
