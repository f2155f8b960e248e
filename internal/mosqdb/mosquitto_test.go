package mosqdb

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/session"
	"github.com/shoalmq/shoal/store"
)

// mosquittoState makes, in the real Mosquitto broker m, every kind of
// state its persistence file keeps:
//
//   - "sub3", MQTT 3.1.1 without clean session (mosquitto_sub -c),
//     subscribed to a/# at QoS 1, away while a/1 (QoS 1) and a/2 (QoS 2)
//     are published, and a/0 at QoS 0, which Mosquitto does not queue;
//   - "sub5", MQTT 5 with a Session Expiry Interval of an hour, subscribed
//     to b/+ at QoS 2 with No Local, Retain As Published and Subscription
//     Identifier 9, and to c/# at QoS 1; away while b/x is published at
//     QoS 2 with properties and a Message Expiry Interval of two hours;
//   - "flight", 3.1.1, connected and subscribed to i/# at QoS 2: i/1 (QoS
//     1) sent to it and not acknowledged, i/2 (QoS 2) sent, PUBREC and
//     PUBREL exchanged, PUBCOMP not sent;
//   - "half", 3.1.1, connected, published a/h at QoS 2 with packet id 7,
//     got its PUBREC and sent no PUBREL: Mosquitto holds it for sub3;
//   - retained r/1 (QoS 1, 3.1.1) and r/5 (QoS 0, MQTT 5 properties).
//
// It returns the live connections, which the caller keeps open until m
// stops.
func mosquittoState(t *testing.T, m *testutil.MosquittoBroker) []*testutil.Raw {
	t.Helper()
	host, port := testutil.HostPort(t, m.Addr)
	cli := func(name string, args ...string) {
		t.Helper()
		if out, err := testutil.Mosquitto(t, 10*time.Second, name, append([]string{"-h", host, "-p", port}, args...)...); err != nil {
			t.Fatalf("%s %q: %v: %s", name, args, err, out)
		}
	}
	cli("mosquitto_sub", "-c", "-i", "sub3", "-q", "1", "-t", "a/#", "-E")

	sub5, _ := testutil.DialConnect(t, m.Addr, codec.V5, codec.Connect{ClientID: []byte("sub5"), Props: sessionExpiry(3600)})
	var withID codec.Subscribe
	withID.PacketID = 1
	withID.Props.Set(codec.PropSubscriptionID)
	withID.Props.SubIDs = []uint32{9}
	withID.Filters = []codec.Subscription{{Filter: []byte("b/+"), QoS: 2, NoLocal: true, RetainAsPublished: true}}
	if ack := sub5.SubscribeWith(withID); ack.Codes[0] != 2 {
		t.Fatalf("sub5's SUBACK %v", ack.Codes)
	}
	if ack := sub5.SubscribeWith(codec.Subscribe{PacketID: 2, Filters: []codec.Subscription{{Filter: []byte("c/#"), QoS: 1, RetainHandling: 2}}}); ack.Codes[0] != 1 {
		t.Fatalf("sub5's SUBACK %v", ack.Codes)
	}
	sub5.SendDisconnect(codec.Success)
	sub5.Drop()

	flight, _ := testutil.DialConnect(t, m.Addr, codec.V311, codec.Connect{ClientID: []byte("flight")})
	flight.Subscribe(1, "i/#", 2)
	half, _ := testutil.DialConnect(t, m.Addr, codec.V311, codec.Connect{ClientID: []byte("half")})

	cli("mosquitto_pub", "-q", "1", "-t", "a/1", "-m", "one")
	cli("mosquitto_pub", "-q", "2", "-t", "a/2", "-m", "two")
	cli("mosquitto_pub", "-q", "0", "-t", "a/0", "-m", "zero")
	cli("mosquitto_pub", "-V", "mqttv5", "-q", "2", "-t", "b/x", "-m", "five", "-D", "publish", "user-property", "k", "v",
		"-D", "publish", "content-type", "text/plain", "-D", "publish", "message-expiry-interval", "7200")
	cli("mosquitto_pub", "-q", "1", "-r", "-t", "r/1", "-m", "ret1")
	cli("mosquitto_pub", "-V", "mqttv5", "-q", "0", "-r", "-t", "r/5", "-m", "ret5", "-D", "publish", "correlation-data", "abc",
		"-D", "publish", "response-topic", "resp/t")

	cli("mosquitto_pub", "-q", "1", "-t", "i/1", "-m", "in flight")
	if p, _ := flight.ExpectPublish(testutil.Wait); string(p.Topic) != "i/1" {
		t.Fatalf("flight got %s", p.Topic)
	}
	cli("mosquitto_pub", "-q", "2", "-t", "i/2", "-m", "released")
	p, _ := flight.ExpectPublish(testutil.Wait)
	flight.SendAck(codec.PUBREC, p.PacketID)
	flight.ExpectAck(codec.PUBREL, p.PacketID, testutil.Wait)

	half.SendPublish(codec.Publish{QoS: 2, Topic: []byte("a/h"), PacketID: 7, Payload: []byte("held")})
	half.ExpectAck(codec.PUBREC, 7, testutil.Wait)
	return []*testutil.Raw{flight, half}
}

