package mosqdb

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/session"
	"github.com/shoalmq/shoal/store"
)

// What Import makes of each part of the file:
//
//   - a client chunk is a persistent session, with its Session Expiry
//     Interval and the time it ends (capped by Options.MaxSessionExpiry);
//     one whose interval is 0, or that has ended, is left out;
//   - a subscription of an imported session is one of its subscriptions,
//     with its QoS, No Local, Retain As Published and identifier;
//   - an outbound client message of QoS 1 or 2 is a delivery owed to its
//     session, in file order: queued, or in flight with its packet id when
//     Mosquitto had sent it (PUBACK, PUBREC or PUBCOMP awaited). QoS 0
//     ones are left out, as Shoal keeps only QoS 1 and 2 for a client that
//     is away; so are queued ones whose message has expired;
//   - an inbound client message — a QoS 2 PUBLISH whose PUBREC was sent,
//     which Mosquitto sends on when the PUBREL comes — is delivered now to
//     the imported sessions that subscribe to it, as Shoal routes a QoS 2
//     message when it arrives, and its packet id is remembered as awaiting
//     PUBREL, so that the publisher's PUBREL completes as it expects;
//   - a retain chunk is the retained message of its topic, unless it has
//     expired.
//
// Everything left out is counted in the Summary, with the reason.

// Options tune Import.
type Options struct {
	// Now is the time of the import: what ended or expired before it is
	// left out. Zero: time.Now().
	Now time.Time
	// MaxSessionExpiry caps how long an imported session lasts without
	// its client, from the import on, as max_session_expiry caps a
	// session at CONNECT (Mosquitto's persistent_client_expiration). 0:
	// no cap.
	MaxSessionExpiry time.Duration
}

// Summary says what Import wrote and what it left out.
type Summary struct {
	Version       uint32 // of the file
	Sessions      int
	Subscriptions int
	Retained      int
	Queued        int // deliveries not yet sent
	InFlight      int // deliveries sent, acknowledgement awaited
	// Released counts the inbound QoS 2 messages awaiting PUBREL, and
	// Routed the deliveries made of them.
	Released, Routed int
	Skipped          []Skip // in order of first occurrence
}

// Skip counts the parts of the file left out for one reason.
type Skip struct {
	What  string // e.g. "message queued at QoS 0"
	Why   string
	Count int
}

// SkippedTotal is the number of parts left out.
func (s *Summary) SkippedTotal() int {
	n := 0
	for _, k := range s.Skipped {
		n += k.Count
	}
	return n
}

func (s *Summary) skip(what, why string) {
	for i := range s.Skipped {
		if s.Skipped[i].What == what && s.Skipped[i].Why == why {
			s.Skipped[i].Count++
			return
		}
	}
	s.Skipped = append(s.Skipped, Skip{What: what, Why: why, Count: 1})
}

// MarshalZerologObject logs the counts, and each reason for leaving
// something out.
func (s *Summary) MarshalZerologObject(e *zerolog.Event) {
	e.Uint32("db_version", s.Version).Int("sessions", s.Sessions).Int("subscriptions", s.Subscriptions).
		Int("retained", s.Retained).Int("queued", s.Queued).Int("in_flight", s.InFlight).
		Int("awaiting_pubrel", s.Released).Int("routed", s.Routed).Int("skipped", s.SkippedTotal())
	if len(s.Skipped) > 0 {
		e.Array("skips", skips(s.Skipped))
	}
}

type skips []Skip

func (k skips) MarshalZerologArray(a *zerolog.Array) {
	for _, s := range k {
		a.Dict(zerolog.Dict().Str("what", s.What).Int("count", s.Count).Str("why", s.Why))
	}
}

// String says it in a line, for the store's mark.
func (s *Summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "version %d: %d sessions, %d subscriptions, %d retained, %d queued, %d in flight, %d awaiting PUBREL (%d deliveries)",
		s.Version, s.Sessions, s.Subscriptions, s.Retained, s.Queued, s.InFlight, s.Released, s.Routed)
	for _, k := range s.Skipped {
		fmt.Fprintf(&b, "; skipped %d %s: %s", k.Count, k.What, k.Why)
	}
	return b.String()
}

// Reasons for leaving things out.
const (
	whyExpired    = "it had expired"
	whyNoSession  = "its client has no imported session"
	whyNoMessage  = "the message it names is not in the file (Mosquitto drops such too)"
	whyQoS0       = "Shoal keeps only QoS 1 and 2 messages for a client that is away"
	whyEmptyID    = "a client chunk without a client id (Mosquitto skips it too)"
	whyExpiryZero = "its Session Expiry Interval is 0: it ends with its connection, and Shoal does not store it"
)

