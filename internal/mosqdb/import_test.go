package mosqdb

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/session"
	"github.com/shoalmq/shoal/store"
)

// loaded is what a store holds, read back through store.Load.
type loaded struct {
	sessions   []store.Session
	deliveries []string // "client seq topic payload q<QoS> r<retain> id<pid> st<state> subs<ids> from<id> mq<msg QoS> props<hex>"
	awaits     []string
	retained   []string // "topic payload q<QoS> props<hex> exp<expiry>"
	corrupt    []string
}

func (l *loaded) Session(s *store.Session) bool {
	c := *s
	c.Subs = append([]store.Sub(nil), s.Subs...)
	l.sessions = append(l.sessions, c)
	return true
}

func (l *loaded) Delivery(id string, d *store.Delivery) bool {
	l.deliveries = append(l.deliveries, fmt.Sprintf("%s %d %s %s q%d r%v id%d st%d subs%v from%s mq%d props%x",
		id, d.Seq, d.Msg.Topic, d.Msg.Payload, d.QoS, d.Retain, d.PacketID, d.State, d.SubIDs, d.Msg.From, d.Msg.QoS, d.Msg.Props))
	return true
}

func (l *loaded) AwaitRel(id string, pid uint16) bool {
	l.awaits = append(l.awaits, fmt.Sprintf("%s %d", id, pid))
	return true
}

func (l *loaded) Retained(m *store.Message) bool {
	l.retained = append(l.retained, fmt.Sprintf("%s %s q%d props%x exp%d", m.Topic, m.Payload, m.QoS, m.Props, m.Expiry))
	return true
}

func (l *loaded) Corrupt(what string, err error) {
	l.corrupt = append(l.corrupt, what+": "+err.Error())
}

// importInto imports f into a fresh store and reads it back.
func importInto(t *testing.T, f *File, o Options) (*Summary, *loaded) {
	t.Helper()
	st := store.NewMem()
	w := st.NewWriter()
	sum, err := f.Import(w, o)
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	if err := w.Commit(true); err != nil {
		t.Fatal(err)
	}
	l := &loaded{}
	if err := st.Load(l); err != nil {
		t.Fatal(err)
	}
	if len(l.corrupt) > 0 {
		t.Fatalf("the store reads back corrupt records: %v", l.corrupt)
	}
	return sum, l
}

var importNow = time.Unix(1_800_000_000, 0)

func TestImportGolden6(t *testing.T) {
	f, err := Parse(golden6)
	if err != nil {
		t.Fatal(err)
	}
	sum, l := importInto(t, f, Options{Now: importNow})
	wantSess := []store.Session{{ClientID: "c", Expiry: session.NeverExpire, Subs: []store.Sub{
		{Filter: "a/+", Opts: router.Options{QoS: 2, NoLocal: true, RetainAsPublished: true, SubID: 7}}}}}
	if !reflect.DeepEqual(l.sessions, wantSess) {
		t.Errorf("sessions\n%+v, want\n%+v", l.sessions, wantSess)
	}
	wantDel := []string{
		"c 1 a/b hi q2 rfalse id2 st2 subs[7] frompub mq2 props",
		"c 2 a/b hi q1 rtrue id0 st0 subs[] frompub mq2 props",
	}
	if !reflect.DeepEqual(l.deliveries, wantDel) {
		t.Errorf("deliveries\n%q, want\n%q", l.deliveries, wantDel)
	}
	// The properties as Shoal forwards them: without the length.
	if want := []string{"r/1 on q1 props01012600016b000176 exp0"}; !reflect.DeepEqual(l.retained, want) {
		t.Errorf("retained %q, want %q", l.retained, want)
	}
	want := Summary{Version: 6, Sessions: 1, Subscriptions: 1, Retained: 1, Queued: 1, InFlight: 1}
	if !reflect.DeepEqual(*sum, want) {
		t.Errorf("summary %+v, want %+v", *sum, want)
	}
}

