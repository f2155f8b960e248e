package cluster

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/shoalmq/shoal/internal/dispatch"
	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/store"
)

// TestClaimTurns: claims of one client id on one node take turns — the
// second waits until the first ends, and gives up when its context does
// — while a claim of another client id goes on at once. Without turns,
// a client that gave up on a slow CONNECT and tried again had its second
// claim look for the session where it was before the first claim moved
// it, and start afresh (the session lost).
func TestClaimTurns(t *testing.T) {
	s := NewSessions()
	ctx := context.Background()
	end, err := s.turn(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}

	other, err := s.turn(ctx, "b") // another client id: no wait
	if err != nil {
		t.Fatal(err)
	}
	other()

	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := s.turn(short, "a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a second claim of a, while the first is under way: %v, want it to wait until its context ends", err)
	}

	second := make(chan func())
	go func() {
		end2, err := s.turn(ctx, "a")
		if err != nil {
			t.Error(err)
		}
		second <- end2
	}()
	select {
	case <-second:
		t.Fatal("a second claim of a went on while the first was under way")
	case <-time.After(50 * time.Millisecond):
	}
	end()
	select {
	case end2 := <-second:
		end2()
	case <-time.After(10 * time.Second):
		t.Fatal("the second claim of a still waits after the first ended")
	}
	s.mu.Lock()
	left := len(s.claiming)
	s.mu.Unlock()
	if left != 0 {
		t.Errorf("%d claims still marked under way after all ended", left)
	}
}

