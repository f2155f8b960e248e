package brokers

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/shoalmq/shoal/config"
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

// TestShoalClusterConfigs: the three configurations parse as Shoal reads
// them, and each node has its own MQTT port, route port and data
// directory, and routes to the other two nodes and to nothing else.
func TestShoalClusterConfigs(t *testing.T) {
	dir := t.TempDir()
	nodes, err := Cluster(ClusterNodes, dir)
	if err != nil {
		t.Fatal(err)
	}
	confs := ShoalClusterConfigs(nodes, ClusterNodes)
	if len(confs) != 3 {
		t.Fatalf("%d configs; want 3", len(confs))
	}
	ports := make(map[int]bool)
	names, dirs := make(map[string]bool), make(map[string]bool)
	for i, conf := range confs {
		n := nodes[i]
		f, err := config.Parse([]byte(conf), "shoal-"+n.Name+".yaml")
		if err != nil {
			t.Fatalf("node %s: %v\n%s", n.Name, err, conf)
		}
		c := f.Broker
		if c.Listen != "127.0.0.1:"+strconv.Itoa(n.Port) || c.DataDir != n.DataDir || !f.Persistence {
			t.Errorf("node %s: listen %q data_dir %q persistence %v; want port %d, %s, true", n.Name, c.Listen, c.DataDir, f.Persistence, n.Port, n.DataDir)
		}
		cl := c.Cluster
		if cl == nil {
			t.Fatalf("node %s: no cluster section:\n%s", n.Name, conf)
		}
		if cl.Node != n.Name || cl.Name != "shoal-bench" || cl.Replicas != 3 || cl.Listen != "127.0.0.1:"+strconv.Itoa(n.ClusterPort) {
			t.Errorf("node %s: cluster %+v", n.Name, *cl)
		}
		var want []string
		for j, o := range nodes {
			if j != i {
				want = append(want, "127.0.0.1:"+strconv.Itoa(o.ClusterPort))
			}
		}
		if !slices.Equal(cl.Routes, want) {
			t.Errorf("node %s: routes %q; want %q", n.Name, cl.Routes, want)
		}
		for _, p := range []int{n.Port, n.ClusterPort} {
			if ports[p] {
				t.Errorf("port %d twice", p)
			}
			ports[p] = true
		}
		if names[n.Name] || dirs[n.DataDir] {
			t.Errorf("node %s: name or data directory %s twice", n.Name, n.DataDir)
		}
		names[n.Name], dirs[n.DataDir] = true, true
	}
}
