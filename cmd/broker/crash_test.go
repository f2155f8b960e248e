package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"github.com/eclipse/paho.golang/paho/session"
	"github.com/eclipse/paho.golang/paho/session/state"

	"github.com/shoalmq/shoal/internal/testutil"
)

// TestCrashKeepsAcknowledged kills the broker process with SIGKILL in the
// middle of QoS 1 and QoS 2 traffic to a persistent session, at a random
// moment, restarts it on the same data directory, and checks that every
// message the publisher got PUBACK or PUBCOMP for reaches the subscriber:
// duplicates allowed at QoS 1, none at QoS 2. A client with a delayed will
// is connected at each kill; after the last restart its will is published.
// make test runs 3 kills; make stress runs SHOAL_CRASH_ROUNDS of them.
//
// Every client is paho.golang's (MQTT 5), not one built on Shoal's codec:
// a bug shared by the broker and a client written beside it would pass.
// What counts as acknowledged or received is what paho reports:
//
//   - Publish returns a response only when the flow ends on the wire:
//     PUBACK for QoS 1, PUBCOMP for QoS 2, or a PUBREC with a failure code,
//     which it returns with a nil error, so the reason code is checked
//     too. When the connection is lost, paho ends pending calls with an
//     error or leaves them to their context; it never reports success,
//     and the publisher's state is new each round, so nothing is resent.
//   - The subscriber hands one paho session state (paho/session/state) to
//     the client of each connection, as autopaho does: it records the
//     packet id of each QoS 2 message it answered PUBREC to until PUBREL
//     comes, and answers a resent PUBLISH (DUP set) with that id without
//     handing it to the application again. Exactly-once delivery is then
//     paho's work and the broker's, not this test's. The state lives in
//     memory: the broker dies, the client process does not.
//
// paho.mqtt.golang (MQTT 3.1.1) would not do for the subscriber: it answers
// every QoS 2 PUBLISH with PUBREC and delivers it, DUP or not, keeping no
// record of the ids it answered, so a correct broker's resend would count
// as a duplicate.
func TestCrashKeepsAcknowledged(t *testing.T) {
	rounds := 3
	if s := os.Getenv("SHOAL_CRASH_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("SHOAL_CRASH_ROUNDS=%q: want a positive number", s)
		}
		rounds = n
	}
	bin := buildBroker(t)
	dir := t.TempDir()
	addr := testutil.FreeAddr(t)
	cfg := filepath.Join(dir, "shoal.yaml")
	// max_queued: the subscriber falls behind on purpose (crashSubWindow),
	// and a full queue drops messages by design (queue_policy), which is
	// not what this test looks for.
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("listen: %q\ndata_dir: %q\nlog_level: warn\nlog_format: json\nadmin_listen: \"\"\nallow_anonymous: true\nmax_queued: 1000000\n",
		addr, filepath.Join(dir, "data"))), 0o644); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	sub := newCrashSub()
	var acked []string // acknowledged payloads, each once
	var published, refused, checked int

	for round := range rounds {
		br := startBroker(t, bin, cfg, addr)
		if err := sub.connect(addr, round == 0); err != nil {
			t.Fatalf("round %d: subscriber: %v", round, err)
		}
		willer, err := connectWiller(addr, fmt.Sprintf("will-r%d", round))
		if err != nil {
			t.Fatalf("round %d: will client: %v", round, err)
		}
		// On about half the rounds, and whenever the backlog grows large,
		// everything acknowledged before the last kill must arrive before
		// publishing starts again (so that the backlog stays bounded); on
		// the others the kill most likely lands while it is still being
		// resent or drained from the restored queue.
		if owed := sub.missing(acked); len(owed) > 0 && (rng.IntN(2) == 0 || len(owed) > crashMaxAcks) {
			start := time.Now()
			if owed = sub.await(owed, crashDrain); len(owed) > 0 {
				t.Fatalf("round %d: %d of %d messages acknowledged before the last kill did not arrive in %v after the restart, e.g. %v",
					round, len(owed), len(acked), crashDrain, owed[:min(5, len(owed))])
			}
			checked++
			t.Logf("round %d: everything acknowledged before arrived in %v", round, time.Since(start).Round(time.Millisecond))
		}
		pub, err := startPublisher(addr, fmt.Sprintf("r%d", round))
		if err != nil {
			t.Fatalf("round %d: publisher: %v", round, err)
		}
		// The random moment: after a random number of acknowledgements,
		// with the publisher's whole window in flight.
		target := 1 + rng.IntN(crashMaxAcks)
		reached := pub.awaitAcked(target, crashDrain)
		br.kill() // SIGKILL, mid-traffic
		pub.stop()
		gone := errors.Join(awaitGone(pub.c), awaitGone(willer), sub.gone())
		for p := range pub.acked {
			acked = append(acked, p)
		}
		published += int(pub.sent.Load())
		refused += pub.refused
		t.Logf("round %d: killed after %d published, %d acknowledged, %d received so far", round, pub.sent.Load(), len(pub.acked), sub.count())
		if !reached {
			t.Fatalf("round %d: %d of %d acknowledgements after %v: the broker stalled", round, len(pub.acked), target, crashDrain)
		}
		if gone != nil {
			t.Fatalf("round %d: after the kill: %v", round, gone)
		}
	}

	// The last restart: everything owed arrives, and the last will. The
	// broker resends a session's unacknowledged messages on reconnect
	// [MQTT-4.4.0-1] and then sends its queue in order, so a final message
	// on each topic, published once the subscriber is back, comes after
	// any resend or requeued copy: once both are in, no duplicate is still
	// on its way, and waiting for them replaces a guessed sleep.
	br := startBroker(t, bin, cfg, addr)
	if err := sub.connect(addr, false); err != nil {
		t.Fatalf("final: subscriber: %v", err)
	}
	ends := []string{"end-q1", "end-q2"}
	if err := publishEnds(addr, ends); err != nil {
		t.Fatalf("final: %v", err)
	}
	lastWill := fmt.Sprintf("will-r%d", rounds-1)
	sub.await(slices.Concat(acked, ends, []string{lastWill}), crashDrain)
	if lost := sub.missing(acked); len(lost) > 0 {
		t.Errorf("%d of %d acknowledged messages lost, e.g. %v", len(lost), len(acked), lost[:min(5, len(lost))])
	}
	got := sub.snapshot()
	var dup1, dup2 int
	for p, n := range got {
		switch {
		case n < 2:
		case strings.Contains(p, "-q2-"):
			dup2++
			if dup2 <= 5 {
				t.Errorf("QoS 2 message %s delivered %d times", p, n)
			}
		default:
			dup1++
		}
	}
	if got[lastWill] == 0 {
		t.Errorf("the will of the client connected at the last kill (%s) was not published after the restart", lastWill)
	}
	for _, e := range ends {
		if got[e] == 0 {
			t.Errorf("%s, published after the last restart, never arrived", e)
		}
	}
	if err := sub.err(); err != nil {
		t.Errorf("subscriber: %v", err)
	}
	t.Logf("%d kills (%d checked before the next): %d published, %d acknowledged, %d refused, %d lost; %d distinct messages received, QoS 1 duplicates %d, QoS 2 duplicates %d",
		rounds, checked, published, len(acked), refused, len(sub.missing(acked)), len(got), dup1, dup2)
	if err := sub.close(); err != nil {
		t.Errorf("subscriber: DISCONNECT: %v", err)
	}
	br.kill()
}