// file builds a File from records, as Parse would.
func file(msgs []Message, clients []Client, cms []ClientMsg, subs []Sub, retains ...uint64) *File {
	f := &File{Version: 6, Messages: msgs, Clients: clients, ClientMsgs: cms, Subs: subs, byID: make(map[uint64]int)}
	for i, m := range msgs {
		f.byID[m.ID] = i
	}
	for _, id := range retains {
		f.Retains = append(f.Retains, Retain{StoreID: id})
	}
	return f
}

// TestImportReleased: a QoS 2 message Mosquitto held for its PUBREL goes
// to the imported sessions that subscribe to it, after what they were
// owed, and its packet id awaits the PUBREL.
func TestImportReleased(t *testing.T) {
	now := importNow.Unix()
	f := file(
		[]Message{
			{ID: 1, Topic: []byte("t/x"), Payload: []byte("rel"), SourceID: []byte("p"), QoS: 2, Retain: true},
			{ID: 2, Topic: []byte("t/x"), Payload: []byte("old"), QoS: 1, Retain: true},
			{ID: 3, Topic: []byte("t/y"), Payload: []byte("before"), QoS: 1},
		},
		[]Client{{ID: "p", ExpiryInterval: 60, ExpiryTime: now + 60}, {ID: "s", ExpiryInterval: NeverExpires}},
		[]ClientMsg{
			{ClientID: "p", StoreID: 1, MID: 9, QoS: 2, State: StateWaitPubrel, Direction: In},
			{ClientID: "s", StoreID: 3, QoS: 1, State: StateQueued, Direction: Out},
		},
		[]Sub{
			{ClientID: "p", Filter: "t/x", QoS: 2, Options: 0x04}, // No Local: not to p
			{ClientID: "s", Filter: "t/#", QoS: 1, Identifier: 3},
			{ClientID: "s", Filter: "+/x", QoS: 2, Options: 0x08, Identifier: 4},
			{ClientID: "s", Filter: "$share/g/t/x", QoS: 2},
		},
		2, // the older retained message of t/x
	)
	sum, l := importInto(t, f, Options{Now: importNow})
	wantDel := []string{
		"s 1 t/y before q1 rfalse id0 st0 subs[] from mq1 props",
		"s 2 t/x rel q2 rtrue id0 st0 subs[3 4] fromp mq2 props",
	}
	if !reflect.DeepEqual(l.deliveries, wantDel) {
		t.Errorf("deliveries\n%q, want\n%q", l.deliveries, wantDel)
	}
	if want := []string{"p 9"}; !reflect.DeepEqual(l.awaits, want) {
		t.Errorf("awaited ids %q, want %q", l.awaits, want)
	}
	if want := []string{"t/x rel q2 props exp0"}; !reflect.DeepEqual(l.retained, want) {
		t.Errorf("retained %q, want %q (the released message is the newer)", l.retained, want)
	}
	if sum.Released != 1 || sum.Routed != 1 || sum.Retained != 1 || sum.Queued != 1 || sum.Subscriptions != 4 {
		t.Errorf("summary %+v", sum)
	}
	if len(l.sessions) != 2 || l.sessions[0].ExpireAt != (now+60)*1e9 || l.sessions[1].ExpireAt != 0 {
		t.Errorf("sessions %+v", l.sessions)
	}
}

