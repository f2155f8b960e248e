package broker_test

import (
	"testing"

	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
)

// TestWillBeyondLimits: with max_qos 1 and retain_available false, a CONNECT
// whose will asks for QoS 2 or RETAIN is refused with 0x9B / 0x9A
// [MQTT-3.2.2-12], [MQTT-3.2.2-13], and a plain one is accepted.
func TestWillBeyondLimits(t *testing.T) {
	_, addr := testutil.StartBroker(t, func(c *broker.Config) { c.MaxQoS = 1; c.RetainAvailable = false })
	for _, tc := range []struct {
		name   string
		qos    byte
		retain bool
		want   codec.ReasonCode
	}{
		{"qos2", 2, false, codec.QoSNotSupported},
		{"retain", 1, true, codec.RetainNotSupported},
		{"ok", 1, false, codec.Success},
	} {
		r := testutil.Dial(t, addr, codec.V5)
		ack := r.Connect(codec.Connect{ClientID: []byte("w-" + tc.name), CleanStart: true, WillFlag: true,
			WillQoS: tc.qos, WillRetain: tc.retain, WillTopic: []byte("w"), WillPayload: []byte("x")})
		if ack.Code != tc.want {
			t.Errorf("%s: CONNACK %v, want %v", tc.name, ack.Code, tc.want)
		}
		if ack.Code == codec.Success && (!ack.Props.Has(codec.PropMaximumQoS) || ack.Props.MaximumQoS != 1 ||
			!ack.Props.Has(codec.PropRetainAvailable) || ack.Props.RetainAvailable != 0) {
			t.Errorf("CONNACK does not announce the limits: %+v", ack.Props)
		}
	}
}
