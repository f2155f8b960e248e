package bridge

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/shoalmq/shoal/codec"
)

// A link is one Connection at work: a loop goroutine owns all of its
// message state (the two sides, what is in flight on each), so none of it
// is locked. Readers hand it packets and connection events over a
// channel; it answers by queueing bytes on the connections (conn.write
// never blocks).
//
// A QoS 1/2 message crossing the link from side S to side T:
//
//	S PUBLISH id x  -> S.in[x] = f, T: waiting, then PUBLISH id y (T.out[y] = f)
//	T PUBACK y      -> S PUBACK x                          (QoS 1)
//	T PUBREC y      -> T PUBREL y, S PUBREC x; S PUBREL x -> S PUBCOMP x
//	T PUBCOMP y     -> y is free                           (QoS 2)
//
// S's acknowledgement goes out only once T has acknowledged its copy
// (PUBREC: T has taken ownership of a QoS 2 message [MQTT-4.3.3]), so a
// message S was told is delivered is on T. What is in flight stays in
// T.out across a reconnection of T, and is sent again, with DUP, when it
// comes back [MQTT-4.4.0-1]; S's unacknowledged copies are sent again by
// S itself when S comes back, and matched by their ids (S.in) to the
// forwarding already under way, so they are not forwarded twice.
type link struct {
	cn    Connection
	local Local
	lg    zerolog.Logger

	sides [2]*side // local, remote
	ev    chan event
	stop  chan struct{}
	done  chan struct{} // closed when the loop has returned

	// Remote connection attempts.
	addr       int           // index in cn.Addresses of the next attempt
	backoff    time.Duration // last wait; 0 after a success
	retry      *time.Timer
	dialing    bool
	privateOff bool // the remote refused try_private
	failing    bool // attempts fail since the last success: logged once
	localRetry *time.Timer
	notifiedUp bool

	seq   uint64 // orders forwards for resending
	stats linkStats
}

const (
	local  = 0
	remote = 1

	// outWindow bounds the QoS 1/2 messages the bridge has in flight to
	// either broker, lowered by an MQTT 5 broker's Receive Maximum. On
	// the local side it is also the Receive Maximum the bridge announces,
	// so the local broker holds at most this many messages in flight to
	// the bridge while the remote is down, and keeps the rest in the
	// bridge's session queue, bounded by max_queued and counted.
	outWindow = 64
	// maxQoS0Backlog: past this many bytes waiting for a broker's socket,
	// QoS 0 messages to it are dropped (counted), not queued.
	maxQoS0Backlog = 4 << 20
	connectTimeout = 10 * time.Second
	localRetryWait = 500 * time.Millisecond
)

// side is one end of the link.
type side struct {
	name   string // "local" or "remote"
	c      *conn  // nil while down
	up     bool
	window int
	maxPkt uint32
	maxQoS byte
	nextID uint16
	// What the bridge sent to this side and awaits an acknowledgement
	// for, by packet id; waiting holds what comes after, in order.
	out     map[uint16]*fwd
	waiting []*fwd
	// What this side sent the bridge, by its packet id: in is being
	// forwarded; done is delivered on the other side already, but its
	// acknowledgement could not reach this side (it was down): a
	// redelivery is acknowledged at once. For QoS 2, done also holds the
	// ids with PUBREC sent and PUBREL not yet received.
	in   map[uint16]*fwd
	done map[uint16]byte // id -> QoS
	// keep-alive
	pingOut  bool
	pingSent time.Time
}

// fwd is one message crossing the link.
type fwd struct {
	topic   string // as it is named on the destination
	payload []byte
	qos     byte
	retain  bool
	from    *side  // nil: the bridge's own (a notification), or its source's session was lost
	fromID  uint16 // its packet id there
	fromQoS byte   // its QoS there: the acknowledgement it is owed (qos may be lower)
	id      uint16 // its packet id on the destination, once sent
	rel     bool   // PUBREC came, PUBREL sent
	acked   bool   // the source has been acknowledged
	own     bool   // a notification: not counted as forwarded
	seq     uint64
}

type eventKind uint8

const (
	evPacket eventKind = iota
	evGone             // a connection ended
	evUp               // a connection completed its handshake
	evDialFailed
)

type event struct {
	kind eventKind
	p    packet
	c    *conn
	s    int // side
	err  error
	ca   connack
	d    *codec.Decoder
	addr string
}