// TestHandoverPark: a message addressed to a session that a claim on this
// node is moving here waits until the claim ends, then is routed; one for
// a session no claim moves is not held.
func TestHandoverPark(t *testing.T) {
	s := NewSessions()
	in := make(jobs, 4)
	(&Peers{disp: in, stop: make(chan struct{})}).Handover(s)
	routed := func() []string {
		var out []string
		for len(in) > 0 {
			j := <-in
			out = append(out, string(j.Msg.Topic))
			j.Msg.Release()
		}
		return out
	}
	msg := func(topic string) *router.Message {
		return router.NewMessage([]byte(topic), nil, nil, nil, 1, false, 0, nil)
	}
	end, err := s.turn(context.Background(), "moving")
	if err != nil {
		t.Fatal(err)
	}
	if !s.park(dispatch.Job{Msg: msg("a"), Local: true, To: "moving"}) {
		t.Fatal("a message for the session being claimed was not held")
	}
	other := msg("b")
	defer other.Release()
	if s.park(dispatch.Job{Msg: other, Local: true, To: "another"}) {
		t.Fatal("a message for a session no claim moves was held")
	}
	if got := routed(); len(got) != 0 {
		t.Fatalf("routed %q while the claim was under way", got)
	}
	end()
	if got := routed(); len(got) != 1 || got[0] != "a" {
		t.Fatalf("routed %q once the claim ended, want [a]", got)
	}

	// A claim that could not read its session from the copy: what comes
	// for the session waits for the next claim, which reads it again.
	unread := func(id, topic string) {
		t.Helper()
		s.mu.Lock()
		s.unread[id] = "n2"
		s.mu.Unlock()
		if !s.park(dispatch.Job{Msg: msg(topic), Local: true, To: id}) {
			t.Fatal("a message for a session claimed here but not read yet was not held")
		}
	}
	claim := func(id string, read bool) {
		t.Helper()
		end, err := s.turn(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if read {
			s.mu.Lock()
			delete(s.unread, id)
			s.mu.Unlock()
		}
		end()
	}
	unread("unread", "c")
	claim("unread", false) // could not read it either
	if got := routed(); len(got) != 0 {
		t.Fatalf("routed %q once a claim that could not read the session ended", got)
	}
	claim("unread", true)
	if got := routed(); len(got) != 1 || got[0] != "c" {
		t.Fatalf("routed %q once the next claim ended, want [c]", got)
	}
}

// acked is a dispatch.Acker that records its acknowledgement.
type acked chan struct{}

func (a acked) Ack() error { close(a); return nil }

// shelfCopies is the copy as a rescuer's shelf uses it, recording the
// generations it is told to continue.
type shelfCopies struct{ gens map[string]uint64 }

func (c *shelfCopies) Bundle(context.Context, string) ([]byte, error) { return nil, nil }
func (c *shelfCopies) Flush()                                         {}
func (c *shelfCopies) Read(context.Context, string) (*store.Bundle, uint64, error) {
	return nil, 0, nil
}
func (c *shelfCopies) Continue(id string, gen uint64) { c.gens[id] = gen }
func (c *shelfCopies) Forget(id string)               { delete(c.gens, id) }
func (c *shelfCopies) ShelfWriter() store.Writer      { return nil }

// TestRescuerReshelves: a session its client claimed here, off the
// shelf, goes back on it when the claim cannot read it from the copy —
// in the table again, under its generation, no longer passed on to this
// node itself — and a message addressed to a session on the shelf (a
// node back from a freeze passes on what its subject held) is added to
// it in the copy, while one for a session off the shelf is not taken.
// Before, such messages went to no one: a freeze run lost 256.
func TestRescuerReshelves(t *testing.T) {
	r := NewRescuer()
	w := &origins{}
	cp := &shelfCopies{gens: map[string]uint64{"c": 4}}
	r.w, r.copies = w, cp
	sh := &shelved{id: "c", from: "n2", read: make(chan struct{}), gen: 4}
	close(sh.read)
	r.mu.Lock()
	r.shelf["c"] = sh
	r.loadLocked(sh, &store.Bundle{Session: store.Session{ClientID: "c", Subs: []store.Sub{{Filter: "t/#", Opts: router.Options{QoS: 2}}}}})
	r.mu.Unlock()
	msg := func(origin uint64) *router.Message {
		m := router.NewMessage([]byte("t/a"), []byte("p"), nil, []byte("pub"), 2, false, 0, nil)
		m.Origin = origin
		return m
	}

	if got, err := r.unshelve("c", "n1", false); got != sh || err != nil {
		t.Fatalf("unshelve: %v, %v; want the session", got, err)
	}
	m := msg(8)
	if on, _ := r.addressed(m, "", "c"); on {
		t.Fatal("a message for a session off the shelf was taken")
	}
	m.Release()
	if _, ok := cp.gens["c"]; ok || r.moved["c"] == nil {
		t.Fatalf("off the shelf: generation %v, moved %v; want none, and moved", cp.gens, r.moved["c"])
	}

	r.reshelve(sh)
	if r.shelf["c"] != sh || r.moved["c"] != nil || cp.gens["c"] != 4 {
		t.Fatalf("back on the shelf: %v, moved %v, generation %d; want the session, not moved, 4", r.shelf["c"], r.moved["c"], cp.gens["c"])
	}
	var ms router.Matches
	r.table.Match([]byte("t/a"), nil, nil, &ms)
	if len(ms.List) != 1 || ms.List[0].Sub != router.Subscriber(sh) {
		t.Fatalf("the rescuer's table matches %d, want the shelved session", len(ms.List))
	}
	m = msg(9)
	if on, err := r.addressed(m, "", "c"); !on || err != nil {
		t.Fatalf("a message for the session back on the shelf: taken %v, %v", on, err)
	}
	m.Release()
	m = msg(10)
	if on, _ := r.addressed(m, "", "d"); on {
		t.Fatal("a message for a session not on the shelf was taken")
	}
	m.Release()
	if len(w.got) != 1 || w.got[0] != 9 {
		t.Fatalf("added %v to the copy, want [9]", w.got)
	}
}

// TestHandoverFirst: in a session's handover window, a message of one
// origin is delivered once, one its bundle brought not at all; other
// sessions, and messages of no known origin, are not held back.
func TestHandoverFirst(t *testing.T) {
	s := NewSessions()
	if s.Active() {
		t.Fatal("active with no session moved")
	}
	s.arrivals.arrived("moved", time.Now(), []uint64{3}) // its bundle had 3
	if !s.Active() {
		t.Fatal("not active once a session moved")
	}
	if !s.First("moved", 7) || s.First("moved", 7) {
		t.Fatal("origin 7: want first, then not")
	}
	if s.First("moved", 3) {
		t.Fatal("origin 3, which the session brought, delivered again")
	}
	if !s.First("moved", 8) || !s.First("stayed", 7) || !s.First("moved", 0) || !s.First("moved", 0) {
		t.Fatal("another origin, another session, or no origin was held back")
	}
	// A message passed on to a session keeps its window open: what the
	// node it left reads late may still have come straight already.
	s.arrivals.arrived("passed", time.Now().Add(-handoverWindow+time.Second), nil)
	if !s.First("passed", 9) {
		t.Fatal("origin 9 held back on its first delivery")
	}
	s.arrivals.extend("passed", time.Now())
	sh := s.arrivals.shard("passed")
	sh.mu.Lock()
	until := sh.m["passed"].until
	sh.mu.Unlock()
	if until.Before(time.Now().Add(handoverWindow - time.Second)) {
		t.Fatal("a message passed on did not keep the session's window open")
	}
	if s.First("passed", 9) {
		t.Fatal("origin 9 delivered again in the extended window")
	}
	s.arrivals.arrived("old", time.Now().Add(-2*handoverWindow), nil) // its window is over
	for i := range s.arrivals.shards {
		s.arrivals.shards[i].pruned = time.Time{}
	}
	if !s.First("old", 1) || !s.First("old", 1) {
		t.Fatal("a session whose window ended was held back")
	}
	if s.arrivals.active.Load() != 2 {
		t.Fatalf("%d windows open, want 2", s.arrivals.active.Load())
	}
}

// TestRescuerPassesOn: what a rescuer reads for a session it handed over
// lately goes on to the session's new node, addressed to the session (a
// shared group's message to any member of the group there), with its
// Origin; QoS 0 does not, nor one addressed to another session; once the
// linger is over — by the time the stream took the batch, not by when the
// rescue reads it — nothing does.
func TestRescuerPassesOn(t *testing.T) {
	r := NewRescuer()
	mv := &moved{id: "x", to: "n2", until: time.Now().Add(movedLinger), filters: []string{"r/#", "$share/g/s/#"}}
	r.moved[mv.id] = mv
	for _, f := range mv.filters {
		r.table.Subscribe(mv, f, router.Options{QoS: 2})
	}
	now := time.Now().UnixNano()
	deliver := func(topic string, qos byte, group string) {
		m := router.NewMessage([]byte(topic), []byte("p"), nil, []byte("pub"), qos, false, 0, nil)
		m.Origin = 42
		r.mu.Lock()
		r.deliverLocked(m, group, "", now)
		r.mu.Unlock()
		m.Release()
	}
	deliver("r/a", 1, "")
	deliver("r/b", 0, "")
	deliver("s/c", 2, "$share/g/s/#")
	other := router.NewMessage([]byte("r/d"), []byte("p"), nil, []byte("pub"), 1, false, 0, nil)
	r.mu.Lock()
	r.deliverLocked(other, "", "y", now) // passed on to the gone node for another session
	r.mu.Unlock()
	other.Release()
	var got []string
	if len(r.out["n2"]) != 1 {
		t.Fatalf("%d batches for n2, want 1", len(r.out["n2"]))
	}
	frames := r.out["n2"][0]
	if n, ok := countFrames(frames); !ok || n != 2 || len(r.out) != 1 {
		t.Fatalf("%d frames for n2 (framing %v), %d nodes; want 2 for n2 alone", n, ok, len(r.out))
	}
	eachFrame(frames, 0, now, func(m *router.Message, group, to string, err error) bool {
		if err != nil || m.Origin != 42 {
			t.Fatalf("frame: %v, origin %d", err, m.Origin)
		}
		got = append(got, string(m.Topic)+" "+group+" "+to)
		m.Release()
		return true
	})
	if want := []string{"r/a  x", "s/c $share/g/s/# "}; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("passed on %q, want %q", got, want)
	}

	r.out = nil
	r.mu.Lock()
	// Read late: a batch the stream took before the linger ended still
	// goes on, whatever the clock says now.
	mv.until = time.Now().Add(-time.Second)
	r.pruneMovedLocked(mv.until.Add(-time.Millisecond), "")
	if len(r.moved) != 1 {
		r.mu.Unlock()
		t.Fatal("a moved session pruned for a batch the stream took before its linger ended")
	}
	r.pruneMovedLocked(mv.until.Add(time.Second), "")
	r.mu.Unlock()
	deliver("r/a", 1, "")
	if len(r.out) != 0 || len(r.moved) != 0 {
		t.Fatalf("after the linger: %d nodes to pass on to, %d moved", len(r.out), len(r.moved))
	}
}

