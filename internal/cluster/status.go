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
// sessions each node owns, as of the moment it is called (scan). It stops
// after limit sessions, or when ctx ends: complete is false then, and
// counts are those read so far.
func (o *Owners) CountByNode(ctx context.Context, limit int) (counts map[string]int, complete bool, err error) {
	counts = map[string]int{}
	owners, err := o.scan(ctx, limit)
	for _, ow := range owners {
		counts[ow.Node]++
	}
	if errors.Is(err, errScanLimit) {
		return counts, false, nil
	}
	return counts, err == nil, err
}

// errScanLimit ends a scan that read its limit.
var errScanLimit = errors.New("cluster: the scan's limit")

// scanBarrier is the owners' bucket key a scan writes before it reads
// (not a client's: those begin "c.").
const scanBarrier = "barrier"

// scan returns every session's owner by client id, up to limit sessions
// (0: all; errScanLimit when there are more), until ctx ends.
//
// It reads one ordered stream of the bucket's last record of every key,
// then what is written after: a consumer, not a request per key. The
// consumer is placed on any of the bucket's replicas, and one that is
// behind gives a past state (measured: a scan right after a claim gave
// the client's owner before it). So the scan first writes scanBarrier;
// the write is confirmed once the bucket's leader has applied everything
// before it, and the scan reads on until the barrier (or a later write)
// is in. Everything written before the call is then in what it returns.
func (o *Owners) scan(ctx context.Context, limit int) (map[string]Owner, error) {
	barrier, err := o.kv.Put(ctx, scanBarrier, nil)
	if err != nil {
		return nil, fmt.Errorf("cluster: reading session owners: %w", err)
	}
	w, err := o.kv.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster: reading session owners: %w", err)
	}
	defer func() { _ = w.Stop() }()
	owners := map[string]Owner{}
	var last uint64  // the highest revision read
	initial := false // every key's last record, as the replica had them, is in
	for !initial || last < barrier {
		var e jetstream.KeyValueEntry
		var ok bool
		select {
		case <-ctx.Done():
			return owners, fmt.Errorf("cluster: reading session owners: %w", ctx.Err())
		case e, ok = <-w.Updates():
		}
		switch {
		case !ok:
			return owners, errors.New("cluster: reading session owners: the watch ended")
		case e == nil:
			initial = true
			continue
		}
		last = max(last, e.Revision())
		id, idOK := clientIDOf(e.Key())
		if !idOK {
			continue
		}
		ow, err := decodeOwner(e.Value())
		if e.Operation() != jetstream.KeyValuePut || err != nil {
			delete(owners, id)
			continue
		}
		if _, had := owners[id]; !had && limit > 0 && len(owners) == limit {
			return owners, errScanLimit
		}
		owners[id] = ow
	}
	return owners, nil
}

// PeerSubscriptions is the number of subscriptions in the table that
// stand for other nodes: one per distinct filter of each, one per member
// of each shared group. Safe for concurrent use.
func (t *Table) PeerSubscriptions() int { return int(t.peerSubs.Load()) }
