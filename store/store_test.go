package store

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/shoalmq/shoal/router"
)

// The suite below runs against every Store: what Pebble keeps on disk,
// Mem keeps in memory, with the same records and the same answers.

// impl opens a store for a test and reopens it (the same state, as after a
// restart).
type impl struct {
	name   string
	open   func(t *testing.T) Store
	reopen func(t *testing.T, s Store) Store
}

func impls() []impl {
	return []impl{
		{
			name: "mem",
			open: func(*testing.T) Store { return NewMem() },
			reopen: func(_ *testing.T, s Store) Store {
				return s
			},
		},
		{
			name: "pebble",
			open: func(t *testing.T) Store { return openTestPebble(t, t.TempDir()) },
			reopen: func(t *testing.T, s Store) Store {
				p := s.(*Pebble)
				if err := p.Close(); err != nil {
					t.Fatal(err)
				}
				return openTestPebble(t, p.dir)
			},
		},
	}
}

func forEach(t *testing.T, fn func(t *testing.T, im impl)) {
	for _, im := range impls() {
		t.Run(im.name, func(t *testing.T) { fn(t, im) })
	}
}

// recorder is a Loader that keeps copies of everything it is given, and
// keeps a record unless drop says otherwise.
type recorder struct {
	sessions   []Session
	deliveries []string // "client seq payload qos pid state"
	awaits     []string
	retained   []string
	corrupt    []string
	drop       func(what string) bool
}

func (r *recorder) keep(what string) bool { return r.drop == nil || !r.drop(what) }

func (r *recorder) Session(s *Session) bool {
	c := *s
	c.Subs = append([]Sub(nil), s.Subs...)
	if s.Will != nil {
		w := cloneMessage(*s.Will)
		c.Will = &w
	}
	r.sessions = append(r.sessions, c)
	return r.keep("session " + s.ClientID)
}

func (r *recorder) Delivery(id string, d *Delivery) bool {
	r.deliveries = append(r.deliveries, fmt.Sprintf("%s %d %s q%d id%d st%d subs%v g%q", id, d.Seq, d.Msg.Payload, d.QoS, d.PacketID, d.State, d.SubIDs, d.Group))
	return r.keep(fmt.Sprintf("delivery %s %d", id, d.Seq))
}

func (r *recorder) AwaitRel(id string, pid uint16) bool {
	r.awaits = append(r.awaits, fmt.Sprintf("%s %d", id, pid))
	return r.keep(fmt.Sprintf("await %s %d", id, pid))
}

func (r *recorder) Retained(m *Message) bool {
	r.retained = append(r.retained, fmt.Sprintf("%s=%s q%d exp%d", m.Topic, m.Payload, m.QoS, m.Expiry))
	return r.keep("retained " + string(m.Topic))
}

func (r *recorder) Corrupt(what string, err error) {
	r.corrupt = append(r.corrupt, what+": "+err.Error())
}

func cloneMessage(m Message) Message {
	m.Topic = append([]byte(nil), m.Topic...)
	m.Payload = append([]byte(nil), m.Payload...)
	m.Props = append([]byte(nil), m.Props...)
	m.From = append([]byte(nil), m.From...)
	return m
}

func loadAll(t *testing.T, s Store) *recorder {
	t.Helper()
	r := &recorder{}
	if err := s.Load(r); err != nil {
		t.Fatalf("Load: %v", err)
	}
	return r
}

func msg(topic, payload string, qos byte) Message {
	return Message{Topic: []byte(topic), Payload: []byte(payload), From: []byte("pub"), QoS: qos}
}

