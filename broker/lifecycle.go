package broker

import "github.com/rs/zerolog"

// Connection lifecycle log lines — connected, disconnected (with the
// reason), taken over, authentication refused — at info level, rate-limited
// per loop so that a reconnect storm cannot flood the log (and none at
// all when LogConnections is off): a burst of
// lifecycleBurst lines, then lifecycleRate a second; what is held back is
// counted and reported once a tick. Loop goroutine only: no locks.
const (
	lifecycleBurst = 100
	lifecycleRate  = 20 // lines per second, per loop
)

type lifecycleLog struct {
	tokens     float64
	last       int64 // Unix ns of the last refill
	suppressed int
}

// event returns a log event for one lifecycle line at now, or nil when the
// line is not logged (level above info, or over the rate).
func (b *Broker) lifecycle(ls *loopState, now int64) *zerolog.Event {
	if !b.cfg.LogConnections || !b.lg().Info().Enabled() {
		return nil
	}
	ll := &ls.life
	if ll.last == 0 {
		ll.tokens = lifecycleBurst
	} else {
		ll.tokens = min(lifecycleBurst, ll.tokens+float64(now-ll.last)/1e9*lifecycleRate)
	}
	ll.last = now
	if ll.tokens < 1 {
		ll.suppressed++
		return nil
	}
	ll.tokens--
	return b.lg().Info()
}

// reportSuppressed logs how many lifecycle lines loop ls held back since
// the last report. Called on the loop's tick.
func (b *Broker) reportSuppressed(ls *loopState) {
	if n := ls.life.suppressed; n > 0 {
		ls.life.suppressed = 0
		b.lg().Warn().Int("lines", n).Msg("connection events not logged: over the rate limit")
	}
}
