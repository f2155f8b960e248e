package testutil

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/codec"
)

// StartBroker starts a broker on 127.0.0.1:0 with the default config
// changed by edit (may be nil) and closes it when the test ends. It
// returns the broker and its "host:port".
func StartBroker(t testing.TB, edit func(*broker.Config)) (*broker.Broker, string) {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Loops = 2
	cfg.Workers = 2
	cfg.SysInterval = 0 // no $SYS messages in the way; the $SYS tests turn them on
	if edit != nil {
		edit(&cfg)
	}
	b, err := broker.New(cfg)
	if err != nil {
		t.Fatalf("broker.New: %v", err)
	}
	forceRouting(t, b)
	if err := b.Start(); err != nil {
		t.Fatalf("broker.Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("broker.Close: %v", err)
		}
	})
	return b, b.Addr().String()
}

// RouteEnv names the environment variable that forces every broker
// StartBroker makes onto one routing path: "inline" or "workers" (unset or
// "auto": the broker chooses, as in production). The broker package's
// TestMain sets it to run its suites over both paths.
const RouteEnv = "SHOAL_TEST_ROUTE"

// forceRouting applies RouteEnv to b. Only the broker package's own test
// binary has the hook (export_test.go), so it is found through an
// interface; elsewhere a set RouteEnv is an error.
func forceRouting(t testing.TB, b *broker.Broker) {
	t.Helper()
	mode := os.Getenv(RouteEnv)
	if mode == "" {
		return
	}
	f, ok := any(b).(interface{ ForceRouting(string) error })
	if !ok {
		t.Fatalf("%s=%s: only the broker package's tests can force a routing path", RouteEnv, mode)
	}
	if err := f.ForceRouting(mode); err != nil {
		t.Fatalf("%s: %v", RouteEnv, err)
	}
}

// Eventually polls cond every 10 ms until it holds or d passes.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Tool returns the path of a command the tests need, failing the test
// with the install hint when it is missing: a missing peer is a broken
// set-up, not a pass.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found on PATH: run `make deps` (installs mosquitto-clients and friends)", name)
	}
	return p
}

// HostPort splits addr for command-line clients.
func HostPort(t testing.TB, addr string) (string, string) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return h, p
}

// Raw is a bare MQTT connection for tests that must send exactly the bytes
// they choose, including malformed ones.
type Raw struct {
	t       testing.TB
	Conn    net.Conn
	Version byte
	dec     codec.Decoder
	buf     []byte
}

// Dial opens a raw connection to addr.
func Dial(t testing.TB, addr string, version byte) *Raw {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &Raw{t: t, Conn: c, Version: version, buf: make([]byte, 64<<10)}
}

// Send writes raw bytes.
func (r *Raw) Send(b []byte) {
	r.t.Helper()
	if _, err := r.Conn.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// Frame is one packet read back.
type Frame struct {
	Header codec.Header
	Body   []byte // owned copy
}

// Read returns the next frame, or an error (io.EOF when the broker closed
// the connection, a timeout error when nothing came within d).
func (r *Raw) Read(d time.Duration) (Frame, error) {
	deadline := time.Now().Add(d)
	for {
		h, body, ok, err := r.dec.Next()
		if err != nil {
			return Frame{}, err
		}
		if ok {
			return Frame{Header: h, Body: bytes.Clone(body)}, nil
		}
		_ = r.Conn.SetReadDeadline(deadline)
		n, err := r.Conn.Read(r.buf)
		if n > 0 {
			_, _ = r.dec.Write(r.buf[:n])
			continue
		}
		if err != nil {
			return Frame{}, err
		}
	}
}

// Expect reads the next frame and fails unless it has type want.
func (r *Raw) Expect(want codec.Type, d time.Duration) Frame {
	r.t.Helper()
	f, err := r.Read(d)
	if err != nil {
		r.t.Fatalf("waiting for %v: %v", want, err)
	}
	if f.Header.Type != want {
		r.t.Fatalf("got %v (body % x), want %v", f.Header.Type, f.Body, want)
	}
	return f
}

// ExpectClosed fails unless the broker closes the connection within d,
// allowing for packets it sends first (returned).
func (r *Raw) ExpectClosed(d time.Duration) []Frame {
	r.t.Helper()
	var got []Frame
	deadline := time.Now().Add(d)
	for {
		f, err := r.Read(time.Until(deadline))
		if err == nil {
			got = append(got, f)
			continue
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			r.t.Fatalf("connection still open after %v (got %d packets)", d, len(got))
		}
		return got
	}
}

// Connect sends a CONNECT built from c (Version filled in) and returns the
// CONNACK.
func (r *Raw) Connect(c codec.Connect) codec.Connack {
	r.t.Helper()
	c.Version = r.Version
	r.Send(c.Append(nil))
	f := r.Expect(codec.CONNACK, 5*time.Second)
	var ack codec.Connack
	if err := ack.Decode(f.Body, r.Version); err != nil {
		r.t.Fatalf("CONNACK: %v", err)
	}
	return ack
}

// Publish decodes a PUBLISH frame received by the client.
func (r *Raw) Publish(f Frame) codec.Publish {
	r.t.Helper()
	var p codec.Publish
	if err := p.DecodeClient(f.Header.Flags, f.Body, r.Version); err != nil {
		r.t.Fatalf("PUBLISH: %v", err)
	}
	return p
}

// Subscribe sends SUBSCRIBE for filter at qos and waits for the SUBACK's
// codes.
func (r *Raw) Subscribe(id uint16, filter string, qos byte) []codec.ReasonCode {
	r.t.Helper()
	s := codec.Subscribe{PacketID: id, Filters: []codec.Subscription{{Filter: []byte(filter), QoS: qos}}}
	r.Send(s.Append(nil, r.Version))
	f := r.Expect(codec.SUBACK, 5*time.Second)
	var ack codec.Suback
	if err := ack.Decode(codec.SUBACK, f.Body, r.Version); err != nil {
		r.t.Fatalf("SUBACK: %v", err)
	}
	return ack.Codes
}

// Mosquitto runs a mosquitto command-line client with a timeout and
// returns its combined output.
func Mosquitto(t testing.TB, timeout time.Duration, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, Tool(t, name), args...).CombinedOutput()
	if ctx.Err() != nil {
		return string(out), fmt.Errorf("%s %s: timed out after %v", name, strings.Join(args, " "), timeout)
	}
	return string(out), err
}