// linkStats are read by Stats from any goroutine.
type linkStats struct {
	state        atomic.Int32 // stateDown, stateConnecting, stateUp
	connects     atomic.Uint64
	forwardedOut atomic.Uint64
	forwardedIn  atomic.Uint64
	dropped      atomic.Uint64 // by the bridge itself: QoS 0 while down, too large
	refused      atomic.Uint64 // acknowledged with a failure code by the destination
	holding      atomic.Int64  // QoS 1/2 messages the bridge holds for the remote
	addr         atomic.Pointer[string]
	lastErr      atomic.Pointer[string]
}

const (
	stateDown int32 = iota
	stateConnecting
	stateUp
)

func newLink(cn Connection, lc Local, lg zerolog.Logger) *link {
	l := &link{cn: cn, local: lc, lg: lg.With().Str("bridge", cn.Name).Logger(),
		ev: make(chan event, 64), stop: make(chan struct{}), done: make(chan struct{})}
	for i, name := range []string{"local", "remote"} {
		l.sides[i] = &side{name: name, window: outWindow, maxQoS: 2,
			out: map[uint16]*fwd{}, in: map[uint16]*fwd{}, done: map[uint16]byte{}}
	}
	return l
}

// post hands an event to the loop, or drops it once the loop has ended.
func (l *link) post(e event) {
	select {
	case l.ev <- e:
	case <-l.done:
	}
}

// connectLocal opens the bridge's session on the local broker: MQTT 5, a
// session that never expires (its queue is where messages wait while the
// remote is down), Receive Maximum outWindow.
func (l *link) connectLocal() error {
	nc, err := l.local.DialInternal("bridge " + l.cn.Name)
	if err != nil {
		return err
	}
	p := codec.Connect{Version: codec.V5, ClientID: []byte(l.cn.LocalClientID)}
	p.Props.SessionExpiry = 0xFFFFFFFF
	p.Props.Set(codec.PropSessionExpiry)
	p.Props.ReceiveMaximum = outWindow
	p.Props.Set(codec.PropReceiveMaximum)
	ca, d, err := handshake(nc, &p, connectTimeout)
	if err != nil {
		_ = nc.Close()
		return fmt.Errorf("bridge %q: local session: %w", l.cn.Name, err)
	}
	c := &conn{nc: nc, v: codec.V5, side: l.sides[local]}
	l.post(event{kind: evUp, c: c, s: local, ca: ca, d: d})
	return nil
}

// dialRemote connects to the remote broker at addr; it runs on its own
// goroutine and reports to the loop.
func (l *link) dialRemote(addr string, private bool) {
	nc, err := l.dialTCP(addr)
	if err != nil {
		l.post(event{kind: evDialFailed, err: err, addr: addr})
		return
	}
	cn := &l.cn
	v := cn.Protocol.level()
	p := codec.Connect{Version: v, Bridge: private && v < codec.V5, CleanStart: cn.CleanSession,
		KeepAlive: uint16(cn.KeepAlive / time.Second), ClientID: []byte(cn.RemoteClientID)}
	if cn.RemoteUsername != "" {
		p.UsernameFlag, p.Username = true, []byte(cn.RemoteUsername)
	}
	if cn.RemotePassword != "" {
		p.PasswordFlag, p.Password = true, []byte(cn.RemotePassword)
	}
	if cn.Notifications {
		// The remote says "0" for the bridge when the link breaks.
		p.WillFlag, p.WillQoS, p.WillRetain = true, 1, true
		p.WillTopic, p.WillPayload = []byte(cn.NotificationTopic), []byte{'0'}
	}
	if v == codec.V5 {
		if !cn.CleanSession {
			p.Props.SessionExpiry = 0xFFFFFFFF
			p.Props.Set(codec.PropSessionExpiry)
		}
		p.Props.ReceiveMaximum = outWindow
		p.Props.Set(codec.PropReceiveMaximum)
	}
	ca, d, err := handshake(nc, &p, connectTimeout)
	if err != nil {
		_ = nc.Close()
		l.post(event{kind: evDialFailed, err: err, addr: addr})
		return
	}
	l.post(event{kind: evUp, c: &conn{nc: nc, v: v, side: l.sides[remote]}, s: remote, ca: ca, d: d, addr: addr})
}

func (l *link) dialTCP(addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: connectTimeout}
	t := l.cn.TLS
	if t.CAFile == "" {
		return d.Dial("tcp", addr)
	}
	cfg, err := tlsConfig(t, addr)
	if err != nil {
		return nil, err
	}
	return (&tls.Dialer{NetDialer: &d, Config: cfg}).Dial("tcp", addr)
}

