package broker

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"
)

// ClusterStatus is the cluster as this node sees it: what /api/cluster
// serves, and what the cluster's metrics and $SYS topics are read from.
type ClusterStatus struct {
	// Enabled is false on a broker without a cluster section, and every
	// other field is then empty.
	Enabled bool   `json:"enabled"`
	Name    string `json:"name,omitempty"` // cluster.name
	Node    string `json:"node,omitempty"` // this node's cluster.node
	// NATS is "embedded" (each node runs its NATS server) or "external"
	// (cluster.nats_url).
	NATS string `json:"nats,omitempty"`
	// CutOff: this node is cut off from the cluster's majority (or back,
	// settling its sessions), and refuses new connections and QoS 1 and
	// 2 messages.
	CutOff bool `json:"cut_off,omitempty"`
	// MetaLeader is JetStream's meta leader, the node that places the
	// buckets' replicas; empty with an external NATS.
	MetaLeader string `json:"meta_leader,omitempty"`
	// Nodes are the cluster's nodes, by name. With an embedded NATS: this
	// one, those with a route to it, and those JetStream knows as peers;
	// up while routed or not called offline by JetStream. With an
	// external NATS, which does not know Shoal's nodes: this one, and
	// those the owners' bucket names, "unknown".
	Nodes []ClusterNode `json:"nodes,omitempty"`
	// NATSServers, with an external NATS, are its servers that hold the
	// owners' bucket, Leader the one that leads its replicas.
	NATSServers []ClusterNode `json:"nats_servers,omitempty"`
	// Owners says how the nodes' Sessions were counted; nil when they
	// were not (Error says why).
	Owners  *OwnerCount     `json:"owners,omitempty"`
	Traffic *ClusterTraffic `json:"traffic,omitempty"`
	// Replication times the writes to the cluster's replicated buckets,
	// by bucket ("retained", "interest"): from the request to JetStream's
	// acknowledgement, which comes once a majority of the replicas has
	// the write.
	Replication map[string]*SyncStats `json:"replication,omitempty"`
	// Error is what could not be read: NATS's view of the nodes, or the
	// owners' count. What could be is there.
	Error string `json:"error,omitempty"`
}

// ClusterNode is one node of ClusterStatus (or one NATS server).
type ClusterNode struct {
	Name string `json:"name"`
	Self bool   `json:"self,omitempty"`
	// State is "up", "down", or "unknown": a node only the owners'
	// bucket names (with an external NATS, every other node).
	State  string `json:"state"`
	Leader bool   `json:"leader,omitempty"`
	// Sessions is how many sessions the node owns, by the owners' bucket.
	Sessions int `json:"sessions"`
}

// OwnerCount says how ClusterNode.Sessions were counted.
type OwnerCount struct {
	// Counted is the number of the owners' bucket's records read.
	Counted int `json:"counted"`
	// Complete is false when the count stopped at its bound
	// (ownersCountLimit records, or ownersCountTimeout).
	Complete bool `json:"complete"`
	// At is when they were counted: at most ownersCountAge before the
	// status.
	At time.Time `json:"at"`
}

// ClusterTraffic are this node's counters of what crossed to and from the
// other nodes, since Start.
type ClusterTraffic struct {
	MessagesSent     int64 `json:"messages_sent"`     // to other nodes, one per node a message went to
	MessagesReceived int64 `json:"messages_received"` // from other nodes
	// MessagesDropped were not sent (NATS refused: the connection is
	// closed), not readable when received, or dropped by NATS before this
	// node took them (cluster.Peers.Drops).
	MessagesDropped int64 `json:"messages_dropped"`
	// MessagesNotStored are QoS 1 and 2 messages the forward stream did
	// not take: their publishers were refused, not acknowledged.
	MessagesNotStored int64 `json:"messages_not_stored"`
	// RetainedFailures are retained messages the bucket refused: not
	// retained.
	RetainedFailures int64 `json:"retained_failures"`
	// PeerSubscriptions are the other nodes' filters in this node's
	// table: one per distinct filter of each node, one per member of
	// each shared group.
	PeerSubscriptions int `json:"peer_subscriptions"`
	// Rescued are the messages this node, rescuing gone nodes, added to
	// their sessions (cluster.Rescuer); PassedOn those it sent on to the
	// new nodes of the sessions it handed over, from its rescues or its
	// own (cluster's handover).
	Rescued  int64 `json:"rescued"`
	PassedOn int64 `json:"passed_on"`
}

// NodesUp is how many of Nodes are up.
func (s *ClusterStatus) NodesUp() int {
	n := 0
	for _, nd := range s.Nodes {
		if nd.State == "up" {
			n++
		}
	}
	return n
}

// How the owners' bucket is counted: on demand, at most once per
// ownersCountAge (the dashboard asks every few seconds, Prometheus every
// 15 s or so, and each count reads every record), up to ownersCountLimit
// records within ownersCountTimeout. These are bounds, not measurements:
// a count streams the bucket's records to this node, about 50 bytes each,
// so the limit is some 50 MB read at most per ownersCountAge.
const (
	ownersCountAge     = 10 * time.Second
	ownersCountLimit   = 1_000_000
	ownersCountTimeout = 5 * time.Second
	// clusterStatusTimeout bounds the status's requests to NATS (with an
	// external NATS; an embedded server answers in process).
	clusterStatusTimeout = 5 * time.Second
)

