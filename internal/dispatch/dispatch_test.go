package dispatch

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"

	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/limit"
	"github.com/shoalmq/shoal/internal/persist"
	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/session"
)

// peerLog is a Peer that records what it was handed. It gives QoS 1 and 2
// messages a receipt that fails with fail (nil: stored).
type peerLog struct {
	name   string
	topics []string
	groups []string
	fail   error
	waited int // receipts waited for
}

var _ Peer = (*peerLog)(nil)

func (p *peerLog) ClientID() string { return "\x00peer " + p.name }

func (p *peerLog) Forward(m *router.Message, mt *router.Match) Receipt {
	p.topics = append(p.topics, string(m.Topic))
	if mt.Shared {
		p.groups = append(p.groups, mt.Group)
	}
	if m.QoS == 0 {
		return nil
	}
	return receiptOf{p}
}

type receiptOf struct{ p *peerLog }

func (r receiptOf) Wait(<-chan struct{}) error {
	r.p.waited++
	return r.p.fail
}

// publisher is a Conn that publishes; its acknowledgements are read from
// the worker's batch (perLoop), as nothing here runs the loops.
type publisher struct{}

func (publisher) LoopIndex() int                             { return 0 }
func (publisher) DeliverLocked(session.Delivery, int64) bool { return true }
func (publisher) Acknowledge(codec.Type, uint16, bool)       {}
func (publisher) NotStored(codec.Type, uint16)               {}
func (publisher) Notify(Note)                                {}

// acker is a message from the cluster's stream (Job.Done).
type acker struct{ acked *int }

func (a acker) Ack() error {
	*a.acked++
	return nil
}

func newDispatcher(t *testing.T, lim limit.Limits) *Dispatcher {
	t.Helper()
	var log atomic.Pointer[zerolog.Logger]
	nop := zerolog.Nop()
	log.Store(&nop)
	var lp atomic.Pointer[limit.Limits]
	lp.Store(&lim)
	return New(Config{Loops: 1, Workers: 1, WorkerQueue: 1, Subs: router.NewTable(0, router.RoundRobin),
		Retained: router.NewRetained(), Persist: persist.New(&log), Limits: &lp})
}

func message(topic string, qos byte) *router.Message {
	return router.NewMessage([]byte(topic), []byte("payload"), nil, []byte("pub"), qos, false, 0, nil)
}

// TestPeerGetsEachMessageOnce: a Peer whose filters overlap gets a
// matching message once; not one that came from a Peer (Local), nor this
// node's $SYS.
func TestPeerGetsEachMessageOnce(t *testing.T) {
	d := newDispatcher(t, limit.Limits{})
	p := &peerLog{name: "b"}
	for _, f := range []string{"a/+", "a/#", "b", "$SYS/#"} {
		d.subs.Subscribe(p, f, router.Options{QoS: 2})
	}
	w := d.Workers()[0]
	for _, j := range []Job{{Msg: message("a/x", 0)}, {Msg: message("a/y", 1), Local: true},
		{Msg: message("b", 1)}, {Msg: message("$SYS/broker/uptime", 0)}, {Msg: message("c", 0)}} {
		w.do(j)
	}
	if len(p.topics) != 2 || p.topics[0] != "a/x" || p.topics[1] != "b" {
		t.Fatalf("the peer got %q, want [a/x b]", p.topics)
	}
}

// TestSharedGroupSpansPeers: members on other nodes take their turns in a
// shared group, one message each; a message from another node for the
// group (Job.Group) does not go back out, nor does one routed Local.
func TestSharedGroupSpansPeers(t *testing.T) {
	d := newDispatcher(t, limit.Limits{})
	p1, p2 := &peerLog{name: "b"}, &peerLog{name: "c"}
	d.subs.Subscribe(p1, "$share/g/t/+", router.Options{QoS: 1})
	d.subs.Subscribe(p2, "$share/g/t/+", router.Options{QoS: 1})
	w := d.Workers()[0]
	for range 4 {
		w.do(Job{Msg: message("t/x", 1)})
	}
	if len(p1.groups) != 2 || len(p2.groups) != 2 || p1.groups[0] != "$share/g/t/+" {
		t.Fatalf("members got %q and %q, want two each of $share/g/t/+", p1.groups, p2.groups)
	}
	w.do(Job{Msg: message("t/y", 1), Local: true})
	w.do(Job{Msg: message("t/z", 1), Local: true, Group: "$share/g/t/+"})
	if len(p1.topics)+len(p2.topics) != 4 {
		t.Fatalf("messages from another node went out again: %q %q", p1.topics, p2.topics)
	}
}

