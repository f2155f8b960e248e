package broker_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
	"github.com/shoalmq/shoal/store"
)

// vouching is a store whose syncing commits come back store.ErrUnvouched
// while away is set, as a cluster's copy (package replica) answers on a
// node frozen or cut off while the commit waited. The changes are
// committed all the same.
type vouching struct {
	store.Store
	away atomic.Bool
	// unheld: the client whose session another node holds by now
	// ("": none).
	unheld atomic.Pointer[string]
}

func (v *vouching) NewWriter() store.Writer {
	return &vouchingWriter{Writer: v.Store.NewWriter(), v: v}
}

type vouchingWriter struct {
	store.Writer
	v *vouching
}

func (w *vouchingWriter) Commit(sync bool) error {
	if err := w.Writer.Commit(sync); err != nil {
		return err
	}
	if sync && w.v.away.Load() {
		return store.ErrUnvouched
	}
	if id := w.v.unheld.Load(); sync && id != nil && *id != "" {
		return &store.UnvouchedError{Clients: []string{*id}}
	}
	return nil
}

// persistentConnect is a CONNECT of a session that outlives the
// connection.
func persistentConnect(id string) codec.Connect {
	c := codec.Connect{ClientID: []byte(id)}
	c.Props.Set(codec.PropSessionExpiry)
	c.Props.SessionExpiry = 300
	return c
}

// TestUnvouchedForSomeSessions: a syncing commit unvouched for one
// session only (another node holds it by now) drops the output of that
// session's client alone, and closes it with DISCONNECT 0x9C; the other
// clients of the loop (one loop: they share its flushes) get theirs —
// the second subscriber its QoS 2 PUBLISH, the publisher its PUBREC.
// The session keeps the message for its next connection.
func TestUnvouchedForSomeSessions(t *testing.T) {
	st := &vouching{Store: store.NewMem()}
	_, addr := testutil.StartBroker(t, func(c *broker.Config) { c.Store = st; c.Loops = 1 })
	a, _ := testutil.DialConnect(t, addr, codec.V5, persistentConnect("a"))
	a.Subscribe(1, "t", 2)
	b, _ := testutil.DialConnect(t, addr, codec.V5, persistentConnect("b"))
	b.Subscribe(1, "t", 2)
	pub, _ := testutil.DialConnect(t, addr, codec.V5, persistentConnect("pub"))

	held := "a"
	st.unheld.Store(&held)
	pub.SendPublish(codec.Publish{Topic: []byte("t"), Payload: []byte("m"), QoS: 2, PacketID: 7})
	pub.ExpectAck(codec.PUBREC, 7, testutil.Wait)
	a.ExpectDisconnect(codec.UseAnotherServer, testutil.Wait) // no PUBLISH first
	if p, _ := b.ExpectPublish(testutil.Wait); string(p.Payload) != "m" {
		t.Fatalf("b got %q, want m", p.Payload)
	}
	st.unheld.Store(nil)

	back, ack := testutil.DialConnect(t, addr, codec.V5, persistentConnect("a"))
	if !ack.SessionPresent {
		t.Fatal("a's session is gone")
	}
	if p, _ := back.ExpectPublish(testutil.Wait); string(p.Payload) != "m" {
		t.Fatalf("a got %q, want m", p.Payload)
	}
}

