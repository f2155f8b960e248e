package admin

import (
	"context"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shoalmq/shoal/broker"
)

// collector turns one broker.Stats snapshot per scrape into Prometheus
// metrics. The broker's counters live per loop and are summed by Stats: a
// scrape costs one pass over the loops and one over the sessions (for the
// in-flight and queue gauges), nothing per packet; on a cluster node, its
// broker.ClusterStatus too (which counts the sessions' owners at most
// every 10 s).
type collector struct {
	b *broker.Broker

	connected, maxConns, sessions, subscriptions, retained, inflight, queued *prometheus.Desc
	connects, disconnects, messages, bytes, drops, refused, uptime           *prometheus.Desc
	loopEvents, loopConns, loopBytes, storeUnreadable, storeSync             *prometheus.Desc
	bridgeUp, bridgeMessages, bridgeHeld, bridgeDropped                      *prometheus.Desc
	clusterSent, clusterReceived, clusterDropped, clusterRetainedFailures    *prometheus.Desc
	clusterNotStored, clusterCutOff                                          *prometheus.Desc
	clusterNodesUp, clusterNodeUp, clusterSessions, clusterPeerSubs          *prometheus.Desc
	clusterReplication, clusterRescued, clusterPassedOn                      *prometheus.Desc
}

func newCollector(b *broker.Broker) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("shoal_"+name, help, labels, nil)
	}
	return &collector{
		b:               b,
		connected:       d("clients_connected", "Clients connected now."),
		maxConns:        d("max_connections", "The max_connections limit in force: past it CONNECT is refused (0 in the file: the process's file limit less 256)."),
		sessions:        d("sessions", "Sessions, connected or not."),
		subscriptions:   d("subscriptions", "Subscriptions in the router."),
		retained:        d("retained_messages", "Retained messages, by kind: sys on topics starting with '$' (the broker's $SYS topics), user on the others.", "kind"),
		inflight:        d("inflight_messages", "QoS 1/2 messages sent to clients and not yet acknowledged."),
		queued:          d("queued_messages", "QoS 1/2 messages waiting in session queues."),
		uptime:          d("uptime_seconds", "Seconds since the broker started."),
		connects:        d("connects_total", "CONNECT packets taken."),
		disconnects:     d("disconnects_total", "Connections of connected clients that ended, by reason.", "reason"),
		messages:        d("messages_total", "PUBLISH packets, by direction (in: from clients) and QoS.", "direction", "qos"),
		bytes:           d("bytes_total", "MQTT bytes, by direction.", "direction"),
		drops:           d("dropped_messages_total", "Messages dropped, by cause.", "cause"),
		refused:         d("refused_total", "Connections, logins and subscriptions refused by limits and access control, and publish_rate pauses, by cause.", "cause"),
		loopEvents:      d("loop_events_total", "Events an event loop handled: read bursts, wake-ups, ticks.", "loop"),
		loopConns:       d("loop_clients_connected", "Clients connected on an event loop.", "loop"),
		loopBytes:       d("loop_bytes_total", "MQTT bytes through an event loop, by direction.", "loop", "direction"),
		storeUnreadable: d("store_unreadable_records_total", "Persistent-store records that could not be read at start and were skipped."),
		storeSync:       d("store_sync_duration_seconds", "Time the persistent store took to sync to disk: the fsync a PUBACK or PUBREC waits for with durability strict (at most one per event loop iteration), or the sync once a second with relaxed."),
		bridgeUp:        d("bridge_up", "1 while the bridge's link to its remote broker is up.", "bridge"),
		bridgeMessages:  d("bridge_messages_total", "Messages a bridge delivered, by direction (out: to the remote broker).", "bridge", "direction"),
		bridgeHeld:      d("bridge_waiting_messages", "QoS 1/2 messages waiting to cross a bridge, by where (bridge: held by it; queue: its local session queue).", "bridge", "where"),
		bridgeDropped:   d("bridge_dropped_messages_total", "Messages a bridge lost: QoS 0 while down, too large, or dropped by its full local session queue.", "bridge"),

		clusterSent:             d("cluster_messages_sent_total", "Messages sent to other nodes of the cluster: one per node a message went to."),
		clusterReceived:         d("cluster_messages_received_total", "Messages received from other nodes of the cluster."),
		clusterDropped:          d("cluster_messages_dropped_total", "Messages between nodes lost: not sent (NATS refused them) or not readable when received."),
		clusterRetainedFailures: d("cluster_retained_failures_total", "Retained messages the cluster's bucket refused: not retained."),
		clusterNotStored:        d("cluster_messages_not_stored_total", "QoS 1 and 2 messages for other nodes that the cluster's forward stream did not take: their publishers were refused, not acknowledged."),
		clusterCutOff:           d("cluster_cut_off", "1 while this node is cut off from the cluster's majority (or back and settling its sessions): it refuses new connections and QoS 1 and 2 messages."),
		clusterNodesUp:          d("cluster_nodes_up", "Nodes of the cluster up as this node's NATS sees them, this one included."),
		clusterNodeUp:           d("cluster_node_up", "1 while the node is up as this node's NATS sees it, 0 when down (not listed when unknown: an external NATS does not know Shoal's nodes).", "node"),
		clusterSessions:         d("cluster_node_sessions", "Sessions the node owns, by the cluster's owners' bucket (counted at most every 10 s).", "node"),
		clusterRescued:          d("cluster_rescued_messages_total", "Messages this node, rescuing a gone node, added to the sessions it keeps for it."),
		clusterPassedOn:         d("cluster_passed_on_messages_total", "Messages this node sent on to the new node of a session it handed over lately, its own or one it kept for a gone node: what still came for the session where it was."),
		clusterPeerSubs:         d("cluster_peer_subscriptions", "Other nodes' subscriptions in this node's table: one per distinct filter of each node, one per member of each shared group."),
		clusterReplication:      d("cluster_replication_seconds", "Time a write to a replicated bucket of the cluster took, from the request to JetStream's acknowledgement (a majority of the replicas has it), by bucket: retained (retained messages), interest (the nodes' subscriptions), forward (QoS 1 and 2 messages on their way to other nodes).", "bucket"),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.connected, c.maxConns, c.sessions, c.subscriptions, c.retained, c.inflight,
		c.queued, c.uptime, c.connects, c.disconnects, c.messages, c.bytes, c.drops, c.refused, c.loopEvents, c.loopConns,
		c.loopBytes, c.storeUnreadable, c.storeSync, c.bridgeUp, c.bridgeMessages, c.bridgeHeld, c.bridgeDropped,
		c.clusterSent, c.clusterReceived, c.clusterDropped, c.clusterRetainedFailures, c.clusterNodesUp, c.clusterNodeUp,
		c.clusterSessions, c.clusterPeerSubs, c.clusterReplication, c.clusterNotStored, c.clusterCutOff,
		c.clusterRescued, c.clusterPassedOn} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.b.Stats()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge(c.connected, float64(st.ClientsConnected))
	gauge(c.maxConns, float64(st.MaxConnections))
	gauge(c.sessions, float64(st.Sessions))
	gauge(c.subscriptions, float64(st.Subscriptions))
	gauge(c.retained, float64(st.RetainedUser), "user")
	gauge(c.retained, float64(st.RetainedSys), "sys")
	gauge(c.inflight, float64(st.Inflight))
	gauge(c.queued, float64(st.Queued))
	gauge(c.uptime, st.Uptime.Seconds())
	counter(c.connects, float64(st.Connects))
	for reason, n := range st.Disconnects {
		counter(c.disconnects, float64(n), reason)
	}
	for q := range 3 {
		counter(c.messages, float64(st.MessagesReceived[q]), "in", strconv.Itoa(q))
		counter(c.messages, float64(st.MessagesSent[q]), "out", strconv.Itoa(q))
	}
	counter(c.bytes, float64(st.BytesReceived), "in")
	counter(c.bytes, float64(st.BytesSent), "out")
	for cause, n := range st.Drops {
		counter(c.drops, float64(n), cause)
	}
	for cause, n := range st.Refused {
		counter(c.refused, float64(n), cause)
	}
	for i, l := range st.Loops {
		loop := strconv.Itoa(i)
		counter(c.loopEvents, float64(l.Events), loop)
		gauge(c.loopConns, float64(l.Connections), loop)
		counter(c.loopBytes, float64(l.BytesIn), loop, "in")
		counter(c.loopBytes, float64(l.BytesOut), loop, "out")
	}
	if n, ok := st.Store["unreadable_records"]; ok {
		counter(c.storeUnreadable, float64(n))
	}
	if s := st.StoreSync; s != nil {
		ch <- histogram(c.storeSync, s)
	}
	for _, br := range c.b.Bridges() {
		up := 0.0
		if br.State == "up" {
			up = 1
		}
		gauge(c.bridgeUp, up, br.Name)
		counter(c.bridgeMessages, float64(br.ForwardedOut), br.Name, "out")
		counter(c.bridgeMessages, float64(br.ForwardedIn), br.Name, "in")
		gauge(c.bridgeHeld, float64(br.Holding), br.Name, "bridge")
		gauge(c.bridgeHeld, float64(br.Queued), br.Name, "queue")
		counter(c.bridgeDropped, float64(br.Dropped), br.Name)
	}
	c.collectCluster(gauge, counter, ch)
}

