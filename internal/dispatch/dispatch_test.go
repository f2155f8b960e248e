package dispatch

import (
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"

	"github.com/shoalmq/shoal/internal/limit"
	"github.com/shoalmq/shoal/internal/persist"
	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/session"
)

// remoteLog records what Remote was handed.
type remoteLog struct{ topics []string }

func (r *remoteLog) Route(m *router.Message) { r.topics = append(r.topics, string(m.Topic)) }

func newDispatcher(t *testing.T, lim limit.Limits, remote Remote) *Dispatcher {
	t.Helper()
	var log atomic.Pointer[zerolog.Logger]
	nop := zerolog.Nop()
	log.Store(&nop)
	var lp atomic.Pointer[limit.Limits]
	lp.Store(&lim)
	return New(Config{Loops: 1, Workers: 1, WorkerQueue: 1, Subs: router.NewTable(0, router.RoundRobin),
		Retained: router.NewRetained(), Persist: persist.New(&log), Limits: &lp,
		PersistLoops: []*persist.Loop{{}}, Remote: remote})
}

func message(topic string, qos byte) *router.Message {
	return router.NewMessage([]byte(topic), []byte("payload"), nil, []byte("pub"), qos, false, 0, nil)
}

// TestRemoteSeesEachMessageOnce: every message routed here goes to Remote
// once, except one that came from there (Local).
func TestRemoteSeesEachMessageOnce(t *testing.T) {
	r := &remoteLog{}
	d := newDispatcher(t, limit.Limits{}, r)
	w := d.Workers()[0]
	for _, j := range []Job{{Msg: message("a", 0)}, {Msg: message("from/elsewhere", 0), Local: true}, {Msg: message("b", 1)}} {
		w.do(j)
	}
	if len(r.topics) != 2 || r.topics[0] != "a" || r.topics[1] != "b" {
		t.Fatalf("Remote got %q, want [a b]", r.topics)
	}
}

// TestSubmitCountsPublisher: a job counts among its publisher's messages
// with a worker until its deliveries are posted; a full queue takes
// nothing and counts nothing.
func TestSubmitCountsPublisher(t *testing.T) {
	d := newDispatcher(t, limit.Limits{}, nil)
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
	if d.MayRouteInline(&p) {
		t.Fatal("inline allowed while a message is with the worker")
	}
	w.do(<-w.ch)
	w.Post()
	if p.Busy() || !d.MayRouteInline(&p) {
		t.Fatal("still busy after the worker posted")
	}
}

// TestEnqueuePolicy: a full queue drops the oldest or the arriving
// message, by count and by bytes, and counts each drop.
func TestEnqueuePolicy(t *testing.T) {
	for _, oldest := range []bool{true, false} {
		d := newDispatcher(t, limit.Limits{MaxQueued: 2, MaxQueuedBytes: 1 << 20, DropOldest: oldest}, nil)
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
	d := newDispatcher(t, limit.Limits{MaxQueued: 100, MaxQueuedBytes: 20, DropOldest: true}, nil)
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