// ownerCounts is the last count of the owners' bucket by node. Its mutex
// is held through a count, so that callers at once share one.
type ownerCounts struct {
	mu     sync.Mutex
	at     time.Time // zero: none yet
	counts map[string]int
	count  OwnerCount
	err    error
}

// get returns the counts, counting again when the last count is older
// than ownersCountAge.
func (oc *ownerCounts) get(ctx context.Context, b *Broker) (map[string]int, OwnerCount, error) {
	oc.mu.Lock()
	defer oc.mu.Unlock()
	now := time.Now()
	if !oc.at.IsZero() && now.Sub(oc.at) <= ownersCountAge {
		return oc.counts, oc.count, oc.err
	}
	cctx, cancel := context.WithTimeout(ctx, ownersCountTimeout)
	defer cancel()
	counts, complete, err := b.owners.CountByNode(cctx, ownersCountLimit)
	n := 0
	for _, c := range counts {
		n += c
	}
	count := OwnerCount{Counted: n, Complete: complete, At: now}
	if ctx.Err() == nil { // a count the caller gave up on is not the next caller's
		oc.at, oc.counts, oc.count, oc.err = now, counts, count, err
	}
	return counts, count, err
}

// forget drops the last count: the next get counts.
func (oc *ownerCounts) forget() {
	oc.mu.Lock()
	oc.at = time.Time{}
	oc.mu.Unlock()
}

// ClusterStatus reports the cluster as this node sees it. Safe for
// concurrent use. It asks NATS (in process with an embedded server) and
// counts the owners' bucket when its last count is older than 10 s, so
// call it every few seconds, not per message.
func (b *Broker) ClusterStatus(ctx context.Context) ClusterStatus {
	return b.clusterStatus(ctx, true)
}

// clusterStatus is ClusterStatus, with the sessions' owners counted or
// not (the $SYS round does not: it publishes no per-node figures).
func (b *Broker) clusterStatus(ctx context.Context, owners bool) ClusterStatus {
	cc := b.cfg.Cluster
	if cc == nil {
		return ClusterStatus{}
	}
	cs := ClusterStatus{Enabled: true, Name: cc.Name, Node: cc.Node, NATS: "embedded", CutOff: b.health != nil && b.health.CutOff()}
	if cc.NATSURL != "" {
		cs.NATS = "external"
	}
	if b.cluster == nil || b.peers == nil {
		cs.Error = "not in the cluster yet"
		return cs
	}
	cs.Traffic = &ClusterTraffic{
		MessagesSent:      b.peers.Sent.Load(),
		MessagesReceived:  b.peers.Received.Load(),
		MessagesDropped:   b.peers.Drops(),
		MessagesNotStored: b.peers.NotStored.Load(),
		RetainedFailures:  b.clusterRetained.Failed.Load(),
		PeerSubscriptions: b.clusterTable.PeerSubscriptions(),
	}
	if r := b.rescuer; r != nil {
		cs.Traffic.Rescued, cs.Traffic.PassedOn = r.Delivered.Load(), r.PassedOn.Load()
	}
	cs.Traffic.PassedOn += b.peers.PassedOn.Load()
	cs.Replication = map[string]*SyncStats{"retained": newSyncStats(), "interest": newSyncStats(), "forward": newSyncStats()}
	cs.Replication["retained"].add(&b.clusterRetained.Writes)
	cs.Replication["interest"].add(&b.peers.Writes)
	cs.Replication["forward"].add(&b.peers.Forwards)

	var errs []error
	sctx, cancel := context.WithTimeout(ctx, clusterStatusTimeout)
	defer cancel()
	st, err := b.cluster.Status(sctx)
	errs = append(errs, err)
	nodes := map[string]*ClusterNode{}
	node := func(name, state string) *ClusterNode {
		if nodes[name] == nil {
			nodes[name] = &ClusterNode{Name: name, State: state}
		}
		return nodes[name]
	}
	node(cc.Node, "up").Self = true
	for _, s := range st.Servers {
		state := map[bool]string{true: "up", false: "down"}[s.Up]
		if st.External {
			cs.NATSServers = append(cs.NATSServers, ClusterNode{Name: s.Name, State: state, Leader: s.Leader})
			continue
		}
		nd := node(s.Name, state)
		nd.State, nd.Leader = state, s.Leader
	}
	cs.MetaLeader = st.MetaLeader
	if owners {
		counts, count, err := b.ownerCounts.get(ctx, b)
		errs = append(errs, err)
		if counts != nil {
			cs.Owners = &count
		}
		for name, n := range counts {
			node(name, "unknown").Sessions = n
		}
	}
	if err := errors.Join(errs...); err != nil {
		cs.Error = err.Error()
	}
	for _, nd := range nodes {
		cs.Nodes = append(cs.Nodes, *nd)
	}
	slices.SortFunc(cs.Nodes, func(x, y ClusterNode) int { return strings.Compare(x.Name, y.Name) })
	return cs
}