func sessionExpiry(s uint32) codec.Properties {
	var p codec.Properties
	p.Set(codec.PropSessionExpiry)
	p.SessionExpiry = s
	return p
}

// save names a file to copy the database of TestReadRealMosquitto to:
// testdata/mosquitto-2.0.11.db was made so, by
// go test -run TestReadRealMosquitto -save testdata/mosquitto-2.0.11.db.
var save = flag.String("save", "", "copy the real Mosquitto's database to this file")

// saveMosquittoDB makes mosquittoState in a real Mosquitto, stops it with
// SIGTERM (it saves its database as it exits) and returns the file's path
// and when it stopped.
func saveMosquittoDB(t *testing.T) (string, time.Time) {
	t.Helper()
	dir := t.TempDir()
	m := testutil.StartMosquittoConf(t, fmt.Sprintf("allow_anonymous true\npersistence true\npersistence_location %s/\n"+
		"log_dest stderr\nlog_type all\n", dir))
	conns := mosquittoState(t, m)
	m.Stop()
	stopped := time.Now()
	for _, c := range conns {
		c.Drop()
	}
	return filepath.Join(dir, "mosquitto.db"), stopped
}

// TestReadRealMosquitto: the file the real Mosquitto writes reads as what
// was done to it.
func TestReadRealMosquitto(t *testing.T) {
	path, stopped := saveMosquittoDB(t)
	if *save != "" {
		testutil.CopyFile(t, *save, path)
	}
	f, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != 6 || !f.Shutdown || f.Unknown != 0 {
		t.Errorf("version %d, shutdown %v, %d unknown chunks", f.Version, f.Shutdown, f.Unknown)
	}
	clients := map[string]Client{}
	for _, c := range f.Clients {
		clients[c.ID] = c
	}
	for _, id := range []string{"sub3", "flight", "half"} {
		if c := clients[id]; c.ExpiryInterval != NeverExpires || c.ExpiryTime != 0 {
			t.Errorf("%s: interval %d, time %d; want never, 0", id, c.ExpiryInterval, c.ExpiryTime)
		}
	}
	if c := clients["sub5"]; c.ExpiryInterval != 3600 || !near(c.ExpiryTime, stopped.Unix()+3600) {
		t.Errorf("sub5: interval %d, ends at %d; want 3600, about %d", c.ExpiryInterval, c.ExpiryTime, stopped.Unix()+3600)
	}
	if len(clients) != 4 {
		t.Errorf("clients %+v; want sub3, sub5, flight, half", f.Clients)
	}

	var subs []string
	for _, s := range f.Subs {
		subs = append(subs, fmt.Sprintf("%s %s q%d o%02x id%d", s.ClientID, s.Filter, s.QoS, s.Options, s.Identifier))
	}
	slices.Sort(subs)
	if want := []string{"flight i/# q2 o00 id0", "sub3 a/# q1 o00 id0", "sub5 b/+ q2 o0c id9", "sub5 c/# q1 o00 id0"}; !reflect.DeepEqual(subs, want) {
		t.Errorf("subscriptions\n%q, want\n%q", subs, want)
	}

	var cms []string
	for _, cm := range f.ClientMsgs {
		m := f.Message(cm.StoreID)
		if m == nil {
			t.Fatalf("client message at %d names store id %d, not in the file", cm.Offset, cm.StoreID)
		}
		cms = append(cms, fmt.Sprintf("%s %s %s q%d %v dir%d mid>0:%v props%x", cm.ClientID, m.Topic, m.Payload, cm.QoS, cm.State, cm.Direction, cm.MID > 0, cm.Props))
	}
	slices.Sort(cms)
	want := []string{
		"flight i/1 in flight q1 wait_for_puback dir1 mid>0:true props",
		"flight i/2 released q2 wait_for_pubcomp dir1 mid>0:true props",
		"half a/h held q2 wait_for_pubrel dir0 mid>0:true props",
		"sub3 a/1 one q1 queued dir1 mid>0:true props",
		"sub3 a/2 two q1 queued dir1 mid>0:true props",
		"sub5 b/x five q2 queued dir1 mid>0:true props020b09", // Subscription Identifier 9
	}
	if !reflect.DeepEqual(cms, want) {
		t.Errorf("client messages\n%q, want\n%q", cms, want)
	}

	var retained []string
	for _, r := range f.Retains {
		m := f.Message(r.StoreID)
		retained = append(retained, fmt.Sprintf("%s %s q%d retain%v props%x", m.Topic, m.Payload, m.QoS, m.Retain, m.Props))
	}
	slices.Sort(retained)
	wantRet := []string{
		"r/1 ret1 q1 retaintrue props",
		"r/5 ret5 q0 retaintrue props0f090003616263080006726573702f74", // Correlation Data abc, Response Topic resp/t
	}
	if !reflect.DeepEqual(retained, wantRet) {
		t.Errorf("retained\n%q, want\n%q", retained, wantRet)
	}
	for _, m := range f.Messages {
		if string(m.Topic) == "b/x" && !near(m.Expiry, stopped.Unix()+7200) {
			t.Errorf("b/x expires at %d, want about %d", m.Expiry, stopped.Unix()+7200)
		}
		if string(m.Topic) == "a/h" && (string(m.SourceID) != "half" || m.QoS != 2 || m.SourceMID != 7) {
			t.Errorf("a/h: from %q QoS %d packet id %d", m.SourceID, m.QoS, m.SourceMID)
		}
	}
}

