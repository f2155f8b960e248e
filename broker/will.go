package broker

import (
	"time"

	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/session"
	"github.com/shoalmq/shoal/store"
)

// publishWill publishes a will after an abnormal close [MQTT-3.1.2-8]. With
// a Will Delay Interval it waits for the shorter of the delay and the
// session expiry, and is dropped if the client reconnected to the session
// in the meantime [MQTT-3.1.3-9]. It takes over will's reference.
func (b *Broker) publishWill(s *session.Session, will *router.Message, gen uint32, delay, expiry uint32) {
	wait := time.Duration(min(delay, expiry)) * time.Second
	if wait == 0 {
		b.sendWill(will)
		return
	}
	time.AfterFunc(wait, func() {
		var resumed bool
		b.withBG(func(w store.Writer) {
			s.Lock()
			resumed = s.Gen != gen
			if !resumed && s.StoredLocked() {
				b.storeSessionLocked(w, s, nil, 0) // published: not again after a restart
			}
			s.Unlock()
		})
		if resumed || b.closed.Load() { // submit after Close is safe: queues are never closed
			will.Release()
			return
		}
		b.sendWill(will)
	})
}

// sendWill routes a will like any PUBLISH. Its Message Expiry Interval,
// kept relative until now, starts counting when it is published
// (MQTT 5 section 3.1.3.2.4).
func (b *Broker) sendWill(will *router.Message) {
	if will.Expiry != 0 {
		will.Expiry += time.Now().UnixNano()
	}
	if !b.submit(job{m: will}) {
		b.stats.dropsWorkerFull.Add(1)
		will.Release()
	}
}
