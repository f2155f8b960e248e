package broker_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
)

// TestSysTopicsMosquittoSub: `mosquitto_sub -t '$SYS/#' -v` shows the
// broker's $SYS topics in Mosquitto's names, retained, with values that
// follow the traffic.
func TestSysTopicsMosquittoSub(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, func(c *broker.Config) {
		c.SysInterval = 100 * time.Millisecond
		c.Version = "v9.9.9-test"
	})
	host, port := testutil.HostPort(t, addr)
	pub, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("talker"), CleanStart: true})
	for i := range 5 {
		pub.SendPublish(codec.Publish{Topic: []byte("sys/test"), QoS: 1, PacketID: uint16(i + 1), Payload: []byte("x")})
		pub.ExpectAck(codec.PUBACK, uint16(i+1), testutil.Wait)
	}
	time.Sleep(250 * time.Millisecond) // a round after the traffic
	// Retained: a fresh subscriber gets every topic at once.
	// 30 topics: 15 figures and 5 load averages over 3 periods.
	out, err := testutil.Mosquitto(t, 10*time.Second, "mosquitto_sub", "-h", host, "-p", port,
		"-t", "$SYS/#", "-v", "-W", "5", "-C", "30")
	if err != nil {
		t.Fatalf("mosquitto_sub: %v\n%s", err, out)
	}
	// -v prints "topic value"; topics may hold spaces ("retained messages"),
	// so lines are matched against the topics expected.
	got := map[string]string{}
	value := func(topic string) (string, bool) {
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if v, ok := strings.CutPrefix(line, topic+" "); ok {
				return v, true
			}
		}
		return "", false
	}
	for _, topic := range []string{
		"$SYS/broker/version", "$SYS/broker/uptime", "$SYS/broker/clients/connected", "$SYS/broker/clients/total",
		"$SYS/broker/messages/received", "$SYS/broker/messages/sent", "$SYS/broker/bytes/received",
		"$SYS/broker/bytes/sent", "$SYS/broker/subscriptions/count", "$SYS/broker/retained messages/count",
		"$SYS/broker/load/messages/received/1min", "$SYS/broker/load/messages/received/5min",
		"$SYS/broker/load/messages/received/15min",
	} {
		v, ok := value(topic)
		if !ok {
			t.Errorf("no %s in:\n%s", topic, out)
		}
		got[topic] = v
	}
	if v := got["$SYS/broker/version"]; v != "shoal v9.9.9-test" {
		t.Errorf("version %q", v)
	}
	if n, err := strconv.Atoi(got["$SYS/broker/messages/received"]); err != nil || n < 5 {
		t.Errorf("messages/received %q, want at least the 5 published", got["$SYS/broker/messages/received"])
	}
	if n, err := strconv.Atoi(got["$SYS/broker/clients/connected"]); err != nil || n < 1 {
		t.Errorf("clients/connected %q, want at least the publisher", got["$SYS/broker/clients/connected"])
	}
	if !strings.HasSuffix(got["$SYS/broker/uptime"], " seconds") {
		t.Errorf("uptime %q", got["$SYS/broker/uptime"])
	}
}

// TestSysNotWritable: clients cannot publish to the broker's $SYS topics:
// MQTT 5 PUBACK 0x87, and the broker's own value stays.
func TestSysNotWritable(t *testing.T) {
	t.Parallel()
	b, addr := testutil.StartBroker(t, func(c *broker.Config) { c.SysInterval = time.Hour; c.Version = "real" })
	r, _ := testutil.DialConnect(t, addr, codec.V5, codec.Connect{ClientID: []byte("spoof"), CleanStart: true})
	r.SendPublish(codec.Publish{Topic: []byte("$SYS/broker/version"), QoS: 1, PacketID: 1, Retain: true, Payload: []byte("fake")})
	if a := r.ExpectAck(codec.PUBACK, 1, testutil.Wait); a.Code != codec.NotAuthorized {
		t.Fatalf("PUBACK code %v, want 0x87", a.Code)
	}
	if n := b.Stats().Drops["unauthorized"]; n != 1 {
		t.Errorf("%d unauthorized drops counted, want 1", n)
	}
	s, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("reader"), CleanStart: true})
	s.Subscribe(1, "$SYS/broker/version", 0)
	if p, _ := s.ExpectPublish(testutil.Wait); string(p.Payload) != "shoal real" {
		t.Fatalf("$SYS/broker/version = %q", p.Payload)
	}
}

// TestStatsCounts: Stats counts messages by QoS both ways, bytes, connects
// and disconnects by reason.
func TestStatsCounts(t *testing.T) {
	t.Parallel()
	b, addr := testutil.StartBroker(t, func(c *broker.Config) { c.SysInterval = 0 })
	sub, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("s"), CleanStart: true})
	sub.Subscribe(1, "st/#", 1)
	pub, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("p"), CleanStart: true})
	pub.SendPublish(codec.Publish{Topic: []byte("st/0"), Payload: []byte("a")})
	for i := uint16(1); i <= 3; i++ {
		pub.SendPublish(codec.Publish{Topic: []byte("st/1"), QoS: 1, PacketID: i, Payload: []byte("b")})
		pub.ExpectAck(codec.PUBACK, i, testutil.Wait)
	}
	for range 4 {
		p, _ := sub.ExpectPublish(testutil.Wait)
		if p.QoS == 1 {
			sub.SendAck(codec.PUBACK, p.PacketID)
		}
	}
	pub.SendDisconnect(codec.Success)
	sub.Drop()
	testutil.Eventually(t, testutil.Wait, "both to leave", func() bool { return b.Stats().ClientsConnected == 0 })
	st := b.Stats()
	if st.MessagesReceived != [3]int64{1, 3, 0} || st.MessagesSent != [3]int64{1, 3, 0} {
		t.Errorf("messages received %v sent %v, want [1 3 0] both", st.MessagesReceived, st.MessagesSent)
	}
	if st.Connects != 2 || st.Disconnects["normal"] != 1 || st.Disconnects["network"] != 1 {
		t.Errorf("connects %d, disconnects %v", st.Connects, st.Disconnects)
	}
	if st.BytesReceived <= 0 || st.BytesSent <= 0 || len(st.Loops) != 2 {
		t.Errorf("bytes %d in, %d out, %d loops", st.BytesReceived, st.BytesSent, len(st.Loops))
	}
	if st.Uptime <= 0 || st.Subscriptions != 0 || st.Sessions != 0 {
		t.Errorf("uptime %v, subscriptions %d, sessions %d", st.Uptime, st.Subscriptions, st.Sessions)
	}
}