// crashMaxAcks bounds the acknowledgements a round waits for before the
// kill; the round's share of the test's time is about this many messages.
const crashMaxAcks = 1500

// crashWindow is how many publishes are in flight at once, each on a
// goroutine of its own (paho's Publish blocks until the flow ends).
const crashWindow = 32

// crashSubWindow is the subscriber's Receive Maximum: well under the
// publisher's window, so that at a kill the broker holds a backlog of
// acknowledged messages the subscriber has not seen, which is what a
// durability bug loses. With the broker's default (max_inflight 64) the
// subscriber kept up and little was owed at each kill: with the router
// workers' commits removed from the broker, 1 run in 3 failed; with 8,
// 5 in 5, each losing hundreds.
const crashSubWindow = 8

// crashDrain bounds the waits for traffic: for a round's
// acknowledgements, and for the subscriber to receive what it is owed.
const crashDrain = 20 * time.Second

// crashTimeout bounds each exchange with the broker: CONNECT, SUBSCRIBE,
// and the client noticing that the broker is gone.
const crashTimeout = 10 * time.Second

// dialPaho connects a paho client with cfg (Conn and the context are
// filled in) and CONNECT packet cp.
func dialPaho(addr string, cfg paho.ClientConfig, cp *paho.Connect) (*paho.Client, *paho.Connack, error) {
	nc, err := net.DialTimeout("tcp", addr, crashTimeout)
	if err != nil {
		return nil, nil, err
	}
	// The publisher writes from many goroutines; paho's ControlPacket
	// writes under the connection's lock when it has one.
	cfg.Conn = packets.NewThreadSafeConn(nc)
	c := paho.NewClient(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), crashTimeout)
	defer cancel()
	ack, err := c.Connect(ctx, cp) // closes nc on failure
	if err != nil {
		return nil, ack, fmt.Errorf("CONNECT %s: %w", cp.ClientID, err)
	}
	return c, ack, nil
}

