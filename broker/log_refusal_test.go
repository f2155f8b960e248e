package broker_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"

	"github.com/shoalmq/shoal/auth"
	"github.com/shoalmq/shoal/auth/scram"
	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
)

// logBroker starts a broker whose info-level JSON log goes to the
// returned buffer, with edit applied to its config.
func logBroker(t *testing.T, edit func(*broker.Config)) (*testutil.SyncBuffer, string) {
	t.Helper()
	logs := new(testutil.SyncBuffer)
	_, addr := testutil.StartBroker(t, func(c *broker.Config) {
		c.Logger = zerolog.New(logs).Level(zerolog.InfoLevel)
		if edit != nil {
			edit(c)
		}
	})
	return logs, addr
}

// refusal waits for the "connection refused" line with want's fields.
func refusal(t *testing.T, logs *testutil.SyncBuffer, want map[string]any) map[string]any {
	t.Helper()
	return logs.WaitLine(t, testutil.Wait, "connection refused", want)
}

// noField fails if line has any of keys.
func noField(t *testing.T, line map[string]any, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if v, ok := line[k]; ok {
			t.Errorf("line has %s=%v, want none: %v", k, v, line)
		}
	}
}

// stuckAuth answers no login until released, whatever its context says:
// the connect timeout is what ends the wait.
type stuckAuth struct{ release chan struct{} }

func (a stuckAuth) Authenticate(context.Context, *auth.Login) error {
	<-a.release
	return nil
}

// tokenMethod is an enhanced authentication method that accepts the
// Authentication Data "letmein" and nothing else.
type tokenMethod struct{}

func (tokenMethod) Name() string               { return "token" }
func (tokenMethod) Start(string) auth.Exchange { return &tokenExchange{} }
func (x *tokenExchange) Identity() string      { return "token-user" }
func (x *tokenExchange) Step(d []byte) ([]byte, bool, error) {
	if string(d) != "letmein" {
		return nil, false, scram.ErrBadCredentials
	}
	return nil, true, nil
}

type tokenExchange struct{}