// near reports whether Unix times a and b are within a minute.
func near(a, b int64) bool { return a > b-60 && a < b+60 }

// TestImportRealMosquitto: the real file imports as Shoal's records, the
// file unchanged.
func TestImportRealMosquitto(t *testing.T) {
	path, stopped := saveMosquittoDB(t)
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum, l := importInto(t, f, Options{})
	if sum.Sessions != 4 || sum.Subscriptions != 4 || sum.Retained != 2 || sum.Queued != 3 || sum.InFlight != 2 ||
		sum.Released != 1 || sum.Routed != 1 || sum.SkippedTotal() != 0 {
		t.Errorf("summary %s", sum)
	}
	var dels []string
	for _, d := range l.deliveries {
		dels = append(dels, d[strings.Index(d, " ")+1:]) // without the client's order
	}
	for _, want := range []string{
		"a/1 one q1 rfalse id0 st0 subs[] from",
		"a/2 two q1 rfalse id0 st0 subs[] from",      // sub3 subscribed at QoS 1
		"a/h held q1 rfalse id0 st0 subs[] fromhalf", // released: routed to sub3
		"b/x five q2 rfalse id0 st0 subs[9] from",
		"mq2 props03000a746578742f706c61696e2600016b000176", // Content Type text/plain, User Property k=v
		fmt.Sprintf("i/1 in flight q1 rfalse id1 st%d subs[] from", session.AwaitPuback),
		fmt.Sprintf("i/2 released q2 rfalse id2 st%d subs[] from", session.AwaitPubcomp),
	} {
		if !slices.ContainsFunc(dels, func(d string) bool { return strings.Contains(d, want) }) {
			t.Errorf("no delivery like %q in\n%q", want, l.deliveries)
		}
	}
	if want := []string{"half 7"}; !reflect.DeepEqual(l.awaits, want) {
		t.Errorf("awaited ids %q, want %q", l.awaits, want)
	}
	for _, s := range l.sessions {
		if s.ClientID == "sub5" {
			want := []store.Sub{{Filter: "b/+", Opts: router.Options{QoS: 2, NoLocal: true, RetainAsPublished: true, SubID: 9}},
				{Filter: "c/#", Opts: router.Options{QoS: 1}}}
			slices.SortFunc(s.Subs, func(a, b store.Sub) int { return strings.Compare(a.Filter, b.Filter) })
			if s.Expiry != 3600 || !near(s.ExpireAt/1e9, stopped.Unix()+3600) || !reflect.DeepEqual(s.Subs, want) {
				t.Errorf("sub5: %+v", s)
			}
		}
	}
	after, err := os.ReadFile(path)
	if err != nil || string(after) != string(before) {
		t.Errorf("mosquitto.db changed (%v)", err)
	}
}