// awaitGone waits until c has noticed that its connection is gone and
// has stopped: its handlers have returned and its goroutines ended.
func awaitGone(c *paho.Client) error {
	select {
	case <-c.Done():
		return nil
	case <-time.After(crashTimeout):
		return fmt.Errorf("%s still running %v after the broker died", c.ClientID(), crashTimeout)
	}
}

// crashSub is the persistent subscriber: a paho client for each
// connection, one session state for all of them (see
// TestCrashKeepsAcknowledged). connect, gone and close are called from
// the test goroutine only; the rest is safe for concurrent use.
type crashSub struct {
	id    string // the client id: crash-sub unless newCrashSubID's
	state *state.State
	c     *paho.Client

	mu  sync.Mutex
	got map[string]int // payload -> times delivered
	// how are the first receipts of each QoS 2 payload: the connection
	// (counted from 1), packet id and DUP flag, to tell a resend from a
	// second delivery.
	how     map[string][]string
	conns   int
	readErr error
	news    chan struct{} // a message arrived; capacity 1
	// expect are the DISCONNECT reason codes the test expects from the
	// broker; told records that one came.
	expect []byte
	told   bool
}

func newCrashSub() *crashSub { return newCrashSubID("crash-sub") }

// newCrashSubID is a crashSub with client id id, for tests with more
// than one.
func newCrashSubID(id string) *crashSub {
	return &crashSub{id: id, state: state.NewInMemory(), got: make(map[string]int), how: make(map[string][]string), news: make(chan struct{}, 1)}
}

// connect connects the subscriber; on first, with a new session and its
// subscriptions, otherwise resuming the session, which must be present.
func (s *crashSub) connect(addr string, first bool) error {
	cp := &paho.Connect{ClientID: s.id, KeepAlive: 60, CleanStart: first,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: paho.Uint32(3600), ReceiveMaximum: paho.Uint16(crashSubWindow)}}
	c, ack, err := dialPaho(addr, paho.ClientConfig{Session: s.state,
		OnPublishReceived:  []func(paho.PublishReceived) (bool, error){s.receive},
		OnServerDisconnect: s.disconnected}, cp)
	if err != nil {
		return err
	}
	s.c = c
	s.mu.Lock()
	s.conns++
	s.mu.Unlock()
	if !first && !ack.SessionPresent {
		return errors.New("Session Present 0 after a restart: the session was lost")
	}
	if first {
		ctx, cancel := context.WithTimeout(context.Background(), crashTimeout)
		defer cancel()
		_, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{
			{Topic: "crash/q1", QoS: 1}, {Topic: "crash/q2", QoS: 2}, {Topic: "crash/will", QoS: 1}}})
		if err != nil {
			return fmt.Errorf("SUBSCRIBE: %w", err)
		}
	}
	return nil
}