func commit(t *testing.T, w Writer, sync bool) {
	t.Helper()
	if err := w.Commit(sync); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

// TestRoundTrip: every kind of record comes back, after a restart, as
// written and in the promised order.
func TestRoundTrip(t *testing.T) {
	forEach(t, func(t *testing.T, im impl) {
		s := im.open(t)
		w := s.NewWriter()
		will := Message{Topic: []byte("will/t"), Payload: []byte("gone"), Props: []byte{0x01, 0x01}, From: []byte("b"), QoS: 1, Retain: true, Expiry: 30e9}
		sessA := Session{ClientID: "a", Expiry: 60, ExpireAt: 1234,
			Subs: []Sub{{Filter: "x/#", Opts: router.Options{QoS: 1, NoLocal: true, RetainHandling: 2, SubID: 7}},
				{Filter: "$share/g/y", Opts: router.Options{QoS: 2, RetainAsPublished: true}}}}
		sessB := Session{ClientID: "b", Expiry: 0xFFFFFFFF, Will: &will, WillDelay: 10}
		w.PutSession(&sessB)
		w.PutSession(&sessA)
		// Out of order, to see Load sort them.
		w.PutDelivery("a", Delivery{Seq: 300, Msg: msg("x/1", "third", 2), QoS: 2, Group: "$share/g/y"})
		w.PutDelivery("a", Delivery{Seq: 5, Msg: msg("x/1", "first", 1), QoS: 1, SubIDs: []uint32{7, 9}, Retain: true})
		w.PutDelivery("a", Delivery{Seq: 6, Msg: msg("x/1", "second", 2), QoS: 2})
		w.MarkSent("a", 5, 41, 1)
		w.MarkSent("a", 6, 42, 3)
		w.PutAwaitRel("b", 9)
		w.PutAwaitRel("a", 65535)
		r1 := msg("r/1", "kept", 1)
		r1.Expiry = 99
		w.PutRetained(r1)
		r2 := msg("r/2", "gone", 0)
		w.PutRetained(r2)
		w.DeleteRetained([]byte("r/2"))
		if !w.Dirty() {
			t.Fatal("Dirty false with changes pending")
		}
		commit(t, w, true)
		if w.Dirty() {
			t.Fatal("Dirty true after Commit")
		}

		s = im.reopen(t, s)
		r := loadAll(t, s)
		if !reflect.DeepEqual(r.sessions, []Session{sessA, sessB}) {
			t.Errorf("sessions:\n got %+v\nwant %+v", r.sessions, []Session{sessA, sessB})
		}
		wantD := []string{
			`a 5 first q1 id41 st1 subs[7 9] g""`,
			`a 6 second q2 id42 st3 subs[] g""`,
			`a 300 third q2 id0 st0 subs[] g"$share/g/y"`,
		}
		if !reflect.DeepEqual(r.deliveries, wantD) {
			t.Errorf("deliveries:\n got %q\nwant %q", r.deliveries, wantD)
		}
		if want := []string{"a 65535", "b 9"}; !reflect.DeepEqual(r.awaits, want) {
			t.Errorf("awaits %q, want %q", r.awaits, want)
		}
		if want := []string{"r/1=kept q1 exp99"}; !reflect.DeepEqual(r.retained, want) {
			t.Errorf("retained %q, want %q", r.retained, want)
		}
		if len(r.corrupt) != 0 {
			t.Errorf("corrupt: %q", r.corrupt)
		}
	})
}

// TestDeletes: DeleteSession takes a client's deliveries, sent states and
// awaited ids — not those of a client whose id starts the same —, and
// DeleteDelivery takes the sent state with the delivery.
func TestDeletes(t *testing.T) {
	forEach(t, func(t *testing.T, im impl) {
		s := im.open(t)
		w := s.NewWriter()
		for _, id := range []string{"a", "ab"} {
			w.PutSession(&Session{ClientID: id, Expiry: 10})
			for seq := uint64(1); seq <= 3; seq++ {
				w.PutDelivery(id, Delivery{Seq: seq, Msg: msg("t", id, 1), QoS: 1})
				w.MarkSent(id, seq, uint16(seq), 1)
			}
			w.PutAwaitRel(id, 1)
		}
		commit(t, w, false)
		w.DeleteSession("a")
		w.DeleteDelivery("ab", 2)
		commit(t, w, true)
		r := loadAll(t, im.reopen(t, s))
		if len(r.sessions) != 1 || r.sessions[0].ClientID != "ab" {
			t.Errorf("sessions %+v, want ab alone", r.sessions)
		}
		want := []string{`ab 1 ab q1 id1 st1 subs[] g""`, `ab 3 ab q1 id3 st1 subs[] g""`}
		if !reflect.DeepEqual(r.deliveries, want) {
			t.Errorf("deliveries %q, want %q", r.deliveries, want)
		}
		if want := []string{"ab 1"}; !reflect.DeepEqual(r.awaits, want) {
			t.Errorf("awaits %q, want %q", r.awaits, want)
		}
	})
}

// TestLoaderDrops: a record the loader does not keep is gone from the next
// load, and so is a sent state whose delivery was dropped.
func TestLoaderDrops(t *testing.T) {
	forEach(t, func(t *testing.T, im impl) {
		s := im.open(t)
		w := s.NewWriter()
		w.PutSession(&Session{ClientID: "old", Expiry: 1})
		w.PutSession(&Session{ClientID: "new", Expiry: 1})
		w.PutDelivery("new", Delivery{Seq: 1, Msg: msg("t", "expired", 1), QoS: 1})
		w.MarkSent("new", 1, 5, 1)
		w.PutDelivery("new", Delivery{Seq: 2, Msg: msg("t", "fresh", 1), QoS: 1})
		w.MarkSent("orphan", 9, 9, 1) // no delivery: dropped on load
		w.PutAwaitRel("old", 3)
		r1 := msg("r", "x", 0)
		w.PutRetained(r1)
		commit(t, w, true)
		r := &recorder{drop: func(what string) bool {
			return what == "session old" || what == "delivery new 1" || what == "await old 3" || what == "retained r"
		}}
		if err := s.Load(r); err != nil {
			t.Fatal(err)
		}
		r = loadAll(t, im.reopen(t, s))
		if len(r.sessions) != 1 || r.sessions[0].ClientID != "new" {
			t.Errorf("sessions %+v, want new alone", r.sessions)
		}
		if want := []string{`new 2 fresh q1 id0 st0 subs[] g""`}; !reflect.DeepEqual(r.deliveries, want) {
			t.Errorf("deliveries %q, want %q", r.deliveries, want)
		}
		if len(r.awaits)+len(r.retained) != 0 {
			t.Errorf("awaits %q retained %q, want none", r.awaits, r.retained)
		}
		if m, ok := s.(*Mem); ok && m.Len() != 2 {
			t.Errorf("%d records left, want 2: session new and its delivery 2", m.Len())
		}
	})
}

// TestCorruptRecordsSkipped: a record that does not parse is reported,
// skipped and deleted; the records around it load.
func TestCorruptRecordsSkipped(t *testing.T) {
	forEach(t, func(t *testing.T, im impl) {
		s := im.open(t)
		w := s.NewWriter()
		w.PutSession(&Session{ClientID: "a", Expiry: 5})
		w.PutSession(&Session{ClientID: "c", Expiry: 5})
		w.PutDelivery("a", Delivery{Seq: 1, Msg: msg("t", "one", 1), QoS: 1})
		w.PutDelivery("a", Delivery{Seq: 3, Msg: msg("t", "three", 1), QoS: 1})
		commit(t, w, true)
		bad := map[string][]byte{
			string(clientKey(nil, kindSession, "b")):       {recordVersion, 0, 0},          // truncated
			string(seqKey(nil, kindDelivery, "a", 2)):      {recordVersion + 1, 1, 2, 3},   // unknown version
			string(clientKey(nil, kindSession, "d")) + "x": encodeSession(nil, &Session{}), // key with a tail
			"Rtopic": encodeRetained(nil, &Message{Topic: []byte("other")}), // topic mismatch
		}
		putRaw(t, s, bad)
		r := loadAll(t, s)
		var ids []string
		for _, ss := range r.sessions {
			ids = append(ids, ss.ClientID)
		}
		if !reflect.DeepEqual(ids, []string{"a", "c"}) {
			t.Errorf("sessions %v, want [a c]", ids)
		}
		if len(r.deliveries) != 2 || !strings.Contains(r.deliveries[1], "three") {
			t.Errorf("deliveries %q, want one and three", r.deliveries)
		}
		if len(r.corrupt) != len(bad) {
			t.Errorf("%d corrupt reports, want %d: %q", len(r.corrupt), len(bad), r.corrupt)
		}
		if r := loadAll(t, im.reopen(t, s)); len(r.corrupt) != 0 {
			t.Errorf("second load still reports %q: the records were not deleted", r.corrupt)
		}
	})
}

// putRaw writes raw key/value pairs, bypassing the encoders.
func putRaw(t *testing.T, s Store, kv map[string][]byte) {
	t.Helper()
	switch st := s.(type) {
	case *Mem:
		st.mu.Lock()
		for k, v := range kv {
			st.kv[k] = v
		}
		st.mu.Unlock()
	case *Pebble:
		b := st.db.NewBatch()
		for k, v := range kv {
			if err := b.Set([]byte(k), v, nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(nil); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("putRaw: %T", s)
	}
}

// TestEmptySyncCommit: a syncing Commit with nothing gathered still
// succeeds (it makes other writers' changes durable).
func TestEmptySyncCommit(t *testing.T) {
	forEach(t, func(t *testing.T, im impl) {
		s := im.open(t)
		other := s.NewWriter()
		other.PutSession(&Session{ClientID: "x", Expiry: 1})
		commit(t, other, false)
		commit(t, s.NewWriter(), true)
		if err := s.Sync(); err != nil {
			t.Fatal(err)
		}
		if r := loadAll(t, im.reopen(t, s)); len(r.sessions) != 1 {
			t.Errorf("%d sessions, want 1", len(r.sessions))
		}
	})
}

func openTestPebble(t *testing.T, dir string) *Pebble {
	t.Helper()
	p, err := OpenPebble(dir, PebbleOptions{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatalf("OpenPebble: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// testLogger logs into the test's output.
func testLogger(t *testing.T) zerolog.Logger { return zerolog.New(zerolog.NewTestWriter(t)) }

// TestMarks: a mark is kept across a restart, is not state (Empty, Load),
// and holds only if the commit it came with does; each kind of state
// record makes the store non-empty.
func TestMarks(t *testing.T) {
	forEach(t, func(t *testing.T, im impl) {
		s := im.open(t)
		if v, err := s.Mark("import"); v != nil || err != nil {
			t.Fatalf("Mark of a new store = %q, %v; want nil, nil", v, err)
		}
		if empty, err := s.Empty(); !empty || err != nil {
			t.Fatalf("Empty of a new store = %v, %v", empty, err)
		}
		w := s.NewWriter()
		w.PutMark("import", []byte("done"))
		w.PutMark("other", nil)
		commit(t, w, true)
		s = im.reopen(t, s)
		if v, err := s.Mark("import"); string(v) != "done" || err != nil {
			t.Errorf("Mark(import) = %q, %v; want done", v, err)
		}
		if v, err := s.Mark("other"); v == nil || len(v) != 0 || err != nil {
			t.Errorf("Mark(other) = %#v, %v; want an empty, non-nil value", v, err)
		}
		if empty, err := s.Empty(); !empty || err != nil {
			t.Errorf("Empty with marks only = %v, %v; want true", empty, err)
		}
		if r := loadAll(t, s); len(r.corrupt) != 0 {
			t.Errorf("Load reported marks as corrupt: %v", r.corrupt)
		}
		// Marks survive a Load (which deletes what it drops) too.
		if v, _ := s.Mark("import"); string(v) != "done" {
			t.Errorf("after Load, Mark(import) = %q", v)
		}

		for _, put := range []func(w Writer){
			func(w Writer) { w.PutSession(&Session{ClientID: "c", Expiry: 5}) },
			func(w Writer) { w.PutDelivery("c", Delivery{Seq: 1, Msg: msg("t", "p", 1), QoS: 1}) },
			func(w Writer) { w.MarkSent("c", 1, 7, 1) },
			func(w Writer) { w.PutAwaitRel("c", 3) },
			func(w Writer) { w.PutRetained(msg("r", "p", 0)) },
		} {
			fresh := im.open(t)
			w := fresh.NewWriter()
			put(w)
			commit(t, w, false)
			if empty, err := fresh.Empty(); empty || err != nil {
				t.Errorf("Empty after a state record = %v, %v; want false", empty, err)
			}
		}
	})
}
