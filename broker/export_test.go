package broker

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/shoalmq/shoal/internal/cluster"
	"github.com/shoalmq/shoal/internal/deadline"
	"github.com/shoalmq/shoal/internal/dispatch"
	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/session"
)

// Hooks for the broker_test package's tests of orderings that timing alone
// would rarely show. Test binaries only.

// RouteThroughWorkers makes every message go through the router workers,
// never routed inline by its loop. Call it before clients connect.
func (b *Broker) RouteThroughWorkers() { b.disp.SetRouting(dispatch.RouteWorkers) }

// ForceRouting forces one routing path: "inline" (every message a loop
// may route itself, whatever the pressure), "workers", or "auto" (the
// default). testutil.StartBroker calls it when SHOAL_TEST_ROUTE is set
// (TestMain), through an interface, as only this test binary has it.
func (b *Broker) ForceRouting(mode string) error {
	switch mode {
	case "auto":
		b.disp.SetRouting(dispatch.RouteAuto)
	case "inline":
		b.disp.SetRouting(dispatch.RouteInline)
	case "workers":
		b.disp.SetRouting(dispatch.RouteWorkers)
	default:
		return fmt.Errorf("unknown routing %q (want auto, inline or workers)", mode)
	}
	return nil
}

// SessionFor returns the session of client id, nil if there is none.
func (b *Broker) SessionFor(id string) *session.Session { return b.sessions.Get(id) }

// RouteOnIdleWorker routes one message from "testpub" with worker 0's
// scratch and stops there, as a worker does in the middle of a batch:
// nothing committed, nothing posted. Worker 0 must be idle (no publisher
// may use it meanwhile); PostIdleWorker ends the batch.
func (b *Broker) RouteOnIdleWorker(topic, payload string, qos byte) {
	m := router.NewMessage([]byte(topic), []byte(payload), nil, []byte("testpub"), qos, false, 0, nil)
	b.disp.Workers()[0].Route(m)
	m.Release()
}

// PostIdleWorker ends worker 0's batch begun by RouteOnIdleWorker: commit,
// then post.
func (b *Broker) PostIdleWorker() { b.disp.Workers()[0].Post() }

// UseClock makes the broker built from c time session expiry and will
// delays on clk, a deadline.Fake the test moves.
func UseClock(c *Config, clk deadline.Clock) { c.clock = clk }

// SyncTimers waits until the timer goroutine has handled every deadline
// due at its clock's time; false if it has stopped.
func (b *Broker) SyncTimers() bool { return b.expiry.Sync() }

// PendingTimers is the number of offline sessions waiting for a deadline
// (their expiry or their will's delay).
func (b *Broker) PendingTimers() int { return b.expiry.Len() }

// TimerVisits is how many sessions the timer goroutine has locked.
func (b *Broker) TimerVisits() int64 { return b.expiry.Visits.Load() }

// AddOfflineSessions makes n offline sessions, prefix0 to prefix<n-1>,
// with Session Expiry Interval expiry seconds from now, as if their
// clients had just left: quicker than n clients.
func (b *Broker) AddOfflineSessions(prefix string, n int, expiry uint32) {
	at := b.clock.Now()
	for i := range n {
		s, _ := b.sessions.GetOrCreate(prefix + strconv.Itoa(i))
		s.Lock()
		s.SetExpiryLocked(expiry)
		s.ExpireAt = at + int64(expiry)*int64(time.Second)
		b.expiry.ArmLocked(s, nil, 0)
		s.Unlock()
	}
}

// RetainedExtraRefs is how many references to the retained messages
// matching filter are held beyond the store's own: by deliveries in flight
// or queued, and by retained snapshots still being sent.
func (b *Broker) RetainedExtraRefs(filter string) int {
	n := 0
	b.retained.Match(filter, func(m *router.Message) bool {
		n += int(m.Refs()) - 2 // the store's, and the one Match holds during the call
		return true
	})
	return n
}

// HoldBackground holds the background store writer's lock, as a slow
// commit would: the timer goroutine stops where it fires its deadlines
// (withBG), having taken them off its queue. Call release to let go.
func (b *Broker) HoldBackground() (release func()) { return b.persist.HoldBackground() }