// importer is one Import in progress.
type importer struct {
	f     *File
	w     store.Writer
	now   int64 // Unix ns
	cap   time.Duration
	sum   Summary
	seq   uint64
	props map[uint64][]byte // store id -> forwarded properties
	// sessions are the imported ones, by client id, in file order.
	sessions map[string]*store.Session
	order    []string
	inflight map[string]map[uint16]bool // packet ids in flight per session
	topics   map[string]bool            // of the retained messages written
}

// Import writes what f holds to w as Shoal's store records, without
// committing them, and says what it wrote and left out. The store must
// hold no state (store.Store.Empty): delivery Seqs start at 1. It fails —
// and then w holds a part of the import, which must not be committed —
// only on properties that do not parse, which is damage.
func (f *File) Import(w store.Writer, o Options) (*Summary, error) {
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	im := &importer{f: f, w: w, now: now.UnixNano(), cap: o.MaxSessionExpiry,
		sum: Summary{Version: f.Version}, props: make(map[uint64][]byte),
		sessions: make(map[string]*store.Session), inflight: make(map[string]map[uint16]bool),
		topics: make(map[string]bool)}
	im.clients()
	im.subs()
	for _, id := range im.order {
		im.w.PutSession(im.sessions[id])
	}
	if err := im.outbound(); err != nil {
		return nil, err
	}
	// Retained messages before the released ones: a released message is
	// newer than the retained message of its topic.
	if err := im.retained(); err != nil {
		return nil, err
	}
	if err := im.inbound(); err != nil {
		return nil, err
	}
	return &im.sum, nil
}

func (im *importer) clients() {
	for i := range im.f.Clients {
		c := &im.f.Clients[i]
		switch {
		case c.ID == "":
			im.sum.skip("client", whyEmptyID)
			continue
		case c.ExpiryInterval == 0:
			im.sum.skip("session", whyExpiryZero)
			continue
		case c.ExpiryInterval != NeverExpires && c.ExpiryTime != 0 && nanos(c.ExpiryTime) <= im.now:
			im.sum.skip("session", whyExpired)
			continue
		}
		s := &store.Session{ClientID: c.ID, Expiry: c.ExpiryInterval}
		if c.ExpiryInterval != NeverExpires && c.ExpiryTime != 0 {
			s.ExpireAt = nanos(c.ExpiryTime)
		}
		if im.cap > 0 && (c.ExpiryInterval == NeverExpires || time.Duration(c.ExpiryInterval)*time.Second > im.cap) {
			s.Expiry = uint32(min(im.cap/time.Second, NeverExpires-1))
			end := int64(math.MaxInt64)
			if im.cap < time.Duration(math.MaxInt64-im.now) {
				end = im.now + int64(im.cap)
			}
			if s.ExpireAt == 0 || s.ExpireAt > end {
				s.ExpireAt = end
			}
		}
		if _, again := im.sessions[c.ID]; !again {
			im.order = append(im.order, c.ID)
			im.sum.Sessions++
		}
		im.sessions[c.ID] = s // a later chunk for the same client wins, as in Mosquitto
	}
}

func (im *importer) subs() {
	for i := range im.f.Subs {
		sub := &im.f.Subs[i]
		s := im.sessions[sub.ClientID]
		if s == nil {
			im.sum.skip("subscription", whyNoSession)
			continue
		}
		o := router.Options{
			QoS:               sub.QoS,
			NoLocal:           sub.Options&0x04 != 0,
			RetainAsPublished: sub.Options&0x08 != 0,
			RetainHandling:    sub.Options >> 4 & 0x03,
			SubID:             sub.Identifier,
		}
		switch {
		case codec.CheckFilter([]byte(sub.Filter)) != nil:
			im.sum.skip("subscription", "its topic filter is not valid in MQTT")
			continue
		case o.RetainHandling == 3 || sub.Options&0xC3 != 0 || o.SubID > 268435455:
			im.sum.skip("subscription", "its options are not valid in MQTT")
			continue
		case o.NoLocal && codec.IsShared([]byte(sub.Filter)):
			im.sum.skip("subscription", "No Local on a shared subscription is not valid in MQTT [MQTT-3.8.3-4]")
			continue
		}
		replaced := false
		for j := range s.Subs {
			if s.Subs[j].Filter == sub.Filter {
				s.Subs[j].Opts, replaced = o, true
			}
		}
		if !replaced {
			s.Subs = append(s.Subs, store.Sub{Filter: sub.Filter, Opts: o})
			im.sum.Subscriptions++
		}
	}
}

