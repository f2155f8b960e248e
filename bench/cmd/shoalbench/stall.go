package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/shoalmq/shoal/codec"
)

// stallReadBuffer is the receive buffer a stalled subscriber asks for: the
// kernel's smallest, so the broker meets a full socket after a few
// kilobytes instead of the default few megabytes.
const stallReadBuffer = 4096

// runStall connects the clients, subscribes each to -t, and then never
// reads another byte until ctx ends: subscribers that stop consuming, the
// load of the bench harness's slowsub scenario. Each is a plain socket
// with a small receive buffer rather than an engine client, which would
// keep reading. Keep-alive is 0 so the broker does not drop them for
// silence: whatever it does to them is its slow-consumer policy.
func runStall(ctx context.Context, cfg *config, m *meter, stderr io.Writer) outcome {
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for i := range cfg.count {
		seq := cfg.start + i
		dialed := time.Now()
		c, err := stallOne(ctx, cfg, seq)
		if err != nil {
			m.failed.Add(1)
			fmt.Fprintf(stderr, "shoalbench: client %d: %v\n", seq, err)
			continue
		}
		m.connectedOne(dialed, time.Since(dialed))
		conns = append(conns, c)
	}
	if err := writeReady(cfg, m); err != nil {
		return outcome{err: err}
	}
	<-ctx.Done()
	return outcome{qos: cfg.qos}
}

// stallOne dials, connects and subscribes client seq, and returns its
// socket once the SUBACK came.
func stallOne(ctx context.Context, cfg *config, seq int) (net.Conn, error) {
	d := net.Dialer{Timeout: connectTimeout, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			// Before connect, so the window the broker sees is small from
			// the handshake on.
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, stallReadBuffer)
		})
		return errors.Join(err, serr)
	}}
	if len(cfg.src) > 0 {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(cfg.src[seq%len(cfg.src)])}
	}
	c, err := d.DialContext(ctx, "tcp", cfg.addr())
	if err != nil {
		return nil, err
	}
	v := byte(cfg.version)
	id := cfg.clientID(seq)
	conn := codec.Connect{Version: v, ClientID: []byte(id), CleanStart: true,
		UsernameFlag: cfg.username != "", Username: []byte(cfg.username),
		PasswordFlag: cfg.password != "", Password: []byte(cfg.password)}
	sub := codec.Subscribe{PacketID: 1, Filters: []codec.Subscription{{
		Filter: []byte(expandTopic(cfg.topic, seq, id, cfg.username)), QoS: byte(cfg.qos)}}}
	out := sub.Append(conn.Append(nil), v)
	_ = c.SetDeadline(time.Now().Add(connectTimeout))
	if _, err := c.Write(out); err != nil {
		c.Close()
		return nil, err
	}
	if err := expectReplies(c, v, codec.CONNACK, codec.SUBACK); err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// expectReplies reads packets from c until it has seen each of want in
// order, failing on a refusal or anything else.
func expectReplies(c net.Conn, v byte, want ...codec.Type) error {
	buf := make([]byte, 0, 512)
	for _, t := range want {
		for {
			h, err := codec.ParseHeader(buf, 1<<20)
			if err == nil {
				body := buf[h.Len:h.Size()]
				if h.Type != t {
					return fmt.Errorf("got %v, want %v", h.Type, t)
				}
				if err := checkReply(t, body, v); err != nil {
					return err
				}
				buf = append(buf[:0], buf[h.Size():]...)
				break
			}
			if !errors.Is(err, codec.ErrShort) {
				return err
			}
			if len(buf) == cap(buf) {
				buf = append(buf, 0)[:len(buf)]
			}
			n, err := c.Read(buf[len(buf):cap(buf)])
			if err != nil {
				return fmt.Errorf("waiting for %v: %w", t, err)
			}
			buf = buf[:len(buf)+n]
		}
	}
	return nil
}

// checkReply fails on a CONNACK that refuses or a SUBACK that does not
// grant.
func checkReply(t codec.Type, body []byte, v byte) error {
	switch t {
	case codec.CONNACK:
		var a codec.Connack
		if err := a.Decode(body, v); err != nil {
			return err
		}
		if a.Code != codec.Success {
			return fmt.Errorf("CONNACK %v", a.Code)
		}
	case codec.SUBACK:
		var a codec.Suback
		if err := a.Decode(codec.SUBACK, body, v); err != nil {
			return err
		}
		if len(a.Codes) != 1 || a.Codes[0] >= 0x80 {
			return fmt.Errorf("SUBACK %v", a.Codes)
		}
	}
	return nil
}
