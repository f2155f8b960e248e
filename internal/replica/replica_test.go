package replica

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/shoalmq/shoal/internal/cluster"
	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/store"
)

// holder is a Holder whose claims a test sets.
type holder struct {
	mu     sync.Mutex
	epochs map[string]uint64 // absent: not this node's
	away   atomic.Bool       // not serving: frozen, or cut off
}

func (h *holder) Mine(id string) (uint64, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.epochs[id]
	return e, ok
}

func (h *holder) Serving() bool { return !h.away.Load() }

func (h *holder) set(id string, epoch uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if epoch == 0 {
		delete(h.epochs, id)
	} else {
		h.epochs[id] = epoch
	}
}

// freeAddr returns a loopback address whose port was free a moment ago
// (package testutil's FreeAddr, which imports the broker, which imports
// this package).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startNode starts a cluster of one node.
func startNode(t *testing.T) *cluster.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, err := cluster.Start(ctx, cluster.Config{
		Settings: cluster.Settings{Name: "test", Node: "a", Listen: freeAddr(t), Replicas: 1},
		DataDir:  t.TempDir(), Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n
}

func open(t *testing.T, n *cluster.Node, h Holder) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := Open(ctx, n, store.NewMem(), h, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func bundle(t *testing.T, r *Store, id string) *store.Bundle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := r.Bundle(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if v == nil {
		return nil
	}
	var b store.Bundle
	if err := store.DecodeBundle(v, &b); err != nil {
		t.Fatal(err)
	}
	return &b
}

func msg(payload string) store.Message {
	return store.Message{Topic: []byte("t/" + payload), Payload: []byte(payload), From: []byte("p"), QoS: 2}
}

// payloads lists b's deliveries as "payload/state".
func payloads(b *store.Bundle) string {
	var s []string
	for _, d := range b.Deliveries {
		s = append(s, fmt.Sprintf("%s/%d", d.Msg.Payload, d.State))
	}
	return strings.Join(s, " ")
}

// TestCopyAndRead: what a writer commits with sync of a session the node
// holds is in the stream when Commit returns — session, deliveries queued
// and in flight, awaited QoS 2 ids — and a removed record is gone from
// what Bundle reads.
func TestCopyAndRead(t *testing.T) {
	n := startNode(t)
	h := &holder{epochs: map[string]uint64{"c": 3}}
	r := open(t, n, h)
	w := r.NewWriter()
	w.PutSession(&store.Session{ClientID: "c", Expiry: 300,
		Subs: []store.Sub{{Filter: "t/#", Opts: router.Options{QoS: 2, SubID: 7}}}})
	for i, p := range []string{"a", "b", "c", "d"} {
		w.PutDelivery("c", store.Delivery{Seq: uint64(10 + i), Msg: msg(p), QoS: 2, SubIDs: []uint32{7}})
	}
	w.MarkSent("c", 11, 5, 2)
	w.PutAwaitRel("c", 9)
	w.PutAwaitRel("c", 4)
	if err := w.Commit(true); err != nil {
		t.Fatal(err)
	}
	b := bundle(t, r, "c")
	if b == nil {
		t.Fatal("no session in the stream after a syncing commit")
	}
	if b.Session.Expiry != 300 || len(b.Session.Subs) != 1 || b.Session.Subs[0].Filter != "t/#" || b.Session.Subs[0].Opts.SubID != 7 {
		t.Fatalf("session %+v", b.Session)
	}
	if got, want := payloads(b), "b/2 a/0 c/0 d/0"; got != want {
		t.Fatalf("deliveries %q, want %q (in flight first, then by Seq)", got, want)
	}
	if b.Deliveries[0].PacketID != 5 || fmt.Sprint(b.AwaitRel) != "[4 9]" {
		t.Fatalf("packet id %d, awaiting PUBREL %v", b.Deliveries[0].PacketID, b.AwaitRel)
	}

	w.DeleteDelivery("c", 11)
	w.DeleteDelivery("c", 12)
	w.DeleteAwaitRel("c", 9)
	if err := w.Commit(true); err != nil {
		t.Fatal(err)
	}
	b = bundle(t, r, "c")
	if got, want := payloads(b), "a/0 d/0"; got != want || fmt.Sprint(b.AwaitRel) != "[4]" {
		t.Fatalf("after removals: deliveries %q (want %q), awaiting PUBREL %v (want [4])", got, want, b.AwaitRel)
	}

	w.DeleteSession("c")
	if err := w.Commit(true); err != nil {
		t.Fatal(err)
	}
	if b := bundle(t, r, "c"); b != nil {
		t.Fatalf("an ended session read back: %+v", b)
	}
	if r.Failures.Load() != 0 {
		t.Fatalf("%d changes not replicated", r.Failures.Load())
	}
}

// TestOnlyHeldSessions: a session this node does not hold — never
// claimed here, or handed over — is not written, and its end here does
// not remove the new owner's copy.
func TestOnlyHeldSessions(t *testing.T) {
	n := startNode(t)
	h := &holder{epochs: map[string]uint64{"mine": 1}}
	r := open(t, n, h)
	w := r.NewWriter()
	w.PutSession(&store.Session{ClientID: "other", Expiry: 60})
	w.PutSession(&store.Session{ClientID: "mine", Expiry: 60})
	w.PutDelivery("mine", store.Delivery{Seq: 1, Msg: msg("x"), QoS: 1})
	if err := w.Commit(true); err != nil {
		t.Fatal(err)
	}
	if b := bundle(t, r, "other"); b != nil {
		t.Fatalf("a session not held was written: %+v", b)
	}
	h.set("mine", 0) // another node claimed it
	w.DeleteSession("mine")
	w.PutDelivery("mine", store.Delivery{Seq: 2, Msg: msg("y"), QoS: 1})
	if err := w.Commit(true); err != nil {
		t.Fatal(err)
	}
	if b := bundle(t, r, "mine"); b == nil || payloads(b) != "x/0" {
		t.Fatalf("after the session moved away, the copy reads %v, want its last state (x/0)", b)
	}
}

// TestNewGenerationPurgesOld: a node that begins to write a session under a
// newer claim (it adopted it) writes it whole under its generation; the
// records of the older one are purged, and never read.
func TestNewGenerationPurgesOld(t *testing.T) {
	n := startNode(t)
	old := open(t, n, &holder{epochs: map[string]uint64{"c": 1}})
	w := old.NewWriter()
	w.PutSession(&store.Session{ClientID: "c", Expiry: 60})
	w.PutDelivery("c", store.Delivery{Seq: 1, Msg: msg("old1"), QoS: 1})
	w.PutDelivery("c", store.Delivery{Seq: 2, Msg: msg("old2"), QoS: 1})
	if err := w.Commit(true); err != nil {
		t.Fatal(err)
	}

	next := open(t, n, &holder{epochs: map[string]uint64{"c": 2}})
	w2 := next.NewWriter()
	w2.PutSession(&store.Session{ClientID: "c", Expiry: 60})
	w2.PutDelivery("c", store.Delivery{Seq: 1, Msg: msg("new1"), QoS: 1})
	if err := w2.Commit(true); err != nil {
		t.Fatal(err)
	}
	if b := bundle(t, next, "c"); b == nil || payloads(b) != "new1/0" {
		t.Fatalf("read %v, want the new generation's only (new1/0)", b)
	}
	oldGen := genPrefix("c", 1)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		info, err := next.stream.Info(context.Background(), jetstream.WithSubjectFilter(oldGen))
		if err == nil && len(info.State.Subjects) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the old generation's records are still there: %v (%v)", info, err)
		}
	}
}