// TestLogRefusalLogin: refusals by who the client is — anonymous, bad
// credentials (mosquitto_pub), no authenticator, the authenticator's own
// failure, a full login queue, no verdict within connect_timeout — are
// logged with the client id, user name, remote address, protocol, reason
// code and the rule; never the password.
func TestLogRefusalLogin(t *testing.T) {
	t.Run("anonymous", func(t *testing.T) {
		logs, addr := logBroker(t, func(c *broker.Config) {
			c.AllowAnonymous = broker.AnonymousDeny
			c.Authenticator = passwordFile(t, "alice:wonderland")
		})
		r := testutil.Dial(t, addr, codec.V311)
		if ack := r.Connect(codec.Connect{ClientID: []byte("anon-1"), CleanStart: true}); ack.Code != 5 {
			t.Fatalf("CONNACK %v, want 5 not authorized", ack.Code)
		}
		l := refusal(t, logs, map[string]any{"client": "anon-1", "remote": r.Conn.LocalAddr().String(),
			"protocol": "3.1.1", "reason_code": "0x87", "reason_name": "not authorized",
			"reason": "anonymous clients are not allowed", "connack": true})
		noField(t, l, "username")
	})

	t.Run("bad password, mosquitto_pub", func(t *testing.T) {
		logs, addr := logBroker(t, func(c *broker.Config) {
			c.AllowAnonymous = broker.AnonymousDeny
			c.Authenticator = passwordFile(t, "alice:wonderland")
		})
		host, port := testutil.HostPort(t, addr)
		const secret = "not-the-password-5150"
		if out, err := testutil.Mosquitto(t, 10*time.Second, "mosquitto_pub", "-h", host, "-p", port,
			"-i", "mq-bad", "-u", "alice", "-P", secret, "-t", "t", "-m", "hi"); err == nil {
			t.Fatalf("mosquitto_pub with a wrong password succeeded: %s", out)
		}
		l := refusal(t, logs, map[string]any{"client": "mq-bad", "username": "alice", "protocol": "3.1.1",
			"reason_code": "0x86", "reason_name": "bad user name or password", "connack": true})
		if r, _ := l["reason"].(string); !strings.HasPrefix(r, "bad user name or password (") {
			t.Errorf("reason %q, want the rule", r)
		}
		if !strings.HasPrefix(fmt.Sprint(l["remote"]), "127.0.0.1:") {
			t.Errorf("remote %v, want the client's address", l["remote"])
		}
		if strings.Contains(logs.String(), secret) {
			t.Error("the password is in the log")
		}
	})

	t.Run("no authenticator", func(t *testing.T) {
		logs, addr := logBroker(t, func(c *broker.Config) { c.AllowAnonymous = broker.AnonymousDeny })
		r := testutil.Dial(t, addr, codec.V5)
		r.Connect(codec.Connect{ClientID: []byte("who"), CleanStart: true, UsernameFlag: true, Username: []byte("anyone")})
		refusal(t, logs, map[string]any{"client": "who", "username": "anyone", "protocol": "5.0",
			"reason_code": "0x86", "reason": "no authenticator configured to check the user name"})
	})

	t.Run("authenticator error", func(t *testing.T) {
		logs, addr := logBroker(t, func(c *broker.Config) { c.Authenticator = brokenAuth{} })
		r := testutil.Dial(t, addr, codec.V5)
		r.Connect(codec.Connect{ClientID: []byte("c"), CleanStart: true, UsernameFlag: true,
			Username: []byte("u"), PasswordFlag: true, Password: []byte("p")})
		refusal(t, logs, map[string]any{"client": "c", "username": "u", "remote": r.Conn.LocalAddr().String(),
			"reason_code": "0x88", "reason_name": "server unavailable", "reason": "authenticator error: database down"})
	})

	t.Run("login queue full", func(t *testing.T) {
		ba := &blockingAuth{release: make(chan struct{})}
		logs, addr := logBroker(t, func(c *broker.Config) {
			c.Authenticator = ba
			c.AuthWorkers = 1
			c.AuthQueue = 1
		})
		t.Cleanup(func() { close(ba.release) })
		login := func(id string) codec.Connect {
			return codec.Connect{Version: codec.V5, ClientID: []byte(id), CleanStart: true, UsernameFlag: true,
				Username: []byte("u"), PasswordFlag: true, Password: []byte("ok")}
		}
		c := login("first")
		testutil.Dial(t, addr, codec.V5).Send(c.Append(nil))
		testutil.Eventually(t, testutil.Wait, "the worker to take the first login", func() bool { return ba.count() == 1 })
		c = login("second")
		testutil.Dial(t, addr, codec.V5).Send(c.Append(nil)) // fills the queue of 1
		time.Sleep(50 * time.Millisecond)
		third := testutil.Dial(t, addr, codec.V5)
		if ack := third.Connect(login("third")); ack.Code != codec.ServerBusy {
			t.Fatalf("CONNACK %v, want 0x89", ack.Code)
		}
		refusal(t, logs, map[string]any{"client": "third", "username": "u", "reason_code": "0x89",
			"reason_name": "server busy", "reason": "auth_queue full: 1 logins waiting for the authenticator"})
	})

	t.Run("no verdict in time", func(t *testing.T) {
		stuck := stuckAuth{release: make(chan struct{})}
		logs, addr := logBroker(t, func(c *broker.Config) {
			c.Authenticator = stuck
			c.ConnectTimeout = 300 * time.Millisecond
		})
		t.Cleanup(func() { close(stuck.release) }) // before the broker's Close: its login worker waits here
		r := testutil.Dial(t, addr, codec.V311)
		c := codec.Connect{Version: codec.V311, ClientID: []byte("waiting"), CleanStart: true, UsernameFlag: true,
			Username: []byte("u"), PasswordFlag: true, Password: []byte("p")}
		r.Send(c.Append(nil))
		l := refusal(t, logs, map[string]any{"client": "waiting", "username": "u", "protocol": "3.1.1",
			"reason": "the authenticator did not answer within connect_timeout (300ms)", "connack": false})
		noField(t, l, "reason_code")
	})
}

