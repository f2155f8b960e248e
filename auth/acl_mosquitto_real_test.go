package auth_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoalmq/shoal/auth"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
)

// TestMosquittoACLAgrees runs the real Mosquitto with the ACL of
// TestMosquittoACL's table and, over the wire, asks it for every identity
// and topic of a grid whether a publish gets through and whether a
// message is delivered, and whether a subscription is granted; Shoal's
// answers, from auth.ACL, must be the same. One broker, a few clients, a
// few seconds.
func TestMosquittoACLAgrees(t *testing.T) {
	// admin publishes what the others may read, and sees what they
	// publish. Its lines come last, so they change no one else's rules.
	text := auth.MosquittoTable + "\nuser admin\ntopic readwrite #\ntopic read $SYS/#\n"
	path := filepath.Join(t.TempDir(), "acl")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	acl, err := auth.ParseACLAs([]byte(text), path, auth.ACLMosquitto)
	if err != nil {
		t.Fatal(err)
	}
	addr := testutil.StartMosquittoConf(t, "allow_anonymous true\nsys_interval 1\nacl_file "+path+"\n").Addr
	const wait = 5 * time.Second

	admin := connect(t, addr, "admin", "admin")
	if codes, _ := subscribe(t, admin, 1, []string{"$SYS/broker/uptime"}, wait); codes[0] != 0 {
		t.Fatalf("admin subscribe: %v", codes)
	}
	admin.ExpectPublish(3 * time.Second) // the $SYS tree is there: retained messages are answered from it
	if codes, _ := subscribe(t, admin, 2, []string{"#"}, wait); codes[0] != 0 {
		t.Fatalf("admin subscribe: %v", codes)
	}

	identities := [][2]string{{"", "anon"}, {"alice", "a1"}, {"bob", "b1"}, {"carol", "c1"}, {"dave", "x/y"}, {"carol", "c+"}, {"alice", "a#"}}
	topics := []string{"public/a", "public/secret", "$SYS/broker/uptime", "alice", "alice/x/y", "alice/locked",
		"shared/in", "shared/out/1", "shared/out/1/2", "public/both", "with space/x", "anything/at/all", "bob/hidden",
		"devices/%c/t", "devices/%c/forbidden", "users/%u/status", "pub/%u/%c", "devices/b1/t"}
	checked, allowed := 0, 0 // allowed: not every answer is no
	for n, id := range identities {
		user, cid := id[0], id[1]
		perms := acl.For(user, cid)
		var mine []string
		for _, tp := range topics {
			tp = strings.NewReplacer("%u", user, "%c", cid).Replace(tp)
			if !strings.ContainsAny(tp, "+#") && !strings.Contains(tp, "//") && !strings.HasSuffix(tp, "/") {
				mine = append(mine, tp)
			}
		}
		c := connect(t, addr, user, cid)

		// Reading: subscribe to each topic, admin publishes, then a
		// SUBSCRIBE round trip: what came before its SUBACK was delivered.
		codes, got := subscribe(t, c, 10, mine, wait)
		for i, tp := range mine {
			ok, _ := perms.CanSubscribe([]byte(tp))
			if granted := codes[i] < 0x80; granted != ok {
				t.Errorf("%s/%s subscribe %q: Mosquitto grants %v, Shoal %v", user, cid, tp, granted, ok)
			}
		}
		sent := 0
		for i, tp := range mine {
			if strings.HasPrefix(tp, "$") {
				continue // retained, from the broker itself
			}
			admin.SendPublish(codec.Publish{QoS: 1, PacketID: uint16(100 + i), Topic: []byte(tp), Payload: []byte("r")})
			sent++
		}
		awaitAcks(t, admin, sent, wait)
		_, more := subscribe(t, c, 99, []string{"zz/sync"}, wait)
		got = append(got, more...)
		for _, tp := range mine {
			mosq, shoal := slices.Contains(got, tp), perms.CanReceive([]byte(tp))
			if mosq != shoal {
				t.Errorf("%s/%s read %q: Mosquitto %v, Shoal %v", user, cid, tp, mosq, shoal)
			}
			checked++
			if mosq {
				allowed++
			}
		}

		// Writing: the client publishes each topic, then admin publishes a
		// marker of its own: what admin saw before it got through.
		sent = 0
		for i, tp := range mine {
			if strings.HasPrefix(tp, "$") {
				continue // the broker's own, refused whatever the ACL says
			}
			c.SendPublish(codec.Publish{QoS: 1, PacketID: uint16(200 + i), Topic: []byte(tp), Payload: []byte("w")})
			sent++
		}
		awaitAcks(t, c, sent, wait) // passing over its own messages: it reads them too
		marker := fmt.Sprintf("zz/marker/%d", n)
		admin.SendPublish(codec.Publish{Topic: []byte(marker)})
		seen := map[string]bool{}
		for {
			f, err := admin.Read(wait)
			if err != nil {
				t.Fatalf("waiting for the marker: %v", err)
			}
			if f.Header.Type != codec.PUBLISH {
				continue
			}
			p := admin.Publish(f)
			if string(p.Topic) == marker {
				break
			}
			if string(p.Payload) == "w" {
				seen[string(p.Topic)] = true
			}
		}
		for _, tp := range mine {
			if strings.HasPrefix(tp, "$") {
				continue
			}
			if mosq, shoal := seen[tp], perms.CanPublish([]byte(tp)); mosq != shoal {
				t.Errorf("%s/%s write %q: Mosquitto %v, Shoal %v", user, cid, tp, mosq, shoal)
			}
			checked++
			if seen[tp] {
				allowed++
			}
		}
		c.Drop()
	}
	t.Logf("%d answers compared, %d of them yes", checked, allowed)
	if allowed < checked/5 {
		t.Errorf("only %d of %d answers are yes: the grid asks too little", allowed, checked)
	}
}

