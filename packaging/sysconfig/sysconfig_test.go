package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/config"
)

// TestPackagedConfigs: each packaged file parses with package config, has
// its changes, and is otherwise config.example.yaml line for line.
func TestPackagedConfigs(t *testing.T) {
	example, err := os.ReadFile("../../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		target string
		check  func(f config.File) bool
	}{
		{"deb", func(f config.File) bool {
			return f.Broker.DataDir == "/var/lib/shoal/store" && f.User == "shoal" && f.Broker.Listen == "127.0.0.1:1883" &&
				f.Persistence && !f.AllowRoot
		}},
		{"container", func(f config.File) bool {
			return f.Broker.DataDir == "/var/lib/shoal/store" && f.User == "" && f.Broker.Listen == "0.0.0.0:1883" &&
				f.Broker.AllowAnonymous == broker.AnonymousLoopback && f.AdminListen == config.DefaultAdminListen && !f.AllowRoot
		}},
	} {
		t.Run(tt.target, func(t *testing.T) {
			out, err := generate(tt.target)
			if err != nil {
				t.Fatal(err)
			}
			f, err := config.Parse(out, tt.target)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(f) {
				t.Errorf("packaged %s configuration parses to %+v", tt.target, f)
			}
			// Past the header, the example with only the changed lines.
			body := out[len(targets()[tt.target].header):]
			got, want := strings.Split(string(body), "\n"), strings.Split(string(example), "\n")
			if len(got) != len(want) {
				t.Fatalf("%d lines after the header, the example has %d", len(got), len(want))
			}
			changed := 0
			for i := range got {
				if got[i] != want[i] {
					changed++
				}
			}
			if n := len(targets()[tt.target].changes); changed != n {
				t.Errorf("%d lines differ from the example, want the %d changes", changed, n)
			}
		})
	}
	if _, err := generate("rpm"); err == nil {
		t.Error("an unknown target was generated")
	}
}

func TestRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shoal.yaml")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-target", "deb", "-o", path}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if _, err := config.Load(path); err != nil {
		t.Fatal(err)
	}
	if code := run([]string{"-target", "nope"}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), `unknown target "nope"`) {
		t.Errorf("unknown target: exit %d, %s", code, stderr.String())
	}
}
