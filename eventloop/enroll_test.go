package eventloop_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/eventloop"
)

// tcpPair returns both ends of a loopback TCP connection: the client's,
// and the server's, which stands for a transport's stream (a *tls.Conn
// after its handshake) in Enroll. Both are closed when the test ends.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.DialTimeout("tcp", ln.Addr().String(), wait)
	if err != nil {
		t.Fatal(err)
	}
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(wait))
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = client.Close()
		_ = server.Close()
	})
	return client, server
}

// enroll hands a new stream to e and waits for OnOpen; it returns the
// client's end and the address the recorder knows the connection by.
func enroll(t *testing.T, e *eventloop.Engine, r *recorder, o eventloop.Origin) (net.Conn, string) {
	t.Helper()
	cli, srv := tcpPair(t)
	o.Remote = srv.RemoteAddr()
	if err := e.Enroll(srv, &o); err != nil {
		t.Fatalf("Enroll: %v", err)
	}
	a := cli.LocalAddr().String()
	r.waitFor(t, "OnOpen of enrolled "+a, func() bool { return r.conns[a] != nil })
	return cli, a
}

// TestEnroll: an enrolled stream is framed like a TCP connection at every
// byte boundary, answers come back through it, its Origin and real
// address reach the Handler, and a close by the broker closes the
// client's stream after what was written.
func TestEnroll(t *testing.T) {
	r := newRecorder()
	r.onFrame = func(c *eventloop.Conn, h codec.Header, _ []byte) error {
		switch h.Type {
		case codec.PINGREQ:
			c.Write(pingresp)
		case codec.DISCONNECT:
			c.Write(pingresp)
			return errors.New("bye")
		}
		return nil
	}
	e := start(t, r)
	cli, a := enroll(t, e.Engine, r, eventloop.Origin{Listener: "tls", CertIdentity: "device-7"})

	r.mu.Lock()
	c := r.conns[a]
	r.mu.Unlock()
	if o := c.Origin(); o == nil || o.Listener != "tls" || o.CertIdentity != "device-7" || o.Remote.String() != a {
		t.Fatalf("Origin() = %+v, want tls, device-7, remote %s", o, a)
	}
	if got := c.RemoteAddr().String(); got != a {
		t.Errorf("RemoteAddr() = %s, want the client's %s", got, a)
	}

	// One byte at a time: the pump must not assume frame boundaries.
	var stream []byte
	var want []frame
	for _, p := range testStream() {
		stream = append(stream, p...)
		want = append(want, frameOf(t, p))
	}
	for i := range stream {
		send(t, cli, stream[i:i+1])
	}
	r.waitFor(t, "every frame", func() bool { return len(r.frames[a]) == len(want) })
	r.mu.Lock()
	for i, f := range r.frames[a] {
		if f != want[i] {
			t.Errorf("frame %d = %+v, want %+v", i, f, want[i])
		}
	}
	r.mu.Unlock()

	// The stream began with PINGREQ and ends with DISCONNECT.
	if got, want := readUntilEOF(t, cli), append(append([]byte{}, pingresp...), pingresp...); !bytes.Equal(got, want) {
		t.Errorf("before EOF read % x, want % x", got, want)
	}
	r.waitFor(t, "OnClose", func() bool { return r.closes[a] == 1 })
}

// TestEnrollClientCloses: the client going away closes the loop's side.
func TestEnrollClientCloses(t *testing.T) {
	r := newRecorder()
	e := start(t, r)
	cli, a := enroll(t, e.Engine, r, eventloop.Origin{Listener: "ws"})
	_ = cli.Close()
	r.waitFor(t, "OnClose after the client left", func() bool { return r.closes[a] == 1 })
}

// TestEnrollStopAndSlowClient: Stop ends the pumps of enrolled
// connections, even one whose client reads nothing while the broker has
// megabytes for it: the drain grace bounds it as for TCP. Enroll after
// Stop fails, and no descriptor is left behind.
func TestEnrollStopAndSlowClient(t *testing.T) {
	fdsBefore := openFDs(t)
	r := newRecorder()
	big := make([]byte, 8<<20)
	r.onFrame = func(c *eventloop.Conn, h codec.Header, _ []byte) error {
		c.Write(big) // more than every buffer on the way holds
		return nil
	}
	e := eventloop.New(eventloop.Config{
		Addr: "127.0.0.1:0", Loops: 2, MaxPacketSize: 1024,
		Tick: 50 * time.Millisecond, DrainGrace: 300 * time.Millisecond, Logger: zerolog.Nop(),
	}, r)
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	var clients []net.Conn
	for range 20 {
		cli, _ := enroll(t, e, r, eventloop.Origin{Listener: "tls"})
		clients = append(clients, cli)
	}
	send(t, clients[0], pingreq) // the slow one: it never reads
	time.Sleep(100 * time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	began := time.Now()
	if err := e.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v (pumps still running after %v)", err, time.Since(began))
	}
	t.Logf("Stop took %v", time.Since(began))
	_, srv := tcpPair(t)
	if err := e.Enroll(srv, &eventloop.Origin{Listener: "tls"}); !errors.Is(err, eventloop.ErrStopping) {
		t.Errorf("Enroll after Stop = %v, want ErrStopping", err)
	}
	for _, c := range clients {
		_ = c.Close()
	}
	r.checkSane(t)
	deadline := time.Now().Add(wait)
	for openFDs(t) > fdsBefore+2 { // +2: the pair above, closed at cleanup
		if time.Now().After(deadline) {
			t.Fatalf("%d descriptors open after Stop, %d before", openFDs(t), fdsBefore)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// openFDs counts the process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