// TestLogRefusalWill: a will the client could not publish itself — denied
// by the ACL (paho), under $SYS, over max_topic_length, above max_qos —
// refuses the connection, and the line says which rule.
func TestLogRefusalWill(t *testing.T) {
	t.Run("ACL, paho", func(t *testing.T) {
		logs, addr := logBroker(t, func(c *broker.Config) {
			c.AllowAnonymous = broker.AnonymousDeny
			c.Authenticator = passwordFile(t, "alice:wonderland")
			c.Authorizer = aclFrom(t, testACL)
		})
		o := paho.NewClientOptions().AddBroker("tcp://"+addr).SetClientID("paho-will").
			SetUsername("alice").SetPassword("wonderland").SetWill("forbidden/will", "bye", 0, false).
			SetConnectRetry(false).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
		c := paho.NewClient(o)
		tok := c.Connect()
		if !tok.WaitTimeout(10*time.Second) || tok.Error() == nil {
			c.Disconnect(100)
			t.Fatalf("paho with a will the ACL denies: %v, want a refusal", tok.Error())
		}
		refusal(t, logs, map[string]any{"client": "paho-will", "username": "alice", "protocol": "3.1.1",
			"reason_code": "0x87", "reason": `will topic "forbidden/will" not allowed by the ACL`, "connack": true})
	})

	logs, addr := logBroker(t, func(c *broker.Config) {
		c.MaxTopicLength = 16
		c.MaxQoS = 1
	})
	for _, tc := range []struct {
		name, id string
		will     func(c *codec.Connect)
		code     codec.ReasonCode
		reason   string
	}{
		{"$SYS", "w-sys", func(c *codec.Connect) { c.WillTopic = []byte("$SYS/broker/x") }, codec.NotAuthorized,
			`will topic "$SYS/broker/x" is under $SYS, the broker's own`},
		{"too long", "w-long", func(c *codec.Connect) { c.WillTopic = []byte(strings.Repeat("a", 30)) }, codec.TopicNameInvalid,
			"will topic of 30 bytes longer than max_topic_length (16)"},
		{"QoS", "w-qos", func(c *codec.Connect) { c.WillQoS = 2 }, codec.QoSNotSupported,
			"will QoS 2 above max_qos (1)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := codec.Connect{ClientID: []byte(tc.id), CleanStart: true, WillFlag: true,
				WillTopic: []byte("w"), WillPayload: []byte("bye")}
			tc.will(&c)
			r := testutil.Dial(t, addr, codec.V5)
			if ack := r.Connect(c); ack.Code != tc.code {
				t.Errorf("CONNACK %v, want %v", ack.Code, tc.code)
			}
			refusal(t, logs, map[string]any{"client": tc.id, "remote": r.Conn.LocalAddr().String(), "protocol": "5.0",
				"reason_code": tc.code.String(), "reason_name": tc.code.Name(), "reason": tc.reason})
		})
	}
}

