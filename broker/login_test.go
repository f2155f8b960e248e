package broker_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/shoalmq/shoal/auth"
	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
)

// passwordFile writes a password file with the given user:password pairs
// (bcrypt at its lowest cost, to keep the test quick) and loads it.
func passwordFile(t *testing.T, users ...string) *auth.PasswordFile {
	t.Helper()
	path := filepath.Join(t.TempDir(), "users.pw")
	for _, up := range users {
		u, p, _ := strings.Cut(up, ":")
		if err := auth.SetPassword(path, u, p, 4); err != nil {
			t.Fatal(err)
		}
	}
	pf, err := auth.LoadPasswordFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return pf
}

// TestLoginRefusals: with a password file and anonymous access off, the
// right user and password connect; a wrong password or an unknown user
// gets 0x86 (3.1.1: 0x04), no user name 0x87 (0x05) — for every protocol
// version, on the raw wire.
func TestLoginRefusals(t *testing.T) {
	pf := passwordFile(t, "alice:wonderland")
	_, addr := testutil.StartBroker(t, func(c *broker.Config) {
		c.AllowAnonymous = broker.AnonymousDeny
		c.Authenticator = pf
	})
	for _, tc := range []struct {
		name       string
		user, pass string
		v5, v3     codec.ReasonCode
	}{
		{"ok", "alice", "wonderland", codec.Success, 0},
		{"wrong password", "alice", "looking-glass", codec.BadUsernameOrPassword, 4},
		{"unknown user", "bob", "wonderland", codec.BadUsernameOrPassword, 4},
		{"anonymous", "", "", codec.NotAuthorized, 5},
	} {
		for _, v := range []byte{codec.V5, codec.V311, codec.V31} {
			c := codec.Connect{ClientID: []byte("login"), CleanStart: true}
			if tc.user != "" {
				c.UsernameFlag, c.Username = true, []byte(tc.user)
				c.PasswordFlag, c.Password = true, []byte(tc.pass)
			}
			r := testutil.Dial(t, addr, v)
			ack := r.Connect(c)
			want := tc.v5
			if v != codec.V5 {
				want = tc.v3
			}
			if ack.Code != want {
				t.Errorf("%s, version %d: CONNACK %v, want %v", tc.name, v, ack.Code, want)
			}
			if want != codec.Success {
				r.ExpectClosed(testutil.Wait)
			}
			r.Drop()
		}
	}
}

// TestLoginWithPaho: Eclipse Paho (MQTT 3.1.1) and the Mosquitto command
// line tools log in with -u/-P; wrong passwords are refused with the code
// each client reports.
func TestLoginWithPaho(t *testing.T) {
	pf := passwordFile(t, "alice:wonderland")
	_, addr := testutil.StartBroker(t, func(c *broker.Config) {
		c.AllowAnonymous = broker.AnonymousDeny
		c.Authenticator = pf
	})
	connect := func(user, pass string) error {
		o := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("paho-" + user + pass).
			SetConnectRetry(false).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
		if user != "" {
			o.SetUsername(user).SetPassword(pass)
		}
		c := paho.NewClient(o)
		tok := c.Connect()
		if !tok.WaitTimeout(10 * time.Second) {
			return errors.New("no CONNACK")
		}
		if tok.Error() == nil {
			c.Disconnect(100)
		}
		return tok.Error()
	}
	if err := connect("alice", "wonderland"); err != nil {
		t.Fatalf("alice: %v", err)
	}
	if err := connect("alice", "nope"); !errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword) {
		t.Errorf("wrong password: %v, want a bad user name or password refusal", err)
	}
	if err := connect("", ""); !errors.Is(err, packets.ErrorRefusedNotAuthorised) {
		t.Errorf("anonymous: %v, want not authorized", err)
	}

	host, port := testutil.HostPort(t, addr)
	if out, err := testutil.Mosquitto(t, 10*time.Second, "mosquitto_pub", "-h", host, "-p", port, "-V", "mqttv5",
		"-u", "alice", "-P", "wonderland", "-t", "t", "-m", "hi", "-q", "1"); err != nil {
		t.Errorf("mosquitto_pub -u alice: %v: %s", err, out)
	}
	out, err := testutil.Mosquitto(t, 10*time.Second, "mosquitto_pub", "-h", host, "-p", port, "-V", "mqttv5",
		"-u", "alice", "-P", "wrong", "-t", "t", "-m", "hi")
	if err == nil || !strings.Contains(strings.ToLower(out), "bad user name or password") {
		t.Errorf("mosquitto_pub with a wrong password: err %v, output %q; want a bad user name or password refusal", err, out)
	}
}

