package broker

import (
	"time"

	"github.com/shoalmq/shoal/eventloop"
	"github.com/shoalmq/shoal/internal/counters"
	"github.com/shoalmq/shoal/internal/dispatch"
	"github.com/shoalmq/shoal/internal/sys"
	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/session"
)

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
	for i := range b.ploops { // one per loop, like the connections' counters
		lc := b.conns.LoopCounters(i)
		connects += lc.Connects.Load()
		for r := range lc.Closes {
			closes += lc.Closes[r].Load()
		}
	}
	return connects, closes
}

// Stats returns the broker's figures now. Safe for concurrent use; it
// locks every session in turn for the in-flight and queue gauges, so call
// it every few seconds, not per message.
func (b *Broker) Stats() Stats {
	cs := b.conns.Counters()
	st := Stats{
		Version:        b.cfg.Version,
		Started:        b.startedAt,
		MaxConnections: b.limits().MaxConnections,
		Subscriptions:  b.subs.Count(),
		Disconnects:    make(map[string]int64, counters.CloseReasons),
		Drops: map[string]int64{
			"queue_full":  b.disp.QueueFull.Load(),
			"expired":     cs.DropsExpired.Load(),
			"too_large":   cs.DropsTooLarge.Load(),
			"not_stored":  cs.DropsNotStored.Load(),
			"slow_client": cs.DropsSlowClient.Load(),
			"router_full": cs.DropsWorkerFull.Load() + b.expiry.RouterFull.Load(),
			// Refused publishes: today those to $SYS/broker/...
			// Refused publishes ($SYS, acl_file) and messages a
			// subscriber may not read.
			"unauthorized": cs.DropsUnauthorized.Load(),
			"topic_limit":  cs.DropsTopicLimit.Load(),
		},
		Refused: map[string]int64{
			"max_connections":     cs.RefusedConnections.Load(),
			"closed_at_accept":    cs.ConnsRejected.Load(),
			"connect_rate":        cs.RefusedRate.Load(),
			"client_id_length":    cs.RefusedClientID.Load(),
			"login":               cs.RefusedLogin.Load(),
			"login_busy":          cs.RefusedLoginBusy.Load(),
			"subscription":        cs.RefusedSubs.Load(),
			"publish_rate_pauses": cs.PublishThrottled.Load(),
		},
	}
	st.RetainedUser, st.RetainedSys = b.retained.Count()
	st.Retained = st.RetainedUser + st.RetainedSys
	if !b.startedAt.IsZero() {
		st.Uptime = time.Since(b.startedAt)
	}
	for r := counters.CloseReason(0); r < counters.CloseReasons; r++ {
		st.Disconnects[r.String()] = 0
	}
	var els []*eventloop.Loop
	if b.engine != nil {
		els = b.engine.Loops() // empty until the engine has booted
	}
	for i := range b.ploops {
		lc := b.conns.LoopCounters(i)
		for q := range 3 {
			st.MessagesReceived[q] += lc.MsgsIn[q].Load()
			st.MessagesSent[q] += lc.MsgsOut[q].Load()
		}
		st.ClientsConnected += lc.Connected.Load()
		st.Connects += lc.Connects.Load()
		for r := counters.CloseReason(0); r < counters.CloseReasons; r++ {
			st.Disconnects[r.String()] += lc.Closes[r].Load()
		}
		l := LoopStats{Connections: int(lc.Connected.Load())}
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
	if b.persist.On() {
		st.Store = map[string]int64{"unreadable_records": b.persist.Corrupt.Load()}
		st.StoreSync = newSyncStats()
		for _, pl := range b.ploops {
			st.StoreSync.add(&pl.Syncs)
		}
		st.StoreSync.add(&b.persist.Relaxed)
	}
	return st
}

// sysLoop publishes the $SYS topics (package sys) every SysInterval until
// the broker stops, as retained QoS 0 messages routed like any PUBLISH.
func (b *Broker) sysLoop() {
	sys.Run(b.stop, b.cfg.SysInterval, b.sysFigures, func(topic, value string) {
		m := router.NewMessage([]byte(sys.Prefix+topic), []byte(value), nil, nil, 0, true, 0, nil)
		if !b.disp.Submit(dispatch.Job{Msg: m}) {
			m.Release() // the router is full: the next round will do
		}
	})
}

// sysFigures are the Stats a $SYS round publishes, and on a cluster node
// its ClusterStatus (without the owners' count).
func (b *Broker) sysFigures() sys.Figures {
	st := b.Stats()
	f := sys.Figures{
		Version:          st.Version,
		Uptime:           st.Uptime,
		ClientsConnected: st.ClientsConnected,
		Sessions:         int64(st.Sessions),
		MessagesIn:       st.MessagesIn(),
		MessagesOut:      st.MessagesOut(),
		Inflight:         int64(st.Inflight),
		Queued:           int64(st.Queued),
		BytesReceived:    st.BytesReceived,
		BytesSent:        st.BytesSent,
		Subscriptions:    int64(st.Subscriptions),
		Retained:         int64(st.Retained),
		Connects:         st.Connects,
	}
	if cs := b.clusterStatus(b.ctx, false); cs.Traffic != nil {
		f.Cluster = &sys.ClusterFigures{Name: cs.Name, Node: cs.Node, Leader: cs.MetaLeader, NodesUp: int64(cs.NodesUp()),
			Sent: cs.Traffic.MessagesSent, Received: cs.Traffic.MessagesReceived, Dropped: cs.Traffic.MessagesDropped, NotStored: cs.Traffic.MessagesNotStored,
			Failed: cs.Traffic.RetainedFailures, PeerSubs: int64(cs.Traffic.PeerSubscriptions)}
	}
	return f
}
