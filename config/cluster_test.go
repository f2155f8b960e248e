package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shoalmq/shoal/broker"
)

// clusterYAML is a node of three as issue 15 writes it: replicas left to
// its default.
const clusterYAML = `data_dir: /var/lib/shoal
cluster:
  name: shoal
  node: a
  listen: 127.0.0.1:7422
  routes: [127.0.0.1:7423, 127.0.0.1:7424]
`

// TestClusterSection: a node of three parses to its settings, replicating
// 3 ways; a cluster of one, without routes, to 1; an external NATS to 3;
// {} and no section to none.
func TestClusterSection(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want *broker.ClusterConfig
	}{
		{clusterYAML, &broker.ClusterConfig{Name: "shoal", Node: "a", Listen: "127.0.0.1:7422",
			Routes: []string{"127.0.0.1:7423", "127.0.0.1:7424"}, Replicas: 3}},
		{clusterYAML + "  replicas: 2\n", &broker.ClusterConfig{Name: "shoal", Node: "a", Listen: "127.0.0.1:7422",
			Routes: []string{"127.0.0.1:7423", "127.0.0.1:7424"}, Replicas: 2}},
		{clusterYAML + "  rescue_after: 10s\n", &broker.ClusterConfig{Name: "shoal", Node: "a", Listen: "127.0.0.1:7422",
			Routes: []string{"127.0.0.1:7423", "127.0.0.1:7424"}, Replicas: 3, RescueAfter: 10 * time.Second}},
		{clusterYAML + "  advertise: 10.0.0.5:17422\n", &broker.ClusterConfig{Name: "shoal", Node: "a", Listen: "127.0.0.1:7422",
			Advertise: "10.0.0.5:17422", Routes: []string{"127.0.0.1:7423", "127.0.0.1:7424"}, Replicas: 3}},
		{"cluster: {name: solo, node: only-1, listen: \"127.0.0.1:7422\"}\n",
			&broker.ClusterConfig{Name: "solo", Node: "only-1", Listen: "127.0.0.1:7422", Replicas: 1}},
		{"cluster: {name: c, node: n_2, nats_url: \"nats://h1:4222,nats://h2:4222\"}\npersistence: false\n",
			&broker.ClusterConfig{Name: "c", Node: "n_2", NATSURL: "nats://h1:4222,nats://h2:4222", Replicas: 3}},
		{"cluster: {}\n", nil},
		{"listen: 127.0.0.1:1883\n", nil},
	} {
		f, err := Parse([]byte(tc.in), "c.yaml")
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(f.Broker.Cluster, tc.want) {
			t.Errorf("%s: Cluster = %+v, want %+v", tc.in, f.Broker.Cluster, tc.want)
		}
	}
}

// TestClusterErrors: each bad or inconsistent cluster setting is an
// *Error at its file, line and key.
func TestClusterErrors(t *testing.T) {
	section := func(lines ...string) string {
		return "data_dir: /var/lib/shoal\ncluster:\n  " + strings.Join(lines, "\n  ") + "\n"
	}
	good := []string{"name: shoal", "node: a", "listen: 127.0.0.1:7422", "routes: [127.0.0.1:7423, 127.0.0.1:7424]"}
	with := func(i int, line string) string { // good, with line i replaced
		l := append([]string(nil), good...)
		l[i] = line
		return section(l...)
	}
	for _, tc := range []struct {
		in   string
		line int
		key  string
		want string
	}{
		{with(0, "name: my cluster"), 3, "cluster.name", `"my cluster" must be letters, digits, - and _`},
		{with(1, "node: a.1"), 4, "cluster.node", `"a.1" must be letters, digits, - and _`},
		{with(1, "node: 7"), 4, "cluster.node", "want a string, got integer 7"},
		{section(good[0], good[2], good[3]), 3, "cluster.node", `"" must be letters`},
		{with(2, "listen: nowhere"), 5, "cluster.listen", `"nowhere" is not host:port`},
		{with(2, "listen: 7422"), 5, "cluster.listen", "want a string, got integer 7422"},
		{with(2, "listen: 127.0.0.1:99999"), 5, "cluster.listen", `port "99999" is not a number in 1..65535`},
		{with(3, "routes: [127.0.0.1:7423, nowhere]"), 6, "cluster.routes", `"nowhere" is not host:port`},
		{with(3, "routes: [127.0.0.1:7423, 8]"), 6, "cluster.routes", "want a string, got integer 8"},
		{with(3, "routes: 127.0.0.1:7423"), 6, "cluster.routes", "want a list"},
		{with(3, "routes: [127.0.0.1:7422]"), 6, "cluster.routes", `"127.0.0.1:7422" is this node's own listen address`},
		{section(append(good, "replicas: 0")...), 7, "cluster.replicas", "0 is outside 1..5"},
		{section(append(good, "replicas: 6")...), 7, "cluster.replicas", "6 is outside 1..5"},
		{section(append(good, "replicas: three")...), 7, "cluster.replicas", `want an integer, got string "three"`},
		{with(3, "routes: [127.0.0.1:7423]\n  replicas: 3"), 7, "cluster.replicas", "3 is more than the 2 node(s)"},
		{section(append(good, "nats_url: nats://h1:4222")...), 7, "cluster.nats_url", "excludes listen, advertise and routes"},
		{section(append(good, "replica: 3")...), 7, "cluster", `unknown key "replica" (did you mean "replicas"?)`},
		{section(append(good, "rescue_after: 500ms")...), 7, "cluster.rescue_after", "less than 1s"},
		{section(append(good, "advertise: nowhere")...), 7, "cluster.advertise", `"nowhere" is not host:port`},
		{section(append(good, "rescue_after: soon")...), 7, "cluster.rescue_after", "soon"},
		{section(append(good, "name: again")...), 7, "cluster", "name: set again"},
		{"cluster: [a, b]\n", 1, "cluster", "want a mapping"},
		{"persistence: false\n" + section(good...), 4, "cluster", "an embedded node needs persistence: true"},
	} {
		_, err := Parse([]byte(tc.in), "c.yaml")
		var ce *Error
		if !errors.As(err, &ce) || ce.File != "c.yaml" || ce.Line != tc.line || ce.Key != tc.key || !strings.Contains(ce.Err.Error(), tc.want) {
			t.Errorf("%s\n: %v\nwant c.yaml:%d: %s: ...%s...", tc.in, err, tc.line, tc.key, tc.want)
		}
	}
}
