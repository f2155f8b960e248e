package broker_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
)

// The settings that carry Mosquitto's allow_zero_length_clientid,
// auto_id_prefix, message_size_limit and connection_messages.

// TestAssignClientIDs: an empty client identifier gets one starting with
// assigned_id_prefix; with assign_client_ids false it is refused, 0x85
// (3.1.1: 0x02).
func TestAssignClientIDs(t *testing.T) {
	_, addr := testutil.StartBroker(t, func(c *broker.Config) { c.AssignedIDPrefix = "auto-" })
	_, ack := testutil.DialConnect(t, addr, codec.V5, codec.Connect{CleanStart: true})
	if id := string(ack.Props.AssignedClientID); !strings.HasPrefix(id, "auto-") || len(id) <= len("auto-") {
		t.Errorf("assigned client id %q, want auto-...", id)
	}
	_, addr = testutil.StartBroker(t, func(c *broker.Config) { c.AssignClientIDs = false })
	for v, want := range map[byte]codec.ReasonCode{codec.V5: codec.ClientIDNotValid, codec.V311: 2} {
		r := testutil.Dial(t, addr, v)
		if ack := r.Connect(codec.Connect{CleanStart: true}); ack.Code != want {
			t.Errorf("version %d, empty id: CONNACK %v, want %v", v, ack.Code, want)
		}
	}
}

// TestMaxMessageSize: a payload over max_message_size is acknowledged
// (MQTT 5: 0x83) and not delivered, and the publisher stays connected;
// one at the limit goes through.
func TestMaxMessageSize(t *testing.T) {
	b, addr := testutil.StartBroker(t, func(c *broker.Config) { c.MaxMessageSize = 10 })
	sub, _ := testutil.DialConnect(t, addr, codec.V5, codec.Connect{ClientID: []byte("sub"), CleanStart: true})
	sub.Subscribe(1, "m/#", 1)
	for _, v := range []byte{codec.V5, codec.V311} {
		pub, _ := testutil.DialConnect(t, addr, v, codec.Connect{ClientID: []byte{'p', v}, CleanStart: true})
		pub.SendPublish(codec.Publish{QoS: 1, PacketID: 7, Topic: []byte("m/big"), Payload: bytes.Repeat([]byte("x"), 11)})
		ack := pub.ExpectAck(codec.PUBACK, 7, testutil.Wait)
		if want := codec.ImplementationSpecific; v == codec.V5 && ack.Code != want {
			t.Errorf("v5 PUBACK %v, want %v", ack.Code, want)
		}
		pub.SendPublish(codec.Publish{QoS: 1, PacketID: 8, Topic: []byte("m/ok"), Payload: bytes.Repeat([]byte("x"), 10)})
		if ack := pub.ExpectAck(codec.PUBACK, 8, testutil.Wait); ack.Code != codec.Success {
			t.Errorf("version %d: PUBACK %v at the limit", v, ack.Code)
		}
		p, _ := sub.ExpectPublish(testutil.Wait)
		if string(p.Topic) != "m/ok" {
			t.Errorf("version %d: delivered %q, want only m/ok", v, p.Topic)
		}
		sub.SendAck(codec.PUBACK, p.PacketID)
	}
	if n := b.Stats().Drops["too_large"]; n != 2 {
		t.Errorf("dropped too_large = %d, want 2", n)
	}
}

// TestLogConnectionsOff: with log_connections false no lifecycle line is
// written, while other lines are.
func TestLogConnectionsOff(t *testing.T) {
	var logs testutil.SyncBuffer
	_, addr := testutil.StartBroker(t, func(c *broker.Config) {
		c.Logger = zerolog.New(&logs).Level(zerolog.InfoLevel)
		c.LogConnections = false
	})
	r, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("quiet"), CleanStart: true})
	r.SendDisconnect(codec.Success)
	r.ExpectClosed(testutil.Wait)
	time.Sleep(100 * time.Millisecond)
	if out := logs.String(); strings.Contains(out, "client connected") || strings.Contains(out, "client disconnected") {
		t.Errorf("lifecycle lines with log_connections off:\n%s", out)
	}
}