// forwarded returns m's properties as Shoal keeps them: those that go on
// to subscribers (codec.Properties.ForwardProps).
func (im *importer) forwarded(m *Message) ([]byte, error) {
	if p, ok := im.props[m.ID]; ok {
		return p, nil
	}
	p, _, err := parseProps(m.Props, m.Topic)
	if err != nil {
		return nil, &FormatError{Offset: m.Offset, Chunk: "message chunk", Reason: "properties: " + err.Error()}
	}
	im.props[m.ID] = p
	return p, nil
}

// parseProps reads an MQTT 5 property block (its length, then the
// properties) as those of a PUBLISH to topic — the codec checks each
// property and value — and returns the forwarded ones and the
// Subscription Identifiers.
func parseProps(raw, topic []byte) (fwd []byte, subIDs []uint32, err error) {
	if len(raw) == 0 {
		return nil, nil, nil
	}
	body := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(topic)+len(raw)), uint16(len(topic)))
	body = append(append(body, topic...), raw...)
	var p codec.Publish
	if err := p.DecodeClient(0, body, codec.V5); err != nil {
		return nil, nil, err
	}
	if len(p.Payload) != 0 {
		return nil, nil, fmt.Errorf("%d bytes after the properties", len(p.Payload))
	}
	return p.Props.ForwardProps(nil), append([]uint32(nil), p.Props.SubIDs...), nil
}

// storeMessage is m as a store record.
func (im *importer) storeMessage(m *Message) (store.Message, error) {
	props, err := im.forwarded(m)
	if err != nil {
		return store.Message{}, err
	}
	sm := store.Message{Topic: m.Topic, Payload: m.Payload, Props: props, From: m.SourceID, QoS: m.QoS, Retain: m.Retain}
	if m.Expiry > 0 {
		sm.Expiry = nanos(m.Expiry)
	}
	return sm, nil
}

func (im *importer) expired(m *Message) bool {
	return m.Expiry > 0 && nanos(m.Expiry) <= im.now
}

// nanos turns Unix seconds into Unix nanoseconds, saturating where int64
// ends (the year 2262) rather than wrapping around.
func nanos(sec int64) int64 {
	switch {
	case sec > math.MaxInt64/int64(time.Second):
		return math.MaxInt64
	case sec < math.MinInt64/int64(time.Second):
		return math.MinInt64
	}
	return sec * int64(time.Second)
}

// sentState maps an outbound state to Shoal's: 0 for a message not yet
// sent, ok false for a state an outbound message cannot be in.
func sentState(st State) (state uint8, ok bool) {
	switch st {
	case StateQueued, StatePublishQoS1, StatePublishQoS2, StateInvalid:
		return 0, true
	case StateWaitPuback:
		return session.AwaitPuback, true
	case StateWaitPubrec:
		return session.AwaitPubrec, true
	case StateResendPubrel, StateWaitPubcomp:
		return session.AwaitPubcomp, true // PUBREC came: PUBREL goes (again) on resume
	}
	return 0, false
}

func (im *importer) outbound() error {
	for i := range im.f.ClientMsgs {
		cm := &im.f.ClientMsgs[i]
		if cm.Direction != Out {
			continue
		}
		if im.sessions[cm.ClientID] == nil {
			im.sum.skip("message owed to a client", whyNoSession)
			continue
		}
		m := im.f.Message(cm.StoreID)
		if m == nil {
			im.sum.skip("message owed to a client", whyNoMessage)
			continue
		}
		state, ok := sentState(cm.State)
		switch {
		case cm.QoS == 0:
			im.sum.skip("message owed at QoS 0", whyQoS0)
			continue
		case !ok:
			im.sum.skip("message owed to a client", fmt.Sprintf("state %s is not one of an outbound message", cm.State))
			continue
		case (state == session.AwaitPuback) != (cm.QoS == 1) && state != 0:
			im.sum.skip("message owed to a client", fmt.Sprintf("state %s does not go with QoS %d", cm.State, cm.QoS))
			continue
		}
		if state != 0 && (cm.MID == 0 || im.inflight[cm.ClientID][cm.MID]) {
			state = 0 // no usable packet id: send it afresh
		}
		if state == 0 && im.expired(m) {
			im.sum.skip("message queued for a client", whyExpired) // one in flight finishes [MQTT-3.3.2-5]
			continue
		}
		sm, err := im.storeMessage(m)
		if err != nil {
			return err
		}
		_, subIDs, err := parseProps(cm.Props, []byte("x"))
		if err != nil {
			return &FormatError{Offset: cm.Offset, Chunk: "client message chunk", Reason: "properties: " + err.Error()}
		}
		im.seq++
		im.w.PutDelivery(cm.ClientID, store.Delivery{Seq: im.seq, Msg: sm, QoS: cm.QoS, Retain: cm.Retain, SubIDs: subIDs})
		if state == 0 {
			im.sum.Queued++
			continue
		}
		im.w.MarkSent(cm.ClientID, im.seq, cm.MID, state)
		if im.inflight[cm.ClientID] == nil {
			im.inflight[cm.ClientID] = make(map[uint16]bool)
		}
		im.inflight[cm.ClientID][cm.MID] = true
		im.sum.InFlight++
	}
	return nil
}