// connect opens an MQTT 3.1.1 connection as user ("" for none) with
// client identifier id.
func connect(t *testing.T, addr, user, id string) *testutil.Raw {
	t.Helper()
	c := codec.Connect{ClientID: []byte(id), CleanStart: true, KeepAlive: 60}
	if user != "" {
		c.UsernameFlag, c.Username = true, []byte(user)
	}
	r, _ := testutil.DialConnect(t, addr, codec.V311, c)
	return r
}

// awaitAcks reads r until n PUBACKs came, passing over PUBLISH packets
// (a client may be subscribed to what it publishes).
func awaitAcks(t *testing.T, r *testutil.Raw, n int, d time.Duration) {
	t.Helper()
	for n > 0 {
		f, err := r.Read(d)
		if err != nil {
			t.Fatalf("waiting for %d PUBACKs: %v", n, err)
		}
		if f.Header.Type == codec.PUBACK {
			n--
		}
	}
}

// subscribe sends one SUBSCRIBE per filter, with packet identifiers from
// id on, and reads until every SUBACK is in. It returns the first code of
// each, in filter order, and the topics of the messages that arrived
// meanwhile: those sent before the last SUBACK, which a broker queues
// behind them.
func subscribe(t *testing.T, r *testutil.Raw, id uint16, filters []string, d time.Duration) ([]byte, []string) {
	t.Helper()
	for i, f := range filters {
		s := codec.Subscribe{PacketID: id + uint16(i), Filters: []codec.Subscription{{Filter: []byte(f)}}}
		r.Send(s.Append(nil, r.Version))
	}
	codes := make([]byte, len(filters))
	var topics []string
	for left := len(filters); left > 0; {
		f, err := r.Read(d)
		if err != nil {
			t.Fatalf("waiting for %d SUBACKs: %v", left, err)
		}
		switch f.Header.Type {
		case codec.SUBACK:
			var ack codec.Suback
			if err := ack.Decode(codec.SUBACK, f.Body, r.Version); err != nil {
				t.Fatal(err)
			}
			codes[ack.PacketID-id] = byte(ack.Codes[0])
			left--
		case codec.PUBLISH:
			topics = append(topics, string(r.Publish(f).Topic))
		}
	}
	return codes, topics
}
