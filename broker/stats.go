package broker

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/shoalmq/shoal/eventloop"
	"github.com/shoalmq/shoal/session"
)

// Counters live per loop: a loop counts its packets in plain fields and
// publishes them to atomics once per event (publishCounters, before its
// output is written), so that nothing shared is touched per packet. Stats
// sums them when asked.

// closeReason says why a connected client's connection ended.
type closeReason uint8

const (
	closeNetwork      closeReason = iota // the connection was lost, no DISCONNECT
	closeNormal                          // DISCONNECT 0x00
	closeWithWill                        // DISCONNECT 0x04
	closeTakeover                        // another connection took the session
	closeKeepAlive                       // keep-alive expired
	closeSlowConsumer                    // slow-consumer policy
	closeProtocol                        // malformed packet or protocol violation
	closeShutdown                        // the broker is stopping
	closeAdmin                           // kicked through the admin API
	closeReasons
)

// String is the reason's label in metrics and the admin API.
func (r closeReason) String() string {
	return [...]string{"network", "normal", "disconnect_with_will", "takeover", "keepalive",
		"slow_consumer", "protocol_error", "shutdown", "admin"}[r]
}

// reasonOf classifies the error a connection is closed with.
func reasonOf(err error) closeReason {
	switch {
	case errors.Is(err, errKeepAlive):
		return closeKeepAlive
	case errors.Is(err, errSuperseded):
		return closeTakeover
	case errors.Is(err, errSlowConsumer), errors.Is(err, errOutputBacklog):
		return closeSlowConsumer
	case errors.Is(err, errAdminKick):
		return closeAdmin
	}
	return closeProtocol
}

// loopCounters are one loop's counters.
type loopCounters struct {
	// Loop goroutine only, between publishes.
	pubIn, pubOut [3]int64

	// Published: read by Stats.
	msgsIn, msgsOut [3]atomic.Int64
	connected       atomic.Int64 // clients connected on the loop
	connects        atomic.Int64 // CONNECT packets taken
	closes          [closeReasons]atomic.Int64
	syncs           syncHistogram // the loop's syncing store commits (synctime.go)
}

// publishCounters moves the loop's packet counts to where Stats reads
// them. Loop goroutine only.
func (lc *loopCounters) publishCounters() {
	for q := range lc.pubIn {
		if n := lc.pubIn[q]; n != 0 {
			lc.msgsIn[q].Add(n)
			lc.pubIn[q] = 0
		}
		if n := lc.pubOut[q]; n != 0 {
			lc.msgsOut[q].Add(n)
			lc.pubOut[q] = 0
		}
	}
}

// Stats is a snapshot of the broker's counters (since Start) and gauges.
type Stats struct {
	Version          string        `json:"version"`
	Started          time.Time     `json:"started"`
	Uptime           time.Duration `json:"uptime_ns"`
	ClientsConnected int64         `json:"clients_connected"`
	// MaxConnections is the max_connections limit in force, resolved
	// (the file limit less 256 when the setting is 0).
	MaxConnections int `json:"max_connections"`
	// Sessions counts every session, connected or not: Mosquitto's
	// clients/total.
	Sessions      int `json:"sessions"`
	Subscriptions int `json:"subscriptions"`
	// Retained counts every retained message. RetainedSys counts those on
	// topics starting with '$' (the broker's own $SYS topics), which a
	// subscription to "#" does not receive [MQTT-4.7.2-1]; RetainedUser
	// the others, as many as /api/retained?filter=%23 lists.
	Retained     int `json:"retained"`
	RetainedUser int `json:"retained_user"`
	RetainedSys  int `json:"retained_sys"`
	Inflight     int `json:"inflight"` // QoS 1/2 messages sent, not yet acknowledged
	Queued       int `json:"queued"`   // QoS 1/2 messages waiting in session queues
	// MessagesReceived and MessagesSent count PUBLISH packets from and to
	// clients, by QoS.
	MessagesReceived [3]int64         `json:"messages_received"`
	MessagesSent     [3]int64         `json:"messages_sent"`
	BytesReceived    int64            `json:"bytes_received"`
	BytesSent        int64            `json:"bytes_sent"`
	Connects         int64            `json:"connects"`
	Disconnects      map[string]int64 `json:"disconnects"` // by reason
	Drops            map[string]int64 `json:"drops"`       // by cause
	// Refused counts what the limits and access control turned away, by
	// cause: connections, logins, subscriptions, and publishers paused
	// by publish_rate.
	Refused map[string]int64 `json:"refused"`
	Loops   []LoopStats      `json:"loops"`
	Store   map[string]int64 `json:"store,omitempty"`
	// StoreSync is how long store syncs took (nil with persistence off).
	StoreSync *SyncStats `json:"store_sync,omitempty"`
}

