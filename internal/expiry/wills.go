package expiry

import (
	"time"

	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/session"
)

// WillStore keeps delayed wills where every node of a cluster sees them
// (package cluster's Wills), so that one is published once, by one node,
// even if the node its client was on is gone. On a single node there is
// none (Parts.Wills nil) and a delayed will lives in this node's queue
// alone (and its store), as ever.
//
// Its methods do not block: they run under a session's lock, on a loop or
// the timer goroutine, and queue the cluster's writes.
type WillStore interface {
	// Put keeps will of clientID, due at (Unix ns, system clock): its
	// connection left. will stays the caller's.
	Put(clientID string, will *router.Message, at int64)
	// Cancel drops clientID's will: its client came back in time
	// [MQTT-3.1.3-9]. mine: only the will this node put.
	Cancel(clientID string, mine bool)
	// Claim publishes clientID's will through SendWill if this node wins
	// it from the others: will is this node's copy (its reference taken
	// over), nil the store's.
	Claim(clientID string, will *router.Message)
	// Stand keeps will of clientID, its connection on this node, for the
	// other nodes to publish delay after they find this node gone. will
	// stays the caller's.
	Stand(clientID string, will *router.Message, delay time.Duration)
}

// StandWill keeps, in a cluster, the will of a connection that attached
// here, to be published after wait seconds (the shorter of its Will Delay
// Interval and its session's expiry) by another node should this one die
// with the connection on it (WillStore.Stand). A will that stands must be
// replaced as the connection leaves — by the will put to wait (ArmLocked)
// — or dropped (UnstandWill). Nothing on a single node.
func (x *Sessions) StandWill(clientID string, will *router.Message, wait uint32) {
	if x.wills != nil {
		x.wills.Stand(clientID, will, time.Duration(secs(wait)))
	}
}

// UnstandWill drops the will StandWill kept for clientID: its connection
// left without a will to wait for (published at once, or none).
func (x *Sessions) UnstandWill(clientID string) {
	if x.wills != nil {
		x.wills.Cancel(clientID, true)
	}
}

// Clustered reports whether wills are kept for a cluster (StandWill).
func (x *Sessions) Clustered() bool { return x.wills != nil }

// dueWill is a will the timer goroutine publishes, with its client id.
type dueWill struct {
	id  string
	msg *router.Message
}

// wall is at, on the deadline clock, as Unix ns on the system clock: the
// time the other nodes of a cluster read.
func (x *Sessions) wall(at int64) int64 { return time.Now().UnixNano() + at - x.clock.Now() }

// sendDelayed publishes clientID's delayed will, its delay passed: at once
// on a single node, once this node wins it in a cluster (the others may
// have published it already, or its client come back on one of them).
func (x *Sessions) sendDelayed(clientID string, will *router.Message) {
	if x.wills != nil {
		x.wills.Claim(clientID, will)
		return
	}
	x.SendWill(will)
}

// disarmCluster decides, in a cluster, the will of clientID's session as a
// connection attaches to it here, pw the one waiting here (nil: none). A
// will due, or any will with Clean Start (the session ends: MQTT 5 section
// 3.1.3.2.2), is published now by whichever node wins it — this node's
// own copy, or the one another node put, which a session started afresh
// here (its last node down) still ends; otherwise the client came back in
// time and the will is dropped everywhere [MQTT-3.1.3-9].
func (x *Sessions) disarmCluster(clientID string, pw *pendingWill, clean bool) {
	switch {
	case pw != nil && (clean || pw.at <= x.clock.Now()):
		x.wills.Claim(clientID, pw.msg)
	case pw != nil:
		pw.msg.Release()
		x.wills.Cancel(clientID, false)
	case clean:
		x.wills.Claim(clientID, nil)
	default:
		x.wills.Cancel(clientID, false)
	}
}

// HandOffLocked cancels s's deadline as its session leaves this node for
// the node its client connects to (package handoff's Give). The will
// waiting here goes as DisarmLocked decides it there: published now with
// Clean Start or once due, whoever of the two wins it; otherwise dropped,
// here only the will this node put (the other node may have put a newer
// one by the time this write is made). With no WillStore it is dropped.
// s.mu must be held.
func (x *Sessions) HandOffLocked(s *session.Session, clean bool) {
	pw, _ := x.timers.Cancel(s)
	switch {
	case pw == nil:
	case x.wills == nil:
		pw.msg.Release()
	case clean || pw.at <= x.clock.Now():
		x.wills.Claim(s.ClientID(), pw.msg)
	default:
		pw.msg.Release()
		x.wills.Cancel(s.ClientID(), true)
	}
}

// RestoreLocked gives offline session s its deadline as the store is
// loaded, as ArmLocked does, but keeps its will here only: in a cluster
// the will was put when its connection left, and the other nodes may have
// published it since (this node's Claim then finds it gone). s.mu must be
// held.
func (x *Sessions) RestoreLocked(s *session.Session, will *router.Message, willAt int64) {
	var pw *pendingWill
	if will != nil {
		pw = &pendingWill{msg: will, at: willAt, gen: s.Gen}
	}
	x.armLocked(s, pw)
}