// ClusterNode is the broker's cluster node and the session owners' bucket
// on it: both nil without Config.Cluster.
func (b *Broker) ClusterNode() (*cluster.Node, *cluster.Owners) { return b.cluster, b.owners }

// ClusterWills is the number of delayed wills this node knows are waiting
// in the cluster's bucket (-1: not in a cluster).
func (b *Broker) ClusterWills() int {
	if b.clusterWills == nil {
		return -1
	}
	return b.clusterWills.Len()
}

// ClusterPeersFor is the number of other nodes a message on topic goes
// to from this broker (0 without a cluster): each node's interest arrives
// through a watch, and a test waits for it to be here.
func (b *Broker) ClusterPeersFor(topic string) int { return len(b.ClusterNodesFor(topic)) }

// ClusterNodesFor names the other nodes a message on topic goes to from
// this broker, sorted.
func (b *Broker) ClusterNodesFor(topic string) []string {
	if b.clusterTable == nil {
		return nil
	}
	var m router.Matches
	b.clusterTable.Match([]byte(topic), nil, nil, &m)
	var nodes []string
	for _, mt := range m.List {
		if _, ok := mt.Sub.(dispatch.Peer); ok {
			node, _, _ := strings.Cut(strings.TrimPrefix(mt.Sub.ClientID(), "\x00peer "), " ")
			nodes = append(nodes, node)
		}
	}
	sort.Strings(nodes)
	return nodes
}

// ClusterPeerSubscriptions is the number of subscriptions that stand for
// other nodes in this broker's table: one per distinct filter of theirs,
// one per member of theirs in a shared group.
func (b *Broker) ClusterPeerSubscriptions() int {
	if b.clusterTable == nil {
		return 0
	}
	return b.clusterTable.PeerSubscriptions()
}

// RecountOwners makes the next ClusterStatus count the sessions' owners
// again, however recent its last count.
func (b *Broker) RecountOwners() { b.ownerCounts.forget() }

// failingPeer stands for another node that stores nothing it is sent
// while failing is set: its receipts fail, as when the cluster's stream
// has no majority.
type failingPeer struct {
	sent    atomic.Int64
	failing atomic.Bool
}

func (p *failingPeer) ClientID() string { return "\x00peer failing" }

func (p *failingPeer) Forward(m *router.Message, _ *router.Match) dispatch.Receipt {
	p.sent.Add(1)
	if m.QoS == 0 {
		return nil
	}
	return receipt{p.failing.Load()}
}

type receipt struct{ fail bool }

func (r receipt) Wait(<-chan struct{}) error {
	if r.fail {
		return errors.New("no majority")
	}
	return nil
}

// AddFailingPeer subscribes to filter a stand-in for another node that
// stores nothing it is sent until fail(false), and returns how many
// messages it was sent.
func (b *Broker) AddFailingPeer(filter string) (sent func() int64, fail func(bool)) {
	p := &failingPeer{}
	p.failing.Store(true)
	b.subs.Subscribe(p, filter, router.Options{QoS: 2})
	return p.sent.Load, p.failing.Store
}

// RescueDelivered is how many messages this node added to the sessions it
// rescued from gone nodes; 0 outside a cluster.
func (b *Broker) RescueDelivered() int64 {
	if b.rescuer == nil {
		return 0
	}
	return b.rescuer.Delivered.Load()
}

// PassedOn is how many messages this node sent on to the new nodes of
// sessions it handed over lately; 0 outside a cluster.
func (b *Broker) PassedOn() int64 {
	if b.peers == nil {
		return 0
	}
	n := b.peers.PassedOn.Load()
	if b.rescuer != nil {
		n += b.rescuer.PassedOn.Load()
	}
	return n
}

// CopyReceived returns the Origins the cluster's copy of id's session
// has receipts of (store.Bundle.Received).
func (b *Broker) CopyReceived(ctx context.Context, id string) ([]uint64, error) {
	bd, _, err := b.replicas.Read(ctx, id)
	if err != nil || bd == nil {
		return nil, err
	}
	return bd.Received, nil
}
