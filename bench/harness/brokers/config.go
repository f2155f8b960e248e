package brokers

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
)

// QueueLimit is how many QoS 1/2 messages Shoal and Mosquitto keep for one
// client beyond its in-flight window. Both get the same value so neither
// drops sooner than the other; 10,000 keeps the worst case (1,000
// subscribers, each queue full of 64-byte messages) near 1 GiB.
// mochi-mqtt runs with its defaults.
const QueueLimit = 10000

// MosquittoConfig returns the mosquitto.conf the harness runs Mosquitto
// with, listening on 127.0.0.1:port; with dataDir set, with persistence
// there (Mosquitto saves a snapshot every autosave_interval, 1800 s by
// default, and at shutdown: nothing per message); with noDelay, with
// Nagle's algorithm off.
func MosquittoConfig(port int, dataDir string, noDelay bool) string {
	persist := "persistence false"
	if dataDir != "" {
		persist = fmt.Sprintf("persistence true\npersistence_location %s/", dataDir)
	}
	// Mosquitto leaves Nagle's algorithm on unless told: fewer TCP
	// segments, but a small message may wait for the ACK of the one
	// before (tens of milliseconds at low rates).
	nagle := "# set_tcp_nodelay false: Mosquitto's default, as users run it"
	if noDelay {
		nagle = "# Nagle's algorithm off, as Shoal, mochi-mqtt and the floor run\nset_tcp_nodelay true"
	}
	return fmt.Sprintf(`# Written by the Shoal benchmark harness (bench/harness).
listener %d 127.0.0.1
allow_anonymous true
max_connections -1
%s
max_queued_messages %d
%s
log_type error
log_dest stderr
`, port, persist, QueueLimit, nagle)
}

// ShoalConfig returns the YAML configuration the harness runs Shoal with,
// listening on 127.0.0.1:port; with dataDir set, with its persistent store
// there (durability strict, the default), otherwise in memory only. Keys
// not named keep their defaults.
func ShoalConfig(port int, dataDir string) string {
	persist := "persistence: false"
	if dataDir != "" {
		persist = fmt.Sprintf("data_dir: %q", dataDir)
	}
	return fmt.Sprintf(`# Written by the Shoal benchmark harness (bench/harness).
listen: "127.0.0.1:%d"
log_level: warn
log_format: json
max_queued: %d
admin_listen: ""
# Load generators on loopback connect without credentials.
allow_anonymous: true
%s
`, port, QueueLimit, persist)
}

// ClusterNode is one node of a cluster the harness runs: its MQTT port,
// the port its NATS routes listen on, and its data directory.
type ClusterNode struct {
	Name        string // a, b, c
	Port        int    // MQTT
	ClusterPort int    // NATS routes
	DataDir     string
}

// ShoalClusterConfigs returns each node's configuration: ShoalConfig with
// its data directory (a cluster node needs one; JetStream keeps its state
// in data_dir/cluster), and a cluster section that routes to every other
// node and keeps replicas copies of the cluster's state.
func ShoalClusterConfigs(nodes []ClusterNode, replicas int) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		var routes []string
		for j, o := range nodes {
			if j != i {
				routes = append(routes, strconv.Quote("127.0.0.1:"+strconv.Itoa(o.ClusterPort)))
			}
		}
		out[i] = ShoalConfig(n.Port, n.DataDir) + fmt.Sprintf(`cluster:
  name: shoal-bench
  node: %s
  listen: "127.0.0.1:%d"
  routes: [%s]
  replicas: %d
`, n.Name, n.ClusterPort, strings.Join(routes, ", "), replicas)
	}
	return out
}

// Cluster returns n nodes named a, b, c… with distinct free ports and
// data directories under dir.
func Cluster(n int, dir string) ([]ClusterNode, error) {
	ports, err := FreePorts(2 * n)
	if err != nil {
		return nil, err
	}
	nodes := make([]ClusterNode, n)
	for i := range nodes {
		name := string(rune('a' + i))
		nodes[i] = ClusterNode{Name: name, Port: ports[2*i], ClusterPort: ports[2*i+1], DataDir: filepath.Join(dir, "data-"+name)}
	}
	return nodes, nil
}

// FreePorts returns n distinct loopback TCP ports that were free a moment
// ago: every listener stays open until all n are taken, so none repeats.
func FreePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