// receive is the subscriber's handler; paho acknowledges the message
// (PUBACK, PUBREC) once it returns.
func (s *crashSub) receive(r paho.PublishReceived) (bool, error) {
	p := string(r.Packet.Payload)
	want := byte(1)
	if strings.Contains(p, "-q2-") || strings.HasSuffix(p, "-q2") {
		want = 2
	}
	s.mu.Lock()
	s.got[p]++
	if want == 2 && len(s.how[p]) < 3 {
		s.how[p] = append(s.how[p], fmt.Sprintf("conn %d id %d dup %v", s.conns, r.Packet.PacketID, r.Packet.Duplicate()))
	}
	if r.Packet.QoS != want && s.readErr == nil {
		s.readErr = fmt.Errorf("%s delivered at QoS %d, want %d", p, r.Packet.QoS, want)
	}
	s.mu.Unlock()
	select {
	case s.news <- struct{}{}:
	default:
	}
	return true, nil
}

// disconnected records a DISCONNECT from the broker: nothing in this test
// should earn one (a slow consumer's 0x97 is kept off by max_queued) but
// the one it expects.
func (s *crashSub) disconnected(d *paho.Disconnect) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if slices.Contains(s.expect, d.ReasonCode) {
		s.told = true
		return
	}
	if s.readErr == nil {
		s.readErr = fmt.Errorf("the broker sent DISCONNECT %#x", d.ReasonCode)
	}
}

// gone waits until the client has noticed that the broker died.
func (s *crashSub) gone() error { return awaitGone(s.c) }

// close disconnects normally; the session stays.
func (s *crashSub) close() error {
	return s.c.Disconnect(&paho.Disconnect{ReasonCode: 0})
}

// await waits until every payload in want has arrived, or d passes, and
// returns those that have not.
func (s *crashSub) await(want []string, d time.Duration) []string {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		if want = s.missing(want); len(want) == 0 {
			return nil
		}
		select {
		case <-s.news:
		case <-deadline.C:
			return want
		}
	}
}

// missing returns the payloads in want that have not arrived, in a new
// slice.
func (s *crashSub) missing(want []string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, p := range want {
		if s.got[p] == 0 {
			out = append(out, p)
		}
	}
	return out
}

func (s *crashSub) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.readErr
}

func (s *crashSub) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

// receipts says how payload p was received, each time (QoS 2 ones).
func (s *crashSub) receipts(p string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.how[p]
}

func (s *crashSub) snapshot() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.got))
	for k, v := range s.got {
		out[k] = v
	}
	return out
}

// connectWiller connects a client whose will (QoS 1, delay 1 s, session
// expiry 60 s) carries payload.
func connectWiller(addr, payload string) (*paho.Client, error) {
	return connectWillerID(addr, payload, "crash-willer")
}

// connectWillerID is connectWiller with client id id.
func connectWillerID(addr, payload, id string) (*paho.Client, error) {
	c, _, err := dialPaho(addr, paho.ClientConfig{}, &paho.Connect{ClientID: id, KeepAlive: 60,
		Properties:     &paho.ConnectProperties{SessionExpiryInterval: paho.Uint32(60)},
		WillMessage:    &paho.WillMessage{Topic: "crash/will", QoS: 1, Payload: []byte(payload)},
		WillProperties: &paho.WillProperties{WillDelayInterval: paho.Uint32(1)}})
	return c, err
}

// crashPub publishes QoS 1 and QoS 2 messages alternately from
// crashWindow goroutines and records those the broker acknowledged.
// Its counters are final once stop returns.
type crashPub struct {
	c      *paho.Client
	prefix string
	cancel context.CancelFunc
	wg     sync.WaitGroup
	seq    atomic.Int64
	sent   atomic.Int64 // PUBLISH packets handed to paho

	mu      sync.Mutex
	acked   map[string]bool
	refused int // answered with a failure reason code
	// unanswered timed out in paho waiting for their answer.
	unanswered int
	pace       *time.Ticker  // nil: unpaced
	progress   chan struct{} // an acknowledgement came; capacity 1
	// ended says why the connection ended, if it did: paho's error, the
	// broker's DISCONNECT, or a Publish's error.
	ended string
}

func startPublisher(addr, prefix string) (*crashPub, error) {
	return startPacedPublisher(addr, prefix, 0)
}