// TestSubmitCountsPublisher: a job counts among its publisher's messages
// with a worker until its deliveries are posted; a full queue takes
// nothing and counts nothing.
func TestSubmitCountsPublisher(t *testing.T) {
	d := newDispatcher(t, limit.Limits{})
	w := d.Workers()[0]
	var p Publisher
	if !w.Submit(Job{Msg: message("a", 1), From: &p}) || !p.Busy() {
		t.Fatal("submitted, and the publisher is not busy")
	}
	m := message("b", 1)
	if w.Submit(Job{Msg: m, From: &p}) {
		t.Fatal("a second job fitted a queue of one")
	}
	m.Release()
	if got := p.routing.Load(); got != 1 {
		t.Fatalf("routing count %d after a refused submit, want 1", got)
	}
	if d.MayRouteInline(&p, false) {
		t.Fatal("inline allowed while a message is with the worker")
	}
	w.do(<-w.ch)
	w.Post()
	if p.Busy() || !d.MayRouteInline(&p, false) {
		t.Fatal("still busy after the worker posted")
	}
}

// TestEnqueuePolicy: a full queue drops the oldest or the arriving
// message, by count and by bytes, and counts each drop.
func TestEnqueuePolicy(t *testing.T) {
	for _, oldest := range []bool{true, false} {
		d := newDispatcher(t, limit.Limits{MaxQueued: 2, MaxQueuedBytes: 1 << 20, DropOldest: oldest})
		s := session.New("c")
		s.Lock()
		for _, topic := range []string{"1", "2", "3"} {
			d.EnqueueLocked(nil, s, session.Delivery{Msg: message(topic, 1), QoS: 1})
		}
		first, _ := s.DequeueLocked()
		s.Unlock()
		want := "1"
		if oldest {
			want = "2"
		}
		if string(first.Msg.Topic) != want || d.QueueFull.Load() != 1 {
			t.Errorf("DropOldest %v: head %q, %d drops; want %q, 1", oldest, first.Msg.Topic, d.QueueFull.Load(), want)
		}
	}
	d := newDispatcher(t, limit.Limits{MaxQueued: 100, MaxQueuedBytes: 20, DropOldest: true})
	s := session.New("c")
	s.Lock()
	d.EnqueueLocked(nil, s, session.Delivery{Msg: message("aa", 1), QoS: 1})            // 9 bytes
	d.EnqueueLocked(nil, s, session.Delivery{Msg: message("bb", 1), QoS: 1})            // 18
	dropped := d.EnqueueLocked(nil, s, session.Delivery{Msg: message("cc", 1), QoS: 1}) // 27: the oldest goes
	n := s.QueueLen()
	s.Unlock()
	if !dropped || n != 2 {
		t.Errorf("bytes limit: dropped %v, %d queued; want true, 2", dropped, n)
	}
}

// TestRetainedBlocksGoesToWorkers: where setting a retained message may
// block, a retained message is never routed on a loop; others still are.
func TestRetainedBlocksGoesToWorkers(t *testing.T) {
	d := newDispatcher(t, limit.Limits{})
	var p Publisher
	if !d.MayRouteInline(&p, true) {
		t.Fatal("a retained message kept off the loop on a single node")
	}
	d.retainedBlocks = true
	if d.MayRouteInline(&p, true) || !d.MayRouteInline(&p, false) {
		t.Fatal("RetainedBlocks: retained inline, or plain messages kept off the loop")
	}
}

// TestReceiptsHoldAcknowledgements: the acknowledgement of a message
// forwarded to another node waits for its receipt, once per batch, and
// becomes a refusal (ackFail) when the other node could not store it;
// QoS 0 messages and messages the peer does not get are acknowledged as
// before.
func TestReceiptsHoldAcknowledgements(t *testing.T) {
	for _, fail := range []error{nil, errors.New("no quorum")} {
		d := newDispatcher(t, limit.Limits{})
		p := &peerLog{name: "b", fail: fail}
		d.subs.Subscribe(p, "t/#", router.Options{QoS: 1})
		w := d.Workers()[0]
		for i, topic := range []string{"t/1", "t/2", "u/3"} {
			w.do(Job{Msg: message(topic, 1), Ack: publisher{}, AckID: uint16(i + 1), AckType: codec.PUBACK})
		}
		w.do(Job{Msg: message("t/4", 0)}) // no receipt, no acknowledgement
		if p.waited != 0 {
			t.Fatal("a receipt was waited for before the batch ended")
		}
		w.confirmHeld()
		if p.waited != 2 {
			t.Fatalf("%d receipts waited for, want 2 (t/1, t/2)", p.waited)
		}
		var failed []uint16
		for _, it := range w.acks[0] {
			if it.ackFail {
				failed = append(failed, it.ackID)
			}
		}
		want := []uint16(nil)
		if fail != nil {
			want = []uint16{1, 2}
		}
		if !slices.Equal(failed, want) {
			t.Errorf("receipts failing with %v: refused %v, want %v", fail, failed, want)
		}
	}
}

