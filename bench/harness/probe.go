package harness

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shoalmq/shoal/client"
)

// Probing a cluster's routes before a run.
//
// A node learns of another node's subscriptions asynchronously: each node
// writes its interest (one key per distinct filter) to a replicated bucket
// that the others watch. A message published on A right after a SUBACK on
// B may miss B's subscriber. So before the load's subscribers connect, a
// probe client on each of their nodes subscribes to every filter they will
// subscribe to, and a probe publisher on the publishers' node publishes a
// round of messages, one per filter, until a whole round has arrived: then
// every filter's interest has reached the publishers' node. The load's
// subscribers then subscribe to the same filters on the same nodes, which
// adds no key, and the probe clients leave once they are in place (the
// interest stays while a session holds the filter).
//
// A probe's payload is "probe ROUND", shorter than shoalbench's stamp.
// Messages of one publisher reach a subscriber in order (between nodes
// too: one NATS connection per node keeps the order per subject), so once
// the last round has arrived everywhere no earlier probe is still on its
// way to reach the load's subscribers.

const (
	probeTimeout = 30 * time.Second      // the whole probe
	probeEvery   = 50 * time.Millisecond // between rounds
)

// probeSet is the probe subscribers of one node: which round each filter
// last saw.
type probeSet struct {
	mu   sync.Mutex
	seen map[string]int // filter → highest round received
}

func (p *probeSet) on(m *client.Message) {
	round, err := strconv.Atoi(strings.TrimPrefix(string(m.Payload), "probe "))
	if err != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if t := string(m.Topic); round > p.seen[t] {
		p.seen[t] = round
	}
}

// has reports whether every filter saw round (or a later one).
func (p *probeSet) has(round int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.seen {
		if r < round {
			return false
		}
	}
	return true
}

// probeFilters returns the filters the generators subscribe to, each
// client's %i expanded: the topics a probe publishes to. Variants that
// probe subscribe to topic names, without wildcards or %c.
func probeFilters(g Gen) []string {
	out := make([]string, g.Count)
	for i := range out {
		out[i] = strings.ReplaceAll(g.Topic, "%i", strconv.Itoa(g.Start+i))
	}
	return out
}

// probe connects a probe subscriber for each of subs to its node, a probe
// publisher to pubNode, and publishes rounds until one has reached every
// filter. It returns a function that disconnects the probe clients, to be
// called once the load's subscribers hold the filters.
func probe(ctx context.Context, servers nodes, subs []Gen, pubNode int) (leave func(), err error) {
	e, err := client.NewEngine(1)
	if err != nil {
		return nil, err
	}
	leave = func() { _ = e.Close() }
	defer func() {
		if err != nil {
			leave()
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	opts := func(id string, port int) client.Options {
		return client.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), ClientID: id, Version: genVersion, KeepAlive: genKeepAlive, CleanStart: true}
	}
	var sets []*probeSet
	var topics []string
	for i, g := range subs {
		set := &probeSet{seen: make(map[string]int)}
		o := opts(fmt.Sprintf("probe-sub-%d", i), servers.port(g.Node))
		o.OnMessage = set.on
		c, err := e.Connect(ctx, o)
		if err != nil {
			return leave, fmt.Errorf("probe: subscriber on node %d: %w", g.Node, err)
		}
		for _, f := range probeFilters(g) {
			set.seen[f] = 0
			if _, err := c.Subscribe(ctx, f, 0); err != nil {
				return leave, fmt.Errorf("probe: subscribe %s: %w", f, err)
			}
			topics = append(topics, f)
		}
		sets = append(sets, set)
	}
	pub, err := e.Connect(ctx, opts("probe-pub", servers.port(pubNode)))
	if err != nil {
		return leave, fmt.Errorf("probe: publisher on node %d: %w", pubNode, err)
	}
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	all := func(round int) bool {
		for _, s := range sets {
			if !s.has(round) {
				return false
			}
		}
		return true
	}
	round := 0
	for {
		// A new round while some filter has seen none: its interest has
		// not reached pubNode yet. Then wait for the last round
		// everywhere.
		if !all(1) {
			round++
			for _, topic := range topics {
				if err := pub.Publish(topic, []byte("probe "+strconv.Itoa(round)), 0, false); err != nil {
					return leave, fmt.Errorf("probe: publish: %w", err)
				}
			}
		}
		select {
		case <-ctx.Done():
			return leave, fmt.Errorf("probe: %d rounds of %d messages in %v did not all reach the subscribers: the nodes do not route to each other", round, len(topics), probeTimeout)
		case <-t.C:
		}
		if all(round) {
			return leave, nil
		}
	}
}
