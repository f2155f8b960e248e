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
}

func (v *vouching) NewWriter() store.Writer {
	return &vouchingWriter{Writer: v.Store.NewWriter(), away: &v.away}
}

type vouchingWriter struct {
	store.Writer
	away *atomic.Bool
}

func (w *vouchingWriter) Commit(sync bool) error {
	if err := w.Writer.Commit(sync); err != nil {
		return err
	}
	if sync && w.away.Load() {
		return store.ErrUnvouched
	}
	return nil
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
	persistent := func(id string) codec.Connect {
		c := codec.Connect{ClientID: []byte(id)}
		c.Props.Set(codec.PropSessionExpiry)
		c.Props.SessionExpiry = 300
		return c
	}
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
