package testutil

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/shoalmq/shoal/codec"
)

// Helpers on Raw for the protocol-conformance tests. Like the rest of Raw,
// they call t.Fatal on failure, so use them only from the test goroutine.

// Wait is how long the Raw helpers below wait for a packet the broker owes:
// generous for a loaded CI machine, short enough to keep a failing test
// quick.
const Wait = 3 * time.Second

// DialConnect dials addr, sends CONNECT c at version and fails the test
// unless the CONNACK accepts it. It returns the connection and the CONNACK.
func DialConnect(t testing.TB, addr string, version byte, c codec.Connect) (*Raw, codec.Connack) {
	t.Helper()
	r := Dial(t, addr, version)
	ack := r.Connect(c)
	if ack.Code != codec.Success {
		t.Fatalf("CONNECT %q: CONNACK code %v, want success", c.ClientID, ack.Code)
	}
	return r, ack
}

// SendPublish sends p, encoded for the connection's version.
func (r *Raw) SendPublish(p codec.Publish) {
	r.t.Helper()
	r.Send(p.Append(nil, r.Version))
}

// SendAck sends a property-less PUBACK, PUBREC, PUBREL or PUBCOMP.
func (r *Raw) SendAck(t codec.Type, id uint16) {
	r.t.Helper()
	r.Send(codec.AppendAck(nil, t, id, codec.Success, r.Version))
}

// SendDisconnect sends DISCONNECT with reason code (MQTT 5; ignored for
// 3.x, whose DISCONNECT has no body).
func (r *Raw) SendDisconnect(code codec.ReasonCode) {
	r.t.Helper()
	d := codec.Disconnect{Code: code}
	r.Send(d.Append(nil, r.Version))
}

// Drop closes the TCP connection without DISCONNECT, as a network failure
// would.
func (r *Raw) Drop() { _ = r.Conn.Close() }

// ExpectPublish reads the next packet, fails unless it is a PUBLISH, and
// returns it decoded as a client decodes it, with its raw fixed-header
// flags.
func (r *Raw) ExpectPublish(d time.Duration) (codec.Publish, byte) {
	r.t.Helper()
	f := r.Expect(codec.PUBLISH, d)
	return r.Publish(f), f.Header.Flags
}

// ExpectAck reads the next packet, fails unless it is an acknowledgement of
// type t for packet id, and returns it decoded.
func (r *Raw) ExpectAck(t codec.Type, id uint16, d time.Duration) codec.Ack {
	r.t.Helper()
	f := r.Expect(t, d)
	var a codec.Ack
	if err := a.Decode(t, f.Body, r.Version); err != nil {
		r.t.Fatalf("%v: %v (body % x)", t, err, f.Body)
	}
	if a.PacketID != id {
		r.t.Fatalf("%v for packet id %d, want %d", t, a.PacketID, id)
	}
	return a
}

// SubscribeWith sends s (its Version-specific options included) and returns
// the SUBACK, failing unless it carries s's packet id [MQTT-3.8.4-2].
func (r *Raw) SubscribeWith(s codec.Subscribe) codec.Suback {
	r.t.Helper()
	r.Send(s.Append(nil, r.Version))
	f := r.Expect(codec.SUBACK, Wait)
	var ack codec.Suback
	if err := ack.Decode(codec.SUBACK, f.Body, r.Version); err != nil {
		r.t.Fatalf("SUBACK: %v", err)
	}
	if ack.PacketID != s.PacketID {
		r.t.Fatalf("SUBACK for packet id %d, want %d", ack.PacketID, s.PacketID)
	}
	return ack
}

// Unsubscribe sends UNSUBSCRIBE for filters and returns the UNSUBACK.
func (r *Raw) Unsubscribe(id uint16, filters ...string) codec.Suback {
	r.t.Helper()
	u := codec.Unsubscribe{PacketID: id}
	for _, f := range filters {
		u.Filters = append(u.Filters, []byte(f))
	}
	r.Send(u.Append(nil, r.Version))
	f := r.Expect(codec.UNSUBACK, Wait)
	var ack codec.Suback
	if err := ack.Decode(codec.UNSUBACK, f.Body, r.Version); err != nil {
		r.t.Fatalf("UNSUBACK: %v", err)
	}
	return ack
}

// ExpectSilence fails if a packet arrives, or the connection closes,
// within d.
func (r *Raw) ExpectSilence(d time.Duration) {
	r.t.Helper()
	f, err := r.Read(d)
	if err == nil {
		r.t.Fatalf("got %v (flags %#x, body % x), want nothing for %v", f.Header.Type, f.Header.Flags, f.Body, d)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		r.t.Fatalf("want the connection open and silent for %v: %v", d, err)
	}
}

// ExpectDisconnect reads the next packet, fails unless it is an MQTT 5
// DISCONNECT with reason code want, then fails unless the broker closes
// the connection [MQTT-3.14.4-2].
func (r *Raw) ExpectDisconnect(want codec.ReasonCode, d time.Duration) {
	r.t.Helper()
	f := r.Expect(codec.DISCONNECT, d)
	var p codec.Disconnect
	if err := p.Decode(codec.DISCONNECT, f.Body, r.Version); err != nil {
		r.t.Fatalf("DISCONNECT: %v (body % x)", err, f.Body)
	}
	if p.Code != want {
		r.t.Fatalf("DISCONNECT reason %v, want %v", p.Code, want)
	}
	if got := r.ExpectClosed(d); len(got) != 0 {
		r.t.Fatalf("%d packets after DISCONNECT, first %v", len(got), got[0].Header.Type)
	}
}

// Closed reports whether the broker closes the connection within d,
// without failing the test; it discards any packets sent first.
func (r *Raw) Closed(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		_, err := r.Read(time.Until(deadline))
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return false
		}
		return true // io.EOF, a reset, or a stream that no longer frames
	}
}