// inbound delivers the QoS 2 messages that Mosquitto held for their
// PUBREL to the imported sessions that subscribe to them, after what was
// owed to those sessions before, and remembers their packet ids as
// awaiting PUBREL.
func (im *importer) inbound() error {
	for i := range im.f.ClientMsgs {
		cm := &im.f.ClientMsgs[i]
		if cm.Direction != In {
			continue
		}
		const what = "QoS 2 message received, PUBREL awaited"
		switch {
		case im.sessions[cm.ClientID] == nil:
			im.sum.skip(what, whyNoSession)
			continue
		case cm.State != StateWaitPubrel && cm.State != StateSendPubrec:
			im.sum.skip(what, fmt.Sprintf("state %s is not one of an inbound message", cm.State))
			continue
		case cm.MID == 0:
			im.sum.skip(what, "it has no packet id")
			continue
		}
		m := im.f.Message(cm.StoreID)
		if m == nil {
			im.sum.skip(what, whyNoMessage)
			continue
		}
		im.w.PutAwaitRel(cm.ClientID, cm.MID)
		im.sum.Released++
		if im.expired(m) {
			continue
		}
		sm, err := im.storeMessage(m)
		if err != nil {
			return err
		}
		im.route(cm.ClientID, sm)
		if m.Retain && !strings.HasPrefix(string(m.Topic), "$") {
			im.putRetained(sm)
		}
	}
	return nil
}

// route queues sm for each imported session that subscribes to it, once
// per session: at the highest QoS its matching subscriptions grant, with
// their identifiers [MQTT-3.3.4-3], [MQTT-3.3.4-5].
func (im *importer) route(from string, sm store.Message) {
	for _, id := range im.order {
		s := im.sessions[id]
		d := store.Delivery{Msg: sm}
		matched := false
		for _, sub := range s.Subs {
			o := sub.Opts
			if codec.IsShared([]byte(sub.Filter)) || (o.NoLocal && id == from) || !codec.Matches(sub.Filter, string(sm.Topic)) {
				continue // shared ones are Mosquitto 2.0's to lose: it does not save them
			}
			matched = true
			d.QoS = max(d.QoS, min(o.QoS, sm.QoS))
			d.Retain = d.Retain || (o.RetainAsPublished && sm.Retain) // [MQTT-3.3.1-12]
			if o.SubID != 0 {
				d.SubIDs = append(d.SubIDs, o.SubID)
			}
		}
		switch {
		case !matched:
		case d.QoS == 0:
			im.sum.skip("delivery of a released QoS 2 message", whyQoS0)
		default:
			im.seq++
			d.Seq = im.seq
			im.w.PutDelivery(id, d)
			im.sum.Routed++
		}
	}
}

func (im *importer) putRetained(sm store.Message) {
	if len(sm.Payload) == 0 {
		return // an empty retained message clears the topic; there is none yet
	}
	sm.Retain = true
	im.w.PutRetained(sm)
	if !im.topics[string(sm.Topic)] {
		im.topics[string(sm.Topic)] = true
		im.sum.Retained++
	}
}

func (im *importer) retained() error {
	for i := range im.f.Retains {
		m := im.f.Message(im.f.Retains[i].StoreID)
		switch {
		case m == nil:
			im.sum.skip("retained message", whyNoMessage)
			continue
		case strings.HasPrefix(string(m.Topic), "$SYS"):
			im.sum.skip("retained message", "$SYS topics are the broker's own (Mosquitto does not save them either)")
			continue
		case im.expired(m):
			im.sum.skip("retained message", whyExpired)
			continue
		case len(m.Payload) == 0:
			im.sum.skip("retained message", "its payload is empty, which clears a retained message")
			continue
		}
		sm, err := im.storeMessage(m)
		if err != nil {
			return err
		}
		im.putRetained(sm)
	}
	return nil
}
