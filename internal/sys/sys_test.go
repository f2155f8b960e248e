package sys

import (
	"strings"
	"testing"
	"time"
)

func TestOwn(t *testing.T) {
	for topic, want := range map[string]bool{
		"$SYS/broker/uptime":                    true,
		"$SYS/broker/load/connections/1min":     true,
		"$SYS/broker/connection/bridge-1/state": false, // bridges' state, open to clients
		"$SYS/broker":                           false,
		"$SYS/other":                            false,
		"a/$SYS/broker/x":                       false,
		"":                                      false,
	} {
		if got := Own([]byte(topic)); got != want {
			t.Errorf("Own(%q) = %v, want %v", topic, got, want)
		}
	}
}

// TestRound: one round publishes each figure under its Mosquitto name, and
// the load averages follow the counters' rates.
func TestRound(t *testing.T) {
	f := Figures{Version: "v1", Uptime: 90 * time.Second, ClientsConnected: 2, Sessions: 5, Connects: 60}
	got := map[string]string{}
	publish := func(topic, value string) { got[topic] = value }
	loads := []*sysLoad{{name: "connections", value: func(f *Figures) int64 { return f.Connects }}}
	for i := range loads[0].avg {
		loads[0].avg[i].period = loadPeriods[i].period
	}
	round(loads, 0, func() Figures { return f }, publish)
	for topic, want := range map[string]string{
		"version": "shoal v1", "uptime": "90 seconds", "clients/connected": "2",
		"clients/total": "5", "clients/disconnected": "3", "load/connections/1min": "0.00",
	} {
		if got[topic] != want {
			t.Errorf("%s = %q, want %q", topic, got[topic], want)
		}
	}
	f.Connects = 120 // 60 more in a minute
	round(loads, time.Minute, func() Figures { return f }, publish)
	if v := got["load/connections/1min"]; v == "0.00" || v == "" {
		t.Errorf("load/connections/1min = %q after 60 connects in a minute", v)
	}
}

// TestRoundCluster: a cluster node's round publishes its cluster/ topics;
// a single node's publishes none.
func TestRoundCluster(t *testing.T) {
	got := map[string]string{}
	publish := func(topic, value string) { got[topic] = value }
	round(nil, 0, func() Figures { return Figures{} }, publish)
	for topic := range got {
		if strings.HasPrefix(topic, "cluster/") {
			t.Errorf("a single node published %s", topic)
		}
	}
	f := Figures{Cluster: &ClusterFigures{Name: "c", Node: "n1", Leader: "n0", NodesUp: 3, Sent: 5, Received: 7,
		Dropped: 1, NotStored: 6, Failed: 2, PeerSubs: 4}}
	round(nil, 0, func() Figures { return f }, publish)
	for topic, want := range map[string]string{
		"cluster/name": "c", "cluster/node": "n1", "cluster/leader": "n0", "cluster/nodes": "3",
		"cluster/messages/sent": "5", "cluster/messages/received": "7", "cluster/messages/dropped": "1", "cluster/messages/not_stored": "6",
		"cluster/retained/failures": "2", "cluster/subscriptions/remote": "4",
	} {
		if got[topic] != want {
			t.Errorf("%s = %q, want %q", topic, got[topic], want)
		}
	}
}
