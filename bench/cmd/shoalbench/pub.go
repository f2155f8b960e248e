package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/shoalmq/shoal/client"
)

// publisher is one pub client. Only its driver goroutine touches it while
// publishing.
type publisher struct {
	c       *client.Conn
	index   uint32 // %i, stamped into every payload
	topic   string
	payload []byte
	seq     uint64 // messages published so far
	due     time.Time
	done    bool
}

// Tuning of the publisher drivers.
const (
	// saturationBurst is how many messages a driver publishes to one
	// client before moving on, so one fast connection cannot starve the
	// others of the driver's time.
	saturationBurst = 64
	// idleWait bounds a driver's sleep when no client can take a message:
	// OnWritable normally wakes it sooner; this covers a missed hint.
	idleWait = 5 * time.Millisecond
	// ackGrace bounds the wait for outstanding acknowledgements once
	// publishing has stopped.
	ackGrace = 10 * time.Second
	// startAtPoll is how often --start-at's file is looked for.
	startAtPoll = 10 * time.Millisecond
)

// pubDrivers is how many goroutines publish: one per CPU (at most one per
// publisher). Each drives a fixed share of the publishers through their
// client.Conn, which only queues, so a driver is never blocked by one
// slow connection.
func pubDrivers(cfg *config) int {
	if cfg.mode != "pub" {
		return 1
	}
	return max(1, min(cfg.count, runtime.GOMAXPROCS(0)))
}

// runPub connects the publishers, waits for --start-at, publishes and
// waits for the last acknowledgements.
func runPub(ctx context.Context, cfg *config, e *client.Engine, m *meter, stderr io.Writer) outcome {
	nd := pubDrivers(cfg)
	wakes := make([]chan struct{}, nd)
	for i := range wakes {
		wakes[i] = make(chan struct{}, 1)
	}
	base := cfg.baseOptions()
	base.OnClose = m.onDrop
	conns := connectAll(ctx, cfg, e, m, stderr, func(i int) client.Options {
		o := base
		o.ClientID = cfg.clientID(cfg.start + i)
		wake := wakes[i%nd]
		o.OnWritable = func() {
			select {
			case wake <- struct{}{}:
			default:
			}
		}
		return o
	}, nil)
	if err := writeReady(cfg, m); err != nil {
		return outcome{err: err}
	}
	if err := waitFile(ctx, cfg.startAt); err != nil {
		return outcome{err: err}
	}

	drivers := make([][]*publisher, nd)
	var all []*publisher
	for i, c := range conns {
		if c == nil {
			continue
		}
		seq := cfg.start + i
		p := &publisher{c: c, index: uint32(seq), payload: make([]byte, cfg.size),
			topic: expandTopic(cfg.topic, seq, cfg.clientID(seq), cfg.username)}
		drivers[i%nd] = append(drivers[i%nd], p)
		all = append(all, p)
	}
	start := time.Now()
	m.pubStart.Store(start.UnixNano())
	// Spread the publishers' first messages over one interval, so that
	// -I 1000 with 10,000 clients is 10 messages a millisecond, not
	// 10,000 at the top of each second.
	for k, p := range all {
		p.due = start.Add(time.Duration(int64(cfg.pubInterval) * int64(k) / int64(len(all))))
	}
	var wg sync.WaitGroup
	for d, ps := range drivers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if cfg.pubInterval == 0 {
				saturate(ctx, cfg, ps, wakes[d], &m.sent[d])
			} else {
				pace(ctx, cfg, ps, &m.sent[d])
			}
		}()
	}
	wg.Wait()

	out := outcome{qos: cfg.qos}
	if cfg.qos > 0 {
		out.lost = awaitAcks(all)
		m.pubEnd.Store(time.Now().UnixNano())
		disconnectAll(all, cfg.parallel)
	} else {
		// QoS 0 is done when the socket has taken the queue, which
		// Disconnect waits for.
		disconnectAll(all, cfg.parallel)
		m.pubEnd.Store(time.Now().UnixNano())
	}
	return out
}