// tlsConfig reads the files on each connection, so that renewed
// certificates are picked up by the next one.
func tlsConfig(t TLS, addr string) (*tls.Config, error) {
	pem, err := os.ReadFile(t.CAFile)
	if err != nil {
		return nil, fmt.Errorf("bridge_cafile: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("bridge_cafile: %s holds no PEM certificate", t.CAFile)
	}
	host, _, _ := net.SplitHostPort(addr)
	cfg := &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12}
	if t.Insecure {
		// The chain is verified; only the name is not.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			opts := x509.VerifyOptions{Roots: pool, Intermediates: x509.NewCertPool()}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		}
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("bridge_certfile: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// nextWait is restart_timeout's next wait after prev (0: the first
// failure since a success): Base with no Cap, else decorrelated jitter,
// at random in [Base, 3*prev), at most Cap. rnd(n) is uniform in [0, n).
func nextWait(b Backoff, prev time.Duration, rnd func(n int64) int64) time.Duration {
	if b.Cap == 0 {
		return b.Base
	}
	hi := max(prev, b.Base) * 3
	w := b.Base + time.Duration(rnd(int64(hi-b.Base)))
	return min(w, b.Cap)
}

// run is the loop. The local session is already connecting (Start).
func (l *link) run() {
	defer close(l.done)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	l.startDial()
	for {
		select {
		case e := <-l.ev:
			l.handle(e)
			l.stats.holding.Store(int64(len(l.sides[remote].out) + len(l.sides[remote].waiting)))
		case <-tick.C:
			l.keepAlive()
		case <-l.timerC(l.retry):
			l.retry = nil
			l.startDial()
		case <-l.timerC(l.localRetry):
			l.localRetry = nil
			if err := l.connectLocal(); err != nil {
				l.noteErr(err)
				l.localRetry = time.NewTimer(localRetryWait)
			}
		case <-l.stop:
			l.shutdown()
			return
		}
	}
}

var never = make(chan time.Time)

func (l *link) timerC(t *time.Timer) <-chan time.Time {
	if t == nil {
		return never
	}
	return t.C
}

func (l *link) startDial() {
	if l.dialing || l.sides[remote].c != nil {
		return
	}
	l.dialing = true
	addr := l.cn.Addresses[l.addr]
	l.stats.addr.Store(&addr)
	l.stats.state.Store(stateConnecting)
	go l.dialRemote(addr, l.cn.TryPrivate && !l.privateOff)
}

// remoteFailed schedules the next attempt, on the next address.
func (l *link) remoteFailed(err error) {
	l.stats.state.Store(stateDown)
	l.noteErr(err)
	l.addr = (l.addr + 1) % len(l.cn.Addresses)
	l.backoff = nextWait(l.cn.RestartTimeout, l.backoff, rand.Int64N)
	l.retry = time.NewTimer(l.backoff)
}

func (l *link) noteErr(err error) {
	s := err.Error()
	l.stats.lastErr.Store(&s)
}

func (l *link) handle(e event) {
	switch e.kind {
	case evPacket:
		if s := l.sides[e.p.c.side.idx()]; s.c == e.p.c {
			if err := l.onPacket(s, e.p); err != nil {
				l.lg.Warn().Err(err).Str("side", s.name).Msg("bridge: protocol error, closing the connection")
				s.c.close()
			}
		}
	case evDialFailed:
		l.dialing = false
		var re *refusedError
		if errors.As(e.err, &re) && re.v3 == codec.V3BadProtocolVersion && l.cn.TryPrivate && !l.privateOff {
			// The remote does not take the bridge mark: ask again without
			// it, at once, as Mosquitto does after this refusal.
			l.privateOff = true
			l.lg.Info().Str("address", e.addr).Msg("bridge: the remote refused try_private; connecting as a plain client")
			l.startDial()
			return
		}
		if !l.failing {
			l.failing = true
			l.lg.Warn().Err(e.err).Str("address", e.addr).Msg("bridge: cannot connect to the remote broker; retrying")
		} else {
			l.lg.Debug().Err(e.err).Str("address", e.addr).Msg("bridge: cannot connect to the remote broker")
		}
		l.remoteFailed(e.err)
	case evUp:
		if e.s == remote {
			l.dialing = false
		}
		l.up(e)
	case evGone:
		s := l.sides[e.s]
		if s.c != e.c {
			return
		}
		s.c, s.up = nil, false
		if e.s == local {
			l.lg.Warn().Err(e.err).Msg("bridge: local session lost; reconnecting")
			l.localRetry = time.NewTimer(localRetryWait)
			return
		}
		l.lg.Warn().Err(e.err).Str("address", *l.stats.addr.Load()).Msg("bridge: link to the remote broker down")
		if l.cn.Notifications {
			l.publishOwn(l.sides[local], []byte{'0'})
		}
		l.remoteFailed(fmt.Errorf("connection lost: %w", e.err))
	}
}

func (s *side) idx() int {
	if s.name == "local" {
		return local
	}
	return remote
}

func (l *link) other(s *side) *side { return l.sides[1-s.idx()] }

// up takes a connection whose CONNACK accepted the bridge.
func (l *link) up(e event) {
	s := l.sides[e.s]
	c := e.c
	s.c, s.up = c, true
	s.window = outWindow
	if e.ca.receiveMax > 0 {
		s.window = min(s.window, e.ca.receiveMax)
	}
	s.maxPkt, s.maxQoS, s.pingOut = e.ca.maxPacket, e.ca.maxQoS, false
	if !e.ca.present {
		// A new session: what this side had not acknowledged is gone
		// with the old one, and its ids may name new messages now.
		for _, f := range s.in {
			f.from = nil
		}
		clear(s.in)
		clear(s.done)
	}
	c.start(e.d, func(p packet) { l.post(event{kind: evPacket, p: p}) },
		func(err error) { l.post(event{kind: evGone, c: c, s: e.s, err: err}) })

	// Subscriptions first, then what was in flight, then what waited.
	if e.s == remote {
		l.backoff, l.failing = 0, false
		l.stats.state.Store(stateUp)
		l.stats.connects.Add(1)
		l.lg.Info().Str("address", e.addr).Bool("session_present", e.ca.present).Msg("bridge: link to the remote broker up")
		l.subscribe(s, func(t Topic) (string, bool) { return t.Remote(), t.Direction.in() })
		if ls := l.sides[local]; ls.up {
			// Again on the local side: its retained messages go to the
			// remote on every connection, as Mosquitto's do.
			l.subscribe(ls, func(t Topic) (string, bool) { return t.Local(), t.Direction.out() })
		}
		if l.cn.Notifications {
			l.publishOwn(s, []byte{'1'})
			l.publishOwn(l.sides[local], []byte{'1'})
		}
	} else {
		l.subscribe(s, func(t Topic) (string, bool) { return t.Local(), t.Direction.out() })
		if l.cn.Notifications && !l.notifiedUp {
			l.notifiedUp = true
			if rs := l.sides[remote]; !rs.up {
				l.publishOwn(s, []byte{'0'})
			}
		}
	}
	l.resend(s, e.ca.present)
	l.pump(s)
}

// subscribe sends one SUBSCRIBE with the filters pick gives, No Local and
// Retain As Published (MQTT 5; a 3.x remote gets them from the bridge
// mark), at each topic's QoS.
func (l *link) subscribe(s *side, pick func(Topic) (string, bool)) {
	sub := codec.Subscribe{PacketID: l.nextID(s)}
	for _, t := range l.cn.Topics {
		if f, ok := pick(t); ok {
			sub.Filters = append(sub.Filters, codec.Subscription{Filter: []byte(f), QoS: min(t.QoS, s.maxQoS),
				NoLocal: s.c.v == codec.V5, RetainAsPublished: s.c.v == codec.V5})
		}
	}
	if len(sub.Filters) > 0 {
		s.c.write(sub.Append(nil, s.c.v))
	}
}

// nextID is a packet id not in use toward s [MQTT-2.2.1-3].
func (l *link) nextID(s *side) uint16 {
	for {
		s.nextID++
		if s.nextID == 0 {
			s.nextID = 1
		}
		if _, used := s.out[s.nextID]; !used {
			return s.nextID
		}
	}
}

// resend sends again, in their first order, the messages in flight to s
// when its connection broke. With the session kept, a PUBLISH goes again
// with DUP and a released one as PUBREL; a new session knows none of
// them: PUBLISHes go again as new, and released ones, which s had
// already taken, are done.
func (l *link) resend(s *side, present bool) {
	fs := make([]*fwd, 0, len(s.out))
	for _, f := range s.out {
		fs = append(fs, f)
	}
	slices.SortFunc(fs, func(a, b *fwd) int { return int(a.seq - b.seq) })
	for _, f := range fs {
		switch {
		case f.rel && present:
			s.c.write(codec.AppendAck(nil, codec.PUBREL, f.id, codec.Success, s.c.v))
		case f.rel:
			delete(s.out, f.id)
		default:
			l.send(s, f, present)
		}
	}
}

// pump sends waiting messages while s's window has room.
func (l *link) pump(s *side) {
	for s.up && len(s.waiting) > 0 && len(s.out) < s.window {
		f := s.waiting[0]
		s.waiting[0] = nil
		s.waiting = s.waiting[1:]
		f.id = l.nextID(s)
		s.out[f.id] = f
		l.send(s, f, false)
	}
	if len(s.waiting) == 0 {
		s.waiting = nil // let the backing array go after a burst
	}
}

func (l *link) send(s *side, f *fwd, dup bool) {
	p := codec.Publish{Dup: dup && f.qos > 0, QoS: f.qos, Retain: f.retain, Topic: []byte(f.topic), PacketID: f.id, Payload: f.payload}
	s.c.write(p.Append(nil, s.c.v))
}

// forward takes a message for s: QoS 0 goes now or is dropped; QoS 1/2
// waits its turn.
func (l *link) forward(s *side, f *fwd) {
	f.qos = min(f.qos, s.maxQoS)
	if s.maxPkt > 0 && uint32(len(f.topic)+len(f.payload)+16) > s.maxPkt {
		// Larger than s takes: it would only cost the connection.
		l.stats.dropped.Add(1)
		l.complete(f, false)
		return
	}
	if f.qos == 0 {
		if s.up && s.c.pending.Load() < maxQoS0Backlog {
			l.send(s, f, false)
			l.counted(s, f)
		} else {
			l.stats.dropped.Add(1)
		}
		l.complete(f, false) // a QoS 1/2 source (s takes only QoS 0) is owed its acknowledgement
		return
	}
	l.seq++
	f.seq = l.seq
	s.waiting = append(s.waiting, f)
	l.pump(s)
}

// counted counts a message delivered to s.
func (l *link) counted(s *side, f *fwd) {
	if f.own {
		return
	}
	if s.idx() == remote {
		l.stats.forwardedOut.Add(1)
	} else {
		l.stats.forwardedIn.Add(1)
	}
}

// complete acknowledges f's source once f's destination has it.
func (l *link) complete(f *fwd, refused bool) {
	if f.acked {
		return
	}
	f.acked = true
	if refused {
		l.stats.refused.Add(1)
	}
	src := f.from
	if src == nil || f.fromQoS == 0 {
		return
	}
	if src.in[f.fromID] == f {
		delete(src.in, f.fromID)
	}
	if !src.up {
		src.done[f.fromID] = f.fromQoS // acknowledged when src sends it again
		return
	}
	l.ackSource(src, f.fromID, f.fromQoS)
}

func (l *link) ackSource(src *side, id uint16, qos byte) {
	if qos == 1 {
		src.c.write(codec.AppendAck(nil, codec.PUBACK, id, codec.Success, src.c.v)) // [MQTT-4.3.2-4]
		delete(src.done, id)
		return
	}
	src.c.write(codec.AppendAck(nil, codec.PUBREC, id, codec.Success, src.c.v)) // [MQTT-4.3.3-9]
	src.done[id] = 2                                                            // until PUBREL
}

// publishOwn publishes the bridge's state on its notification topic to s:
// retained, QoS 1 (QoS 0 past what s takes).
func (l *link) publishOwn(s *side, payload []byte) {
	l.forward(s, &fwd{topic: l.cn.NotificationTopic, payload: payload, qos: 1, retain: true, own: true})
}

func (l *link) onPacket(s *side, p packet) error {
	c := s.c
	switch p.typ {
	case codec.PUBLISH:
		var pub codec.Publish
		if err := pub.DecodeClient(p.flags, p.body, c.v); err != nil {
			return err
		}
		return l.onPublish(s, &pub)
	case codec.PUBACK, codec.PUBREC, codec.PUBCOMP:
		var a codec.Ack
		if err := a.Decode(p.typ, p.body, c.v); err != nil {
			return err
		}
		l.onAck(s, p.typ, a.PacketID, a.Code)
	case codec.PUBREL:
		var a codec.Ack
		if err := a.Decode(p.typ, p.body, c.v); err != nil {
			return err
		}
		delete(s.done, a.PacketID)
		c.write(codec.AppendAck(nil, codec.PUBCOMP, a.PacketID, codec.Success, c.v)) // [MQTT-4.3.3-11]
	case codec.SUBACK, codec.UNSUBACK:
		var a codec.Suback
		if err := a.Decode(p.typ, p.body, c.v); err != nil {
			return err
		}
		for _, code := range a.Codes {
			if code.IsError() {
				l.lg.Warn().Str("side", s.name).Stringer("code", code).Msg("bridge: a subscription was refused")
			}
		}
	case codec.PINGRESP:
		s.pingOut = false
	case codec.DISCONNECT:
		var d codec.Disconnect
		_ = d.Decode(p.typ, p.body, c.v)
		return fmt.Errorf("bridge: DISCONNECT from the %s broker: %v", s.name, d.Code)
	default:
		return fmt.Errorf("bridge: unexpected %v from the %s broker", p.typ, s.name)
	}
	return nil
}

func (l *link) onPublish(s *side, p *codec.Publish) error {
	if c := s.c; c.v == codec.V5 && p.Props.Has(codec.PropTopicAlias) {
		return errors.New("bridge: topic alias not offered") // none was [MQTT-3.2.2-17]
	}
	t := l.other(s)
	topic := string(p.Topic)
	if s.idx() == local {
		topic = toRemote(l.cn.Topics, topic)
	} else {
		topic = toLocal(l.cn.Topics, topic)
	}
	if p.QoS > 0 {
		if _, busy := s.in[p.PacketID]; busy {
			return nil // sent again while its copy is under way
		}
		if q, ok := s.done[p.PacketID]; ok && q == p.QoS {
			l.ackSource(s, p.PacketID, q) // its copy is delivered already
			return nil
		}
	}
	f := &fwd{topic: topic, payload: p.Payload, qos: p.QoS, retain: p.Retain}
	if p.QoS > 0 {
		f.from, f.fromID, f.fromQoS = s, p.PacketID, p.QoS
		s.in[p.PacketID] = f
	}
	l.forward(t, f)
	return nil
}

func (l *link) onAck(s *side, typ codec.Type, id uint16, code codec.ReasonCode) {
	f := s.out[id]
	switch {
	case typ == codec.PUBREC && (f == nil || f.qos != 2 || f.rel):
		// Not ours, or PUBREL already sent: PUBREL releases it either way.
		s.c.write(codec.AppendAck(nil, codec.PUBREL, id, codec.Success, s.c.v))
		return
	case f == nil:
		return
	case typ == codec.PUBACK && f.qos == 1, typ == codec.PUBCOMP && f.rel:
		delete(s.out, id)
		if !f.acked {
			l.counted(s, f)
		}
		l.complete(f, code.IsError())
	case typ == codec.PUBREC && code.IsError():
		delete(s.out, id) // a failure ends the exchange [MQTT-4.9.0-2]
		l.complete(f, true)
	case typ == codec.PUBREC:
		f.rel = true
		s.c.write(codec.AppendAck(nil, codec.PUBREL, id, codec.Success, s.c.v)) // [MQTT-4.3.3-3]
		l.counted(s, f)
		l.complete(f, false)
	default:
		return
	}
	l.pump(s)
}

// keepAlive pings the remote broker [MQTT-3.1.2-23] and closes a link
// whose broker stopped answering.
func (l *link) keepAlive() {
	s := l.sides[remote]
	if !s.up {
		return
	}
	ka := l.cn.KeepAlive
	now := time.Now()
	if s.pingOut {
		if now.Sub(s.pingSent) > ka {
			l.noteErr(errors.New("no PINGRESP within keepalive_interval"))
			s.c.close()
		}
		return
	}
	if now.Sub(time.Unix(0, s.c.lastWrite.Load())) >= ka-time.Second {
		s.c.write(codec.AppendPing(nil, codec.PINGREQ))
		s.pingOut, s.pingSent = true, now
	}
}

// shutdown ends both connections with DISCONNECT (so the remote keeps the
// session and does not publish the will), after saying "0" itself.
func (l *link) shutdown() {
	if l.retry != nil {
		l.retry.Stop()
	}
	if l.localRetry != nil {
		l.localRetry.Stop()
	}
	for _, i := range []int{remote, local} {
		s := l.sides[i]
		if s.c == nil {
			continue
		}
		if l.cn.Notifications && (i == local || s.up) {
			p := codec.Publish{Retain: true, Topic: []byte(l.cn.NotificationTopic), Payload: []byte{'0'}}
			s.c.write(p.Append(nil, s.c.v))
		}
		d := codec.Disconnect{Code: codec.Success}
		s.c.write(d.Append(nil, s.c.v))
		s.c.flushClose()
	}
	l.stats.state.Store(stateDown)
}
