package bridge

import (
	"context"
	"errors"
	"net"

	"github.com/rs/zerolog"
)

// Local is the broker the bridges belong to, as they need it:
// broker.Broker satisfies it.
type Local interface {
	// DialInternal opens an MQTT connection to the broker from inside the
	// process, admitted without credentials.
	DialInternal(name string) (net.Conn, error)
	// SessionQueue reports the messages queued for a session and those
	// its full queue dropped.
	SessionQueue(clientID string) (queued int, dropped uint64, ok bool)
}

// Bridges runs every Connection of a Config. Its methods are safe for
// concurrent use.
type Bridges struct {
	links []*link
	local Local
}

// New checks cfg and prepares its bridges; Start starts them.
func New(cfg Config, local Local, lg zerolog.Logger) (*Bridges, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &Bridges{local: local}
	for _, cn := range cfg.Connections {
		cn, _ = cn.withDefaults() // checked by Validate
		b.links = append(b.links, newLink(cn, local, lg))
	}
	return b, nil
}

// Start opens each bridge's local session, then starts its loop, which
// connects to the remote broker and keeps doing so. The local broker must
// be started. An error (the local broker refused a session) stops the
// bridges already started.
func (b *Bridges) Start() error {
	for i, l := range b.links {
		if err := l.connectLocal(); err != nil {
			for _, started := range b.links[:i] {
				close(started.stop)
				<-started.done
			}
			return err
		}
		go l.run()
	}
	return nil
}

// Close stops every bridge: each says "0" on its notification topics and
// disconnects from both brokers, keeping its sessions on both. It waits
// for the loops to end, or for ctx.
func (b *Bridges) Close(ctx context.Context) error {
	for _, l := range b.links {
		close(l.stop)
	}
	var err error
	for _, l := range b.links {
		select {
		case <-l.done:
		case <-ctx.Done():
			err = errors.Join(err, ctx.Err())
		}
	}
	return err
}

// Stats is the state of one bridge, for the admin API and metrics.
type Stats struct {
	Name string `json:"name"`
	// State is "up", "connecting" or "down".
	State string `json:"state"`
	// Address is the remote broker's address in use, or last tried.
	Address string `json:"address"`
	// Connects counts the connections to the remote broker that succeeded.
	Connects uint64 `json:"connects"`
	// ForwardedOut and ForwardedIn count the messages the bridge delivered
	// to the remote broker and to the local one: acknowledged (QoS 1/2) or
	// sent (QoS 0).
	ForwardedOut uint64 `json:"forwarded_out"`
	ForwardedIn  uint64 `json:"forwarded_in"`
	// Holding is the QoS 1/2 messages the bridge has taken from the local
	// broker for the remote one and not yet seen acknowledged: at most
	// the local in-flight window (64), while the remote is down.
	Holding int64 `json:"holding"`
	// Queued is the messages waiting in the bridge's session on the local
	// broker behind them, bounded by max_queued and max_queued_bytes.
	Queued int `json:"queued"`
	// Dropped counts what was lost on the way: QoS 0 messages while the
	// link was down or backed up, messages larger than a broker takes,
	// and QoS 1/2 messages the full local session queue dropped (by
	// queue_policy).
	Dropped uint64 `json:"dropped"`
	// Refused counts messages a broker acknowledged with a failure code
	// (MQTT 5), such as not authorized: not sent again.
	Refused   uint64 `json:"refused"`
	LastError string `json:"last_error,omitempty"`
}

// Stats returns the state of every bridge, in configuration order.
func (b *Bridges) Stats() []Stats {
	out := make([]Stats, 0, len(b.links))
	for _, l := range b.links {
		st := Stats{
			Name:         l.cn.Name,
			State:        [...]string{"down", "connecting", "up"}[l.stats.state.Load()],
			Connects:     l.stats.connects.Load(),
			ForwardedOut: l.stats.forwardedOut.Load(),
			ForwardedIn:  l.stats.forwardedIn.Load(),
			Holding:      l.stats.holding.Load(),
			Dropped:      l.stats.dropped.Load(),
			Refused:      l.stats.refused.Load(),
		}
		if a := l.stats.addr.Load(); a != nil {
			st.Address = *a
		}
		if e := l.stats.lastErr.Load(); e != nil {
			st.LastError = *e
		}
		if q, d, ok := b.local.SessionQueue(l.cn.LocalClientID); ok {
			st.Queued = q
			st.Dropped += d
		}
		out = append(out, st)
	}
	return out
}
