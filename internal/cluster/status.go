package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// Status is the cluster as this node's NATS sees it now, for the admin
// API, metrics and $SYS.
type Status struct {
	// External is true when the node is a client of an external NATS
	// cluster (NATSURL): Servers are then NATS's, not Shoal nodes.
	External bool
	// MetaLeader is JetStream's meta leader, the server that places the
	// buckets' replicas: a node's name with an embedded server, "" with
	// an external NATS (asking needs NATS's system account).
	MetaLeader string
	// Servers are the cluster's servers, by name. With an embedded
	// server they are the Shoal nodes: this one, those routed to, and
	// those JetStream knows as peers, routed to or not. With an external
	// NATS, the servers that hold the session owners' bucket.
	Servers []Server
}

// Server is one server of Status.
type Server struct {
	Name string
	// Self is this node.
	Self bool
	// Up: this node, a node with a route to this one, or a JetStream
	// peer NATS does not call offline.
	Up bool
	// Leader is the meta leader (embedded), or the leader of the owners'
	// bucket's replicas (external).
	Leader bool
}

// Up is how many of s's servers are up.
func (s *Status) Up() int {
	n := 0
	for _, sv := range s.Servers {
		if sv.Up {
			n++
		}
	}
	return n
}

// Status reports the cluster's servers and their state. With an embedded
// server it asks the server itself (its routes and JetStream's meta
// group: no request crosses the network); with an external NATS it asks
// JetStream for the owners' bucket's stream, a request within ctx.
func (n *Node) Status(ctx context.Context) (Status, error) {
	if n.srv == nil {
		return n.externalStatus(ctx)
	}
	self := n.cfg.Node
	servers := map[string]*Server{self: {Name: self, Self: true, Up: true}}
	add := func(name string) *Server {
		if servers[name] == nil {
			servers[name] = &Server{Name: name}
		}
		return servers[name]
	}
	rz, err := n.srv.Routez(nil)
	if err != nil {
		return Status{}, fmt.Errorf("cluster: routes: %w", err)
	}
	for _, r := range rz.Routes { // several per node: NATS pools its routes
		if r.RemoteName != "" {
			add(r.RemoteName).Up = true
		}
	}
	st := Status{MetaLeader: self} // a node without routes is its own JetStream
	jz, err := n.srv.Jsz(nil)
	if err != nil {
		return Status{}, fmt.Errorf("cluster: JetStream: %w", err)
	}
	if m := jz.Meta; m != nil {
		st.MetaLeader = m.Leader
		for _, p := range m.Replicas {
			// A peer whose name the server has not learned yet (after a
			// restart of the whole cluster) has none worth showing.
			if p.Name != "" && !strings.HasPrefix(p.Name, "Server name unknown") {
				s := add(p.Name)
				s.Up = s.Up || !p.Offline
			}
		}
	}
	if s := servers[st.MetaLeader]; s != nil {
		s.Leader = true
	}
	for _, s := range servers {
		st.Servers = append(st.Servers, *s)
	}
	slices.SortFunc(st.Servers, func(a, b Server) int { return strings.Compare(a.Name, b.Name) })
	return st, nil
}

// externalStatus is Status with an external NATS: the servers that hold
// the owners' bucket, as its stream's info tells.
func (n *Node) externalStatus(ctx context.Context) (Status, error) {
	st := Status{External: true}
	s, err := n.js.Stream(ctx, "KV_"+ownersBucket)
	if err != nil {
		return st, fmt.Errorf("cluster: the owners' bucket: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return st, fmt.Errorf("cluster: the owners' bucket: %w", err)
	}
	if c := info.Cluster; c != nil {
		if c.Leader != "" {
			st.Servers = append(st.Servers, Server{Name: c.Leader, Up: true, Leader: true})
		}
		for _, p := range c.Replicas {
			st.Servers = append(st.Servers, Server{Name: p.Name, Up: !p.Offline})
		}
	}
	slices.SortFunc(st.Servers, func(a, b Server) int { return strings.Compare(a.Name, b.Name) })
	return st, nil
}

// CountByNode counts the session owners' records by node: how many
// sessions each node owns. It reads the bucket's last record of every key
// (one ordered stream of them, not a request per key) and stops after
// limit records, or when ctx ends: complete is false then, and counts are
// those read so far.
func (o *Owners) CountByNode(ctx context.Context, limit int) (counts map[string]int, complete bool, err error) {
	counts = map[string]int{}
	err = o.scan(ctx, limit, func(_ string, ow Owner) { counts[ow.Node]++ })
	if errors.Is(err, errScanLimit) {
		return counts, false, nil
	}
	return counts, err == nil, err
}

// errScanLimit ends a scan that read its limit.
var errScanLimit = errors.New("cluster: the scan's limit")

// scan calls fn with the last record of every key of the owners' bucket
// (one ordered stream of them, not a request per key), up to limit
// records (0: all), until ctx ends.
func (o *Owners) scan(ctx context.Context, limit int, fn func(clientID string, ow Owner)) error {
	for try := 1; ; try++ {
		empty, err := o.scanOnce(ctx, limit, fn)
		if err != nil || !empty || try == scanTries {
			return err
		}
		// A watch made while the stream's replicas settle (a node
		// loaded) may say at once that it has brought every key, before
		// any: when the bucket holds records, look again.
		st, err := o.kv.Status(ctx)
		if err != nil || st.Values() == 0 {
			return nil
		}
	}
}

// scanTries bounds the scans of a bucket that look empty but hold records
// (deletes only, then).
const scanTries = 3

// scanOnce is one scan's try; it reports whether it found no record.
func (o *Owners) scanOnce(ctx context.Context, limit int, fn func(clientID string, ow Owner)) (empty bool, err error) {
	w, err := o.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return false, fmt.Errorf("cluster: reading session owners: %w", err)
	}
	defer func() { _ = w.Stop() }()
	for read := 0; ; read++ {
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("cluster: reading session owners: %w", ctx.Err())
		case e, ok := <-w.Updates():
			switch {
			case !ok:
				return false, errors.New("cluster: reading session owners: the watch ended")
			case e == nil: // every key's last record is in
				return read == 0, nil
			case read == limit && limit > 0:
				return false, errScanLimit
			}
			id, idOK := clientIDOf(e.Key())
			if ow, err := decodeOwner(e.Value()); err == nil && idOK {
				fn(id, ow)
			}
		}
	}
}

// PeerSubscriptions is the number of subscriptions in the table that
// stand for other nodes: one per distinct filter of each, one per member
// of each shared group. Safe for concurrent use.
func (t *Table) PeerSubscriptions() int { return int(t.peerSubs.Load()) }