// startPacedPublisher is startPublisher sending at most perSecond
// messages a second (0: as fast as the broker acknowledges): a rate the
// subscribers keep up with, so that what they are owed does not grow
// into a backlog that delays everything after it.
func startPacedPublisher(addr, prefix string, perSecond int) (*crashPub, error) {
	p := &crashPub{prefix: prefix, acked: make(map[string]bool), progress: make(chan struct{}, 1)}
	if perSecond > 0 {
		p.pace = time.NewTicker(time.Second / time.Duration(perSecond))
	}
	c, _, err := dialPaho(addr, paho.ClientConfig{
		OnClientError:      func(err error) { p.end("paho: " + err.Error()) },
		OnServerDisconnect: func(d *paho.Disconnect) { p.end(fmt.Sprintf("DISCONNECT %#x from the broker", d.ReasonCode)) },
	}, &paho.Connect{ClientID: "crash-pub-" + prefix, CleanStart: true, KeepAlive: 60})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.c, p.cancel = c, cancel
	p.wg.Add(crashWindow)
	for range crashWindow {
		go p.run(ctx)
	}
	return p, nil
}

// run publishes until the connection or ctx ends.
func (p *crashPub) run(ctx context.Context) {
	defer p.wg.Done()
	for ctx.Err() == nil {
		if p.pace != nil {
			select {
			case <-p.pace.C:
			case <-ctx.Done():
				return
			}
		}
		seq := p.seq.Add(1)
		qos := byte(1 + seq%2)
		payload := fmt.Sprintf("%s-q%d-%d", p.prefix, qos, seq)
		p.sent.Add(1)
		resp, err := p.c.Publish(ctx, &paho.Publish{Topic: fmt.Sprintf("crash/q%d", qos), QoS: qos, Payload: []byte(payload)})
		switch {
		case err == nil && resp.ReasonCode < 0x80: // PUBACK or PUBCOMP, success
			p.mu.Lock()
			p.acked[payload] = true
			p.mu.Unlock()
			select {
			case p.progress <- struct{}{}:
			default:
			}
		case resp != nil: // PUBACK or PUBREC with a failure code
			p.mu.Lock()
			p.refused++
			p.mu.Unlock()
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
			// No answer in paho's PacketTimeout (10 s): a cluster whose
			// stream elects a new leader takes that long. Not
			// acknowledged; as a client would, it goes on (the message
			// stays in flight in paho's session until an answer comes).
			p.mu.Lock()
			p.unanswered++
			p.mu.Unlock()
		default:
			if errors.Is(err, session.ErrNoConnection) {
				p.sent.Add(-1) // refused by paho before it was sent
			}
			if ctx.Err() == nil {
				p.end("Publish: " + err.Error())
			}
			return // the connection is gone, or stop
		}
	}
}

// ackedList lists the payloads acknowledged. After stop.
// awaitMore waits until n more messages are acknowledged, failing the
// test, after logs, with what the publisher heard if d passes first; what
// says when.
func (p *crashPub) awaitMore(t *testing.T, n int, d time.Duration, logs func(), what string) {
	t.Helper()
	before := p.ackedCount()
	if p.awaitAcked(before+n, d) {
		return
	}
	logs()
	p.mu.Lock()
	refused, unanswered, ended := p.refused, p.unanswered, p.ended
	p.mu.Unlock()
	t.Fatalf("%s: %d acknowledged in %v (%d before, %d refused, %d unanswered); publisher's connection: %q",
		what, p.ackedCount()-before, d, before, refused, unanswered, ended)
}

// end records why the connection ended, the first time.
func (p *crashPub) end(why string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ended == "" {
		p.ended = why
	}
}

func (p *crashPub) ackedList() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Collect(maps.Keys(p.acked))
}

// ackedNow is a copy of the payloads acknowledged so far.
func (p *crashPub) ackedNow() map[string]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.acked)
}

func (p *crashPub) ackedCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.acked)
}

// awaitAcked waits until n messages are acknowledged; false if d passed
// first.
func (p *crashPub) awaitAcked(n int, d time.Duration) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		if p.ackedCount() >= n {
			return true
		}
		select {
		case <-p.progress:
		case <-deadline.C:
			return false
		}
	}
}