// origins records the Origins of the deliveries put through it; it takes
// nothing else.
type origins struct {
	store.Writer
	got []uint64
}

func (o *origins) PutDelivery(_ string, d store.Delivery) { o.got = append(o.got, d.Msg.Origin) }
func (o *origins) Commit(bool) error                      { return nil }

// TestRescuerSkipsReceived: a rescuer that reads again, from its gone
// node's subject, a QoS 2 message whose receipt the session's copy has —
// its client got it; the gone node's acknowledgement to the stream was
// lost — does not add it to the shelved session; nor one the session
// has; a message it has not seen, it adds. Without the receipts, a
// rolling restart delivered up to 13 messages twice per subscriber.
func TestRescuerSkipsReceived(t *testing.T) {
	r := NewRescuer()
	w := &origins{}
	r.w = w
	sh := &shelved{id: "c", from: "n1", read: make(chan struct{})}
	b := &store.Bundle{Session: store.Session{ClientID: "c", Subs: []store.Sub{{Filter: "t/#", Opts: router.Options{QoS: 2}}}},
		Deliveries: []store.Delivery{{Seq: 4, QoS: 2, Msg: store.Message{Topic: []byte("t/a"), Origin: 5}}},
		Received:   []uint64{77}}
	r.mu.Lock()
	r.shelf["c"] = sh
	r.loadLocked(sh, b)
	for _, o := range []uint64{77, 5, 78} {
		m := router.NewMessage([]byte("t/a"), []byte("p"), nil, []byte("pub"), 2, false, 0, nil)
		m.Origin = o
		r.deliverLocked(m, "", "", time.Now().UnixNano())
		m.Release()
	}
	r.mu.Unlock()
	if len(w.got) != 1 || w.got[0] != 78 {
		t.Fatalf("added %v, want 78 alone (77 was received, 5 is owed already)", w.got)
	}
	if sh.next != 6 {
		t.Fatalf("next Seq %d, want 6 (after 4, and 5 taken by 78)", sh.next)
	}
}