// TestImportSkips: what is left out is counted with its reason.
func TestImportSkips(t *testing.T) {
	now := importNow.Unix()
	f := file(
		[]Message{
			{ID: 1, Topic: []byte("q"), Payload: []byte("x"), QoS: 1},
			{ID: 2, Topic: []byte("old"), Payload: []byte("x"), QoS: 1, Expiry: now - 1},
			{ID: 3, Topic: []byte("$SYS/x"), Payload: []byte("x")},
			{ID: 4, Topic: []byte("empty"), QoS: 1},
			{ID: 5, Topic: []byte("soon"), Payload: []byte("x"), QoS: 1, Expiry: now + 30},
		},
		[]Client{
			{ID: "c", ExpiryInterval: 100, ExpiryTime: now + 100},
			{ID: "", ExpiryInterval: 100},
			{ID: "zero", ExpiryInterval: 0},
			{ID: "ended", ExpiryInterval: 10, ExpiryTime: now - 1},
		},
		[]ClientMsg{
			{ClientID: "c", StoreID: 1, QoS: 0, State: StatePublishQoS0, Direction: Out},
			{ClientID: "c", StoreID: 2, QoS: 1, State: StateQueued, Direction: Out},              // expired
			{ClientID: "c", StoreID: 2, MID: 4, QoS: 1, State: StateWaitPuback, Direction: Out},  // expired but sent: kept
			{ClientID: "c", StoreID: 99, QoS: 1, State: StateQueued, Direction: Out},             // no message
			{ClientID: "zero", StoreID: 1, QoS: 1, State: StateQueued, Direction: Out},           // no session
			{ClientID: "c", StoreID: 1, MID: 5, QoS: 1, State: StateWaitPubrec, Direction: Out},  // state against QoS
			{ClientID: "c", StoreID: 1, MID: 4, QoS: 1, State: StateWaitPuback, Direction: Out},  // packet id taken: queued
			{ClientID: "c", StoreID: 5, MID: 6, QoS: 1, State: StatePublishQoS1, Direction: Out}, // not sent yet: queued
			{ClientID: "c", StoreID: 1, MID: 7, QoS: 2, State: StateWaitPubrel, Direction: Out},  // an inbound state
			{ClientID: "c", StoreID: 1, MID: 8, QoS: 2, State: StateWaitPubrec, Direction: In},   // an outbound state
			{ClientID: "c", StoreID: 1, MID: 0, QoS: 2, State: StateWaitPubrel, Direction: In},   // no packet id
		},
		[]Sub{
			{ClientID: "c", Filter: "a/#/b", QoS: 1},
			{ClientID: "c", Filter: "", QoS: 1},
			{ClientID: "c", Filter: "ok", QoS: 1, Options: 0x30},
			{ClientID: "c", Filter: "$share/g/x", QoS: 1, Options: 0x04},
			{ClientID: "gone", Filter: "x", QoS: 1},
			{ClientID: "c", Filter: "ok", QoS: 2}, // the same filter again: replaces
		},
		2, 3, 4, 99, 5,
	)
	sum, l := importInto(t, f, Options{Now: importNow})
	wantDel := []string{
		"c 1 old x q1 rfalse id4 st1 subs[] from mq1 props",
		"c 2 q x q1 rfalse id0 st0 subs[] from mq1 props",
		"c 3 soon x q1 rfalse id0 st0 subs[] from mq1 props",
	}
	if !reflect.DeepEqual(l.deliveries, wantDel) {
		t.Errorf("deliveries\n%q, want\n%q", l.deliveries, wantDel)
	}
	if len(l.sessions) != 1 || len(l.sessions[0].Subs) != 1 || l.sessions[0].Subs[0].Opts.QoS != 2 {
		t.Errorf("sessions %+v", l.sessions)
	}
	if want := []string{fmt.Sprintf("soon x q1 props exp%d", (now+30)*1e9)}; !reflect.DeepEqual(l.retained, want) {
		t.Errorf("retained %q, want %q", l.retained, want)
	}
	var got []string
	for _, k := range sum.Skipped {
		got = append(got, fmt.Sprintf("%d %s: %s", k.Count, k.What, k.Why))
	}
	want := []string{
		"1 client: " + whyEmptyID,
		"1 session: " + whyExpiryZero,
		"1 session: " + whyExpired,
		"2 subscription: its topic filter is not valid in MQTT",
		"1 subscription: its options are not valid in MQTT",
		"1 subscription: No Local on a shared subscription is not valid in MQTT [MQTT-3.8.3-4]",
		"1 subscription: " + whyNoSession,
		"1 message owed at QoS 0: " + whyQoS0,
		"1 message queued for a client: " + whyExpired,
		"1 message owed to a client: " + whyNoMessage,
		"1 message owed to a client: " + whyNoSession,
		"1 message owed to a client: state wait_for_pubrec does not go with QoS 1",
		"1 message owed to a client: state wait_for_pubrel is not one of an outbound message",
		"1 retained message: " + whyExpired,
		"1 retained message: $SYS topics are the broker's own (Mosquitto does not save them either)",
		"1 retained message: its payload is empty, which clears a retained message",
		"1 retained message: " + whyNoMessage,
		"1 QoS 2 message received, PUBREL awaited: state wait_for_pubrec is not one of an inbound message",
		"1 QoS 2 message received, PUBREL awaited: it has no packet id",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("skipped\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if sum.SkippedTotal() != 20 || sum.Queued != 2 || sum.InFlight != 1 {
		t.Errorf("summary %+v, %d skipped", sum, sum.SkippedTotal())
	}
}

// TestImportExpiryCap: max_session_expiry caps the imported sessions from
// the import on.
func TestImportExpiryCap(t *testing.T) {
	now := importNow.Unix()
	f := file(nil, []Client{
		{ID: "never", ExpiryInterval: NeverExpires},
		{ID: "long", ExpiryInterval: 86400, ExpiryTime: now + 86000},
		{ID: "short", ExpiryInterval: 60, ExpiryTime: now + 50},
	}, nil, nil)
	_, l := importInto(t, f, Options{Now: importNow, MaxSessionExpiry: time.Hour})
	got := map[string][2]int64{}
	for _, s := range l.sessions {
		got[s.ClientID] = [2]int64{int64(s.Expiry), s.ExpireAt}
	}
	end := importNow.Add(time.Hour).UnixNano()
	want := map[string][2]int64{"never": {3600, end}, "long": {3600, end}, "short": {60, (now + 50) * 1e9}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("sessions %v, want %v", got, want)
	}
}

// TestImportBadProperties: properties that do not parse are damage, named
// with the chunk's offset.
func TestImportBadProperties(t *testing.T) {
	b := bytes.Clone(golden6)
	b[96] = 0x02 // Payload Format Indicator 2
	f, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Import(store.NewMem().NewWriter(), Options{Now: importNow})
	if err == nil || !strings.Contains(err.Error(), "message chunk at byte 47: properties") {
		t.Errorf("Import: %v, want an error naming the message chunk at 47", err)
	}
}

func TestSummaryLog(t *testing.T) {
	s := &Summary{Version: 6, Sessions: 2, Queued: 3}
	s.skip("message owed at QoS 0", whyQoS0)
	s.skip("message owed at QoS 0", whyQoS0)
	var buf bytes.Buffer
	lg := zerolog.New(&buf)
	lg.Info().EmbedObject(s).Msg("x")
	for _, want := range []string{`"sessions":2`, `"queued":3`, `"skipped":2`, `"skips":[{"what":"message owed at QoS 0","count":2,"why":"Shoal keeps only`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log line %s lacks %s", buf.String(), want)
		}
	}
	if str := s.String(); !strings.Contains(str, "2 sessions") || !strings.Contains(str, "skipped 2 message owed at QoS 0") {
		t.Errorf("String() = %q", str)
	}
}

// TestImportFarTimes: times past the year 2262 saturate instead of
// wrapping around into the past.
func TestImportFarTimes(t *testing.T) {
	far := int64(math.MaxInt64/int64(time.Second)) + 1
	f := file([]Message{{ID: 1, Topic: []byte("far"), Payload: []byte("x"), QoS: 1, Expiry: far}},
		[]Client{{ID: "c", ExpiryInterval: 10, ExpiryTime: far}}, nil, nil, 1)
	sum, l := importInto(t, f, Options{Now: importNow, MaxSessionExpiry: time.Duration(math.MaxInt64)})
	if sum.Sessions != 1 || sum.Retained != 1 || len(l.sessions) != 1 || l.sessions[0].ExpireAt != math.MaxInt64 {
		t.Errorf("summary %s, sessions %+v", sum, l.sessions)
	}
	if want := []string{fmt.Sprintf("far x q1 props exp%d", int64(math.MaxInt64))}; !reflect.DeepEqual(l.retained, want) {
		t.Errorf("retained %q, want %q", l.retained, want)
	}
}
