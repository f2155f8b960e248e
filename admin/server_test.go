package admin_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/shoalmq/shoal/admin"
	"github.com/shoalmq/shoal/bridge"
	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
)

const token = "s3cret-token"

// startAdmin starts a broker and its admin server on loopback ports.
func startAdmin(t *testing.T, tok string) (*broker.Broker, string, string) {
	t.Helper()
	return startAdminWith(t, adminOpts{token: tok})
}

// adminOpts are startAdminWith's choices; the zero value is startAdmin's.
type adminOpts struct {
	token string
	// sys is the broker's SysInterval: 0 publishes no $SYS topics.
	sys time.Duration
	// ticks, when set, drives the server's history sampler
	// (Server.SetHistoryTicks).
	ticks <-chan time.Time
	// edit, when set, changes the broker's config further.
	edit func(*broker.Config)
}

// startAdminWith starts a broker and its admin server as o says. It returns
// the broker, its MQTT address and the admin server's base URL.
func startAdminWith(t *testing.T, o adminOpts) (*broker.Broker, string, string) {
	t.Helper()
	b, addr := testutil.StartBroker(t, func(c *broker.Config) {
		c.SysInterval = o.sys
		if o.edit != nil {
			o.edit(c)
		}
	})
	base := testutil.StartAdmin(t, b, admin.Config{Token: o.token}, func(s *admin.Server) {
		if o.ticks != nil {
			s.SetHistoryTicks(o.ticks)
		}
	})
	return b, addr, base
}

// call makes a request and returns the status and body.
func call(t *testing.T, method, url, tok string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestHealthAndMetrics(t *testing.T) {
	_, addr, base := startAdmin(t, token)
	pub, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("m"), CleanStart: true})
	pub.SendPublish(codec.Publish{Topic: []byte("a/b"), QoS: 1, PacketID: 1, Payload: []byte("x")})
	pub.ExpectAck(codec.PUBACK, 1, testutil.Wait)

	if code, body := call(t, "GET", base+"/healthz", ""); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, _ := call(t, "GET", base+"/readyz", ""); code != 200 {
		t.Errorf("/readyz: %d", code)
	}
	code, body := call(t, "GET", base+"/metrics", "")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		"shoal_clients_connected 1",
		"shoal_max_connections ",
		`shoal_messages_total{direction="in",qos="1"} 1`,
		`shoal_disconnects_total{reason="keepalive"} 0`,
		`shoal_dropped_messages_total{cause="queue_full"} 0`,
		`shoal_loop_events_total{loop="0"}`,
		"shoal_bytes_total",
		"go_goroutines",
		"process_resident_memory_bytes",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if code, body := call(t, "GET", base+"/dashboard", token); code != 200 || !strings.Contains(body, "/api/history") {
		t.Errorf("/dashboard: %d, %d bytes", code, len(body))
	}
}

func TestAPIRequiresToken(t *testing.T) {
	_, _, base := startAdmin(t, token)
	for _, tok := range []string{"", "wrong"} {
		if code, _ := call(t, "GET", base+"/api/clients", tok); code != http.StatusUnauthorized {
			t.Errorf("token %q: %d, want 401", tok, code)
		}
	}
	if code, _ := call(t, "GET", base+"/api/clients", token); code != 200 {
		t.Errorf("right token: %d", code)
	}
}

