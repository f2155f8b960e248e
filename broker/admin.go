package broker

import (
	"slices"
	"strings"
	"time"

	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/conn"
	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/session"
	"github.com/shoalmq/shoal/store"
)

// What the admin API (package admin) asks of a running broker. Every
// method here is safe for concurrent use; each locks the sessions it reads,
// one at a time.

// ClientInfo describes one session and, if connected, its connection.
type ClientInfo struct {
	ID        string `json:"id"`
	Connected bool   `json:"connected"`
	// Address, Protocol, KeepAlive, Listener ("tcp", "tls", "ws" or
	// "wss") and CertIdentity (of a verified client certificate, by
	// tls_identity) describe the connection; empty when offline.
	Address       string             `json:"address,omitempty"`
	Protocol      string             `json:"protocol,omitempty"` // "3.1", "3.1.1" or "5.0"
	KeepAlive     uint16             `json:"keep_alive,omitempty"`
	Listener      string             `json:"listener,omitempty"`
	CertIdentity  string             `json:"cert_identity,omitempty"`
	Expiry        uint32             `json:"session_expiry"` // seconds; 4294967295: never
	Subscriptions []SubscriptionInfo `json:"subscriptions"`
	Inflight      int                `json:"inflight"`
	Queued        int                `json:"queued"`
}

// SubscriptionInfo is one subscription.
type SubscriptionInfo struct {
	ClientID          string `json:"client_id"`
	Filter            string `json:"filter"`
	QoS               byte   `json:"qos"`
	NoLocal           bool   `json:"no_local,omitempty"`
	RetainAsPublished bool   `json:"retain_as_published,omitempty"`
	RetainHandling    byte   `json:"retain_handling,omitempty"`
	SubscriptionID    uint32 `json:"subscription_id,omitempty"`
}

// RetainedInfo is one retained message.
type RetainedInfo struct {
	Topic   string `json:"topic"`
	Payload []byte `json:"payload"` // base64 in JSON
	QoS     byte   `json:"qos"`
}

// sessionsSorted returns every session, by client id.
func (b *Broker) sessionsSorted() []*session.Session {
	var all []*session.Session
	b.sessions.Range(func(s *session.Session) bool {
		all = append(all, s)
		return true
	})
	slices.SortFunc(all, func(x, y *session.Session) int { return strings.Compare(x.ClientID(), y.ClientID()) })
	return all
}

// infoLocked describes s. s.mu must be held.
func infoLocked(s *session.Session) ClientInfo {
	ci := ClientInfo{ID: s.ClientID(), Expiry: s.Expiry, Inflight: s.InflightLen(), Queued: s.QueueLen(),
		Subscriptions: []SubscriptionInfo{}}
	if p, ok := conn.PeerOf(s.OwnerLocked()); ok {
		ci.Connected = true
		ci.Address, ci.Protocol, ci.KeepAlive = p.Address, p.Protocol, p.KeepAlive
		ci.Listener, ci.CertIdentity = p.Listener, p.CertIdentity
	}
	for _, sub := range s.SubsLocked() {
		ci.Subscriptions = append(ci.Subscriptions, subInfo(s.ClientID(), sub))
	}
	return ci
}

func subInfo(id string, sub session.Sub) SubscriptionInfo {
	return SubscriptionInfo{ClientID: id, Filter: sub.Filter, QoS: sub.Opts.QoS, NoLocal: sub.Opts.NoLocal,
		RetainAsPublished: sub.Opts.RetainAsPublished, RetainHandling: sub.Opts.RetainHandling, SubscriptionID: sub.Opts.SubID}
}

// Clients describes every session, by client id.
func (b *Broker) Clients() []ClientInfo {
	all := b.sessionsSorted()
	out := make([]ClientInfo, 0, len(all))
	for _, s := range all {
		s.Lock()
		if !s.EndedLocked() {
			out = append(out, infoLocked(s))
		}
		s.Unlock()
	}
	return out
}

// Client describes client id's session; false if there is none.
func (b *Broker) Client(id string) (ClientInfo, bool) {
	s := b.sessions.Get(id)
	if s == nil {
		return ClientInfo{}, false
	}
	s.Lock()
	defer s.Unlock()
	if s.EndedLocked() {
		return ClientInfo{}, false
	}
	return infoLocked(s), true
}

// Subscriptions lists every subscription, by client id then filter.
func (b *Broker) Subscriptions() []SubscriptionInfo {
	out := []SubscriptionInfo{}
	for _, s := range b.sessionsSorted() {
		s.Lock()
		for _, sub := range s.SubsLocked() {
			out = append(out, subInfo(s.ClientID(), sub))
		}
		s.Unlock()
	}
	slices.SortStableFunc(out, func(x, y SubscriptionInfo) int {
		if c := strings.Compare(x.ClientID, y.ClientID); c != 0 {
			return c
		}
		return strings.Compare(x.Filter, y.Filter)
	})
	return out
}

// Kick disconnects client id's connection (MQTT 5: DISCONNECT 0x98
// Administrative action); its session stays as its expiry says. It reports
// whether the client was connected.
func (b *Broker) Kick(id string) bool { return b.conns.Kick(id) }

// RetainedMessages lists the retained messages whose topics match filter
// ("#" for all but the $-topics), by topic.
func (b *Broker) RetainedMessages(filter string) []RetainedInfo {
	out := []RetainedInfo{}
	now := time.Now().UnixNano()
	b.retained.Match(filter, func(m *router.Message) bool {
		if !m.Expired(now) {
			out = append(out, RetainedInfo{Topic: string(m.Topic), Payload: append([]byte(nil), m.Payload...), QoS: m.QoS})
		}
		return true
	})
	slices.SortFunc(out, func(x, y RetainedInfo) int { return strings.Compare(x.Topic, y.Topic) })
	return out
}

// DeleteRetained removes topic's retained message, from the store too. It
// reports whether there was one.
func (b *Broker) DeleteRetained(topic string) bool {
	if codec.CheckTopicName([]byte(topic)) != nil {
		return false // not a topic name: no message can have it
	}
	found := false
	b.retained.Match(topic, func(m *router.Message) bool {
		found = found || string(m.Topic) == topic
		return !found
	})
	if !found {
		return false
	}
	clear := router.NewMessage([]byte(topic), nil, nil, nil, 0, true, 0, nil)
	b.retained.Set(clear) // an empty payload removes [MQTT-3.3.1-6]
	clear.Release()
	b.persist.WithBG(func(w store.Writer) {
		if w != nil {
			w.DeleteRetained([]byte(topic))
			// Unvouched (a node that does not serve): it is on this
			// node's disk, and nothing waits for it but the API's answer.
			b.persist.CommitSync(w)
		}
	})
	return true
}
