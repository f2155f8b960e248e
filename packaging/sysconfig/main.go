// Command sysconfig prints the configuration file a package installs:
// config.example.yaml (the embedded default, config.Default) with the
// few settings a system service needs changed, so the packaged file
// cannot drift from the example. make deb and the container image build
// run it:
//
//	go run ./packaging/sysconfig -target deb -o build/shoal.yaml
//	go run ./packaging/sysconfig -target container
//
// Each change replaces one whole "key: value" line of the example; a line
// that is not there exactly once (the example changed) is an error, and
// so is a result that does not parse with package config.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/shoalmq/shoal/config"
)

// change replaces one line of the example.
type change struct{ from, to string }

// target is a packaged configuration: what it says at the top and what
// it changes.
type target struct {
	header  string
	changes []change
}

// targets returns the packaged configurations by name.
func targets() map[string]target {
	dataDir := change{`data_dir: shoal-data`, `data_dir: /var/lib/shoal/store`}
	return map[string]target{
		// The Debian package: /etc/shoal/shoal.yaml for the systemd unit.
		"deb": {
			header: `# /etc/shoal/shoal.yaml: the configuration of the shoal service
# (systemctl reload shoal applies what can change while running; see
# README, "Install"). It is config.example.yaml with these changes for a
# system service:
#   data_dir: /var/lib/shoal/store  the store lives in the package's data
#       directory, /var/lib/shoal, owned by the shoal user; a damaged store
#       is set aside beside it, as store.damaged-<time>
#   user: shoal  started as root (by hand), the broker binds its
#       listeners, then becomes shoal (the systemd unit starts it as shoal)
# The MQTT listener is on loopback only, where anonymous clients are
# allowed (allow_anonymous: loopback), like Mosquitto's local-only mode.
# Moved to another address, it refuses them until you set a password_file
# (shoal passwd) or allow_anonymous: true.
#
`,
			changes: []change{dataDir, {`user: ""`, `user: shoal`}},
		},
		// The container image: /etc/shoal/shoal.yaml, run as a non-root user.
		"container": {
			header: `# /etc/shoal/shoal.yaml in the container image (README, "Install").
# It is config.example.yaml with these changes for a container:
#   listen: 0.0.0.0:1883  every interface, for a published port; so
#       anonymous clients are refused (allow_anonymous: loopback): mount a
#       configuration with a password_file (shoal passwd) over this file
#   data_dir: /var/lib/shoal/store  in the image's volume, /var/lib/shoal;
#       a damaged store is set aside beside it, inside the volume
# The admin API stays on loopback, where the image's HEALTHCHECK asks
# /healthz; to scrape /metrics from outside, set admin_listen:
# 0.0.0.0:8083 with an admin_token in your configuration.
#
`,
			changes: []change{
				{`listen: "127.0.0.1:1883"`, `listen: "0.0.0.0:1883"`},
				dataDir,
			},
		},
	}
}

// generate returns target name's configuration file.
func generate(name string) ([]byte, error) {
	t, ok := targets()[name]
	if !ok {
		return nil, fmt.Errorf("unknown target %q (want deb or container)", name)
	}
	out := config.Default()
	for _, c := range t.changes {
		lines := bytes.Split(out, []byte("\n"))
		n := 0
		for i, l := range lines {
			if string(l) == c.from {
				lines[i] = []byte(c.to)
				n++
			}
		}
		if n != 1 {
			return nil, fmt.Errorf("config.example.yaml has %d lines %q, want 1: update packaging/sysconfig", n, c.from)
		}
		out = bytes.Join(lines, []byte("\n"))
	}
	out = append([]byte(t.header), out...)
	if _, err := config.Parse(out, "packaged "+name+" configuration"); err != nil {
		return nil, err
	}
	return out, nil
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sysconfig", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("target", "deb", "the packaged configuration: `deb` or container")
	path := fs.String("o", "", "write to `FILE` (default: standard output)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	out, err := generate(*name)
	if err != nil {
		fmt.Fprintf(stderr, "sysconfig: %v\n", err)
		return 1
	}
	if *path == "" {
		_, err = stdout.Write(out)
	} else {
		err = os.WriteFile(*path, out, 0o644)
	}
	if err != nil {
		fmt.Fprintf(stderr, "sysconfig: %v\n", err)
		return 1
	}
	return 0
}