func TestAPIClientsAndKick(t *testing.T) {
	_, addr, base := startAdmin(t, token)
	c := codec.Connect{ClientID: []byte("dev-1"), KeepAlive: 42}
	c.Props.Set(codec.PropSessionExpiry)
	c.Props.SessionExpiry = 300
	r, _ := testutil.DialConnect(t, addr, codec.V5, c)
	r.Subscribe(1, "dev/+/cmd", 1)

	code, body := call(t, "GET", base+"/api/clients", token)
	var list []broker.ClientInfo
	if code != 200 || json.Unmarshal([]byte(body), &list) != nil || len(list) != 1 {
		t.Fatalf("/api/clients: %d %s", code, body)
	}
	ci := list[0]
	if ci.ID != "dev-1" || !ci.Connected || ci.Protocol != "5.0" || ci.KeepAlive != 42 || ci.Expiry != 300 ||
		len(ci.Subscriptions) != 1 || ci.Subscriptions[0].Filter != "dev/+/cmd" || ci.Address == "" {
		t.Errorf("client: %+v", ci)
	}
	if code, _ := call(t, "GET", base+"/api/clients/nobody", token); code != 404 {
		t.Errorf("unknown client: %d", code)
	}
	code, body = call(t, "GET", base+"/api/subscriptions", token)
	if code != 200 || !strings.Contains(body, `"filter": "dev/+/cmd"`) {
		t.Errorf("/api/subscriptions: %d %s", code, body)
	}

	if code, _ := call(t, "DELETE", base+"/api/clients/dev-1", token); code != http.StatusNoContent {
		t.Fatalf("kick: %d", code)
	}
	r.ExpectDisconnect(codec.AdministrativeAction, testutil.Wait)
	// The session stays (expiry 300), offline.
	testutil.Eventually(t, testutil.Wait, "the client to be offline", func() bool {
		_, body := call(t, "GET", base+"/api/clients/dev-1", token)
		return strings.Contains(body, `"connected": false`)
	})
	if code, _ := call(t, "DELETE", base+"/api/clients/dev-1", token); code != 404 {
		t.Errorf("kicking an offline client: %d, want 404", code)
	}
}

func TestAPIRetained(t *testing.T) {
	// $SYS on, every hour: its topics are published (and retained) once.
	b, addr, base := startAdminWith(t, adminOpts{token: token, sys: time.Hour})
	pub, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("r"), CleanStart: true})
	for i, topic := range []string{"home/kitchen/temp", "home/hall/temp"} {
		pub.SendPublish(codec.Publish{Topic: []byte(topic), QoS: 1, PacketID: uint16(i + 1), Retain: true, Payload: []byte("21")})
		pub.ExpectAck(codec.PUBACK, uint16(i+1), testutil.Wait)
	}
	code, body := call(t, "GET", base+"/api/retained?filter=home/%2B/temp", token)
	var list []broker.RetainedInfo
	if code != 200 || json.Unmarshal([]byte(body), &list) != nil || len(list) != 2 || string(list[0].Payload) != "21" {
		t.Fatalf("/api/retained: %d %s", code, body)
	}
	if code, _ := call(t, "DELETE", base+"/api/retained/home/hall/temp", token); code != http.StatusNoContent {
		t.Fatalf("delete: %d", code)
	}
	var st broker.Stats
	testutil.Eventually(t, testutil.Wait, "the $SYS topics to be retained", func() bool {
		_, body := call(t, "GET", base+"/api/stats", token)
		return json.Unmarshal([]byte(body), &st) == nil && st.RetainedSys > 0
	})
	if st.RetainedUser != 1 || st.Retained != st.RetainedUser+st.RetainedSys || b.RetainedCount() < st.Retained {
		t.Errorf("after the delete: retained %d = %d user + %d sys, want 1 user; broker counts %d",
			st.Retained, st.RetainedUser, st.RetainedSys, b.RetainedCount())
	}
	_, metrics := call(t, "GET", base+"/metrics", "")
	if !strings.Contains(metrics, `shoal_retained_messages{kind="user"} 1`+"\n") ||
		!strings.Contains(metrics, `shoal_retained_messages{kind="sys"} `) {
		t.Errorf("/metrics: %q", grepLines(metrics, "shoal_retained_messages"))
	}
	if code, _ := call(t, "DELETE", base+"/api/retained/home/hall/temp", token); code != 404 {
		t.Errorf("deleting it again: %d, want 404", code)
	}
	sub, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("s"), CleanStart: true})
	sub.Subscribe(1, "home/#", 0)
	if p, _ := sub.ExpectPublish(testutil.Wait); string(p.Topic) != "home/kitchen/temp" {
		t.Errorf("retained after the delete: %q", p.Topic)
	}
	sub.ExpectSilence(200 * time.Millisecond)
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) []string {
	var out []string
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return out
}

