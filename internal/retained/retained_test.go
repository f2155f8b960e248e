package retained

import (
	"strings"
	"testing"

	"github.com/shoalmq/shoal/router"
)

func msgs(topics ...string) []*router.Message {
	var list []*router.Message
	for _, t := range topics {
		list = append(list, router.NewMessage([]byte(t), nil, nil, nil, 1, true, 0, nil))
	}
	return list
}

// TestQueueOrderAndReferences: messages come out cursor by cursor in
// SUBSCRIBE order; a replaced filter starts over at the end; what is
// dropped is released and what is taken is the caller's.
func TestQueueOrderAndReferences(t *testing.T) {
	var q Queue
	var p Pool
	a, b, a2 := msgs("a/1", "a/2"), msgs("b/1"), msgs("a/3")
	if !q.Replace(&p, "a/#", a, router.Options{SubID: 1}) || !q.Replace(&p, "b/#", b, router.Options{SubID: 2}) {
		t.Fatal("Replace with messages reported none")
	}
	m, o, ok := q.Peek(&p)
	if !ok || m != a[0] || o.SubID != 1 {
		t.Fatalf("Peek = %v %v %v", m, o, ok)
	}
	q.Take()
	taken := m
	q.Replace(&p, "a/#", a2, router.Options{SubID: 3}) // a/2 dropped: released
	var got []string
	for {
		m, _, ok := q.Peek(&p)
		if !ok {
			break
		}
		q.Take()
		got = append(got, string(m.Topic))
		m.Release()
	}
	if want := "b/1 a/3"; strings.Join(got, " ") != want {
		t.Fatalf("order %q, want %q", strings.Join(got, " "), want)
	}
	if taken.Refs() != 1 {
		t.Fatalf("taken message has %d references, want 1", taken.Refs())
	}
	if q.Len() != 0 || len(p.lists) == 0 {
		t.Fatalf("queue of %d cursors, %d pooled lists", q.Len(), len(p.lists))
	}
	if q.Replace(&p, "c", p.Get(), router.Options{}) {
		t.Fatal("Replace with an empty list reported messages")
	}
}

// TestWaitsInOrder: a SUBSCRIBE's retained messages are read only when it
// and every SUBSCRIBE before it passed the barrier, in the order they
// came.
func TestWaitsInOrder(t *testing.T) {
	var ws Waits
	a := ws.Add([]Req{{Filter: "a"}})
	b := ws.Add([]Req{{Filter: "b1"}, {Filter: "b2"}})
	var got []string
	read := func(r Req) { got = append(got, r.Filter) }
	b.Done()
	ws.Ready(read)
	if len(got) != 0 {
		t.Fatalf("read %q before the first SUBSCRIBE's barrier", got)
	}
	a.Done()
	ws.Ready(read)
	if len(got) != 3 || got[0] != "a" || got[1] != "b1" || got[2] != "b2" {
		t.Fatalf("read %q, want [a b1 b2]", got)
	}
}
