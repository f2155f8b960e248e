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
//   - The node the session left passes on what still comes for it there,
//     for movedLinger: the session's own node, handing it over, leaves a
//     stand-in in its table (leaving, a dispatch.Mover); a rescuer keeps
//     the subscriptions of a session it kept for a gone node in its own
//     table (moved). Each sends what they match to the new node in the
//     forward stream, in frames addressed to the session alone (the
//     frame's "to", dispatch.Job.To).
//   - The new node holds what is addressed to a session while a claim of
//     it is under way here (Sessions.park), and routes it once the claim
//     ends, the session adopted.
//   - A message may thus come twice, by the node left and straight from
//     the publisher's node. Every message has an identity from the node
//     that routed it first (router.Message.Origin, which the frames
//     carry); for handoverWindow after a session arrives, the new node
//     remembers the Origins of the QoS 1 and 2 messages it delivered to
//     it, and those its bundle brought (Sessions.First, dispatch.Once),
//     and does not deliver one twice.

// The handover's bounds: how long a rescuer passes on a moved session's
// messages, how long the new node remembers what it delivered to it, and
// how much.
const (
	// movedLinger is long beside the time the other nodes take to apply
	// the new node's interest (milliseconds) and to route what they had
	// in hand; a node that applies it later (cut off meanwhile) may still
	// send the old one what nobody passes on.
	movedLinger     = 10 * time.Second
	handoverWindow  = 3 * movedLinger
	handoverSeenMax = 1 << 16
	// parkMax bounds the messages held for one session being claimed;
	// past it they are routed at once (and miss the session if it is
	// not here yet).
	parkMax = 1 << 14
)

// arrival is a session that moved to this node lately: the Origins of
// the QoS 1 and 2 messages delivered to it since, until the window ends.
type arrival struct {
	until time.Time
	seen  map[uint64]struct{}
}

// arrivals are the sessions in their handover window on this node, in
// shards by client id: every QoS 1 and 2 delivery asks while any window
// is open (First), on every router worker and loop at once.
type arrivals struct {
	shards [arrivalShards]arrivalShard
	active atomic.Int32 // windows open, in all shards
}

const arrivalShards = 16

type arrivalShard struct {
	mu     sync.Mutex
	m      map[string]*arrival
	pruned time.Time
}

// shard returns clientID's shard (FNV-1a of its bytes).
func (a *arrivals) shard(clientID string) *arrivalShard {
	h := uint32(2166136261)
	for i := 0; i < len(clientID); i++ {
		h = (h ^ uint32(clientID[i])) * 16777619
	}
	return &a.shards[h%arrivalShards]
}