// TestReadManyRecords: a session with thousands of messages queued (an
// offline subscriber's, kept while its node was gone) and hundreds of
// receipts is read whole, each message once, in order, with its Origin,
// and every receipt.
func TestReadManyRecords(t *testing.T) {
	n := startNode(t)
	r := open(t, n, &holder{epochs: map[string]uint64{"big": 1}})
	w := r.NewWriter()
	w.PutSession(&store.Session{ClientID: "big", Expiry: 300, Subs: []store.Sub{{Filter: "t/#", Opts: router.Options{QoS: 1}}}})
	const total = 3000
	for i := range total {
		m := msg(fmt.Sprint(i))
		m.Origin = uint64(1000 + i)
		w.PutDelivery("big", store.Delivery{Seq: uint64(i + 1), Msg: m, QoS: 1})
		if i%10 == 0 {
			w.(store.ReceiptWriter).Received("big", uint64(i+1))
		}
	}
	if err := w.Commit(true); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	b := bundle(t, r, "big")
	t.Logf("read %d records in %v", total+1, time.Since(start))
	if b == nil || len(b.Deliveries) != total || len(b.Received) != total/10 {
		t.Fatalf("read %v deliveries and %d receipts, want %d and %d", b, len(b.Received), total, total/10)
	}
	for i, d := range b.Deliveries {
		if string(d.Msg.Payload) != fmt.Sprint(i) || d.Msg.Origin != uint64(1000+i) {
			t.Fatalf("delivery %d: %q, origin %d", i, d.Msg.Payload, d.Msg.Origin)
		}
	}
}