// blockingAuth holds every login until released, counting those waiting.
type blockingAuth struct {
	mu      sync.Mutex
	waiting int
	release chan struct{}
}

func (a *blockingAuth) Authenticate(ctx context.Context, l *auth.Login) error {
	a.mu.Lock()
	a.waiting++
	a.mu.Unlock()
	select {
	case <-a.release:
	case <-ctx.Done():
		return auth.ErrBackend
	}
	if string(l.Password) != "ok" {
		return auth.ErrBadPassword
	}
	return nil
}

func (a *blockingAuth) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.waiting
}

// TestLoginOffTheLoop: a login that takes its time (a slow hash, a remote
// back end) holds up nobody else. While it waits, other clients on the same
// loops publish and receive; the waiting client's PUBLISH, sent right
// after its CONNECT, is handled after its CONNACK, in order.
func TestLoginOffTheLoop(t *testing.T) {
	ba := &blockingAuth{release: make(chan struct{})}
	_, addr := testutil.StartBroker(t, func(c *broker.Config) {
		c.Loops = 1 // the slow login and the others share a loop
		c.Authenticator = ba
	})
	slow := testutil.Dial(t, addr, codec.V5)
	c := codec.Connect{Version: codec.V5, ClientID: []byte("slow"), CleanStart: true,
		UsernameFlag: true, Username: []byte("u"), PasswordFlag: true, Password: []byte("ok")}
	pub := codec.Publish{Topic: []byte("from/slow"), QoS: 1, PacketID: 7, Payload: []byte("after connack")}
	slow.Send(pub.Append(c.Append(nil), codec.V5))
	testutil.Eventually(t, testutil.Wait, "the login to reach the authenticator", func() bool { return ba.count() == 1 })

	sub, _ := testutil.DialConnect(t, addr, codec.V5, codec.Connect{ClientID: []byte("sub"), CleanStart: true})
	sub.Subscribe(1, "#", 1)
	other, _ := testutil.DialConnect(t, addr, codec.V5, codec.Connect{ClientID: []byte("other"), CleanStart: true})
	other.SendPublish(codec.Publish{Topic: []byte("from/other"), Payload: []byte("x")})
	if p, _ := sub.ExpectPublish(testutil.Wait); string(p.Topic) != "from/other" {
		t.Fatalf("got %q, want from/other", p.Topic)
	}
	slow.ExpectSilence(200 * time.Millisecond) // no CONNACK, no PUBACK yet

	close(ba.release)
	f := slow.Expect(codec.CONNACK, testutil.Wait)
	var ack codec.Connack
	if err := ack.Decode(f.Body, codec.V5); err != nil || ack.Code != codec.Success {
		t.Fatalf("CONNACK %v %v, want success", ack.Code, err)
	}
	slow.ExpectAck(codec.PUBACK, 7, testutil.Wait)
	if p, _ := sub.ExpectPublish(testutil.Wait); string(p.Payload) != "after connack" {
		t.Fatalf("got %q, want the slow client's message", p.Payload)
	}
}

// TestLoginBusy: with the login queue full, a CONNECT is answered at once
// with 0x89 Server busy (3.1.1: 0x03) instead of waiting in an unbounded
// queue.
func TestLoginBusy(t *testing.T) {
	ba := &blockingAuth{release: make(chan struct{})}
	_, addr := testutil.StartBroker(t, func(c *broker.Config) {
		c.Authenticator = ba
		c.AuthWorkers = 1
		c.AuthQueue = 1
	})
	t.Cleanup(func() { close(ba.release) })
	login := func(id string) codec.Connect {
		return codec.Connect{ClientID: []byte(id), CleanStart: true, UsernameFlag: true, Username: []byte("u"),
			PasswordFlag: true, Password: []byte("ok")}
	}
	first := testutil.Dial(t, addr, codec.V5)
	c := login("first")
	c.Version = codec.V5
	first.Send(c.Append(nil))
	testutil.Eventually(t, testutil.Wait, "the worker to take the first login", func() bool { return ba.count() == 1 })
	second := testutil.Dial(t, addr, codec.V5)
	c = login("second")
	c.Version = codec.V5
	second.Send(c.Append(nil)) // fills the queue of 1
	time.Sleep(50 * time.Millisecond)

	third := testutil.Dial(t, addr, codec.V5)
	if ack := third.Connect(login("third")); ack.Code != codec.ServerBusy {
		t.Errorf("v5 CONNACK %v, want 0x89 server busy", ack.Code)
	}
	v3 := testutil.Dial(t, addr, codec.V311)
	if ack := v3.Connect(login("v3")); ack.Code != 3 {
		t.Errorf("3.1.1 CONNACK %v, want 3 server unavailable", ack.Code)
	}
}

