package main

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"github.com/rs/zerolog"
)

// Memory after a storm of connections. The Go runtime keeps what a burst
// of connects or disconnects allocated: garbage is collected only when
// the heap grows to its goal again (twice what was live) or every two
// minutes, and freed pages go back to the system slowly, down to that
// goal. An idle broker after a storm so holds the storm's peak: measured
// with make bench's idle scenario (19,000 connections, each subscribed),
// Shoal kept 1,196 bytes per connection after all had gone, as much as
// while they were there; on a connected idle broker part of the RSS was
// the connects' garbage.
//
// releaser gives it back once the storm has passed: when at least
// stormChurn connections have come or gone since the last release and
// none in the last quietSpell, it collects and returns every free page to
// the system (debug.FreeOSMemory). That is a full collection, a few
// milliseconds of CPU for tens of megabytes of heap, at most once per
// storm, and only when the broker is quiet.
type releaser struct {
	churn func() (connects, closes int64)
	free  func()
	log   zerolog.Logger

	last int64 // churn at the last release
	prev int64 // churn at the previous tick
}

// stormChurn is how many connections must come or go for a release to be
// worth a full collection; quietSpell is how long none must, for the storm
// to be over (a reconnecting fleet comes without such pauses).
const (
	stormChurn = 1000
	quietSpell = 500 * time.Millisecond
)

// tick looks at the churn once, a quietSpell after the previous look; it
// reports whether it released memory.
func (r *releaser) tick() bool {
	c, d := r.churn()
	total := c + d
	quiet := total == r.prev
	r.prev = total
	if !quiet || total-r.last < stormChurn {
		return false
	}
	r.free()
	r.last = total
	return true
}

// run ticks every quietSpell until ctx ends.
func (r *releaser) run(ctx context.Context) {
	t := time.NewTicker(quietSpell)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		before, start := heapBytes(), time.Now()
		if r.tick() {
			r.log.Debug().Int64("heap_before_bytes", before).Int64("heap_after_bytes", heapBytes()).
				Float64("took_ms", float64(time.Since(start).Microseconds())/1000).
				Msg("connection storm over: memory returned to the system")
		}
	}
}

// freeOSMemory is debug.FreeOSMemory: a collection, then every free page
// back to the system.
func freeOSMemory() { debug.FreeOSMemory() }

// heapBytes is the heap memory the runtime holds from the system now
// (objects, free space and unused spans not yet released).
func heapBytes() int64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/free:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
	metrics.Read(s)
	var n int64
	for _, x := range s {
		if x.Value.Kind() == metrics.KindUint64 {
			n += int64(x.Value.Uint64())
		}
	}
	return n
}