// TestLogRefusalLimits: max_connections, connect_rate, the client id's
// length and form, the protocol version, a malformed CONNECT, the connect
// timeout and enhanced authentication each refuse with a line naming the
// rule and its value.
func TestLogRefusalLimits(t *testing.T) {
	t.Run("max_connections", func(t *testing.T) {
		logs, addr := logBroker(t, func(c *broker.Config) { c.MaxConnections = 1 })
		testutil.DialConnect(t, addr, codec.V5, codec.Connect{ClientID: []byte("one"), CleanStart: true})
		r := testutil.Dial(t, addr, codec.V5)
		r.Connect(codec.Connect{ClientID: []byte("two"), CleanStart: true})
		refusal(t, logs, map[string]any{"client": "two", "reason_code": "0x97", "reason_name": "quota exceeded",
			"reason": "max_connections reached (1)"})
	})

	t.Run("connect_rate", func(t *testing.T) {
		logs, addr := logBroker(t, func(c *broker.Config) {
			c.ConnectRate = 0.01
			c.ConnectBurst = 1
		})
		testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("first"), CleanStart: true})
		r := testutil.Dial(t, addr, codec.V311)
		r.Connect(codec.Connect{ClientID: []byte("second"), CleanStart: true})
		refusal(t, logs, map[string]any{"client": "second", "reason_code": "0x9f", "reason_name": "connection rate exceeded",
			"reason": "connect_rate exceeded for 127.0.0.1 (0.01 a second, burst 1)", "connack": true})
	})

	logs, addr := logBroker(t, func(c *broker.Config) {
		c.MaxClientIDLength = 8
		c.ConnectTimeout = 300 * time.Millisecond
		c.AuthMethods = []auth.Method{tokenMethod{}}
	})

	t.Run("client id too long", func(t *testing.T) {
		r := testutil.Dial(t, addr, codec.V5)
		r.Connect(codec.Connect{ClientID: []byte(strings.Repeat("x", 20)), CleanStart: true})
		refusal(t, logs, map[string]any{"client": strings.Repeat("x", 20), "reason_code": "0x85",
			"reason_name": "client identifier not valid", "reason": "client id of 20 bytes longer than max_client_id_length (8)"})
	})

	t.Run("client id empty", func(t *testing.T) {
		r := testutil.Dial(t, addr, codec.V311)
		if ack := r.Connect(codec.Connect{}); ack.Code != 2 {
			t.Errorf("CONNACK %v, want 2 identifier rejected", ack.Code)
		}
		refusal(t, logs, map[string]any{"client": "", "remote": r.Conn.LocalAddr().String(), "reason_code": "0x85",
			"reason": "empty client id with clean session 0"})
	})

	t.Run("protocol version", func(t *testing.T) {
		r := testutil.Dial(t, addr, codec.V311)
		c := codec.Connect{ProtocolName: []byte("MQTT"), Version: 6, ClientID: []byte("future"), CleanStart: true}
		r.Send(c.Append(nil))
		r.Expect(codec.CONNACK, testutil.Wait)
		l := refusal(t, logs, map[string]any{"remote": r.Conn.LocalAddr().String(), "reason_code": "0x84",
			"reason_name": "unsupported protocol version", "reason": "unsupported protocol version (level 6)", "connack": true})
		noField(t, l, "protocol")
	})

	t.Run("malformed CONNECT", func(t *testing.T) {
		r := testutil.Dial(t, addr, codec.V311)
		c := codec.Connect{Version: codec.V311, ClientID: []byte{'a', 0xff, 'b'}, CleanStart: true}
		r.Send(c.Append(nil))
		r.ExpectClosed(testutil.Wait)
		refusal(t, logs, map[string]any{"client": "", "remote": r.Conn.LocalAddr().String(), "reason_code": "0x81",
			"reason_name": "malformed packet", "reason": "malformed CONNECT: invalid UTF-8 string", "connack": false})
	})

	t.Run("connect timeout", func(t *testing.T) {
		r := testutil.Dial(t, addr, codec.V311)
		if !r.Closed(3 * time.Second) {
			t.Fatal("still open")
		}
		l := refusal(t, logs, map[string]any{"client": "", "remote": r.Conn.LocalAddr().String(),
			"reason": "no CONNECT within connect_timeout (300ms)", "connack": false})
		noField(t, l, "reason_code", "protocol", "username")
	})

	t.Run("enhanced authentication", func(t *testing.T) {
		c := codec.Connect{ClientID: []byte("tok"), CleanStart: true, UsernameFlag: true, Username: []byte("tina")}
		c.Props.Set(codec.PropAuthMethod)
		c.Props.AuthMethod = []byte("token")
		c.Props.Set(codec.PropAuthData)
		c.Props.AuthData = []byte("guess")
		r := testutil.Dial(t, addr, codec.V5)
		if ack := r.Connect(c); ack.Code != codec.BadUsernameOrPassword {
			t.Errorf("CONNACK %v, want 0x86", ack.Code)
		}
		refusal(t, logs, map[string]any{"client": "tok", "username": "tina", "reason_code": "0x86",
			"reason": "authentication failed (method token): auth: bad user name or password"})

		c.ClientID = []byte("tok2")
		c.Props.AuthMethod = []byte("kerberos")
		r = testutil.Dial(t, addr, codec.V5)
		if ack := r.Connect(c); ack.Code != codec.BadAuthenticationMethod {
			t.Errorf("CONNACK %v, want 0x8c", ack.Code)
		}
		refusal(t, logs, map[string]any{"client": "tok2", "reason_code": "0x8c", "reason_name": "bad authentication method",
			"reason": `authentication method "kerberos" not supported`})
	})

	t.Run("long client id is clipped", func(t *testing.T) {
		id := strings.Repeat("y", 5000)
		r := testutil.Dial(t, addr, codec.V5)
		r.Connect(codec.Connect{ClientID: []byte(id), CleanStart: true})
		refusal(t, logs, map[string]any{"client": strings.Repeat("y", 256) + "... (5000 bytes)",
			"reason": "client id of 5000 bytes longer than max_client_id_length (8)"})
	})
}