func TestCheckConfig(t *testing.T) {
	for _, tc := range []struct {
		listen, token string
		ok            bool
	}{
		{"127.0.0.1:8083", "", true},
		{"[::1]:8083", "", true},
		{"localhost:8083", "", true},
		{"0.0.0.0:8083", "", false},
		{":8083", "", false},
		{"0.0.0.0:8083", "t", true},
		{"", "", true},
	} {
		if err := admin.CheckConfig(tc.listen, tc.token); (err == nil) != tc.ok {
			t.Errorf("CheckConfig(%q, %q) = %v", tc.listen, tc.token, err)
		}
	}
	if _, err := admin.New(nil, admin.Config{Listen: "0.0.0.0:0"}); err == nil {
		t.Error("New on a public address without a token: no error")
	}
}

// TestListenThenStart: Listen holds the port before the broker starts
// (cmd/broker binds it before giving up root) and Start serves it; a
// server that only listened lets the port go on Close.
func TestListenThenStart(t *testing.T) {
	b, _ := testutil.StartBroker(t, nil)
	s, err := admin.New(b, admin.Config{Listen: "127.0.0.1:0", Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr().String()
	if l, err := net.Listen("tcp", addr); err == nil {
		l.Close()
		t.Fatalf("%s is free after Listen", addr)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if code, body := call(t, "GET", "http://"+addr+"/healthz", ""); code != 200 || body != "ok\n" {
		t.Errorf("/healthz after Listen and Start: %d %q", code, body)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("a second Close: %v", err)
	}

	idle, err := admin.New(b, admin.Config{Listen: addr, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if err := idle.Listen(); err != nil {
		t.Fatalf("Listen on %s after the first server closed: %v", addr, err)
	}
	if err := idle.Close(context.Background()); err != nil {
		t.Fatalf("Close after Listen only: %v", err)
	}
	if err := idle.Close(context.Background()); err != nil {
		t.Fatalf("a second Close after Listen only: %v", err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("%s still held after Close: %v", addr, err)
	}
	l.Close()
}

// TestAPIBridges: /api/bridges and the shoal_bridge_* metrics show a
// bridge to another broker.
func TestAPIBridges(t *testing.T) {
	_, central := testutil.StartBroker(t, nil)
	b, _ := testutil.StartBroker(t, func(c *broker.Config) {
		cn := bridge.DefaultConnection("central")
		cn.Addresses = []string{central}
		cn.RemoteClientID = "edge-1"
		cn.Topics = []bridge.Topic{{Pattern: "a/#", Direction: bridge.Both, QoS: 1}}
		c.Bridges.Connections = []bridge.Connection{cn}
	})
	s, err := admin.New(b, admin.Config{Listen: "127.0.0.1:0", Token: token, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	base := "http://" + s.Addr().String()
	var st []bridge.Stats
	testutil.Eventually(t, 10*time.Second, "the bridge up in /api/bridges", func() bool {
		code, body := call(t, "GET", base+"/api/bridges", token)
		if code != 200 {
			t.Fatalf("/api/bridges: %d %s", code, body)
		}
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatal(err)
		}
		return len(st) == 1 && st[0].State == "up"
	})
	if st[0].Name != "central" || st[0].Address != central {
		t.Errorf("/api/bridges: %+v", st)
	}
	if _, body := call(t, "GET", base+"/metrics", ""); !strings.Contains(body, `shoal_bridge_up{bridge="central"} 1`) ||
		!strings.Contains(body, `shoal_bridge_waiting_messages{bridge="central",where="queue"} 0`) {
		t.Errorf("/metrics lacks the bridge's metrics")
	}
}
