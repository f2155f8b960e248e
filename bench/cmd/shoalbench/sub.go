package main

import (
	"context"
	"io"
	"time"

	"github.com/shoalmq/shoal/client"
)

// subscriber is one sub client's state. Its fields are written only by
// its OnMessage, on its connection's loop, and read after the engine has
// closed.
type subscriber struct {
	tr     tracker
	minQoS byte // lowest QoS a message arrived at
	any    bool // a message arrived
}

// completionPoll is how often a sub run with --expect and --pubs checks
// whether everything has arrived.
const completionPoll = 20 * time.Millisecond

// runSub connects and subscribes the clients, then counts what arrives
// until ctx ends or, with --expect and --pubs, every subscriber has every
// message.
func runSub(ctx context.Context, cfg *config, e *client.Engine, m *meter, stderr io.Writer) outcome {
	subs := make([]subscriber, cfg.count)
	base := cfg.baseOptions()
	base.OnClose = m.onDrop
	conns := connectAll(ctx, cfg, e, m, stderr, func(i int) client.Options {
		o := base
		o.ClientID = cfg.clientID(cfg.start + i)
		s := &subs[i]
		o.OnMessage = func(msg *client.Message) {
			now := time.Now().UnixNano()
			st, err := readStamp(msg.Payload)
			unique := err == nil && s.tr.add(st.pub, st.seq)
			if !s.any || msg.QoS < s.minQoS {
				s.minQoS, s.any = msg.QoS, true
			}
			m.received(i, now, st, err == nil, unique)
		}
		return o
	}, func(ctx context.Context, i int, c *client.Conn) error {
		seq := cfg.start + i
		_, err := c.Subscribe(ctx, expandTopic(cfg.topic, seq, cfg.clientID(seq), cfg.username), byte(cfg.qos))
		return err
	})
	if err := writeReady(cfg, m); err != nil {
		return outcome{err: err}
	}
	if cfg.expect > 0 && cfg.expectPubs > 0 {
		want := m.connected.Load() * int64(cfg.expect) * int64(cfg.expectPubs)
		t := time.NewTicker(completionPoll)
	wait:
		for m.uniqueSoFar() < want {
			select {
			case <-ctx.Done():
				break wait
			case <-t.C:
			}
		}
		t.Stop()
	} else {
		<-ctx.Done()
	}
	// Closing the engine stops the loops, after which the subscribers'
	// state is ours to read.
	_ = e.Close()
	out := outcome{qos: cfg.qos}
	for i := range subs {
		if conns[i] == nil {
			continue
		}
		s := &subs[i]
		lost, dup := s.tr.loss(uint64(cfg.expect), cfg.expectPubs)
		out.lost += lost
		out.dup += dup
		if s.any && int(s.minQoS) < out.qos {
			out.qos = int(s.minQoS) // delivered at the publisher's lower QoS
		}
	}
	return out
}