// TestBroughtOrigins: a session's handover window starts with the Origins
// of the messages it owes and of those its client received lately (the
// copy's receipts); a message without one (an older node's) adds none.
func TestBroughtOrigins(t *testing.T) {
	b := store.Bundle{Session: store.Session{ClientID: "c"},
		Deliveries: []store.Delivery{
			{Seq: 1, QoS: 1, Msg: store.Message{Topic: []byte("t"), QoS: 1, Origin: 3}},
			{Seq: 2, QoS: 2, Msg: store.Message{Topic: []byte("t"), QoS: 2}},
		},
		Received: []uint64{9}}
	if got := broughtOrigins(store.AppendBundle(nil, &b)); len(got) != 2 || got[0] != 3 || got[1] != 9 {
		t.Fatalf("brought %v, want [3 9]", got)
	}
}

// failingOrigins is origins whose Commit fails while fail is set, and
// the next fails times.
type failingOrigins struct {
	origins
	fail  bool
	fails int
}

func (f *failingOrigins) Commit(bool) error {
	if f.fail {
		return errors.New("not confirmed")
	}
	if f.fails > 0 {
		f.fails--
		return errors.New("not confirmed")
	}
	return nil
}

// TestRescuerTakesBackUnconfirmed: a batch whose additions the copy did
// not confirm is read again, and its messages are added again, under the
// same Seq: not skipped as kept. Without taking them back, a rescue that
// met a stream electing a leader lost what it had read.
func TestRescuerTakesBackUnconfirmed(t *testing.T) {
	r := NewRescuer()
	w := &failingOrigins{fail: true}
	r.w = w
	sh := &shelved{id: "c", from: "n1", read: make(chan struct{})}
	r.mu.Lock()
	r.shelf["c"] = sh
	r.loadLocked(sh, &store.Bundle{Session: store.Session{ClientID: "c",
		Subs: []store.Sub{{Filter: "t/#", Opts: router.Options{QoS: 2}}}}})
	r.mu.Unlock()
	m := router.NewMessage([]byte("t/a"), []byte("p"), nil, []byte("pub"), 2, false, 0, nil)
	defer m.Release()
	m.Origin = 5
	now := time.Now().UnixNano()
	batch := appendBatchFrame(nil, m, "", "", now)
	if err := r.keep(batch, 9, now); err == nil {
		t.Fatal("keep succeeded while the copy did not confirm")
	}
	w.fail = false
	if err := r.keep(batch, 9, now); err != nil {
		t.Fatal(err)
	}
	if len(w.got) != 2 || w.got[0] != 5 || w.got[1] != 5 || sh.next != 1 {
		t.Fatalf("put %v, next Seq %d; want origin 5 put again on the second read, next Seq 1", w.got, sh.next)
	}
	if _, kept := sh.kept[5]; !kept {
		t.Fatal("origin 5 not kept once the copy confirmed it")
	}
}