// collectCluster adds a cluster node's metrics; a single node has none.
func (c *collector) collectCluster(gauge, counter func(*prometheus.Desc, float64, ...string), ch chan<- prometheus.Metric) {
	cs := c.b.ClusterStatus(context.Background()) // bounded by its own timeouts
	if cs.Traffic == nil {
		return
	}
	counter(c.clusterSent, float64(cs.Traffic.MessagesSent))
	counter(c.clusterReceived, float64(cs.Traffic.MessagesReceived))
	counter(c.clusterDropped, float64(cs.Traffic.MessagesDropped))
	counter(c.clusterRetainedFailures, float64(cs.Traffic.RetainedFailures))
	counter(c.clusterNotStored, float64(cs.Traffic.MessagesNotStored))
	counter(c.clusterRescued, float64(cs.Traffic.Rescued))
	counter(c.clusterPassedOn, float64(cs.Traffic.PassedOn))
	gauge(c.clusterPeerSubs, float64(cs.Traffic.PeerSubscriptions))
	gauge(c.clusterNodesUp, float64(cs.NodesUp()))
	cutOff := 0.0
	if cs.CutOff {
		cutOff = 1
	}
	gauge(c.clusterCutOff, cutOff)
	for _, nd := range cs.Nodes {
		switch nd.State {
		case "up":
			gauge(c.clusterNodeUp, 1, nd.Name)
		case "down":
			gauge(c.clusterNodeUp, 0, nd.Name)
		}
		if cs.Owners != nil {
			gauge(c.clusterSessions, float64(nd.Sessions), nd.Name)
		}
	}
	for bucket, s := range cs.Replication {
		ch <- histogram(c.clusterReplication, s, bucket)
	}
}

// histogram is s as a Prometheus histogram.
func histogram(d *prometheus.Desc, s *broker.SyncStats, labels ...string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(s.Buckets))
	for _, b := range s.Buckets {
		if b.Le > 0 { // the last, +Inf, is the count
			buckets[b.Le.Seconds()] = uint64(b.Count)
		}
	}
	return prometheus.MustNewConstHistogram(d, uint64(s.Count), s.Sum.Seconds(), buckets, labels...)
}
