package broker_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoalmq/shoal/auth"
	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
)

const testACL = `
default deny
user alice
allow readwrite alice/#
allow read      public/#
deny  read      public/secret
allow write     wills/%c
`

// aclFrom loads an ACL file holding text.
func aclFrom(t *testing.T, text string) *auth.ACL {
	t.Helper()
	path := filepath.Join(t.TempDir(), "topics.acl")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	acl, err := auth.LoadACLFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return acl
}

// aclBroker starts a broker with testACL, a password file for alice and
// anonymous access off.
func aclBroker(t *testing.T) string {
	t.Helper()
	acl := aclFrom(t, testACL)
	pf := passwordFile(t, "alice:wonderland", "mallory:x")
	_, addr := testutil.StartBroker(t, func(c *broker.Config) {
		c.AllowAnonymous = broker.AnonymousDeny
		c.Authenticator = pf
		c.Authorizer = acl
	})
	return addr
}

func loginAs(user, id string) codec.Connect {
	return codec.Connect{ClientID: []byte(id), CleanStart: true, UsernameFlag: true, Username: []byte(user),
		PasswordFlag: true, Password: []byte(map[string]string{"alice": "wonderland", "mallory": "x"}[user])}
}

// TestACLPublishSubscribe: the ACL decides SUBSCRIBE (v5 0x87, 3.1.1
// 0x80) and PUBLISH (v5 PUBACK 0x87; 3.1.1 acknowledged and dropped).
func TestACLPublishSubscribe(t *testing.T) {
	addr := aclBroker(t)
	watch, _ := testutil.DialConnect(t, addr, codec.V5, loginAs("alice", "watch"))
	if codes := watch.Subscribe(1, "alice/#", 1); codes[0] != 1 {
		t.Fatalf("alice/#: SUBACK %v, want granted QoS 1", codes)
	}

	v5, _ := testutil.DialConnect(t, addr, codec.V5, loginAs("mallory", "m5"))
	if codes := v5.Subscribe(1, "alice/#", 1); codes[0] != codec.NotAuthorized {
		t.Errorf("mallory subscribing alice/#: %v, want 0x87", codes)
	}
	if codes := v5.Subscribe(2, "#", 0); codes[0] != codec.NotAuthorized {
		t.Errorf("mallory subscribing #: %v, want 0x87", codes)
	}
	v5.SendPublish(codec.Publish{Topic: []byte("alice/inbox"), QoS: 1, PacketID: 3, Payload: []byte("forged")})
	if a := v5.ExpectAck(codec.PUBACK, 3, testutil.Wait); a.Code != codec.NotAuthorized {
		t.Errorf("mallory publishing to alice/inbox: PUBACK %v, want 0x87", a.Code)
	}

	v3, _ := testutil.DialConnect(t, addr, codec.V311, loginAs("mallory", "m3"))
	if codes := v3.Subscribe(1, "alice/#", 0); codes[0] != 0x80 {
		t.Errorf("3.1.1 subscribe refused: %v, want 0x80", codes)
	}
	v3.SendPublish(codec.Publish{Topic: []byte("alice/inbox"), QoS: 1, PacketID: 4, Payload: []byte("forged")})
	v3.ExpectAck(codec.PUBACK, 4, testutil.Wait) // acknowledged, then dropped

	alice, _ := testutil.DialConnect(t, addr, codec.V5, loginAs("alice", "a"))
	alice.SendPublish(codec.Publish{Topic: []byte("alice/inbox"), QoS: 1, PacketID: 5, Payload: []byte("real")})
	if a := alice.ExpectAck(codec.PUBACK, 5, testutil.Wait); a.Code != codec.Success {
		t.Errorf("alice publishing to her topic: PUBACK %v", a.Code)
	}
	if p, _ := watch.ExpectPublish(testutil.Wait); string(p.Payload) != "real" {
		t.Errorf("watcher got %q, want only alice's own message", p.Payload)
	}
	watch.ExpectSilence(100 * time.Millisecond)
}

// TestACLFiltersEachMessage: a subscription granted over topics that
// include a denied one (public/# with public/secret denied) gets neither
// the live nor the retained messages of the denied topic.
func TestACLFiltersEachMessage(t *testing.T) {
	// root may write anything, to publish the retained messages.
	acl := aclFrom(t, testACL+"user root\nallow readwrite #\n")
	pf := passwordFile(t, "alice:wonderland", "root:toor")
	_, addr := testutil.StartBroker(t, func(c *broker.Config) {
		c.AllowAnonymous = broker.AnonymousDeny
		c.Authenticator = pf
		c.Authorizer = acl
	})
	root, _ := testutil.DialConnect(t, addr, codec.V5, codec.Connect{ClientID: []byte("root"), CleanStart: true,
		UsernameFlag: true, Username: []byte("root"), PasswordFlag: true, Password: []byte("toor")})
	for i, topic := range []string{"public/secret", "public/news"} {
		root.SendPublish(codec.Publish{Topic: []byte(topic), QoS: 1, PacketID: uint16(i + 1), Retain: true, Payload: []byte("retained " + topic)})
		root.ExpectAck(codec.PUBACK, uint16(i+1), testutil.Wait)
	}

	alice, _ := testutil.DialConnect(t, addr, codec.V5, loginAs("alice", "a"))
	if codes := alice.Subscribe(2, "public/secret", 1); codes[0] != codec.NotAuthorized {
		t.Errorf("public/secret itself: %v, want 0x87", codes)
	}
	if codes := alice.Subscribe(1, "public/#", 1); codes[0] != 1 {
		t.Fatalf("public/#: %v, want granted", codes)
	}
	if p, _ := alice.ExpectPublish(testutil.Wait); string(p.Topic) != "public/news" {
		t.Errorf("retained: got %q, want only public/news", p.Topic)
	} else {
		alice.SendAck(codec.PUBACK, p.PacketID)
	}
	for i, topic := range []string{"public/secret", "public/news"} {
		root.SendPublish(codec.Publish{Topic: []byte(topic), QoS: 1, PacketID: uint16(i + 10), Payload: []byte("live")})
		root.ExpectAck(codec.PUBACK, uint16(i+10), testutil.Wait)
	}
	p, _ := alice.ExpectPublish(testutil.Wait)
	if string(p.Topic) != "public/news" {
		t.Errorf("live: got %q, want only public/news", p.Topic)
	}
	if p.QoS > 0 {
		alice.SendAck(codec.PUBACK, p.PacketID)
	}
	alice.ExpectSilence(150 * time.Millisecond)
}