// TestStandInWithoutInterest: a stand-in for a session taken elsewhere
// while this node was gone (no interest kept) passes on what this node's
// own publishers send only while this node's table does not send it to
// the session's node by that node's interest: once it does, a second copy
// after the session's window is a second delivery; before (a node just
// back, its watch of the interest behind), nothing else takes it there.
// What other nodes sent here it passes on either way.
func TestStandInWithoutInterest(t *testing.T) {
	rs := startPeers(t, startCluster(t, 2))
	l := rs[0].ps.leave("x", "n1", []string{"t/#"}, false)
	local := router.NewMessage([]byte("t/a"), []byte("p"), nil, []byte("pub"), 1, false, 0, client("pub"))
	defer local.Release()
	rc := l.PassOn(local, nil)
	if rc == nil {
		t.Fatal("a local publisher's message not passed on while node 0 does not know node 1's interest")
	}
	if err := rc.Wait(nil); err != nil {
		t.Fatal(err)
	}
	if j := receive(t, rs[1]); j.To != "x" {
		t.Fatalf("node 1 got a message for %q, want x", j.To)
	} else {
		j.Msg.Release()
	}

	rs[1].table.Subscribe(client("x"), "t/#", router.Options{QoS: 1})
	waitFor(t, "node 0 to see node 1's interest in t/#", func() bool { return len(rs[0].peersFor("t/a")) == 1 })
	if l.PassOn(local, nil) != nil {
		t.Fatal("a local publisher's message passed on while it goes to node 1 by its interest")
	}
	remote := router.NewMessage([]byte("t/a"), []byte("p"), nil, []byte("pub"), 1, false, 0, nil)
	defer remote.Release()
	if rc := l.PassOn(remote, nil); rc == nil {
		t.Fatal("another node's message not passed on")
	} else if err := rc.Wait(nil); err != nil {
		t.Fatal(err)
	}
}

// emptyLocal is a node's Local with no sessions.
type emptyLocal struct{}

func (emptyLocal) Give(string, bool) ([]byte, error) { return nil, nil }
func (emptyLocal) Adopt(string, []byte) error        { return nil }
func (emptyLocal) Filters(string) []string           { return nil }
func (emptyLocal) TakeOver(string, bool) bool        { return false }