// TestUnvouchedOutputDropped: while the store cannot vouch for its
// syncing commits, what waited for them does not go out — the QoS 2
// PUBLISH to a persistent subscriber, the publisher's PUBREC — and both
// connections are closed with DISCONNECT 0x9C (use another server): a
// frozen node's session may be on another node by now, which would send
// the message again. Nothing is lost: the message is in the subscriber's
// session, and it comes when the subscriber resumes, once; the
// publisher's resend is known as one. So with a PUBREL: the session's
// next connection gets it, not the PUBLISH again. (TestMain runs it with
// inline routing and through the workers.)
func TestUnvouchedOutputDropped(t *testing.T) {
	st := &vouching{Store: store.NewMem()}
	_, addr := testutil.StartBroker(t, func(c *broker.Config) { c.Store = st })
	persistent := persistentConnect
	sub, _ := testutil.DialConnect(t, addr, codec.V5, persistent("sub"))
	sub.Subscribe(1, "t", 2)
	pub, _ := testutil.DialConnect(t, addr, codec.V5, persistent("pub"))

	st.away.Store(true)
	pub.SendPublish(codec.Publish{Topic: []byte("t"), Payload: []byte("m"), QoS: 2, PacketID: 7})
	pub.ExpectDisconnect(codec.UseAnotherServer, testutil.Wait) // no PUBREC first
	sub.ExpectDisconnect(codec.UseAnotherServer, testutil.Wait) // no PUBLISH first
	st.away.Store(false)

	back, ack := testutil.DialConnect(t, addr, codec.V5, persistent("sub"))
	if !ack.SessionPresent {
		t.Fatal("the subscriber's session is gone")
	}
	p, _ := back.ExpectPublish(testutil.Wait)
	if string(p.Payload) != "m" {
		t.Fatalf("got %q, want the message stored while away", p.Payload)
	}
	back.SendAck(codec.PUBREC, p.PacketID)
	back.ExpectAck(codec.PUBREL, p.PacketID, testutil.Wait)
	back.SendAck(codec.PUBCOMP, p.PacketID)

	again, _ := testutil.DialConnect(t, addr, codec.V5, persistent("pub"))
	again.SendPublish(codec.Publish{Topic: []byte("t"), Payload: []byte("m"), QoS: 2, PacketID: 7, Dup: true})
	again.ExpectAck(codec.PUBREC, 7, testutil.Wait)
	back.ExpectSilence(200 * time.Millisecond) // the resend is not a second message

	// A PUBREL that waited for the record of the PUBREC does not go
	// either; the session's next connection gets it.
	again.SendAck(codec.PUBREL, 7)
	again.ExpectAck(codec.PUBCOMP, 7, testutil.Wait)
	again.SendPublish(codec.Publish{Topic: []byte("t"), Payload: []byte("n"), QoS: 2, PacketID: 8})
	again.ExpectAck(codec.PUBREC, 8, testutil.Wait)
	p, _ = back.ExpectPublish(testutil.Wait)
	st.away.Store(true)
	back.SendAck(codec.PUBREC, p.PacketID)
	back.ExpectDisconnect(codec.UseAnotherServer, testutil.Wait) // no PUBREL first
	st.away.Store(false)
	last, _ := testutil.DialConnect(t, addr, codec.V5, persistent("sub"))
	last.ExpectAck(codec.PUBREL, p.PacketID, testutil.Wait) // not the PUBLISH again
}

// TestUnvouchedRetainedDelete: the admin API's delete of a retained
// message on a node whose store cannot vouch for it (one that does not
// serve) is made on the node's disk, not taken for a store failure that
// stops the broker.
func TestUnvouchedRetainedDelete(t *testing.T) {
	st := &vouching{Store: store.NewMem()}
	b, addr := testutil.StartBroker(t, func(c *broker.Config) { c.Store = st })
	pub, _ := testutil.DialConnect(t, addr, codec.V5, codec.Connect{ClientID: []byte("pub")})
	pub.SendPublish(codec.Publish{Topic: []byte("r"), Payload: []byte("kept"), QoS: 1, PacketID: 1, Retain: true})
	pub.ExpectAck(codec.PUBACK, 1, testutil.Wait)
	st.away.Store(true)
	if !b.DeleteRetained("r") {
		t.Fatal("the retained message was not found")
	}
	st.away.Store(false)
	if got := b.RetainedMessages("#"); len(got) != 0 {
		t.Fatalf("retained after the delete: %v", got)
	}
}
