package harness

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestMosquittoConfig(t *testing.T) {
	got := MosquittoConfig(18830, "", true)
	// Each directive the comparison depends on, exactly as Mosquitto
	// reads it: one per line, name then value.
	for _, want := range []string{
		"listener 18830 127.0.0.1",
		"allow_anonymous true",
		"max_connections -1",
		"persistence false",
		"max_queued_messages 10000",
		"log_type error",
	} {
		if !slices.Contains(strings.Split(got, "\n"), want) {
			t.Errorf("mosquitto.conf lacks the line %q:\n%s", want, got)
		}
	}
	for _, line := range strings.Split(got, "\n") {
		if line != "" && !strings.HasPrefix(line, "#") && len(strings.Fields(line)) < 2 {
			t.Errorf("mosquitto.conf line %q has no value", line)
		}
	}
	// As users run it, Nagle's algorithm stays on: no set_tcp_nodelay
	// line, since Mosquitto's default is false.
	lines := func(conf string) []string { return strings.Split(conf, "\n") }
	if !slices.Contains(lines(got), "set_tcp_nodelay true") {
		t.Errorf("nodelay config lacks set_tcp_nodelay true:\n%s", got)
	}
	def := MosquittoConfig(18830, "", false)
	for _, line := range lines(def) {
		if strings.HasPrefix(line, "set_tcp_nodelay") {
			t.Errorf("default config sets %q:\n%s", line, def)
		}
	}
}

func TestShoalConfig(t *testing.T) {
	got := ShoalConfig(18831, "")
	for _, want := range []string{`listen: "127.0.0.1:18831"`, "log_level: warn", "max_queued: 10000"} {
		if !strings.Contains(got, want) {
			t.Errorf("shoal.yaml lacks %q:\n%s", want, got)
		}
	}
}

func TestCommand(t *testing.T) {
	dir := t.TempDir()
	b := Bins{Shoal: "/b/shoal", ShoalBefore: "/b/shoal-before", Mosquitto: "/usr/sbin/mosquitto", Mochi: "/b/mochi", Floor: "/b/floor"}
	tests := []struct {
		name string
		want []string
	}{
		{Shoal, []string{"/b/shoal", "-c", filepath.Join(dir, "shoal.yaml"), "--listen", "127.0.0.1:1999", "--log-level", "warn"}},
		{ShoalBefore, []string{"/b/shoal-before", "-c", filepath.Join(dir, "shoal.yaml"), "--listen", "127.0.0.1:1999", "--log-level", "warn"}},
		{MosquittoNoDelay, []string{"/usr/sbin/mosquitto", "-c", filepath.Join(dir, "mosquitto.conf")}},
		{Mochi, []string{"/b/mochi", "-addr", "127.0.0.1:1999"}},
		{Floor, []string{"/b/floor", "-addr", "127.0.0.1:1999"}},
		{Mosquitto, []string{"/usr/sbin/mosquitto", "-c", filepath.Join(dir, "mosquitto.conf")}},
	}
	for _, tt := range tests {
		got, err := b.Command(tt.name, 1999, dir, false)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("Command(%s) = %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
	// Mosquitto ran last: its configuration, Nagle on, is the file's.
	conf, err := os.ReadFile(filepath.Join(dir, "mosquitto.conf"))
	if err != nil || string(conf) != MosquittoConfig(1999, "", false) || !strings.Contains(string(conf), "persistence false") {
		t.Errorf("mosquitto.conf written = %q, %v", conf, err)
	}
	// shoal-coalesce0 is the working tree's Shoal with coalesce: 0s.
	if got, err := b.Command(ShoalNoCoalesce, 1999, dir, false); err != nil || got[0] != "/b/shoal" {
		t.Errorf("Command(%s) = %q, %v", ShoalNoCoalesce, got, err)
	}
	if c, _ := os.ReadFile(filepath.Join(dir, "shoal.yaml")); !strings.HasSuffix(string(c), "coalesce: 0s\n") {
		t.Errorf("shoal.yaml for %s:\n%s", ShoalNoCoalesce, c)
	}
	if _, err := b.Command(Shoal, 1999, dir, false); err != nil {
		t.Fatal(err)
	}
	if _, err := (Bins{Shoal: "/b/shoal"}).Command(ShoalBefore, 1999, dir, false); err == nil {
		t.Error("Command(shoal-before) without its binary: no error")
	}
	shoal, err := os.ReadFile(filepath.Join(dir, "shoal.yaml"))
	if err != nil || !strings.Contains(string(shoal), "persistence: false") {
		t.Errorf("shoal.yaml without persistence = %q, %v", shoal, err)
	}
	// With persistence, each keeps its state in dir/data.
	data := filepath.Join(dir, "data")
	for _, name := range []string{Shoal, Mosquitto} {
		if _, err := b.Command(name, 1999, dir, true); err != nil {
			t.Fatal(err)
		}
	}
	shoal, _ = os.ReadFile(filepath.Join(dir, "shoal.yaml"))
	conf, _ = os.ReadFile(filepath.Join(dir, "mosquitto.conf"))
	if !strings.Contains(string(shoal), "data_dir: \""+data+"\"") || strings.Contains(string(shoal), "persistence: false") {
		t.Errorf("shoal.yaml with persistence:\n%s", shoal)
	}
	if !strings.Contains(string(conf), "persistence true\npersistence_location "+data+"/") {
		t.Errorf("mosquitto.conf with persistence:\n%s", conf)
	}
	if fi, err := os.Stat(data); err != nil || !fi.IsDir() {
		t.Errorf("data directory not made: %v", err)
	}
	if _, err := b.Command("nats", 1999, dir, false); err == nil {
		t.Error("Command of an unknown broker: no error")
	}
}

func TestWithBefore(t *testing.T) {
	tests := []struct {
		brokers []string
		before  string
		want    []string
	}{
		{[]string{Shoal, Mosquitto}, "", []string{Shoal, Mosquitto}},
		{[]string{Shoal, Mosquitto}, "abc", []string{Shoal, ShoalBefore, Mosquitto}},
		{[]string{Mosquitto, Shoal}, "abc", []string{Mosquitto, Shoal, ShoalBefore}},
		{[]string{Mosquitto}, "abc", []string{ShoalBefore, Mosquitto}},
		{[]string{ShoalBefore, Shoal}, "abc", []string{ShoalBefore, Shoal}},
	}
	for _, tt := range tests {
		if got := withBefore(tt.brokers, tt.before); !slices.Equal(got, tt.want) {
			t.Errorf("withBefore(%q, %q) = %q; want %q", tt.brokers, tt.before, got, tt.want)
		}
	}
}