// TestUnreadSessionHandedOn: asked for a session this node claimed
// but could not read from the copy, a node answers that the copy has it
// (shelfReply), for the claimer to read there — whether the owners' watch
// brought the claim first or the request did — and what was parked for
// the session goes on to the claimer, addressed to it, acknowledged once
// the stream took it; asked for it clean, the node answers that it has
// nothing, and drops what was parked. Before, the node answered with an
// empty bundle (none here): the claimer started the session afresh, its
// subscriptions and what it was owed gone; and what was parked was
// routed here, to no session.
func TestUnreadSessionHandedOn(t *testing.T) {
	s := NewSessions()
	s.local = emptyLocal{}
	nodes := startCluster(t, 3)
	rs := startPeersWith(t, nodes[:2], 16, func(i int, ps *Peers) {
		if i == 0 {
			ps.Handover(s)
		}
	})
	sub, err := nodes[0].nc.Subscribe("test.give", s.give)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	ask := func(req string) []byte {
		t.Helper()
		m := nats.NewMsg("test.give")
		m.Data = []byte(req)
		m.Header.Set(claimerHeader, "n1")
		reply, err := nodes[0].nc.RequestMsg(m, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return reply.Data
	}
	parkFor := func(id string, origin uint64) acked {
		t.Helper()
		s.mu.Lock()
		s.unread[id] = "n2"
		s.mu.Unlock()
		m := router.NewMessage([]byte("t/a"), []byte("p"), nil, []byte("pub"), 2, false, 0, nil)
		m.Origin = origin
		done := make(acked)
		if !s.park(dispatch.Job{Msg: m, Local: true, To: id, Done: done}) {
			t.Fatal("a message for a session claimed here but not read was not held")
		}
		return done
	}
	passedOn := func(id string, origin uint64, done acked) {
		t.Helper()
		j := receive(t, rs[1])
		if string(j.Msg.Topic) != "t/a" || j.To != id || !j.Local || j.Msg.Origin != origin || j.Msg.QoS != 2 {
			t.Fatalf("node 1 got %q for %q (local %v), origin %d, QoS %d; want t/a for %s, origin %d, QoS 2",
				j.Msg.Topic, j.To, j.Local, j.Msg.Origin, j.Msg.QoS, id, origin)
		}
		j.Msg.Release()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Fatal("the parked message was not acknowledged once passed on")
		}
		if s.park(dispatch.Job{To: id}) {
			t.Fatal("still held once another node took the session")
		}
	}

	// The watch brings node 1's claim first, then its request.
	done := parkFor("x", 41)
	s.forgetUnread("x", "n1")
	passedOn("x", 41, done)
	if got := ask("5 false x"); !bytes.Equal(got, shelfReply) {
		t.Fatalf("asked for a session it could not read, the node answered %q, want %q", got, shelfReply)
	}

	// The request first.
	done = parkFor("y", 42)
	if got := ask("6 false y"); !bytes.Equal(got, shelfReply) {
		t.Fatalf("asked for a session it could not read, the node answered %q, want %q", got, shelfReply)
	}
	passedOn("y", 42, done)

	// A claim here that another overtook: what was parked while it was
	// under way goes on to the newer claim's node.
	s.learn("w", 7, true, "")
	end, err := s.turn(context.Background(), "w")
	if err != nil {
		t.Fatal(err)
	}
	m := router.NewMessage([]byte("t/a"), []byte("p"), nil, []byte("pub"), 2, false, 0, nil)
	m.Origin = 44
	done = make(acked)
	if !s.park(dispatch.Job{Msg: m, Local: true, To: "w", Done: done}) {
		t.Fatal("a message for a session being claimed was not held")
	}
	s.learn("w", 8, false, "n1")
	end()
	passedOn("w", 44, done)

	// Clean.
	done = parkFor("z", 43)
	if got := ask("7 true z"); len(got) != 0 {
		t.Fatalf("asked for it clean, the node answered %q, want nothing", got)
	}
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("the parked message of a session claimed clean was not acknowledged")
	}
	if len(rs[0].in) != 0 || len(rs[1].in) != 0 {
		t.Fatal("a parked message was routed here, or went on for a clean claim")
	}
}

// TestAddressedMovedOn: a message addressed to a session that left this
// node's shelf lately for another node goes on to that node, addressed
// to the session; this node's table has no session for it. One for a
// session that moved to this node is left to this node's routing.
func TestAddressedMovedOn(t *testing.T) {
	nodes := startCluster(t, 3)
	rs := startPeers(t, nodes[:2])
	r := NewRescuer()
	r.node, r.peers = nodes[0], rs[0].ps
	until := time.Now().Add(time.Minute)
	r.mu.Lock()
	r.moved["x"] = &moved{id: "x", to: "n1", until: until}
	r.moved["h"] = &moved{id: "h", to: "n0", until: until}
	r.mu.Unlock()
	m := router.NewMessage([]byte("t/a"), []byte("p"), nil, []byte("pub"), 1, false, 0, nil)
	defer m.Release()
	m.Origin = 17
	if on, err := r.addressed(m, "", "x"); !on || err != nil {
		t.Fatalf("for a session moved to node 1: taken %v, %v; want taken", on, err)
	}
	j := receive(t, rs[1])
	if j.To != "x" || j.Msg.Origin != 17 {
		t.Fatalf("node 1 got origin %d for %q, want 17 for x", j.Msg.Origin, j.To)
	}
	j.Msg.Release()
	if on, _ := r.addressed(m, "", "h"); on {
		t.Fatal("a message for a session moved to this node was taken")
	}
}