// TestReceipts: a receipt (Received) outlives the delivery it was for —
// the session's next reader learns that its client had that message —
// lasts a minute past rescue_after, not forever, is read from its
// subject alone, and outlives the purge of the older generations'
// records when another node adopts the session.
func TestReceipts(t *testing.T) {
	n := startNode(t)
	r := open(t, n, &holder{epochs: map[string]uint64{"c": 1}})
	w := r.NewWriter()
	w.PutSession(&store.Session{ClientID: "c", Expiry: 60})
	m := msg("x")
	m.Origin = 77
	w.PutDelivery("c", store.Delivery{Seq: 1, Msg: m, QoS: 2})
	w.PutDelivery("c", store.Delivery{Seq: 2, Msg: msg("y"), QoS: 2})
	w.MarkSent("c", 1, 5, 3)
	w.(store.ReceiptWriter).Received("c", 77)
	if err := w.Commit(true); err != nil {
		t.Fatal(err)
	}
	w.DeleteDelivery("c", 1)
	if err := w.Commit(true); err != nil {
		t.Fatal(err)
	}
	b := bundle(t, r, "c")
	if b == nil || payloads(b) != "y/0" || fmt.Sprint(b.Received) != "[77]" {
		t.Fatalf("read %+v, want y/0 owed and the receipt of 77", b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rm, err := r.stream.GetLastMsgForSubject(ctx, string(subjectOf(nil, "c", 1, 'o', 77)))
	if err != nil {
		t.Fatal(err)
	}
	want := receivedTTL + n.RescueAfter() // a minute past rescue_after
	if ttl := rm.Header.Get(jetstream.MsgTTLHeader); ttl != want.String() && ttl != fmt.Sprint(int(want.Seconds())) {
		t.Fatalf("the receipt lasts %q, want %v", ttl, want)
	}

	// Adopted by another node, under claim 2, which writes the session
	// anew: generation 1's records go, its receipt stays.
	next := open(t, n, &holder{epochs: map[string]uint64{"c": 2}})
	w2 := next.NewWriter()
	w2.PutSession(&store.Session{ClientID: "c", Expiry: 60})
	if err := w2.Commit(true); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		info, err := next.stream.Info(ctx, jetstream.WithSubjectFilter(genPrefix("c", 1)))
		if err == nil && len(info.State.Subjects) == 1 {
			if _, ok := info.State.Subjects[string(subjectOf(nil, "c", 1, 'o', 77))]; ok {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("generation 1 has %v (%v), want its receipt alone", info.State.Subjects, err)
		}
	}
	if b := bundle(t, next, "c"); b == nil || len(b.Deliveries) != 0 || fmt.Sprint(b.Received) != "[77]" {
		t.Fatalf("after the adoption, read %+v, want no delivery and the receipt of 77", b)
	}
}

// repairWith has r repair sessions by writing each with one delivery, of
// Seq seq and payload p, and says which it rewrote.
func repairWith(r *Store, seq uint64, p string) <-chan string {
	rewrote := make(chan string, 4)
	r.RepairWith(func(id string, w store.Writer) bool {
		w.PutSession(&store.Session{ClientID: id, Expiry: 60})
		w.PutDelivery(id, store.Delivery{Seq: seq, Msg: msg(p), QoS: 1})
		_ = w.Commit(false)
		rewrote <- id
		return true
	})
	return rewrote
}

// failThenConfirm commits through w a change of id's session the stream
// does not take (a message too large for it), then one of session
// "other" that it confirms: what a repair waits for.
func failThenConfirm(t *testing.T, n *cluster.Node, w store.Writer, id string) {
	t.Helper()
	big := msg("big")
	big.Payload = make([]byte, n.Conn().MaxPayload()+1)
	w.PutDelivery(id, store.Delivery{Seq: 2, Msg: big, QoS: 1})
	if err := w.Commit(true); err != nil {
		t.Fatal(err)
	}
	w.PutSession(&store.Session{ClientID: "other", Expiry: 60})
	if err := w.Commit(true); err != nil {
		t.Fatal(err)
	}
}

// TestRepairAfterFailure: a session a change of which the stream did not
// take (here, a message too large for it) is written anew, whole, once
// the stream confirms a publish again: the records the copy had of it
// before are replaced by what the node has now. Without the repair, the
// copy would keep a delivery completed here (sent again by the session's
// next node) and lack one owed (lost).
func TestRepairAfterFailure(t *testing.T) {
	n := startNode(t)
	r := open(t, n, &holder{epochs: map[string]uint64{"c": 1, "other": 1}})
	repaired := repairWith(r, 3, "now")
	w := r.NewWriter()
	w.PutSession(&store.Session{ClientID: "c", Expiry: 60})
	w.PutDelivery("c", store.Delivery{Seq: 1, Msg: msg("done-here"), QoS: 1})
	if err := w.Commit(true); err != nil {
		t.Fatal(err)
	}
	failThenConfirm(t, n, w, "c")
	if r.Failures.Load() != 1 {
		t.Fatalf("%d failures, want 1", r.Failures.Load())
	}
	select {
	case id := <-repaired:
		if id != "c" {
			t.Fatalf("repaired %q, want c", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no repair after the stream confirmed again")
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		b := bundle(t, r, "c")
		if b != nil && payloads(b) == "now/0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the repair the copy reads %v, want the session as rewritten (now/0)", b)
		}
	}
	if r.Repaired.Load() != 1 {
		t.Fatalf("%d repaired, want 1", r.Repaired.Load())
	}
}

// TestRepairLeavesNewerOwner: a node whose change the stream did not
// confirm, and whose claim moved meanwhile (it was cut off, or frozen,
// and does not know yet), does not repair the session over its new
// owner's copy: the session record it would replace is another
// generation's. A repair that put back its older generation hid the new
// owner's records from readers (and, purging every generation, removed
// them).
func TestRepairLeavesNewerOwner(t *testing.T) {
	n := startNode(t)
	a := open(t, n, &holder{epochs: map[string]uint64{"c": 1, "other": 1}})
	rewrote := repairWith(a, 7, "stale-a")
	wa := a.NewWriter()
	wa.PutSession(&store.Session{ClientID: "c", Expiry: 60})
	if err := wa.Commit(true); err != nil {
		t.Fatal(err)
	}

	b := open(t, n, &holder{epochs: map[string]uint64{"c": 2}}) // adopted it, claim 2
	wb := b.NewWriter()
	wb.PutSession(&store.Session{ClientID: "c", Expiry: 60})
	wb.PutDelivery("c", store.Delivery{Seq: 1, Msg: msg("owed-by-b"), QoS: 1})
	if err := wb.Commit(true); err != nil {
		t.Fatal(err)
	}

	failThenConfirm(t, n, wa, "c") // a's change the stream does not take; then a repair runs
	for deadline := time.Now().Add(10 * time.Second); a.RepairsSkipped.Load() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no repair round after the stream confirmed again (repaired %d)", a.Repaired.Load())
		}
	}
	select {
	case id := <-rewrote:
		t.Fatalf("a rewrote %q over its new owner's copy", id)
	default:
	}
	if got := bundle(t, b, "c"); got == nil || payloads(got) != "owed-by-b/0" {
		t.Fatalf("b's copy reads %v, want owed-by-b/0 alone", got)
	}
}