// TestLogDisconnectRule: a disconnect says which rule ended it — the
// malformed packet's fault, the limit and its value — besides the reason
// category, and, for MQTT 5, the reason code the broker sent in
// DISCONNECT; a client's own DISCONNECT with an error code is named too.
func TestLogDisconnectRule(t *testing.T) {
	logs, addr := logBroker(t, func(c *broker.Config) {
		c.MaxTopicLength = 16
		c.MaxPacketSize = 1024
		c.ReceiveMaximum = 2
	})
	disconnected := func(t *testing.T, want map[string]any) map[string]any {
		t.Helper()
		return logs.WaitLine(t, testutil.Wait, "client disconnected", want)
	}

	t.Run("malformed PUBLISH, 3.1.1", func(t *testing.T) {
		r, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("bad-utf8"), CleanStart: true})
		p := codec.Publish{Topic: []byte{'t', 0xff}, Payload: []byte("x")}
		r.Send(p.Append(nil, codec.V311))
		r.ExpectClosed(testutil.Wait)
		l := disconnected(t, map[string]any{"client": "bad-utf8", "reason": "protocol_error",
			"detail": "malformed PUBLISH: invalid UTF-8 string"})
		noField(t, l, "reason_code") // 3.1.1 has no DISCONNECT from the server
	})

	t.Run("topic over max_topic_length, 3.1.1", func(t *testing.T) {
		r, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("long-topic"), CleanStart: true})
		r.SendPublish(codec.Publish{Topic: []byte(strings.Repeat("t", 40)), Payload: []byte("x")})
		r.ExpectClosed(testutil.Wait)
		disconnected(t, map[string]any{"client": "long-topic", "reason": "protocol_error",
			"detail": "topic of 40 bytes longer than max_topic_length (16)"})
	})

	t.Run("packet too large, MQTT 5", func(t *testing.T) {
		r, _ := testutil.DialConnect(t, addr, codec.V5, codec.Connect{ClientID: []byte("big"), CleanStart: true})
		r.SendPublish(codec.Publish{Topic: []byte("t"), Payload: make([]byte, 2000)})
		r.ExpectDisconnect(codec.PacketTooLarge, testutil.Wait)
		disconnected(t, map[string]any{"client": "big", "reason": "protocol_error",
			"detail": "packet larger than max_packet_size (1024 bytes)", "reason_code": "0x95", "reason_name": "packet too large"})
	})

	t.Run("receive_maximum, MQTT 5", func(t *testing.T) {
		r, _ := testutil.DialConnect(t, addr, codec.V5, codec.Connect{ClientID: []byte("no-pubrel"), CleanStart: true})
		for id := uint16(1); id <= 3; id++ { // PUBRECs unanswered
			r.SendPublish(codec.Publish{Topic: []byte("t"), QoS: 2, PacketID: id, Payload: []byte("x")})
		}
		disconnected(t, map[string]any{"client": "no-pubrel", "reason": "protocol_error",
			"detail": "more than receive_maximum (2) QoS 2 messages awaiting PUBREL", "reason_code": "0x93",
			"reason_name": "receive maximum exceeded"})
	})

	t.Run("keep-alive", func(t *testing.T) {
		testutil.DialConnect(t, addr, codec.V5, codec.Connect{ClientID: []byte("silent"), CleanStart: true, KeepAlive: 1})
		logs.WaitLine(t, 5*time.Second, "client disconnected", map[string]any{"client": "silent", "reason": "keepalive",
			"detail": "no packet within 1.5 times keep_alive (1 s)", "reason_code": "0x8d"})
	})

	t.Run("client's DISCONNECT with an error", func(t *testing.T) {
		r, _ := testutil.DialConnect(t, addr, codec.V5, codec.Connect{ClientID: []byte("quits"), CleanStart: true})
		d := codec.Disconnect{Code: codec.UnspecifiedError}
		d.Props.Set(codec.PropReasonString)
		d.Props.ReasonString = []byte("out of memory")
		r.Send(d.Append(nil, codec.V5))
		l := disconnected(t, map[string]any{"client": "quits", "reason": "normal",
			"detail": "client sent DISCONNECT 0x80 (unspecified error): out of memory"})
		noField(t, l, "reason_code") // the broker sent none
	})

	t.Run("normal", func(t *testing.T) {
		r, _ := testutil.DialConnect(t, addr, codec.V5, codec.Connect{ClientID: []byte("bye"), CleanStart: true})
		r.SendDisconnect(codec.Success)
		l := disconnected(t, map[string]any{"client": "bye", "reason": "normal"})
		noField(t, l, "detail", "reason_code")
	})
}
