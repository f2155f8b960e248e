package store

import (
	"reflect"
	"testing"

	"github.com/shoalmq/shoal/router"
)

// TestBundleRoundTrip: a session with subscriptions, a will, deliveries in
// flight and queued (their messages' Origins too), QoS 2 ids awaiting
// PUBREL and the Origins its client received lately survives its
// encoding; every cut of it is refused, but for the bundles an older node
// made — without the Origins, or without the received ones — which decode
// without them.
func TestBundleRoundTrip(t *testing.T) {
	b := Bundle{
		Session: Session{ClientID: "c1", Expiry: 60, ExpireAt: 0,
			Subs: []Sub{{Filter: "a/#", Opts: router.Options{QoS: 1, SubID: 7, RetainAsPublished: true}}},
			Will: &Message{Topic: []byte("w"), Payload: []byte("bye"), QoS: 1}, WillDelay: 5},
		Deliveries: []Delivery{
			{Msg: Message{Topic: []byte("a/1"), Payload: []byte("p1"), From: []byte("x"), QoS: 2, Origin: 1<<40 + 3}, QoS: 2, PacketID: 3, State: 1, SubIDs: []uint32{7}},
			{Msg: Message{Topic: []byte("a/2"), Payload: []byte("p2"), QoS: 1, Expiry: 99}, QoS: 1, Group: "$share/g/a/#"},
		},
		AwaitRel: []uint16{9, 10},
		Received: []uint64{5, 1 << 40},
	}
	v := AppendBundle(nil, &b)
	var got Bundle
	if err := DecodeBundle(v, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(normal(got), normal(b)) {
		t.Fatalf("got %+v\nwant %+v", got, b)
	}
	noReceived := len(v) - 1 - 1 - 6 // less their count, one of 1 byte, one of 6
	older := noReceived - 1 - 6 - 1  // less the count of Origins, one of 6 bytes, one of 1
	for i := range len(v) {
		var cut Bundle
		err := DecodeBundle(v[:i], &cut)
		switch {
		case i == noReceived:
			if err != nil || len(cut.Received) != 0 || cut.Deliveries[0].Msg.Origin != 1<<40+3 {
				t.Fatalf("the bundle without received Origins: %v, %+v", err, cut)
			}
		case i == older:
			if err != nil || len(cut.Deliveries) != 2 || cut.Deliveries[0].Msg.Origin != 0 {
				t.Fatalf("the bundle without its Origins: %v, %+v", err, cut.Deliveries)
			}
		case err == nil:
			t.Fatalf("a bundle cut at %d of %d decoded", i, len(v))
		}
	}
}

// normal makes empty slices nil, so that DeepEqual compares contents.
func normal(b Bundle) Bundle {
	for i := range b.Deliveries {
		d := &b.Deliveries[i]
		if len(d.SubIDs) == 0 {
			d.SubIDs = nil
		}
		for _, p := range []*[]byte{&d.Msg.Props, &d.Msg.From, &d.Msg.Payload} {
			if len(*p) == 0 {
				*p = nil
			}
		}
	}
	if w := b.Session.Will; w != nil {
		for _, p := range []*[]byte{&w.Props, &w.From} {
			if len(*p) == 0 {
				*p = nil
			}
		}
	}
	return b
}