// claimDuringCommit is origins that learns, as it commits, a claim of
// client id by node n1: the claim a commit waiting on JetStream met.
type claimDuringCommit struct {
	origins
	s  *Sessions
	id string // "": none
}

func (c *claimDuringCommit) Commit(bool) error {
	if c.id != "" {
		c.s.learn(c.id, 20, false, "n1")
	}
	return nil
}

// TestRescuerPassesOnToClaimer: what the rescue reads for a shelved
// session that another node has claimed since goes on to that node,
// addressed to the session, not onto the shelf; and what it added to a
// session whose claim came while the copy's commit waited goes on to the
// claimer too. That claimer may have read the copy before the commit
// landed (its request for the session timed out while this node's commit
// waited for JetStream's leaders), under a generation it no longer
// reads: a freeze run lost 181 messages so.
func TestRescuerPassesOnToClaimer(t *testing.T) {
	nodes := startCluster(t, 3)
	rs := startPeers(t, nodes[:2])
	s := NewSessions()
	r := NewRescuer()
	r.node, r.peers, r.sessions = nodes[0], rs[0].ps, s
	w := &claimDuringCommit{s: s}
	r.w = w
	r.mu.Lock()
	for _, id := range []string{"c", "d", "e"} {
		sh := &shelved{id: id, from: "n2", read: make(chan struct{})}
		close(sh.read)
		r.shelf[id] = sh
		r.loadLocked(sh, &store.Bundle{Session: store.Session{ClientID: id,
			Subs: []store.Sub{{Filter: id + "/#", Opts: router.Options{QoS: 2}}}}})
	}
	r.mu.Unlock()
	s.learn("c", 10, false, "n1")
	batch := func(topic string, origin uint64) []byte {
		m := router.NewMessage([]byte(topic), []byte("p"), nil, []byte("pub"), 2, false, 0, nil)
		defer m.Release()
		m.Origin = origin
		return appendBatchFrame(nil, m, "", "", time.Now().UnixNano())
	}
	got := func(id string, origin uint64) {
		t.Helper()
		j := receive(t, rs[1])
		if j.To != id || j.Msg.Origin != origin {
			t.Fatalf("node 1 got origin %d for %q, want %d for %s", j.Msg.Origin, j.To, origin, id)
		}
		j.Msg.Release()
	}

	if err := r.keep(batch("c/a", 5), 1, time.Now().UnixNano()); err != nil {
		t.Fatal(err)
	}
	got("c", 5)
	if len(w.got) != 0 {
		t.Fatalf("added %v to the copy for a session claimed elsewhere", w.got)
	}

	// d's claim comes as the commit waits: its message goes on ahead
	// of c's, which came after it in the batch.
	w.id = "d"
	if err := r.keep(append(batch("d/a", 6), batch("c/b", 8)...), 2, time.Now().UnixNano()); err != nil {
		t.Fatal(err)
	}
	got("d", 6)
	got("c", 8)
	if len(w.got) != 1 || w.got[0] != 6 {
		t.Fatalf("added %v to the copy, want [6]: the session was this node's as it was added", w.got)
	}

	// The gone node, back, claims its session: the rescue keeps adding
	// to it (this node commits it before it answers the node), and
	// passes nothing on into the subject it reads.
	w.id = ""
	s.learn("e", 30, false, "n2")
	if err := r.keep(batch("e/a", 9), 3, time.Now().UnixNano()); err != nil {
		t.Fatal(err)
	}
	if len(w.got) != 2 || w.got[1] != 9 {
		t.Fatalf("added %v to the copy, want [6 9]", w.got)
	}
}

// bundleLocal is a node's Local with one session, given as bundle, that
// counts adoptions.
type bundleLocal struct {
	mu      sync.Mutex
	bundle  []byte
	adopted int
}

func (l *bundleLocal) Give(string, bool) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bundle, nil
}

func (l *bundleLocal) Adopt(_ string, bundle []byte) error {
	l.mu.Lock()
	l.adopted++
	l.bundle = bundle
	l.mu.Unlock()
	return nil
}

func (l *bundleLocal) adoptions() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.adopted
}