// TestACLWill: a will on a topic the client may not publish to refuses
// the CONNECT with 0x87 (3.1.1: 0x05); %c grants each client its own.
func TestACLWill(t *testing.T) {
	addr := aclBroker(t)
	for _, tc := range []struct {
		id, topic string
		v5, v3    codec.ReasonCode
	}{
		{"dev1", "wills/dev1", codec.Success, 0},
		{"dev1", "wills/dev2", codec.NotAuthorized, 5},
	} {
		for _, v := range []byte{codec.V5, codec.V311} {
			c := loginAs("alice", tc.id)
			c.WillFlag, c.WillTopic, c.WillPayload = true, []byte(tc.topic), []byte("gone")
			r := testutil.Dial(t, addr, v)
			want := tc.v5
			if v != codec.V5 {
				want = tc.v3
			}
			if ack := r.Connect(c); ack.Code != want {
				t.Errorf("will on %s, version %d: CONNACK %v, want %v", tc.topic, v, ack.Code, want)
			}
			r.Drop()
		}
	}
}

// TestACLSessionResumedByAnotherUser: a persistent session resumed with
// the same client id by another user keeps none of what the first user's
// rights gave it: subscriptions the new user may not make are removed,
// and what was queued for them is not delivered.
func TestACLSessionResumedByAnotherUser(t *testing.T) {
	addr := aclBroker(t)
	c := loginAs("alice", "shared-id")
	c.Props.Set(codec.PropSessionExpiry)
	c.Props.SessionExpiry = 600
	alice, _ := testutil.DialConnect(t, addr, codec.V5, c)
	alice.Subscribe(1, "alice/#", 1)
	alice.Drop()
	pub, _ := testutil.DialConnect(t, addr, codec.V5, loginAs("alice", "pub"))
	pub.SendPublish(codec.Publish{Topic: []byte("alice/private"), QoS: 1, PacketID: 1, Payload: []byte("for alice only")})
	pub.ExpectAck(codec.PUBACK, 1, testutil.Wait)

	m := loginAs("mallory", "shared-id")
	m.CleanStart = false
	m.Props.Set(codec.PropSessionExpiry)
	m.Props.SessionExpiry = 600
	mallory, ack := testutil.DialConnect(t, addr, codec.V5, m)
	if !ack.SessionPresent {
		t.Fatal("the session was not resumed")
	}
	mallory.ExpectSilence(200 * time.Millisecond) // not the queued message
	pub.SendPublish(codec.Publish{Topic: []byte("alice/private"), QoS: 1, PacketID: 2, Payload: []byte("live")})
	pub.ExpectAck(codec.PUBACK, 2, testutil.Wait)
	mallory.ExpectSilence(200 * time.Millisecond) // nor a live one: the subscription is gone
}

// TestWillTopicsClosed: a will may not go where a PUBLISH may not — the
// broker's $SYS topics (0x87, 3.1.1: 0x05), or past the topic limits
// (0x90, 3.1.1: 0x03) — with or without an ACL.
func TestWillTopicsClosed(t *testing.T) {
	_, addr := testutil.StartBroker(t, func(c *broker.Config) { c.MaxTopicLevels = 3 })
	for _, tc := range []struct {
		topic  string
		v5, v3 codec.ReasonCode
	}{
		{"$SYS/broker/version", codec.NotAuthorized, 5},
		{"a/b/c/d", codec.TopicNameInvalid, 3},
		{"a/b/c", codec.Success, 0},
	} {
		for _, v := range []byte{codec.V5, codec.V311} {
			r := testutil.Dial(t, addr, v)
			ack := r.Connect(codec.Connect{ClientID: []byte("will"), CleanStart: true, WillFlag: true, WillRetain: true,
				WillTopic: []byte(tc.topic), WillPayload: []byte("forged")})
			want := tc.v5
			if v != codec.V5 {
				want = tc.v3
			}
			if ack.Code != want {
				t.Errorf("will on %q, version %d: CONNACK %v, want %v", tc.topic, v, ack.Code, want)
			}
			r.Drop()
		}
	}
}

// TestUncheckedUserNameIsAnonymous: without an authenticator, a user name
// is not believed: a client claiming to be alice gets anonymous rights.
func TestUncheckedUserNameIsAnonymous(t *testing.T) {
	acl := aclFrom(t, testACL)
	_, addr := testutil.StartBroker(t, func(c *broker.Config) { c.Authorizer = acl }) // anonymous allowed
	r, _ := testutil.DialConnect(t, addr, codec.V5, codec.Connect{ClientID: []byte("claims-alice"), CleanStart: true,
		UsernameFlag: true, Username: []byte("alice")})
	if codes := r.Subscribe(1, "alice/#", 0); codes[0] != codec.NotAuthorized {
		t.Errorf("an unchecked claim to be alice subscribed to alice/#: %v, want 0x87", codes)
	}
}