// stop ends publishing once the broker is dead: Publish calls still
// waiting for their acknowledgement end with the context (paho drops a
// lost connection's pending flows from a session without expiry, leaving
// them to wait for it).
func (p *crashPub) stop() {
	p.cancel()
	p.wg.Wait()
	if p.pace != nil {
		p.pace.Stop()
	}
}

// publishEnds publishes each of payloads to crash/q1 or crash/q2 (as its
// suffix says) and waits for the acknowledgements.
func publishEnds(addr string, payloads []string) error {
	c, _, err := dialPaho(addr, paho.ClientConfig{}, &paho.Connect{ClientID: "crash-pub-end", CleanStart: true, KeepAlive: 60})
	if err != nil {
		return err
	}
	defer c.Disconnect(&paho.Disconnect{ReasonCode: 0})
	ctx, cancel := context.WithTimeout(context.Background(), crashTimeout)
	defer cancel()
	for _, p := range payloads {
		qos := byte(1)
		if strings.HasSuffix(p, "-q2") {
			qos = 2
		}
		resp, err := c.Publish(ctx, &paho.Publish{Topic: fmt.Sprintf("crash/q%d", qos), QoS: qos, Payload: []byte(p)})
		if err == nil && resp.ReasonCode >= 0x80 {
			err = fmt.Errorf("reason code %#x", resp.ReasonCode)
		}
		if err != nil {
			return fmt.Errorf("publishing %s: %w", p, err)
		}
	}
	return nil
}

// buildBroker compiles this command into a temporary directory.
func buildBroker(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "shoal")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// brokerProc is a broker process.
type brokerProc struct {
	cmd    *exec.Cmd
	stderr *testutil.SyncBuffer // the process writes it while tests read it
	done   chan struct{}
	// How it was started (spawnBroker), to start it again.
	bin, dir string
	args     []string
	admin    string // its admin listener's address, if it has one
}

// startBroker starts the broker with config file cfg and waits until it
// accepts connections on addr; it is killed when the test ends.
func startBroker(t *testing.T, bin, cfg, addr string) *brokerProc {
	t.Helper()
	return startBrokerIn(t, bin, "", addr, "-c", cfg)
}

// kill sends SIGKILL and waits for the process to end. Safe to call
// again once the process is gone.
func (p *brokerProc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// dumpStacks ends the process with SIGQUIT, which makes the Go runtime
// write every goroutine's stack to its stderr (logged after), so that a
// test that saw it stall can say where: the process is gone after.
func (p *brokerProc) dumpStacks() {
	_ = p.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.kill()
	}
}

// TestDamagedDataDirStarts: the broker starts and serves on a data
// directory whose files were truncated — every file at once, the worst
// case — reporting that it could not read it.
func TestDamagedDataDirStarts(t *testing.T) {
	bin := buildBroker(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	addr := testutil.FreeAddr(t)
	cfg := filepath.Join(dir, "shoal.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("listen: %q\ndata_dir: %q\nlog_format: json\nadmin_listen: \"\"\nallow_anonymous: true\n", addr, data)), 0o644); err != nil {
		t.Fatal(err)
	}
	br := startBroker(t, bin, cfg, addr)
	sub := newCrashSub()
	if err := sub.connect(addr, true); err != nil {
		t.Fatal(err)
	}
	if err := sub.close(); err != nil {
		t.Fatal(err)
	}
	br.kill()
	entries, err := os.ReadDir(data)
	if err != nil || len(entries) == 0 {
		t.Fatalf("data directory: %d entries, %v", len(entries), err)
	}
	for _, e := range entries {
		if e.Type().IsRegular() && e.Name() != "LOCK" {
			if err := os.Truncate(filepath.Join(data, e.Name()), 7); err != nil {
				t.Fatal(err)
			}
		}
	}
	br = startBroker(t, bin, cfg, addr) // fails the test unless it listens
	if err := sub.connect(addr, true); err != nil {
		t.Fatalf("connecting to the broker started on a damaged directory: %v", err)
	}
	if err := sub.close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(br.stderr.String(), "unreadable") {
		t.Errorf("the damage was not reported; stderr:\n%s", br.stderr.String())
	}
}
