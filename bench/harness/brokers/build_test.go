package brokers

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

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
	// shoal-nagle is the working tree's Shoal with tcp_nodelay: false.
	if got, err := b.Command(ShoalNagle, 1999, dir, false); err != nil || got[0] != "/b/shoal" {
		t.Errorf("Command(%s) = %q, %v", ShoalNagle, got, err)
	}
	if c, _ := os.ReadFile(filepath.Join(dir, "shoal.yaml")); !strings.HasSuffix(string(c), "tcp_nodelay: false\n") || strings.Contains(string(c), "coalesce: 0s") {
		t.Errorf("shoal.yaml for %s:\n%s", ShoalNagle, c)
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
