package inline_test

import (
	"context"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/shoalmq/shoal/inline"
	"github.com/shoalmq/shoal/internal/testutil"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return c
}

// paho connects an Eclipse Paho (MQTT 3.1.1) client: the network side.
func paho(t *testing.T, addr, id string) mqtt.Client {
	t.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("paho connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c
}

// TestInlineAndNetwork: an inline client and network clients exchange
// messages both ways, with QoS 1 acknowledged before Publish returns.
func TestInlineAndNetwork(t *testing.T) {
	b, addr := testutil.StartBroker(t, nil)
	in, err := inline.Connect(ctx(t), b, inline.Options{ClientID: "app", CleanStart: true})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	got := make(chan inline.Message, 10)
	if g, err := in.Subscribe(ctx(t), "sensors/+/temp", 1, func(m inline.Message) {
		m.Payload = append([]byte(nil), m.Payload...) // valid only during the call
		got <- m
	}); err != nil || g != 1 {
		t.Fatalf("Subscribe: granted %d, %v", g, err)
	}

	net := paho(t, addr, "device")
	if tok := net.Publish("sensors/kitchen/temp", 1, false, "21.5"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("paho publish: %v", tok.Error())
	}
	select {
	case m := <-got:
		if m.Topic != "sensors/kitchen/temp" || string(m.Payload) != "21.5" || m.QoS != 1 {
			t.Fatalf("inline got %+v", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the inline subscriber got nothing")
	}

	recv := make(chan string, 1)
	if tok := net.Subscribe("cmd/#", 1, func(_ mqtt.Client, m mqtt.Message) { recv <- string(m.Payload()) }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("paho subscribe: %v", tok.Error())
	}
	if err := in.Publish(ctx(t), "cmd/light", []byte("on"), 1, false); err != nil {
		t.Fatalf("inline publish: %v", err)
	}
	select {
	case p := <-recv:
		if p != "on" {
			t.Fatalf("paho got %q", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the network subscriber got nothing")
	}

	// Unsubscribed: nothing more arrives.
	if err := in.Unsubscribe(ctx(t), "sensors/+/temp"); err != nil {
		t.Fatal(err)
	}
	net.Publish("sensors/hall/temp", 1, false, "19").WaitTimeout(5 * time.Second)
	select {
	case m := <-got:
		t.Fatalf("after Unsubscribe: %+v", m)
	case <-time.After(200 * time.Millisecond):
	}
}

// TestInlineSession: an inline client's session outlives it as its expiry
// says, with the QoS 1 messages queued meanwhile.
func TestInlineSession(t *testing.T) {
	b, addr := testutil.StartBroker(t, nil)
	opts := inline.Options{ClientID: "worker", CleanStart: true, SessionExpiry: 60}
	in, err := inline.Connect(ctx(t), b, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Subscribe(ctx(t), "jobs/#", 1, func(inline.Message) {}); err != nil {
		t.Fatal(err)
	}
	if err := in.Close(); err != nil {
		t.Fatal(err)
	}
	net := paho(t, addr, "producer")
	net.Publish("jobs/1", 1, false, "build").WaitTimeout(5 * time.Second)

	got := make(chan string, 2)
	opts.CleanStart = false
	// The queued message comes right after CONNACK, before Subscribe can
	// name a handler: OnMessage takes it.
	opts.OnMessage = func(m inline.Message) { got <- "queued:" + string(m.Payload) }
	again, err := inline.Connect(ctx(t), b, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if !again.SessionPresent() {
		t.Fatal("session not resumed")
	}
	if _, err := again.Subscribe(ctx(t), "jobs/#", 1, func(m inline.Message) { got <- string(m.Payload) }); err != nil {
		t.Fatal(err)
	}
	net.Publish("jobs/2", 1, false, "test").WaitTimeout(5 * time.Second)
	for _, want := range []string{"queued:build", "test"} {
		select {
		case p := <-got:
			if p != want {
				t.Fatalf("got %q, want %q", p, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("the resumed inline session did not get %q", want)
		}
	}
}
