package cluster

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoalmq/shoal/internal/dispatch"
	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/store"
)

// A session that moves from one node to another (its client connects
// elsewhere) changes where its messages must go, and the other nodes learn
// that only through the interest bucket, a little later; meanwhile a
// publisher's node sends each message to the nodes whose interest it
// knows. So, for a while, a message for the session may reach only the
// node it left, or both. A handover is the window in which both keep it
// whole:
//
//   - The node the session left passes on what still comes for it there:
//     a rescuer keeps a moved session's subscriptions in its table
//     (movedLinger), and sends the messages they match to the new node
//     in the forward stream, in frames addressed to the session alone
//     (the frame's "to", dispatch.Job.To).
//   - The new node holds what is addressed to a session while a claim of
//     it is under way here (Sessions.park), and routes it once the claim
//     ends, the session adopted.
//   - A message may thus come twice, by the node left and straight from
//     the publisher's node. Every message has an identity from the node
//     that routed it first (router.Message.Origin, which the frames
//     carry); for handoverWindow after a session arrives, the new node
//     remembers the Origins of the QoS 2 messages it delivered to it
//     (Sessions.First, dispatch.Once) and does not deliver one twice.
//     QoS 1 may come twice, as MQTT allows.

// The handover's bounds: how long a rescuer passes on a moved session's
// messages, how long the new node remembers what it delivered to it, and
// how much.
const (
	movedLinger     = 30 * time.Second
	handoverWindow  = 2 * movedLinger
	handoverSeenMax = 1 << 16
	// parkMax bounds the messages held for one session being claimed;
	// past it they are routed at once (and miss the session if it is
	// not here yet).
	parkMax = 1 << 14
)

// arrival is a session that moved to this node lately: the Origins of
// the QoS 2 messages delivered to it since, until the window ends.
type arrival struct {
	until time.Time
	seen  map[uint64]struct{}
}

// arrivals are the sessions in their handover window on this node.
type arrivals struct {
	mu     sync.Mutex
	m      map[string]*arrival
	active atomic.Int32 // len(m), read without mu
	pruned time.Time
}

// arrived opens clientID's handover window, now, with the Origins of the
// QoS 2 messages the session brought (its bundle's): those may come
// again, straight from the publisher's node.
func (a *arrivals) arrived(clientID string, now time.Time, brought []uint64) {
	seen := make(map[uint64]struct{}, len(brought))
	for _, o := range brought[:min(len(brought), handoverSeenMax)] {
		seen[o] = struct{}{}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = map[string]*arrival{}
	}
	a.pruneLocked(now)
	a.m[clientID] = &arrival{until: now.Add(handoverWindow), seen: seen}
	a.active.Store(int32(len(a.m)))
}

// qos2Origins returns the Origins of the QoS 2 deliveries of bundle, an
// encoded store.Bundle.
func qos2Origins(bundle []byte) []uint64 {
	var b store.Bundle
	if store.DecodeBundle(bundle, &b) != nil {
		return nil
	}
	var out []uint64
	for i := range b.Deliveries {
		if d := &b.Deliveries[i]; d.QoS == 2 && d.Msg.Origin != 0 {
			out = append(out, d.Msg.Origin)
		}
	}
	return out
}

// pruneLocked forgets the windows that ended, at most once a second.
func (a *arrivals) pruneLocked(now time.Time) {
	if now.Sub(a.pruned) < time.Second {
		return
	}
	a.pruned = now
	for id, ar := range a.m {
		if now.After(ar.until) {
			delete(a.m, id)
		}
	}
	a.active.Store(int32(len(a.m)))
}

// Active implements dispatch.Once: whether a session is in its handover
// window here.
func (s *Sessions) Active() bool { return s.arrivals.active.Load() > 0 }

// First implements dispatch.Once: whether the QoS 2 message of origin is
// delivered to clientID's session for the first time in its handover
// window (always, outside one, or for a message of no known origin).
func (s *Sessions) First(clientID string, origin uint64) bool {
	if origin == 0 {
		return true
	}
	a := &s.arrivals
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	a.pruneLocked(now)
	ar := a.m[clientID]
	if ar == nil || now.After(ar.until) {
		return true
	}
	if _, dup := ar.seen[origin]; dup {
		return false
	}
	if len(ar.seen) < handoverSeenMax {
		ar.seen[origin] = struct{}{}
	}
	return true
}

// park holds j, a message addressed to one session, if a claim of that
// session is under way here: routed now, it would find no session yet.
// The claim's end routes it (unpark).
func (s *Sessions) park(j dispatch.Job) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, claiming := s.claiming[j.To]; !claiming {
		return false
	}
	if len(s.parked[j.To]) >= parkMax {
		return false
	}
	s.parked[j.To] = append(s.parked[j.To], j)
	return true
}

// unpark routes jobs, held while their session was claimed here (park);
// what the node, stopping, does not take, the stream sends again.
func (s *Sessions) unpark(jobs []dispatch.Job) {
	route := s.route.Load()
	for i, j := range jobs {
		if route == nil || !(*route)(j) {
			for _, k := range jobs[i:] {
				k.Msg.Release()
			}
			return
		}
	}
}

// Handover makes ps route, and the Sessions hold while a claim is under
// way (park), the messages addressed to one session. Call it before
// Start.
func (ps *Peers) Handover(s *Sessions) {
	ps.sessions = s
	route := func(j dispatch.Job) bool { return ps.disp.SubmitWait(j, ps.stop) }
	s.route.Store(&route)
}

// moved is a session a rescuer handed over, in its table for
// movedLinger: what its subscriptions match goes on to the node that
// took it.
type moved struct {
	id      string
	to      string // the node that took it
	until   time.Time
	filters []string
}

func (mv *moved) ClientID() string { return mv.id }

// passOn sends frames, a batch of frames for node, into node's subject of
// the forward stream, and waits for the stream to take it.
func (ps *Peers) passOn(ctx context.Context, node string, frames []byte) error {
	if ps.fwd == nil {
		return fmt.Errorf("cluster: passing messages on to %s: not reading the forward stream", node)
	}
	if _, err := ps.fwd.js.Publish(ctx, forwardSubject(node), frames); err != nil {
		return fmt.Errorf("cluster: passing messages on to %s: %w", node, err)
	}
	return nil
}

// appendBatchFrame appends m's frame, for group or for the session to, to
// a batch (with its length, as countFrames reads it).
func appendBatchFrame(dst []byte, m *router.Message, group, to string, now int64) []byte {
	at := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = appendFrameTo(dst, m, group, to, now)
	binary.BigEndian.PutUint32(dst[at:], uint32(len(dst)-at-4))
	return dst
}