// TestAnonymousWithoutAuthenticator: with no authenticator and anonymous
// access on (DefaultConfig), a user name is taken as given; with it off,
// a user name nobody can check is refused with 0x86.
func TestAnonymousWithoutAuthenticator(t *testing.T) {
	_, open := testutil.StartBroker(t, nil)
	testutil.DialConnect(t, open, codec.V5, codec.Connect{ClientID: []byte("u"), CleanStart: true,
		UsernameFlag: true, Username: []byte("anyone")})
	_, closed := testutil.StartBroker(t, func(c *broker.Config) { c.AllowAnonymous = broker.AnonymousDeny })
	r := testutil.Dial(t, closed, codec.V5)
	if ack := r.Connect(codec.Connect{ClientID: []byte("u"), CleanStart: true, UsernameFlag: true,
		Username: []byte("anyone")}); ack.Code != codec.BadUsernameOrPassword {
		t.Errorf("CONNACK %v, want 0x86", ack.Code)
	}
}

// TestLoginHTTPBackend: users the password file does not know are asked of
// the HTTP back end, off the loop; its answers become CONNACK codes, and a
// back end that does not answer in time gives 0x88 Server unavailable.
func TestLoginHTTPBackend(t *testing.T) {
	var mu sync.Mutex
	asked := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Username, Password, ClientID string }
		_ = json.NewDecoder(r.Body).Decode(&req)
		mu.Lock()
		asked[req.Username]++
		mu.Unlock()
		switch req.Username {
		case "carol":
			if req.Password == "http-secret" {
				_, _ = w.Write([]byte(`{"result":"allow"}`))
				return
			}
			_, _ = w.Write([]byte(`{"result":"deny","reason":"bad_password"}`))
		case "slow":
			time.Sleep(600 * time.Millisecond)
		default:
			_, _ = w.Write([]byte(`{"result":"deny"}`))
		}
	}))
	defer srv.Close()
	h, err := auth.NewHTTP(auth.HTTPConfig{URL: srv.URL, Timeout: 300 * time.Millisecond, CacheTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	pf := passwordFile(t, "alice:wonderland")
	_, addr := testutil.StartBroker(t, func(c *broker.Config) {
		c.AllowAnonymous = broker.AnonymousDeny
		c.Authenticator = auth.Chain(pf, h)
	})
	for _, tc := range []struct {
		user, pass string
		want       codec.ReasonCode
	}{
		{"alice", "wonderland", codec.Success},          // the file
		{"carol", "http-secret", codec.Success},         // the back end
		{"carol", "guess", codec.BadUsernameOrPassword}, // the back end says bad password
		{"dave", "x", codec.NotAuthorized},              // the back end says no
		{"slow", "x", codec.ServerUnavailable},          // the back end is too slow
		{"carol", "http-secret", codec.Success},         // again: from the cache
	} {
		r := testutil.Dial(t, addr, codec.V5)
		c := codec.Connect{ClientID: []byte("h-" + tc.user), CleanStart: true, UsernameFlag: true,
			Username: []byte(tc.user), PasswordFlag: true, Password: []byte(tc.pass)}
		if ack := r.Connect(c); ack.Code != tc.want {
			t.Errorf("%s/%s: CONNACK %v, want %v", tc.user, tc.pass, ack.Code, tc.want)
		}
		r.Drop()
	}
	mu.Lock()
	defer mu.Unlock()
	if asked["alice"] != 0 {
		t.Error("the back end was asked about a user the password file knows")
	}
	if asked["carol"] != 2 {
		t.Errorf("the back end was asked %d times about carol, want 2 (the third login is cached)", asked["carol"])
	}
}

type brokenAuth struct{}

func (brokenAuth) Authenticate(context.Context, *auth.Login) error {
	return errors.New("database down")
}

// TestLoginAuthenticatorFails: an Authenticator error that is not a
// refusal is the server's fault: 0x88 Server unavailable (3.1.1: 0x03),
// with a CONNACK in both versions.
func TestLoginAuthenticatorFails(t *testing.T) {
	_, addr := testutil.StartBroker(t, func(c *broker.Config) { c.Authenticator = brokenAuth{} })
	for v, want := range map[byte]codec.ReasonCode{codec.V5: codec.ServerUnavailable, codec.V311: 3} {
		r := testutil.Dial(t, addr, v)
		if ack := r.Connect(codec.Connect{ClientID: []byte("c"), CleanStart: true, UsernameFlag: true,
			Username: []byte("u"), PasswordFlag: true, Password: []byte("p")}); ack.Code != want {
			t.Errorf("version %d: CONNACK %v, want %v", v, ack.Code, want)
		}
	}
}
