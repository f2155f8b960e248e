package broker_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
)

// The reason code must reach the client: when the broker ends a connection
// with a reason, a client still sending must be able to read it. Closing a
// socket with unread input makes the kernel answer with a reset; the
// client's next write then fails with a broken pipe, and an MQTT client
// that gives up on a failed write never reads the packet that says why.

// keepWriting sends PINGREQs on r until stop is closed, and reports the
// first write error that came before stop.
func keepWriting(r *testutil.Raw, stop <-chan struct{}) <-chan error {
	werr := make(chan error, 1)
	go func() {
		chunk := bytes.Repeat(codec.AppendPing(nil, codec.PINGREQ), 256)
		for {
			select {
			case <-stop:
				werr <- nil
				return
			default:
			}
			_ = r.Conn.SetWriteDeadline(time.Now().Add(testutil.Wait))
			if _, err := r.Conn.Write(chunk); err != nil {
				select {
				case <-stop:
					werr <- nil
				default:
					werr <- err
				}
				return
			}
		}
	}()
	return werr
}

// TestReceiveMaximumExceededReachesWriter: a client sends Receive Maximum
// + 1 QoS 2 PUBLISHes and keeps writing — PUBRELs for the PUBRECs it reads,
// and PINGREQs besides — and must read DISCONNECT 0x93 [MQTT-3.3.4-7]
// before an orderly end of stream, with none of its writes failing first.
func TestReceiveMaximumExceededReachesWriter(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, func(c *broker.Config) { c.ReceiveMaximum = 4 })
	r, _ := testutil.DialConnect(t, addr, codec.V5, codec.Connect{ClientID: []byte("rm-writer"), CleanStart: true})
	var burst []byte
	for id := uint16(1); id <= 5; id++ {
		burst = (&codec.Publish{Topic: []byte("rm/t"), Payload: []byte("x"), QoS: 2, PacketID: id}).Append(burst, codec.V5)
	}
	r.Send(burst)
	stop := make(chan struct{})
	werr := keepWriting(r, stop)
	var got codec.Disconnect
	for {
		f, err := r.Read(testutil.Wait)
		if err != nil {
			close(stop)
			t.Fatalf("read before DISCONNECT 0x93: %v (writer: %v)", err, <-werr)
		}
		if f.Header.Type == codec.PUBREC {
			var a codec.Ack
			if err := a.Decode(codec.PUBREC, f.Body, codec.V5); err != nil {
				t.Fatal(err)
			}
			_, _ = r.Conn.Write(codec.AppendAck(nil, codec.PUBREL, a.PacketID, codec.Success, codec.V5))
			continue
		}
		if f.Header.Type == codec.DISCONNECT {
			if err := got.Decode(codec.DISCONNECT, f.Body, codec.V5); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	close(stop)
	if got.Code != codec.ReceiveMaximumExceeded {
		t.Errorf("DISCONNECT %v, want %v", got.Code, codec.ReceiveMaximumExceeded)
	}
	if err := <-werr; err != nil {
		t.Errorf("a write failed before the client could read the DISCONNECT: %v", err)
	}
	expectOrderlyEnd(t, r)
}

// TestRefusingConnackReachesWriter: a client that sends its CONNECT and,
// without waiting (as mosquitto_pub does), its PUBLISHes, reads the
// refusing CONNACK and an orderly end of stream.
func TestRefusingConnackReachesWriter(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, func(c *broker.Config) { c.MaxClientIDLength = 8 })
	r := testutil.Dial(t, addr, codec.V5)
	r.Send((&codec.Connect{Version: codec.V5, ClientID: []byte(strings.Repeat("x", 9)), CleanStart: true}).Append(nil))
	stop := make(chan struct{})
	werr := keepWriting(r, stop)
	f, err := r.Read(testutil.Wait)
	close(stop)
	if err != nil {
		t.Fatalf("no CONNACK: %v (writer: %v)", err, <-werr)
	}
	if f.Header.Type != codec.CONNACK {
		t.Fatalf("got %v, want CONNACK", f.Header.Type)
	}
	var ack codec.Connack
	if err := ack.Decode(f.Body, codec.V5); err != nil {
		t.Fatal(err)
	}
	if ack.Code != codec.ClientIDNotValid {
		t.Errorf("CONNACK %v, want %v", ack.Code, codec.ClientIDNotValid)
	}
	if err := <-werr; err != nil {
		t.Errorf("a write failed before the client could read the CONNACK: %v", err)
	}
	expectOrderlyEnd(t, r)
}

// expectOrderlyEnd reads what is left on r and expects end of stream (FIN),
// not a reset.
func expectOrderlyEnd(t *testing.T, r *testutil.Raw) {
	t.Helper()
	_ = r.Conn.SetReadDeadline(time.Now().Add(testutil.Wait))
	if _, err := io.Copy(io.Discard, r.Conn); err != nil {
		t.Errorf("after the last packet: %v, want an orderly end of stream", err)
	}
}

// TestShutdownReachesWriter: a broker shutting down tells an MQTT 5 client
// still sending DISCONNECT 0x8B, and the client reads it before its end of
// stream: Close waits for lingering connections before the engine closes
// every socket.
func TestShutdownReachesWriter(t *testing.T) {
	t.Parallel()
	b, addr := testutil.StartBroker(t, nil)
	r, _ := testutil.DialConnect(t, addr, codec.V5, codec.Connect{ClientID: []byte("shutdown-writer"), CleanStart: true})
	stop := make(chan struct{})
	werr := keepWriting(r, stop)
	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		closed <- b.Close(ctx)
	}()
	var f testutil.Frame
	for f.Header.Type != codec.DISCONNECT { // PINGRESPs first
		var err error
		if f, err = r.Read(testutil.Wait); err != nil {
			close(stop)
			t.Fatalf("read before DISCONNECT 0x8B: %v (writer: %v)", err, <-werr)
		}
	}
	close(stop)
	var d codec.Disconnect
	if err := d.Decode(codec.DISCONNECT, f.Body, codec.V5); err != nil || d.Code != codec.ServerShuttingDown {
		t.Errorf("DISCONNECT %v (%v), want %v", d.Code, err, codec.ServerShuttingDown)
	}
	if err := <-werr; err != nil {
		t.Errorf("a write failed before the client could read the DISCONNECT: %v", err)
	}
	expectOrderlyEnd(t, r)
	_ = r.Conn.Close()
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
}
