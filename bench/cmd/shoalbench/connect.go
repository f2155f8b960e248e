package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoalmq/shoal/client"
)

// connectTimeout bounds one client's dial, CONNACK and SUBACK.
const connectTimeout = 30 * time.Second

// maxErrorsShown is how many connection errors are printed; a broker
// refusing thousands of clients says the same thing thousands of times.
const maxErrorsShown = 5

// baseOptions are the options every client of the run shares.
func (c *config) baseOptions() client.Options {
	return client.Options{
		Addr:        c.addr(),
		Version:     byte(c.version),
		KeepAlive:   uint16(c.keepAlive),
		CleanStart:  c.clean,
		Username:    c.username,
		Password:    c.password,
		MaxInflight: uint16(c.inflight),
	}
}

// connectAll opens cfg.count connections, starting one every -i ms (or at
// -R per second), at most --parallel at a time. opts(i) gives client i's
// options, setup (may be nil) runs after its CONNACK. It returns the
// connections, nil where a client failed; ctx's end stops it early.
func connectAll(ctx context.Context, cfg *config, e *client.Engine, m *meter, stderr io.Writer,
	opts func(i int) client.Options, setup func(ctx context.Context, i int, c *client.Conn) error) []*client.Conn {
	conns := make([]*client.Conn, cfg.count)
	every := cfg.interval
	if cfg.rate > 0 {
		every = time.Duration(float64(time.Second) / cfg.rate)
	}
	var shown atomic.Int32
	report := func(i int, err error) {
		m.failed.Add(1)
		switch n := shown.Add(1); {
		case n <= maxErrorsShown:
			fmt.Fprintf(stderr, "shoalbench: client %d: %v\n", cfg.start+i, err)
		case n == maxErrorsShown+1:
			fmt.Fprintln(stderr, "shoalbench: (further connection errors not shown)")
		}
	}
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(cfg.parallel, cfg.count) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				o := opts(i)
				if len(cfg.src) > 0 {
					o.LocalAddr = cfg.src[i%len(cfg.src)]
				}
				cctx, cancel := context.WithTimeout(ctx, connectTimeout)
				t0 := time.Now()
				c, err := e.Connect(cctx, o)
				if err != nil {
					cancel()
					report(i, err)
					continue
				}
				d := time.Since(t0)
				if setup != nil {
					if err := setup(cctx, i, c); err != nil {
						cancel()
						_ = c.Close()
						report(i, err)
						continue
					}
				}
				cancel()
				conns[i] = c
				m.connectedOne(t0, d)
			}
		}()
	}
	t0 := time.Now()
	for i := 0; i < cfg.count && ctx.Err() == nil; i++ {
		// Pace by schedule rather than by sleeping a fixed gap, so that
		// gaps below the timer's resolution still average out right.
		if wait := time.Until(t0.Add(time.Duration(i) * every)); wait > time.Millisecond {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
			}
		}
		select {
		case jobs <- i:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
	return conns
}