// waitFile waits until path exists ("" means no wait) or ctx ends.
func waitFile(ctx context.Context, path string) error {
	if path == "" {
		return nil
	}
	t := time.NewTicker(startAtPoll)
	defer t.Stop()
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("--start-at: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil // the run ends with nothing published
		case <-t.C:
		}
	}
}

// publish stamps and publishes p's next message. It reports false when p
// is finished: its limit reached or its connection gone.
func (p *publisher) publish(cfg *config, sent *counter) bool {
	stamp{sentNs: time.Now().UnixNano(), seq: p.seq, pub: p.index}.put(p.payload)
	err := p.c.Publish(p.topic, p.payload, byte(cfg.qos), cfg.retain)
	switch {
	case err == nil:
		p.seq++
		sent.n.Add(1)
		if cfg.limit > 0 && p.seq >= uint64(cfg.limit) {
			p.done = true
		}
	case errors.Is(err, client.ErrQueueFull):
		// Not published, so no sequence number is used up: subscribers
		// see no gap.
	default:
		p.done = true
	}
	return !p.done
}

// saturate publishes as fast as each connection takes messages: while
// CanPublish says a message would go straight out (window slot free,
// queue under half full), and otherwise sleeps until a connection's
// OnWritable.
func saturate(ctx context.Context, cfg *config, ps []*publisher, wake <-chan struct{}, sent *counter) {
	qos := byte(cfg.qos)
	active := len(ps)
	t := time.NewTimer(idleWait)
	defer t.Stop()
	for active > 0 && ctx.Err() == nil {
		progressed := false
		for _, p := range ps {
			if p.done {
				continue
			}
			for n := 0; n < saturationBurst && p.c.CanPublish(qos); n++ {
				progressed = true
				if !p.publish(cfg, sent) {
					active--
					break
				}
			}
		}
		if progressed {
			continue
		}
		t.Reset(idleWait)
		select {
		case <-wake:
		case <-t.C:
		case <-ctx.Done():
		}
	}
}

// pace publishes each client's messages -I apart. The clients' due times
// keep their order round after round (each advances by the same
// interval), so the driver walks them in a circle and sleeps until the
// next one is due.
func pace(ctx context.Context, cfg *config, ps []*publisher, sent *counter) {
	active := len(ps)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for i := 0; active > 0 && ctx.Err() == nil; i = (i + 1) % len(ps) {
		p := ps[i]
		if p.done {
			continue
		}
		// Timers are coarse below a millisecond: publish up to 1 ms early
		// rather than sleep for less.
		if wait := time.Until(p.due); wait > time.Millisecond {
			t.Reset(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
		}
		now := time.Now()
		if !p.publish(cfg, sent) {
			active--
		}
		p.due = p.due.Add(cfg.pubInterval)
		if p.due.Before(now.Add(-cfg.pubInterval)) {
			p.due = now // more than an interval behind: no catch-up burst
		}
	}
}

// awaitAcks waits, up to ackGrace, until every open publisher's QoS 1/2
// messages are acknowledged, and returns how many never were (those of
// closed connections included).
func awaitAcks(ps []*publisher) uint64 {
	deadline := time.Now().Add(ackGrace)
	for {
		var open, gone uint64
		for _, p := range ps {
			select {
			case <-p.c.Done():
				gone += uint64(p.c.Outstanding())
			default:
				open += uint64(p.c.Outstanding())
			}
		}
		if open == 0 || time.Now().After(deadline) {
			return open + gone
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// disconnectAll disconnects the publishers, par at a time: Disconnect
// waits for the socket to take the queued messages.
func disconnectAll(ps []*publisher, par int) {
	jobs := make(chan *publisher)
	var wg sync.WaitGroup
	for range min(par, len(ps)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range jobs {
				_ = p.c.Disconnect()
			}
		}()
	}
	for _, p := range ps {
		jobs <- p
	}
	close(jobs)
	wg.Wait()
}