// LoopStats are one event loop's figures.
type LoopStats struct {
	Connections int   `json:"connections"`
	Events      int64 `json:"events"` // read bursts, wake-ups and ticks handled
	BytesIn     int64 `json:"bytes_in"`
	BytesOut    int64 `json:"bytes_out"`
}

// MessagesIn is the total of MessagesReceived.
func (s *Stats) MessagesIn() int64 {
	return s.MessagesReceived[0] + s.MessagesReceived[1] + s.MessagesReceived[2]
}

// MessagesOut is the total of MessagesSent.
func (s *Stats) MessagesOut() int64 { return s.MessagesSent[0] + s.MessagesSent[1] + s.MessagesSent[2] }

// Churn is how many clients have connected (CONNECT taken) and how many
// have gone since Start, summed over the loops' counters: cheap, where
// Stats visits every session. Safe for concurrent use.
func (b *Broker) Churn() (connects, closes int64) {
	for _, ls := range b.loops {
		connects += ls.ctr.connects.Load()
		for r := range ls.ctr.closes {
			closes += ls.ctr.closes[r].Load()
		}
	}
	return connects, closes
}

// Stats returns the broker's figures now. Safe for concurrent use; it
// locks every session in turn for the in-flight and queue gauges, so call
// it every few seconds, not per message.
func (b *Broker) Stats() Stats {
	st := Stats{
		Version:        b.cfg.Version,
		Started:        b.startedAt,
		MaxConnections: b.limits().MaxConnections,
		Subscriptions:  b.subs.Count(),
		Disconnects:    make(map[string]int64, closeReasons),
		Drops: map[string]int64{
			"queue_full":  b.stats.dropsQueueFull.Load(),
			"expired":     b.stats.dropsExpired.Load(),
			"too_large":   b.stats.dropsTooLarge.Load(),
			"slow_client": b.stats.dropsSlowClient.Load(),
			"router_full": b.stats.dropsWorkerFull.Load(),
			// Refused publishes: today those to $SYS/broker/...
			// Refused publishes ($SYS, acl_file) and messages a
			// subscriber may not read.
			"unauthorized": b.stats.dropsUnauthorized.Load(),
			"topic_limit":  b.stats.dropsTopicLimit.Load(),
		},
		Refused: map[string]int64{
			"max_connections":     b.stats.refusedConnections.Load(),
			"closed_at_accept":    b.stats.connsRejected.Load(),
			"connect_rate":        b.stats.refusedRate.Load(),
			"client_id_length":    b.stats.refusedClientID.Load(),
			"login":               b.stats.refusedLogin.Load(),
			"login_busy":          b.stats.refusedLoginBusy.Load(),
			"subscription":        b.stats.refusedSubs.Load(),
			"publish_rate_pauses": b.stats.publishThrottled.Load(),
		},
	}
	st.RetainedUser, st.RetainedSys = b.retained.Count()
	st.Retained = st.RetainedUser + st.RetainedSys
	if !b.startedAt.IsZero() {
		st.Uptime = time.Since(b.startedAt)
	}
	for r := closeReason(0); r < closeReasons; r++ {
		st.Disconnects[r.String()] = 0
	}
	var els []*eventloop.Loop
	if b.engine != nil {
		els = b.engine.Loops() // empty until the engine has booted
	}
	for i, ls := range b.loops {
		lc := &ls.ctr
		for q := range 3 {
			st.MessagesReceived[q] += lc.msgsIn[q].Load()
			st.MessagesSent[q] += lc.msgsOut[q].Load()
		}
		st.ClientsConnected += lc.connected.Load()
		st.Connects += lc.connects.Load()
		for r := closeReason(0); r < closeReasons; r++ {
			st.Disconnects[r.String()] += lc.closes[r].Load()
		}
		l := LoopStats{Connections: int(lc.connected.Load())}
		if i < len(els) {
			l.Events, l.BytesIn, l.BytesOut = els[i].Events(), els[i].BytesIn(), els[i].BytesOut()
		}
		st.BytesReceived += l.BytesIn
		st.BytesSent += l.BytesOut
		st.Loops = append(st.Loops, l)
	}
	// Session gauges: gather, then lock each (never under the store's
	// shard lock: LOCKORDER).
	var all []*session.Session
	b.sessions.Range(func(s *session.Session) bool {
		all = append(all, s)
		return true
	})
	st.Sessions = len(all)
	for _, s := range all {
		s.Lock()
		st.Inflight += s.InflightLen()
		st.Queued += s.QueueLen()
		s.Unlock()
	}
	if b.store != nil {
		st.Store = map[string]int64{"unreadable_records": b.stats.storeCorrupt.Load()}
		st.StoreSync = newSyncStats()
		for _, ls := range b.loops {
			st.StoreSync.add(&ls.ctr.syncs)
		}
		st.StoreSync.add(&b.stats.relaxedSyncs)
	}
	return st
}