// TestRoutedTold: a job's Routed hears, once its batch's receipts are
// in, whether the stream failed to take its message for some node; at
// once when it went to no other node.
func TestRoutedTold(t *testing.T) {
	for _, fail := range []error{nil, errors.New("no quorum")} {
		d := newDispatcher(t, limit.Limits{})
		p := &peerLog{name: "b", fail: fail}
		d.subs.Subscribe(p, "t/#", router.Options{QoS: 1})
		w := d.Workers()[0]
		var told []string
		tell := func(topic string) func(bool) {
			return func(failed bool) { told = append(told, fmt.Sprintf("%s %v", topic, failed)) }
		}
		w.do(Job{Msg: message("u/1", 1), Routed: tell("u/1")}) // no other node: told at once
		w.do(Job{Msg: message("t/2", 1), Routed: tell("t/2")})
		if !slices.Equal(told, []string{"u/1 false"}) {
			t.Fatalf("told %q before the batch's receipts were in", told)
		}
		w.confirmHeld()
		want := []string{"u/1 false", fmt.Sprintf("t/2 %v", fail != nil)}
		if !slices.Equal(told, want) {
			t.Errorf("receipts failing with %v: told %q, want %q", fail, told, want)
		}
	}
}

// TestStreamMessagesAckedAfterPost: a message from the cluster's stream is
// acknowledged to it once its batch is posted, not when it is routed.
func TestStreamMessagesAckedAfterPost(t *testing.T) {
	d := newDispatcher(t, limit.Limits{})
	w := d.Workers()[0]
	acked := 0
	w.do(Job{Msg: message("a", 1), Local: true, Done: acker{&acked}})
	w.do(Job{Msg: message("b", 1), Local: true, Done: acker{&acked}})
	if acked != 0 {
		t.Fatal("acknowledged to the stream before the batch was posted")
	}
	w.Post()
	if acked != 2 {
		t.Fatalf("%d acknowledged to the stream after Post, want 2", acked)
	}
}

// seenOnce is a Once that remembers every origin it was asked about.
type seenOnce map[string]map[uint64]bool

func (o seenOnce) Active() bool { return true }

func (o seenOnce) First(clientID string, origin uint64) bool {
	if o[clientID] == nil {
		o[clientID] = map[uint64]bool{}
	}
	first := !o[clientID][origin]
	o[clientID][origin] = true
	return first
}

// offlineSession is a persistent session with no connection, subscribed
// to filter with QoS 2: what reaches it waits in its queue.
func offlineSession(d *Dispatcher, id, filter string) *session.Session {
	s := session.New(id)
	s.Lock()
	s.SetExpiryLocked(3600)
	s.AddSubLocked(filter, router.Options{QoS: 2})
	s.Unlock()
	d.subs.Subscribe(s, filter, router.Options{QoS: 2})
	return s
}

// TestJobToOneSession: a message from another node addressed to one
// session (Job.To: passed on by the node the session left) reaches that
// session alone, not the others it matches.
func TestJobToOneSession(t *testing.T) {
	d := newDispatcher(t, limit.Limits{MaxQueued: 100, MaxQueuedBytes: 1 << 20})
	a, b := offlineSession(d, "a", "t/#"), offlineSession(d, "b", "t/#")
	w := d.Workers()[0]
	w.do(Job{Msg: message("t/x", 1), Local: true, To: "b"})
	if a.QueueLen() != 0 || b.QueueLen() != 1 {
		t.Fatalf("queued a %d, b %d; want 0, 1", a.QueueLen(), b.QueueLen())
	}
	w.do(Job{Msg: message("t/y", 1), Local: true})
	if a.QueueLen() != 1 || b.QueueLen() != 2 {
		t.Fatalf("a message for every session: queued a %d, b %d; want 1, 2", a.QueueLen(), b.QueueLen())
	}
}

// TestOnceKeepsMessagesSingle: a message this node routes first gets an
// Origin of its own; while sessions move (Once), a QoS 1 or 2 message
// that comes again by another way, with the same Origin, is not delivered
// again; QoS 0 is not asked about.
func TestOnceKeepsMessagesSingle(t *testing.T) {
	d := newDispatcher(t, limit.Limits{MaxQueued: 100, MaxQueuedBytes: 1 << 20})
	once := seenOnce{}
	d.once = once
	s := offlineSession(d, "moved", "t/#")
	w := d.Workers()[0]
	first, other := message("t/x", 2), message("t/x", 2)
	first.Ref() // the test reads its Origin after the worker is done
	w.do(Job{Msg: first})
	w.do(Job{Msg: other})
	if first.Origin == 0 || first.Origin == other.Origin {
		t.Fatalf("origins %d and %d: want two, not 0", first.Origin, other.Origin)
	}
	again := message("t/x", 2)
	again.Origin = first.Origin
	w.do(Job{Msg: again, Local: true})
	if n := s.QueueLen(); n != 2 {
		t.Fatalf("queued %d, want 2: the QoS 2 message that came again was delivered", n)
	}
	q1, q1again := message("t/y", 1), message("t/y", 1)
	q1.Origin, q1again.Origin = 7, 7
	w.do(Job{Msg: q1, Local: true})
	w.do(Job{Msg: q1again, Local: true})
	if n := s.QueueLen(); n != 3 {
		t.Fatalf("queued %d, want 3: a QoS 1 message that came again was delivered", n)
	}
	q0 := message("t/z", 0)
	q0.Origin = 8
	w.do(Job{Msg: q0, Local: true})
	first.Release()
	if len(once["moved"]) != 3 || once["moved"][8] {
		t.Fatalf("Once asked about %v, want 3 origins, not QoS 0's", once["moved"])
	}
}
