package sys

import (
	"math"
	"strconv"
	"time"
)

// $SYS topics are published every interval as retained QoS 0 messages, so
// that `mosquitto_sub -t '$SYS/#' -v` shows them at once. Clients
// subscribe to them like any topic; '#' and '+' at the first level do not
// match them [MQTT-4.7.2-1].

// Prefix starts every $SYS topic the broker publishes.
const Prefix = "$SYS/broker/"

// bridgeStatePrefix is where bridges publish their state
// ($SYS/broker/connection/<client id>/state, Mosquitto's convention):
// a Mosquitto bridging to Shoal publishes there and leaves its will there,
// so it is open to clients, unlike the rest of $SYS/broker/.
const bridgeStatePrefix = Prefix + "connection/"

// Own reports whether topic is one of the broker's own $SYS topics.
func Own(topic []byte) bool {
	return len(topic) >= len(Prefix) && string(topic[:len(Prefix)]) == Prefix &&
		!(len(topic) >= len(bridgeStatePrefix) && string(topic[:len(bridgeStatePrefix)]) == bridgeStatePrefix)
}

// Figures are what one round publishes: the broker's counters (since
// start) and gauges, read afresh each round.
type Figures struct {
	Version          string
	Uptime           time.Duration
	ClientsConnected int64
	Sessions         int64 // connected or not
	MessagesIn       int64 // PUBLISH packets received, every QoS
	MessagesOut      int64 // PUBLISH packets sent, every QoS
	Inflight         int64
	Queued           int64
	BytesReceived    int64
	BytesSent        int64
	Subscriptions    int64
	Retained         int64
	Connects         int64
	// Cluster are a cluster node's figures; nil on a single node, which
	// publishes no cluster/ topics.
	Cluster *ClusterFigures
}

// ClusterFigures are what a cluster node publishes under cluster/: its
// view of the cluster, and what crossed to and from the other nodes.
type ClusterFigures struct {
	Name      string // cluster.name
	Node      string // this node's cluster.node
	Leader    string // JetStream's meta leader; "" with an external NATS
	NodesUp   int64  // the nodes up, this one included
	Sent      int64  // messages sent to other nodes
	Received  int64  // messages received from other nodes
	Dropped   int64  // messages not sent, or not readable when received
	NotStored int64  // QoS 1/2 messages the forward stream refused: publishers refused
	Failed    int64  // retained messages the cluster's bucket refused
	PeerSubs  int64  // the other nodes' subscriptions in this node's table
}

// loadAvg is an exponentially weighted moving average of a counter's rate
// per minute over a period, as Mosquitto's $SYS/broker/load topics.
type loadAvg struct {
	period time.Duration
	value  float64
}

// add folds in a rate (per minute) observed over dt.
func (a *loadAvg) add(perMinute float64, dt time.Duration) {
	k := math.Exp(-dt.Seconds() / a.period.Seconds())
	a.value = a.value*k + perMinute*(1-k)
}

// sysLoad tracks the load averages of one counter.
type sysLoad struct {
	name  string // topic under $SYS/broker/load/
	last  int64
	avg   [3]loadAvg
	value func(*Figures) int64
}

var loadPeriods = [3]struct {
	suffix string
	period time.Duration
}{{"1min", time.Minute}, {"5min", 5 * time.Minute}, {"15min", 15 * time.Minute}}

// Run publishes the $SYS topics every interval until stop is closed: read
// gives the figures of a round, publish sends one topic's value (under
// Prefix) as a retained QoS 0 message, or drops it when the router is
// full: the next round will do.
func Run(stop <-chan struct{}, interval time.Duration, read func() Figures, publish func(topic, value string)) {
	loads := []*sysLoad{
		{name: "messages/received", value: func(f *Figures) int64 { return f.MessagesIn }},
		{name: "messages/sent", value: func(f *Figures) int64 { return f.MessagesOut }},
		{name: "bytes/received", value: func(f *Figures) int64 { return f.BytesReceived }},
		{name: "bytes/sent", value: func(f *Figures) int64 { return f.BytesSent }},
		{name: "connections", value: func(f *Figures) int64 { return f.Connects }},
	}
	for _, l := range loads {
		for i := range l.avg {
			l.avg[i].period = loadPeriods[i].period
		}
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	last := time.Now()
	round(loads, 0, read, publish)
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			round(loads, now.Sub(last), read, publish)
			last = now
		}
	}
}

// round publishes every $SYS topic once; dt is the time since the last
// round (0 the first time: no load yet).
func round(loads []*sysLoad, dt time.Duration, read func() Figures, publish func(topic, value string)) {
	f := read()
	itoa := func(n int64) string { return strconv.FormatInt(n, 10) }
	publish("version", "shoal "+f.Version)
	publish("uptime", itoa(int64(f.Uptime/time.Second))+" seconds")
	publish("clients/connected", itoa(f.ClientsConnected))
	publish("clients/total", itoa(f.Sessions))
	publish("clients/disconnected", itoa(f.Sessions-f.ClientsConnected))
	publish("messages/received", itoa(f.MessagesIn))
	publish("messages/sent", itoa(f.MessagesOut))
	publish("messages/inflight", itoa(f.Inflight))
	publish("messages/stored", itoa(f.Queued))
	publish("publish/messages/received", itoa(f.MessagesIn))
	publish("publish/messages/sent", itoa(f.MessagesOut))
	publish("bytes/received", itoa(f.BytesReceived))
	publish("bytes/sent", itoa(f.BytesSent))
	publish("subscriptions/count", itoa(f.Subscriptions))
	publish("retained messages/count", itoa(f.Retained))
	if c := f.Cluster; c != nil {
		publish("cluster/name", c.Name)
		publish("cluster/node", c.Node)
		if c.Leader != "" { // an empty retained message would clear the topic
			publish("cluster/leader", c.Leader)
		}
		for _, n := range [...]struct {
			topic string
			value int64
		}{
			{"nodes", c.NodesUp}, {"messages/sent", c.Sent}, {"messages/received", c.Received},
			{"messages/dropped", c.Dropped}, {"messages/not_stored", c.NotStored}, {"retained/failures", c.Failed}, {"subscriptions/remote", c.PeerSubs},
		} {
			publish("cluster/"+n.topic, itoa(n.value))
		}
	}
	for _, l := range loads {
		v := l.value(&f)
		if dt > 0 {
			perMinute := float64(v-l.last) / dt.Minutes()
			for i := range l.avg {
				l.avg[i].add(perMinute, dt)
			}
		}
		l.last = v
		for i, p := range loadPeriods {
			publish("load/"+l.name+"/"+p.suffix, strconv.FormatFloat(l.avg[i].value, 'f', 2, 64))
		}
	}
}
