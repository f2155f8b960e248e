package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
)

// TestCrashKeepsAcknowledged kills the broker process with SIGKILL in the
// middle of QoS 1 and QoS 2 traffic to a persistent session, at a random
// moment, restarts it on the same data directory, and checks that every
// message the publisher got PUBACK or PUBCOMP for reaches the subscriber:
// duplicates allowed at QoS 1, none at QoS 2. A client with a delayed will
// is connected at each kill; after the last restart its will is published.
// make test runs 3 kills; make stress runs SHOAL_CRASH_ROUNDS of them.
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
	port := freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cfg := filepath.Join(dir, "shoal.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("listen: %q\ndata_dir: %q\nlog_level: warn\nlog_format: json\nadmin_listen: \"\"\nallow_anonymous: true\n",
		addr, filepath.Join(dir, "data"))), 0o644); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	sub := &crashSub{got: make(map[string]int), awaitRel: make(map[uint16]bool)}
	acked := make(map[string]bool)
	var published int

	for round := range rounds {
		br := startBroker(t, bin, cfg, addr)
		if err := sub.connect(addr, round == 0); err != nil {
			br.kill()
			t.Fatalf("round %d: subscriber: %v", round, err)
		}
		willer, err := connectWiller(addr, fmt.Sprintf("will-r%d", round))
		if err != nil {
			br.kill()
			t.Fatalf("round %d: will client: %v", round, err)
		}
		pub, err := dialPublisher(addr, fmt.Sprintf("r%d", round))
		if err != nil {
			br.kill()
			t.Fatalf("round %d: publisher: %v", round, err)
		}
		go pub.run()
		time.Sleep(time.Duration(150+rng.IntN(600)) * time.Millisecond)
		br.kill() // SIGKILL, mid-traffic
		pub.stop()
		willer.Close()
		sub.close()
		n := len(pub.acked)
		for p := range pub.acked {
			acked[p] = true
		}
		published += pub.sent
		t.Logf("round %d: killed after %d published, %d acknowledged, %d received so far", round, pub.sent, n, sub.count())
		if n == 0 {
			t.Errorf("round %d: nothing acknowledged before the kill: the test exercised nothing", round)
		}
	}

	// The last restart: everything owed arrives, and the last will.
	br := startBroker(t, bin, cfg, addr)
	defer br.kill()
	if err := sub.connect(addr, false); err != nil {
		t.Fatalf("final: subscriber: %v", err)
	}
	defer sub.close()
	lastWill := fmt.Sprintf("will-r%d", rounds-1)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && (sub.missing(acked) > 0 || sub.times(lastWill) == 0) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // anything more would be a duplicate
	var lost []string
	for p := range acked {
		if sub.times(p) == 0 {
			lost = append(lost, p)
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d of %d acknowledged messages lost, e.g. %v", len(lost), len(acked), lost[:min(5, len(lost))])
	}
	for p, n := range sub.snapshot() {
		if strings.Contains(p, "-q2-") && n > 1 {
			t.Errorf("QoS 2 message %s delivered %d times", p, n)
		}
	}
	if sub.times(lastWill) == 0 {
		t.Errorf("the will of the client connected at the last kill (%s) was not published after the restart", lastWill)
	}
	if err := sub.err(); err != nil {
		t.Errorf("subscriber: %v", err)
	}
	t.Logf("%d kills: %d published, %d acknowledged, all received; %d distinct messages received", rounds, published, len(acked), len(sub.snapshot()))
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

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// brokerProc is a broker process.
type brokerProc struct {
	cmd    *exec.Cmd
	stderr *testutil.SyncBuffer // the process writes it while tests read it
	done   chan struct{}
}

func startBroker(t *testing.T, bin, cfg, addr string) *brokerProc {
	t.Helper()
	p := &brokerProc{cmd: exec.Command(bin, "-c", cfg), stderr: new(testutil.SyncBuffer), done: make(chan struct{})}
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("broker exited before listening: %s", p.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			p.kill()
			t.Fatalf("broker not listening after 20s: %s", p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *brokerProc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// conn is a minimal MQTT client connection for these tests: frames in,
// frames out, no t.Fatal (it runs on goroutines of its own).
type conn struct {
	c   net.Conn
	wmu sync.Mutex
	buf []byte
	v   byte
}

func dial(addr string, c codec.Connect) (*conn, codec.Connack, error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, codec.Connack{}, err
	}
	cn := &conn{c: nc, v: c.Version}
	if err := cn.write(c.Append(nil)); err != nil {
		nc.Close()
		return nil, codec.Connack{}, err
	}
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	h, body, err := cn.read()
	_ = nc.SetReadDeadline(time.Time{})
	var ack codec.Connack
	if err == nil && h.Type != codec.CONNACK {
		err = fmt.Errorf("got %v, want CONNACK", h.Type)
	}
	if err == nil {
		err = ack.Decode(body, c.Version)
	}
	if err == nil && ack.Code != codec.Success {
		err = fmt.Errorf("CONNACK %v", ack.Code)
	}
	if err != nil {
		nc.Close()
	}
	return cn, ack, err
}

func (cn *conn) write(b []byte) error {
	cn.wmu.Lock()
	defer cn.wmu.Unlock()
	_, err := cn.c.Write(b)
	return err
}

// read returns the next frame; body is valid until the next read.
func (cn *conn) read() (codec.Header, []byte, error) {
	for {
		h, err := codec.ParseHeader(cn.buf, 1<<20)
		if err == nil && len(cn.buf) >= h.Size() {
			frame := cn.buf[:h.Size()]
			cn.buf = cn.buf[h.Size():]
			return h, frame[h.Len:], nil
		}
		if err != nil && !errors.Is(err, codec.ErrShort) {
			return h, nil, err
		}
		tmp := make([]byte, 16<<10)
		n, err := cn.c.Read(tmp)
		if n > 0 {
			cn.buf = append(append([]byte(nil), cn.buf...), tmp[:n]...)
		}
		if err != nil {
			return codec.Header{}, nil, err
		}
	}
}

func (cn *conn) Close() { _ = cn.c.Close() }

// crashSub is the persistent subscriber. Its QoS 2 state (ids between
// PUBREC and PUBREL) outlives its connections, as a correct client's
// session does, so that a resent PUBLISH is not taken for a new message.
type crashSub struct {
	mu       sync.Mutex
	got      map[string]int
	awaitRel map[uint16]bool
	cn       *conn
	done     chan struct{}
	readErr  error
}

func (s *crashSub) connect(addr string, first bool) error {
	cn, ack, err := dial(addr, codec.Connect{Version: codec.V311, ClientID: []byte("crash-sub"), KeepAlive: 60})
	if err != nil {
		return err
	}
	if !first && !ack.SessionPresent {
		cn.Close()
		return errors.New("Session Present 0 after a restart: the session was lost")
	}
	s.cn, s.done = cn, make(chan struct{})
	if first {
		sub := codec.Subscribe{PacketID: 1, Filters: []codec.Subscription{
			{Filter: []byte("crash/q1"), QoS: 1}, {Filter: []byte("crash/q2"), QoS: 2}, {Filter: []byte("crash/will"), QoS: 1}}}
		if err := cn.write(sub.Append(nil, codec.V311)); err != nil {
			return err
		}
	}
	go s.readLoop(cn, s.done)
	return nil
}

func (s *crashSub) readLoop(cn *conn, done chan struct{}) {
	defer close(done)
	for {
		h, body, err := cn.read()
		if err != nil {
			return // the broker was killed, or we closed
		}
		var reply []byte
		switch h.Type {
		case codec.PUBLISH:
			var p codec.Publish
			if err := p.DecodeClient(h.Flags, body, codec.V311); err != nil {
				s.fail(err)
				return
			}
			s.mu.Lock()
			switch p.QoS {
			case 2:
				if !s.awaitRel[p.PacketID] { // else: a resend of one we have
					s.awaitRel[p.PacketID] = true
					s.got[string(p.Payload)]++
				}
				reply = codec.AppendAck(nil, codec.PUBREC, p.PacketID, codec.Success, codec.V311)
			default:
				s.got[string(p.Payload)]++
				if p.QoS == 1 {
					reply = codec.AppendAck(nil, codec.PUBACK, p.PacketID, codec.Success, codec.V311)
				}
			}
			s.mu.Unlock()
		case codec.PUBREL:
			var a codec.Ack
			if err := a.Decode(codec.PUBREL, body, codec.V311); err != nil {
				s.fail(err)
				return
			}
			s.mu.Lock()
			delete(s.awaitRel, a.PacketID)
			s.mu.Unlock()
			reply = codec.AppendAck(nil, codec.PUBCOMP, a.PacketID, codec.Success, codec.V311)
		}
		if reply != nil && cn.write(reply) != nil {
			return
		}
	}
}

func (s *crashSub) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.readErr == nil {
		s.readErr = err
	}
}

func (s *crashSub) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.readErr
}

func (s *crashSub) close() {
	s.cn.Close()
	<-s.done
}

func (s *crashSub) times(payload string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got[payload]
}

func (s *crashSub) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

func (s *crashSub) missing(want map[string]bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for p := range want {
		if s.got[p] == 0 {
			n++
		}
	}
	return n
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

// connectWiller connects an MQTT 5 client whose will (QoS 1, delay 1 s,
// session expiry 60 s) carries payload.
func connectWiller(addr, payload string) (*conn, error) {
	c := codec.Connect{Version: codec.V5, ClientID: []byte("crash-willer"), KeepAlive: 60,
		WillFlag: true, WillQoS: 1, WillTopic: []byte("crash/will"), WillPayload: []byte(payload)}
	c.Props.Set(codec.PropSessionExpiry)
	c.Props.SessionExpiry = 60
	c.WillProps.Set(codec.PropWillDelay)
	c.WillProps.WillDelay = 1
	cn, _, err := dial(addr, c)
	return cn, err
}

// crashPub publishes QoS 1 and QoS 2 messages alternately, up to window
// unacknowledged, and records the ones acknowledged (PUBACK, PUBCOMP).
type crashPub struct {
	cn     *conn
	prefix string
	mu     sync.Mutex
	acked  map[string]bool
	open   map[uint16]string // packet id -> payload, in flight
	sent   int
	room   chan struct{}
	quit   chan struct{}
	done   chan struct{} // run returned
	rdone  chan struct{} // readLoop returned
}

const crashWindow = 32

func dialPublisher(addr, prefix string) (*crashPub, error) {
	cn, _, err := dial(addr, codec.Connect{Version: codec.V311, ClientID: []byte("crash-pub-" + prefix), CleanStart: true, KeepAlive: 60})
	if err != nil {
		return nil, err
	}
	p := &crashPub{cn: cn, prefix: prefix, acked: make(map[string]bool), open: make(map[uint16]string),
		room: make(chan struct{}, crashWindow), quit: make(chan struct{}), done: make(chan struct{}), rdone: make(chan struct{})}
	for range crashWindow {
		p.room <- struct{}{}
	}
	return p, nil
}

func (p *crashPub) run() {
	defer close(p.done)
	go p.readLoop()
	for seq := 1; ; seq++ {
		select {
		case <-p.quit:
			return
		case <-p.room:
		}
		qos := byte(1 + seq%2)
		id := uint16(seq%60000 + 1)
		payload := fmt.Sprintf("%s-q%d-%d", p.prefix, qos, seq)
		p.mu.Lock()
		p.open[id] = payload
		p.sent++
		p.mu.Unlock()
		pk := codec.Publish{Topic: []byte(fmt.Sprintf("crash/q%d", qos)), QoS: qos, PacketID: id, Payload: []byte(payload)}
		if p.cn.write(pk.Append(nil, codec.V311)) != nil {
			return
		}
	}
}

func (p *crashPub) readLoop() {
	defer close(p.rdone)
	for {
		h, body, err := p.cn.read()
		if err != nil {
			return
		}
		var a codec.Ack
		if a.Decode(h.Type, body, codec.V311) != nil {
			return
		}
		switch h.Type {
		case codec.PUBACK, codec.PUBCOMP:
			p.mu.Lock()
			if payload, ok := p.open[a.PacketID]; ok {
				p.acked[payload] = true
				delete(p.open, a.PacketID)
			}
			p.mu.Unlock()
			p.room <- struct{}{}
		case codec.PUBREC:
			if p.cn.write(codec.AppendAck(nil, codec.PUBREL, a.PacketID, codec.Success, codec.V311)) != nil {
				return
			}
		}
	}
}

// stop ends publishing; the acknowledged set is final once it returns.
func (p *crashPub) stop() {
	close(p.quit)
	p.cn.Close()
	<-p.done
	<-p.rdone
}

// TestDamagedDataDirStarts: the broker starts and serves on a data
// directory whose files were truncated — every file at once, the worst
// case — reporting that it could not read it.
func TestDamagedDataDirStarts(t *testing.T) {
	bin := buildBroker(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	cfg := filepath.Join(dir, "shoal.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("listen: %q\ndata_dir: %q\nlog_format: json\nadmin_listen: \"\"\nallow_anonymous: true\n", addr, data)), 0o644); err != nil {
		t.Fatal(err)
	}
	br := startBroker(t, bin, cfg, addr)
	sub := &crashSub{got: make(map[string]int), awaitRel: make(map[uint16]bool)}
	if err := sub.connect(addr, true); err != nil {
		t.Fatal(err)
	}
	sub.close()
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
	defer br.kill()
	if err := sub.connect(addr, true); err != nil {
		t.Fatalf("connecting to the broker started on a damaged directory: %v", err)
	}
	sub.close()
	if !strings.Contains(br.stderr.String(), "unreadable") {
		t.Errorf("the damage was not reported; stderr:\n%s", br.stderr.String())
	}
}