// TestUnvouched: a writer's syncing Commit that ends on a node that does
// not serve (frozen or cut off while it waited) returns
// store.ErrUnvouched while any publish, its own or another writer's,
// came after the last one a wait ended on while the node served — the
// output that waited for them must not go — and nil when none did, or
// once the node serves again. A strict writer's answer is the stream's
// alone.
// TestPublishNotRetried: a change the stream does not take at once (no
// stream answers, as while one elects a leader) fails, counted for the
// session's repair, instead of being published again a moment later —
// after the changes that followed it, over them: the record of a
// delivery deleted since came back, and the session's next node sent the
// message again.
func TestPublishNotRetried(t *testing.T) {
	n := startNode(t)
	h := &holder{epochs: map[string]uint64{"c": 1}}
	r := open(t, n, h)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	info, err := r.stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w := r.NewWriter()
	w.PutSession(&store.Session{ClientID: "c", Expiry: 300})
	if err := w.Commit(true); err != nil {
		t.Fatal(err)
	}
	if err := r.js.DeleteStream(ctx, streamName); err != nil {
		t.Fatal(err)
	}
	w.PutDelivery("c", store.Delivery{Seq: 1, Msg: msg("a"), QoS: 1}) // no stream to take it
	if err := w.Commit(false); err != nil {
		t.Fatal(err)
	}
	if _, err := r.js.CreateStream(ctx, info.Config); err != nil {
		t.Fatal(err)
	}
	w.PutSession(&store.Session{ClientID: "c", Expiry: 300})
	w.DeleteDelivery("c", 1)
	if err := w.Commit(true); err != nil {
		t.Fatal(err)
	}
	// The syncing commit waited for every publish before it, confirmed
	// or failed.
	if r.Failures.Load() == 0 {
		t.Fatal("the change no stream took was not counted as failed")
	}
	if b := bundle(t, r, "c"); b == nil || len(b.Deliveries) != 0 {
		t.Fatalf("the copy: %+v, want the session without the deleted delivery", b)
	}
}