func (l *bundleLocal) Filters(string) []string    { return nil }
func (l *bundleLocal) TakeOver(string, bool) bool { return false }

// TestGiveWaitsForClaim: asked for a session a claim here is still
// reading from the copy, a node answers once that
// claim ends, with the session it adopted; before, it gave the session
// as it was, and the claim then adopted the copy's for no client (a
// freeze run lost 132 messages). A claim that takes longer than giveWait
// has the asker read the copy, and, ending, does not adopt the session;
// a claim here that turns out newer than the asker's has the asker
// answered with nothing, one of another node's does not (it asks the
// asker, which must have the session).
func TestGiveWaitsForClaim(t *testing.T) {
	n := startCluster(t, 1)[0]
	s := NewSessions()
	local := &bundleLocal{bundle: []byte("before")}
	s.local, s.log = local, zerolog.Nop()
	sub, err := n.nc.Subscribe("test.give", func(m *nats.Msg) { go s.give(m) })
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	ask := func(req string) <-chan []byte {
		out := make(chan []byte, 1)
		go func() {
			m := nats.NewMsg("test.give")
			m.Data = []byte(req)
			m.Header.Set(claimerHeader, "n1")
			reply, err := n.nc.RequestMsg(m, 10*time.Second)
			if err != nil {
				out <- []byte("error: " + err.Error())
				return
			}
			out <- reply.Data
		}()
		return out
	}
	asked := func(id string, epoch uint64) { // the request waits for the claim here
		t.Helper()
		waitFor(t, "the request to wait for the claim here", func() bool { return s.newestOf(id).epoch == epoch })
	}
	claimHere := func(id string, epoch uint64) func() { // reading the copy
		t.Helper()
		end, err := s.turn(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		s.learn(id, epoch, true, "")
		s.mu.Lock()
		s.moving[id] = epoch
		s.mu.Unlock()
		return end
	}

	end := claimHere("x", 3)
	reply := ask("4 false x")
	select {
	case got := <-reply:
		t.Fatalf("answered %q while a claim of the session was under way", got)
	case <-time.After(giveWait / 2):
	}
	s.adopt("x", "n2", 3, []byte("adopted")) // the claim read the copy
	end()
	if got := <-reply; string(got) != "adopted" {
		t.Fatalf("answered %q, want the session the claim adopted", got)
	}

	end = claimHere("y", 5)
	if got := <-ask("6 false y"); !bytes.Equal(got, shelfReply) {
		t.Fatalf("with the claim under way past giveWait, answered %q, want %q", got, shelfReply)
	}
	s.adopt("y", "n2", 5, []byte("read"))
	end()
	if local.adoptions() != 1 {
		t.Fatal("a claim adopted the session after the node told a newer claimer to read the copy")
	}

	end = claimHere("z", 7)
	reply = ask("8 false z")
	asked("z", 8)
	s.learn("z", 9, true, "") // the claim here got a newer epoch meanwhile
	end()
	if got := <-reply; len(got) != 0 {
		t.Fatalf("answered %q to a claim older than this node's, want nothing", got)
	}

	// The claim here adopts, but ends past giveWait: what goes is what
	// it adopted, not the copy.
	end = claimHere("u", 13)
	reply = ask("14 false u")
	asked("u", 14)
	s.adopt("u", "n2", 13, []byte("fresh"))
	if got := <-reply; string(got) != "fresh" {
		t.Fatalf("answered %q once the claim here adopted the session, want it", got)
	}
	end()

	// A claim here that does not read the copy (still waiting for the
	// owners' bucket, say: it will be newer than the asker's, and take
	// the session from it): no wait.
	end, err = s.turn(context.Background(), "t")
	if err != nil {
		t.Fatal(err)
	}
	if got := <-ask("15 false t"); string(got) != "fresh" {
		t.Fatalf("with a claim here that has no epoch yet, answered %q, want the session at once", got)
	}
	end()

	// A newer claim of another node's came meanwhile: its node asks the
	// asker, which must have the session to pass on.
	end = claimHere("v", 10)
	reply = ask("11 false v")
	asked("v", 11)
	s.learn("v", 12, false, "n2")
	end()
	if got := <-reply; string(got) != "fresh" { // the session here, as u's claim left it
		t.Fatalf("answered %q to a claim another node's overtook, want the session", got)
	}
}