// arrived opens clientID's handover window, now, with the Origins of the
// messages the session brought (its bundle's): those may come
// again, straight from the publisher's node.
func (a *arrivals) arrived(clientID string, now time.Time, brought []uint64) {
	seen := make(map[uint64]struct{}, len(brought))
	for _, o := range brought[:min(len(brought), handoverSeenMax)] {
		seen[o] = struct{}{}
	}
	sh := a.shard(clientID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.m == nil {
		sh.m = map[string]*arrival{}
	}
	a.pruneLocked(sh, now)
	if _, open := sh.m[clientID]; !open {
		a.active.Add(1)
	}
	sh.m[clientID] = &arrival{until: now.Add(handoverWindow), seen: seen}
}

// broughtOrigins returns the Origins of the deliveries of bundle, an
// encoded store.Bundle, and of the messages its client received lately
// (Bundle.Received).
func broughtOrigins(bundle []byte) []uint64 {
	var b store.Bundle
	if store.DecodeBundle(bundle, &b) != nil {
		return nil
	}
	var out []uint64
	for i := range b.Deliveries {
		if d := &b.Deliveries[i]; d.QoS > 0 && d.Msg.Origin != 0 {
			out = append(out, d.Msg.Origin)
		}
	}
	return append(out, b.Received...)
}

// extend keeps clientID's window, if it is open, open for handoverWindow
// from now: a message passed on to the session came (a frame addressed to
// it), and more may come while the node it left, or that node's rescuer,
// reads what waited for it there — however long that takes. (A node back
// after 37 s passed on hundreds of messages the session had had straight
// from the publisher's node, past its window: 475 delivered twice.)
func (a *arrivals) extend(clientID string, now time.Time) {
	sh := a.shard(clientID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if ar := sh.m[clientID]; ar != nil && !now.After(ar.until) {
		ar.until = now.Add(handoverWindow)
	}
}

// pruneLocked forgets sh's windows that ended, at most once a second.
// sh.mu must be held.
func (a *arrivals) pruneLocked(sh *arrivalShard, now time.Time) {
	if now.Sub(sh.pruned) < time.Second {
		return
	}
	sh.pruned = now
	for id, ar := range sh.m {
		if now.After(ar.until) {
			delete(sh.m, id)
			a.active.Add(-1)
		}
	}
}

// Active implements dispatch.Once: whether a session is in its handover
// window here.
func (s *Sessions) Active() bool { return s.arrivals.active.Load() > 0 }

// First implements dispatch.Once: whether the message of origin is
// delivered to clientID's session for the first time in its handover
// window (always, outside one, or for a message of no known origin).
func (s *Sessions) First(clientID string, origin uint64) bool {
	if origin == 0 {
		return true
	}
	a := &s.arrivals
	sh := a.shard(clientID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	now := time.Now()
	a.pruneLocked(sh, now)
	ar := sh.m[clientID]
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
// session is under way here, or one made here could not read it from the
// copy (its client refused until the next): routed now, it would find no
// session yet. The claim's end routes it (unpark); the next claim's,
// after one that could not read the session.
func (s *Sessions) park(j dispatch.Job) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, claiming := s.claiming[j.To]
	if _, unread := s.unread[j.To]; !claiming && !unread {
		return false
	}
	if len(s.parked[j.To]) >= parkMax {
		return false
	}
	s.parked[j.To] = append(s.parked[j.To], j)
	return true
}

// peersOf returns the node's Peers, if Handover gave them.
func (s *Sessions) peersOf() *Peers { return s.peers.Load() }

// unpark routes jobs, held while their session was claimed here (park),
// through the Peers' router workers; what the node, stopping, does not
// take, the stream sends again.
func (s *Sessions) unpark(jobs []dispatch.Job) {
	ps := s.peersOf()
	for i, j := range jobs {
		if ps == nil || !ps.disp.SubmitWait(j, ps.stop) {
			for _, k := range jobs[i:] {
				k.Msg.Release()
			}
			return
		}
	}
}

// passParked sends jobs, messages parked for a session that node took
// while this node could not read it (Sessions.forgetUnread, giveUnread),
// on to node, addressed to the session, and acknowledges each (to its
// batch of the forward stream) once the stream took it. What the stream
// does not take it sends again, every second, until the node stops: its
// batch, sent here again, would find the session neither here nor
// parked.
func (ps *Peers) passParked(node string, jobs []dispatch.Job) {
	go func() {
		out := &nodeOut{ps: ps, subject: forwardSubject(node)}
		receipts := make([]dispatch.Receipt, len(jobs))
		for len(jobs) > 0 {
			now := time.Now().UnixNano()
			for i, j := range jobs {
				receipts[i] = out.add(j.Msg, j.Group, j.To, now)
			}
			left := jobs[:0]
			for i, j := range jobs {
				if err := receipts[i].Wait(ps.stop); err != nil {
					left = append(left, j)
					continue
				}
				ps.PassedOn.Add(1)
				j.Msg.Release()
				if j.Done != nil {
					_ = j.Done.Ack()
				}
			}
			jobs = left
			if len(jobs) == 0 {
				return
			}
			ps.log.Warn().Int("messages", len(jobs)).Str("to", node).
				Msg("cluster: messages parked for a session another node took not passed on yet; trying again")
			select {
			case <-ps.stop: // the stream sends their batches again
				for _, j := range jobs {
					j.Msg.Release()
				}
				return
			case <-time.After(time.Second):
			}
		}
	}()
}

// Handover makes ps route, and the Sessions hold while a claim is under
// way (park), the messages addressed to one session. Call it before
// Start.
func (ps *Peers) Handover(s *Sessions) {
	ps.sessions = s
	s.peers.Store(ps)
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
	fwd := ps.fwd.Load()
	if fwd == nil {
		return fmt.Errorf("cluster: passing messages on to %s: not reading the forward stream", node)
	}
	if _, err := fwd.js.Publish(ctx, forwardSubject(node), frames); err != nil {
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

// leaving is a session this node handed to another node (Sessions.give),
// in this node's table for movedLinger with its subscriptions: what they
// match here — from this node's publishers, or sent here by the nodes
// that do not know yet — goes on to the new node (a dispatch.Mover).
type leaving struct {
	ps      *Peers
	id      string
	node    string   // the new node
	out     *nodeOut // its subject of the forward stream
	filters []string
	timer   *time.Timer
	// interest: the stand-in keeps this node's interest (leave). One
	// without passes on what other nodes sent here, and what this node's
	// own publishers send only while this node does not send it to the
	// session's node by that node's interest: once it does, a second copy,
	// after the session's window, was delivered twice; before (a node
	// that has just rejoined, whose watch of the interest has not caught
	// up), nothing else takes it there (TestClusterPartition, fresh-clone
	// runs: "healed" came twice, then not at all).
	interest bool
	// linger is how long it stays once its time counts (Peers.lingerOf).
	linger time.Duration
	// subs is where it is subscribed: the Table, whose interest it
	// keeps for the other nodes, or the router table under it alone.
	subs router.Subscriptions
}

var _ dispatch.Mover = (*leaving)(nil)

func (l *leaving) ClientID() string { return l.id }

// PassOn implements dispatch.Mover: a QoS 1 or 2 message goes to the new
// node, addressed to the session.
func (l *leaving) PassOn(m *router.Message, _ *router.Match) dispatch.Receipt {
	now := time.Now().UnixNano()
	if m.QoS == 0 || m.Expired(now) {
		return nil
	}
	if !l.interest && m.From != nil && l.ps.sendsTo(l.node, m.Topic) {
		return nil // this node's publisher's: it goes there by the interest
	}
	l.ps.PassedOn.Add(1)
	return l.out.add(m, "", l.id, now)
}

// leave puts a stand-in for clientID's session, which node is taking,
// into the table with the session's filters (not its shared groups': the
// other members take the group's turns), until movedLinger is over
// or stay takes it out. It is there before the session ends here, so
// that no message falls between the two: one the session got here too
// comes to the new node in its bundle, and that node delivers it once
// (Sessions.First).
//
// With interest, the stand-in keeps this node's interest in the filters,
// so that a node that does not know the session's new node yet still
// sends here; without (a session taken elsewhere while this node was
// gone, long known where it is), it passes on only what this node's
// subject holds already.
func (ps *Peers) leave(clientID, node string, filters []string, interest bool) *leaving {
	l := &leaving{ps: ps, id: clientID, node: node, out: &nodeOut{ps: ps, subject: forwardSubject(node)}, subs: ps.table.Table,
		interest: interest, linger: ps.lingerOf(interest)}
	if interest {
		l.subs = ps.table
	}
	ps.leavingMu.Lock()
	if old := ps.leaving[clientID]; old != nil {
		ps.stayLocked(old)
	}
	if ps.leaving == nil {
		ps.leaving = map[string]*leaving{}
	}
	ps.leaving[clientID] = l
	for _, f := range filters {
		if _, _, shared := router.ParseShared(f); shared {
			continue // the group's other members take its turns
		}
		l.subs.Subscribe(l, f, router.Options{QoS: 2, RetainAsPublished: true})
		ps.table.leavingSubs.Add(1)
		l.filters = append(l.filters, f)
	}
	if ps.publishing.Load() && ps.backlog.Load() == 0 {
		l.timer = time.AfterFunc(l.linger, func() { ps.stay(l) })
	} // else its linger counts once this node routes and has read what its
	// subject held when it started (caughtUp): a stand-in put meanwhile,
	// for a session that moves while the node reads that, waits too.
	ps.leavingMu.Unlock()
	return l
}

// lingerOf is how long a stand-in stays in the table: movedLinger, and
// for one without interest (LeaveFor: a node that runs again after its
// sessions were taken elsewhere) the forward stream's ack wait more. The
// stream sends such a node again, up to its ack wait after the node runs
// again, a batch it had handed the node before it stopped: a freeze run
// lost the 9 messages of one that came back 12 s after the node did,
// 2 s after its stand-in had gone, and went to no one.
func (ps *Peers) lingerOf(interest bool) time.Duration {
	if interest {
		return movedLinger
	}
	return movedLinger + ps.ackWaitOr()
}

// backlogWait bounds how long the stand-ins put before Start wait for
// this node to read what its subject held (caughtUp).
const backlogWait = 2 * time.Minute

// caughtUp starts the lingers of the stand-ins put before Start, once:
// this node has read what its subject held when it started.
func (ps *Peers) caughtUp() {
	if ps.backlog.Swap(0) != 0 {
		ps.startLeaving()
	}
}

// startLeaving starts the lingers of the stand-ins put before Start.
func (ps *Peers) startLeaving() {
	ps.leavingMu.Lock()
	defer ps.leavingMu.Unlock()
	for _, l := range ps.leaving {
		if l.timer == nil {
			l.timer = time.AfterFunc(l.linger, func() { ps.stay(l) })
		}
	}
}

// LeaveFor puts a stand-in for clientID's session, which node has now,
// into the table with filters (Peers.leave), if there are any: for a
// node that finds, starting, that a session it stored was taken
// elsewhere while it was gone — what its subject still holds for the
// session goes on there.
func (ps *Peers) LeaveFor(clientID, node string, filters []string) {
	if len(filters) > 0 {
		ps.leave(clientID, node, filters, false)
	}
}

// stay takes l out of the table, if it is still there: its time is up,
// the session did not leave after all, or it came back.
func (ps *Peers) stay(l *leaving) {
	ps.leavingMu.Lock()
	ps.stayLocked(l)
	ps.leavingMu.Unlock()
}

// stayBack takes clientID's stand-in, if any, out of the table: the
// session is here again.
func (ps *Peers) stayBack(clientID string) {
	ps.leavingMu.Lock()
	if l := ps.leaving[clientID]; l != nil {
		ps.stayLocked(l)
	}
	ps.leavingMu.Unlock()
}

func (ps *Peers) stayLocked(l *leaving) {
	if ps.leaving[l.id] != l {
		return
	}
	delete(ps.leaving, l.id)
	if l.timer != nil {
		l.timer.Stop()
	}
	for _, f := range l.filters {
		l.subs.Unsubscribe(l, f)
		ps.table.leavingSubs.Add(-1)
	}
}