// TestUnvouchedUnheld: a change to a session another node holds by now
// (the node learnt the claim after it wrote the session) is not
// published, and a syncing commit says so for that session alone —
// serving or not, whether the commit is this writer's or not — while
// the other sessions' changes are vouched for: a PUBREL sent for such a
// change, a rescuer that read the copy without it would follow with the
// PUBLISH again. A commit without sync forgets it: nothing waited.
func TestUnvouchedUnheld(t *testing.T) {
	n := startNode(t)
	h := &holder{epochs: map[string]uint64{"c": 1, "d": 1}}
	r := open(t, n, h)
	w := r.NewWriter()
	for _, id := range []string{"c", "d"} {
		w.PutSession(&store.Session{ClientID: id, Expiry: 300})
		w.PutDelivery(id, store.Delivery{Seq: 1, Msg: msg("a"), QoS: 2})
	}
	if err := w.Commit(true); err != nil {
		t.Fatalf("held: %v", err)
	}
	h.set("c", 0) // another node's claim, learnt
	for _, away := range []bool{false, true} {
		h.away.Store(away)
		w.MarkSent("c", 1, 1, 2)
		w.MarkSent("d", 1, 1, 2)
		err := w.Commit(true)
		var some *store.UnvouchedError
		switch {
		case away && !errors.Is(err, store.ErrUnvouched):
			t.Fatalf("away, c held elsewhere: %v, want store.ErrUnvouched", err)
		case !away && (!errors.As(err, &some) || !slices.Equal(some.Clients, []string{"c"})):
			t.Fatalf("serving, c held elsewhere: %v, want store.UnvouchedError for c alone", err)
		}
	}
	h.away.Store(false)
	w.MarkSent("c", 1, 1, 2)
	if err := w.Commit(false); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(true); err != nil {
		t.Fatalf("after a commit without sync: %v, want none", err)
	}
}

func TestUnvouched(t *testing.T) {
	n := startNode(t)
	h := &holder{epochs: map[string]uint64{"c": 1}}
	r := open(t, n, h)
	w := r.NewWriter()
	w.PutSession(&store.Session{ClientID: "c", Expiry: 300})
	w.PutDelivery("c", store.Delivery{Seq: 1, Msg: msg("a"), QoS: 2})
	if err := w.Commit(true); err != nil {
		t.Fatalf("serving: %v", err)
	}
	h.away.Store(true)
	w.MarkSent("c", 1, 1, 2)
	if err := w.Commit(true); !errors.Is(err, store.ErrUnvouched) {
		t.Fatalf("away, a change published: %v, want store.ErrUnvouched", err)
	}
	if err := w.Commit(true); !errors.Is(err, store.ErrUnvouched) {
		t.Fatalf("away, nothing new, the last change still unvouched: %v, want store.ErrUnvouched", err)
	}
	// Another writer's publish counts too: the output of this one's
	// loop may acknowledge it (a router worker stored the message, the
	// loop sends the PUBACK), even after that other writer's syncing
	// commit found the node away.
	other := r.NewWriter()
	other.PutDelivery("c", store.Delivery{Seq: 2, Msg: msg("b"), QoS: 1})
	if err := other.Commit(false); err != nil {
		t.Fatal(err)
	}
	third := r.NewWriter()
	if err := third.Commit(true); !errors.Is(err, store.ErrUnvouched) {
		t.Fatalf("away, another writer's change published: %v, want store.ErrUnvouched", err)
	}
	if err := w.Commit(true); !errors.Is(err, store.ErrUnvouched) {
		t.Fatalf("away, after another writer's unvouched commit: %v, want store.ErrUnvouched", err)
	}
	cw := r.CopyWriter()
	cw.PutDelivery("c", store.Delivery{Seq: 3, Msg: msg("c"), QoS: 1})
	if err := cw.Commit(true); err != nil {
		t.Fatalf("a strict writer, away, the stream confirmed: %v", err)
	}
	h.away.Store(false)
	w.DeleteDelivery("c", 1)
	if err := w.Commit(true); err != nil {
		t.Fatalf("serving again: %v", err)
	}
	h.away.Store(true)
	if err := third.Commit(true); err != nil {
		t.Fatalf("away again, nothing published since a wait ended serving: %v", err)
	}
	if got := payloads(bundle(t, r, "c")); got != "b/0 c/0" {
		t.Errorf("copy holds %q, want the changes committed away too: \"b/0 c/0\"", got)
	}
}
