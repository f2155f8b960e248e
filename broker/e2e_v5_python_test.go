package broker_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/internal/testutil"
)

// End-to-end MQTT 5 tests with Eclipse Paho's Python client (Debian's
// python3-paho-mqtt 1.6), a client nobody here wrote. Each test runs a
// script from testdata/python (one scenario, parameterised by JSON) that
// drives paho clients against its own broker and prints what they observed
// as JSON lines; the assertions are all here. v5client.py documents the
// line format.

// pyTimeout is the hard limit on one script. The scripts bound every wait
// themselves (10 s per acknowledgement, which only a failure waits out)
// and the longest scenario takes about 4 s; this only catches a wedged
// interpreter.
const pyTimeout = 40 * time.Second

// pyProps are MQTT 5 properties as paho names them. Every property a paho
// client can report has a field, so comparing String forms also catches a
// property the broker added.
type pyProps struct {
	PayloadFormatIndicator          *int        `json:"PayloadFormatIndicator,omitempty"`
	MessageExpiryInterval           *int        `json:"MessageExpiryInterval,omitempty"`
	ContentType                     *string     `json:"ContentType,omitempty"`
	ResponseTopic                   *string     `json:"ResponseTopic,omitempty"`
	CorrelationData                 *string     `json:"CorrelationData,omitempty"` // hex
	SubscriptionIdentifier          []int       `json:"SubscriptionIdentifier,omitempty"`
	SessionExpiryInterval           *int        `json:"SessionExpiryInterval,omitempty"`
	AssignedClientIdentifier        *string     `json:"AssignedClientIdentifier,omitempty"`
	ServerKeepAlive                 *int        `json:"ServerKeepAlive,omitempty"`
	AuthenticationMethod            *string     `json:"AuthenticationMethod,omitempty"`
	AuthenticationData              *string     `json:"AuthenticationData,omitempty"`
	RequestProblemInformation       *int        `json:"RequestProblemInformation,omitempty"`
	WillDelayInterval               *int        `json:"WillDelayInterval,omitempty"`
	RequestResponseInformation      *int        `json:"RequestResponseInformation,omitempty"`
	ResponseInformation             *string     `json:"ResponseInformation,omitempty"`
	ServerReference                 *string     `json:"ServerReference,omitempty"`
	ReasonString                    *string     `json:"ReasonString,omitempty"`
	ReceiveMaximum                  *int        `json:"ReceiveMaximum,omitempty"`
	TopicAliasMaximum               *int        `json:"TopicAliasMaximum,omitempty"`
	TopicAlias                      *int        `json:"TopicAlias,omitempty"`
	MaximumQoS                      *int        `json:"MaximumQoS,omitempty"`
	RetainAvailable                 *int        `json:"RetainAvailable,omitempty"`
	UserProperty                    [][2]string `json:"UserProperty,omitempty"`
	MaximumPacketSize               *int        `json:"MaximumPacketSize,omitempty"`
	WildcardSubscriptionAvailable   *int        `json:"WildcardSubscriptionAvailable,omitempty"`
	SubscriptionIdentifierAvailable *int        `json:"SubscriptionIdentifierAvailable,omitempty"`
	SharedSubscriptionAvailable     *int        `json:"SharedSubscriptionAvailable,omitempty"`
}

// String is the properties' canonical JSON: equal properties, equal strings.
func (p pyProps) String() string {
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Sprintf("unprintable properties: %v", err)
	}
	return string(b)
}

// pyMessage is a PUBLISH a paho client received.
type pyMessage struct {
	Topic   string  `json:"topic"`
	Payload string  `json:"payload"`
	QoS     int     `json:"qos"`
	Retain  bool    `json:"retain"`
	Props   pyProps `json:"properties"`
	T       float64 `json:"t"` // seconds since the script started
}

// brief is the message without its properties: "topic payload qN [retain]".
func (m pyMessage) brief() string {
	s := fmt.Sprintf("%s %s q%d", m.Topic, m.Payload, m.QoS)
	if m.Retain {
		s += " retain"
	}
	return s
}

// pyDisconnect is one end of a paho client's connection: Reason is set when
// the broker sent DISCONNECT, Local when paho ended it (0: it disconnected,
// 7: connection lost).
type pyDisconnect struct {
	Reason *int    `json:"reason"`
	Local  *int    `json:"local"`
	Props  pyProps `json:"properties"`
	T      float64 `json:"t"`
}

// pyStep is one line a script printed. Which fields are set depends on
// the step: a CONNACK (Reason, SessionPresent, Props), SUBACK or UNSUBACK
// codes, messages, disconnects, or a time.
type pyStep struct {
	Step           string         `json:"step"`
	Reason         *int           `json:"reason"`
	SessionPresent bool           `json:"session_present"`
	Props          pyProps        `json:"properties"`
	Codes          []int          `json:"codes"`
	Messages       []pyMessage    `json:"messages"`
	Disconnects    []pyDisconnect `json:"disconnects"`
	T              float64        `json:"t"`
}

// pyReport is a script's output, by step.
type pyReport struct {
	script string
	steps  map[string]pyStep
	out    string
}

// step returns the line labelled name, failing the test if there is none.
func (r pyReport) step(t *testing.T, name string) pyStep {
	t.Helper()
	s, ok := r.steps[name]
	if !ok {
		t.Fatalf("%s printed no step %q; output:\n%s", r.script, name, r.out)
	}
	return s
}

// connack returns step name as a CONNACK, failing unless it accepted.
func (r pyReport) connack(t *testing.T, name string) pyStep {
	t.Helper()
	s := r.step(t, name)
	if s.Reason == nil || *s.Reason != 0 {
		t.Fatalf("%s: CONNACK reason %v, want 0 (success); output:\n%s", name, deref(s.Reason), r.out)
	}
	return s
}

// startPython starts testdata/python/script's scenario against addr. The
// returned function waits for it and returns its report, failing the test
// if it timed out, exited non-zero, reported an error or did not finish.
func startPython(t *testing.T, addr, script, scenario string, params any) func() pyReport {
	t.Helper()
	host, port := testutil.HostPort(t, addr)
	args := []string{filepath.Join("testdata", "python", script), host, port, scenario}
	if params != nil {
		b, err := json.Marshal(params)
		if err != nil {
			t.Fatal(err)
		}
		args = append(args, string(b))
	}
	ctx, cancel := context.WithTimeout(context.Background(), pyTimeout)
	cmd := exec.CommandContext(ctx, testutil.Python(t), args...)
	// No __pycache__ in the source tree.
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	cmd.WaitDelay = time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("%s: %v", script, err)
	}
	done := false
	t.Cleanup(func() {
		if !done {
			cancel()
			_ = cmd.Wait()
		}
	})
	name := script + " " + scenario
	return func() pyReport {
		t.Helper()
		err := cmd.Wait()
		done = true
		cancel()
		if ctx.Err() == context.DeadlineExceeded {
			t.Fatalf("%s: killed after %v; stdout:\n%s\nstderr:\n%s", name, pyTimeout, &stdout, &stderr)
		}
		if err != nil {
			t.Fatalf("%s: %v; stdout:\n%s\nstderr:\n%s", name, err, &stdout, &stderr)
		}
		r := pyReport{script: name, steps: map[string]pyStep{}, out: stdout.String()}
		sc := bufio.NewScanner(strings.NewReader(r.out))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var s pyStep
			if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
				t.Fatalf("%s: line %q: %v", name, sc.Text(), err)
			}
			if _, dup := r.steps[s.Step]; dup {
				t.Fatalf("%s: step %q printed twice; output:\n%s", name, s.Step, r.out)
			}
			r.steps[s.Step] = s
		}
		if _, ok := r.steps["done"]; !ok {
			t.Fatalf("%s: did not finish; stdout:\n%s\nstderr:\n%s", name, r.out, &stderr)
		}
		return r
	}
}

// runPython runs a scenario to the end; see startPython.
func runPython(t *testing.T, addr, script, scenario string, params any) pyReport {
	t.Helper()
	return startPython(t, addr, script, scenario, params)()
}

func ptr[T any](v T) *T { return &v }

func deref[T any](p *T) any {
	if p == nil {
		return "absent"
	}
	return *p
}

// briefs lists messages without their properties, for comparison.
func briefs(msgs []pyMessage) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.brief()
	}
	return out
}

func wantMessages(t *testing.T, what string, got []pyMessage, want ...string) {
	t.Helper()
	if b := briefs(got); !slices.Equal(b, want) {
		t.Errorf("%s: got %q, want %q", what, b, want)
	}
}

func wantProps(t *testing.T, what string, got, want pyProps) {
	t.Helper()
	if got.String() != want.String() {
		t.Errorf("%s: properties\n got %s\nwant %s", what, got, want)
	}
}

func wantCodes(t *testing.T, what string, got []int, want ...int) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: reason codes %#x, want %#x", what, got, want)
	}
}

// wantServerDisconnect checks that the broker ended the connection with a
// DISCONNECT carrying code, before anything else ended it.
func wantServerDisconnect(t *testing.T, what string, got []pyDisconnect, code int) {
	t.Helper()
	if len(got) == 0 {
		t.Errorf("%s: connection not closed, want DISCONNECT %#x", what, code)
		return
	}
	d := got[0]
	switch {
	case d.Reason == nil:
		t.Errorf("%s: connection ended without DISCONNECT (paho status %v), want DISCONNECT %#x", what, deref(d.Local), code)
	case *d.Reason != code:
		t.Errorf("%s: DISCONNECT %#x (%s), want %#x", what, *d.Reason, deref(d.Props.ReasonString), code)
	}
}

// TestV5PythonPublishProperties: the properties of a PUBLISH reach a
// subscriber unaltered at every QoS, user properties in their order and
// with a repeated key, and the broker adds none: Payload Format Indicator
// [MQTT-3.3.2-4], Response Topic [MQTT-3.3.2-15], Correlation Data
// [MQTT-3.3.2-16], User Properties [MQTT-3.3.2-17] [MQTT-3.3.2-18],
// Content Type [MQTT-3.3.2-20].
func TestV5PythonPublishProperties(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	sent := pyProps{
		PayloadFormatIndicator: ptr(1),
		ContentType:            ptr("text/plain; charset=utf-8"),
		ResponseTopic:          ptr("pp/reply/ünïcødé"),
		CorrelationData:        ptr("00ff10636f7272"),
		UserProperty:           [][2]string{{"k1", "v1"}, {"zz", "first"}, {"k1", "v2"}, {"a", ""}, {"ключ", "值"}},
	}
	r := runPython(t, addr, "publish.py", "passthrough", map[string]any{"properties": sent})
	wantCodes(t, "SUBACK", r.step(t, "suback").Codes, 2)
	msgs := r.step(t, "messages").Messages
	wantMessages(t, "subscriber", msgs, "pp/q0 payload-0 q0", "pp/q1 payload-1 q1", "pp/q2 payload-2 q2")
	for _, m := range msgs {
		wantProps(t, m.Topic, m.Props, sent)
	}
}

// TestV5PythonRequestResponse: a requester asks for Response Information
// (MQTT 5 sections 3.1.2.11.7, 3.2.2.3.15), builds its response topic on
// it and gets the responder's answer there with its Correlation Data
// (MQTT 5 section 4.10; [MQTT-3.3.2-15], [MQTT-3.3.2-16]).
func TestV5PythonRequestResponse(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, func(c *broker.Config) { c.ResponseInformation = "shoal/rr/" })
	r := runPython(t, addr, "publish.py", "request_response", map[string]any{"correlation": "c0ffee01"})
	if got := deref(r.connack(t, "requester.connack").Props.ResponseInformation); got != "shoal/rr/" {
		t.Fatalf("Response Information %v, want shoal/rr/", got)
	}
	req := r.step(t, "responder.messages").Messages
	wantMessages(t, "responder", req, "rr/request ping q1")
	if len(req) == 1 {
		wantProps(t, "request", req[0].Props, pyProps{ResponseTopic: ptr("shoal/rr/rr-requester/reply"), CorrelationData: ptr("c0ffee01")})
	}
	resp := r.step(t, "requester.messages").Messages
	wantMessages(t, "requester", resp, "shoal/rr/rr-requester/reply pong:ping q1")
	if len(resp) == 1 {
		wantProps(t, "response", resp[0].Props, pyProps{CorrelationData: ptr("c0ffee01")})
	}
}

// TestV5PythonMessageExpiry: a forwarded Message Expiry Interval is the
// sent one minus the time the message waited [MQTT-3.3.2-6]; a message
// whose interval passed while its subscriber's session was offline, or
// while retained, is not delivered [MQTT-3.3.2-5]; one without an interval
// never expires.
func TestV5PythonMessageExpiry(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	const wait = 2.2 // seconds offline: past the 1 s intervals
	r := runPython(t, addr, "session.py", "message_expiry", map[string]any{"wait": wait})

	online := r.step(t, "online.messages").Messages
	wantMessages(t, "online", online, "me/online online q1")
	if len(online) == 1 {
		if e := online[0].Props.MessageExpiryInterval; e == nil || *e > 60 || *e < 59 {
			t.Errorf("online: Message Expiry Interval %v, want 59..60 (sent 60)", deref(e))
		}
	}

	if !r.connack(t, "offline.connack").SessionPresent {
		t.Errorf("offline session not present on reconnect [MQTT-3.2.2-3]")
	}
	queued := r.step(t, "offline.messages").Messages
	wantMessages(t, "offline session", queued, "me/off long q1", "me/off forever q1")
	for _, m := range queued {
		e := m.Props.MessageExpiryInterval
		switch m.Payload {
		case "long":
			// Waited about 2.2 s: 60 - 2.2 rounds to 58 (57 under load).
			if e == nil || *e > 58 || *e < 50 {
				t.Errorf("queued: Message Expiry Interval %v, want 50..58 (sent 60, waited %.1fs)", deref(e), wait)
			}
		case "forever":
			if e != nil {
				t.Errorf("queued without expiry: Message Expiry Interval %d, want none", *e)
			}
		}
	}

	retained := r.step(t, "retained.messages").Messages
	wantMessages(t, "retained", retained, "me/retained/long long q1 retain", "me/retained/barrier barrier q1")
	if len(retained) > 0 {
		if e := retained[0].Props.MessageExpiryInterval; e == nil || *e > 58 || *e < 50 {
			t.Errorf("retained: Message Expiry Interval %v, want 50..58", deref(e))
		}
	}
}

// TestV5PythonSubscriptionIdentifiers: a message matching several of a
// client's subscriptions arrives once with the identifiers of all those
// that have one, in any order [MQTT-3.3.4-3] [MQTT-3.3.4-4] (Shoal sends
// one copy); resubscribing replaces the identifier [MQTT-3.8.4-3]; a
// retained message sent on subscribing carries the new subscription's.
func TestV5PythonSubscriptionIdentifiers(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	r := runPython(t, addr, "subscribe.py", "sub_ids", nil)
	for _, s := range []string{"suback.plus", "suback.hash", "suback.exact", "resubscribe"} {
		wantCodes(t, s, r.step(t, s).Codes, 1)
	}
	msgs := r.step(t, "messages").Messages
	wantMessages(t, "subscriber", msgs,
		"sid/x all-three q1", "sid/y/z hash-only q1", "sid/x replaced q1", "sidr/a retained q1 retain", "sid/y/z barrier q1")
	want := map[string][]int{
		"all-three": {7, 16384},
		"hash-only": {16384},
		"replaced":  {8, 16384},
		"retained":  {9},
		"barrier":   {16384},
	}
	for _, m := range msgs {
		ids := slices.Sorted(slices.Values(m.Props.SubscriptionIdentifier))
		if !slices.Equal(ids, want[m.Payload]) {
			t.Errorf("%s %q: Subscription Identifiers %v, want %v", m.Topic, m.Payload, m.Props.SubscriptionIdentifier, want[m.Payload])
		}
	}
}

// TestV5PythonNoLocal: with No Local a client does not get its own
// messages, but gets everyone else's [MQTT-3.8.3-3].
func TestV5PythonNoLocal(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	r := runPython(t, addr, "subscribe.py", "no_local", nil)
	wantMessages(t, "No Local subscriber", r.step(t, "a.messages").Messages, "nl/t from-b q1")
	wantMessages(t, "plain subscriber", r.step(t, "b.messages").Messages, "nl/t from-a q1", "nl/t from-b q1")
}

// TestV5PythonRetainAsPublished: with Retain As Published a forwarded
// message keeps its RETAIN flag [MQTT-3.3.1-13], without it the flag is
// cleared [MQTT-3.3.1-12]; a retained message sent because of a new
// subscription has RETAIN set either way (MQTT 5 section 3.3.1.3).
func TestV5PythonRetainAsPublished(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	r := runPython(t, addr, "subscribe.py", "retain_as_published", nil)
	wantMessages(t, "Retain As Published", r.step(t, "yes.messages").Messages, "rap/t retained q1 retain", "rap/t plain q1")
	wantMessages(t, "without it", r.step(t, "no.messages").Messages, "rap/t retained q1", "rap/t plain q1")
	wantMessages(t, "late subscriber", r.step(t, "late.messages").Messages, "rap/t retained q1 retain", "rap/t barrier q1")
}

// TestV5PythonRetainHandling: each client subscribes twice to a topic
// with a retained message. Retain Handling 0 sends it on every SUBSCRIBE
// [MQTT-3.3.1-9] [MQTT-3.8.4-4], 1 only when the subscription is new
// [MQTT-3.3.1-10], 2 never [MQTT-3.3.1-11].
func TestV5PythonRetainHandling(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	r := runPython(t, addr, "subscribe.py", "retain_handling", nil)
	for rh := range 3 {
		wantCodes(t, fmt.Sprintf("Retain Handling %d", rh), r.step(t, fmt.Sprintf("rh%d.suback", rh)).Codes, 1, 1)
	}
	const retained, live = "rh/t retained q1 retain", "rh/t live q1"
	wantMessages(t, "Retain Handling 0", r.step(t, "rh0.messages").Messages, retained, retained, live)
	wantMessages(t, "Retain Handling 1", r.step(t, "rh1.messages").Messages, retained, live)
	wantMessages(t, "Retain Handling 2", r.step(t, "rh2.messages").Messages, live)
}

// TestV5PythonSubackReasonCodes: one SUBSCRIBE with valid and invalid
// filters gets one code per filter, in order [MQTT-3.9.3-1]: the granted
// QoS, capped by the broker's Maximum QoS [MQTT-3.8.4-7], or 0x8F Topic
// Filter invalid (MQTT 5 section 3.9.3; [MQTT-4.7.1-1], [MQTT-4.7.1-2],
// [MQTT-4.8.2-1], [MQTT-4.8.2-2]). Refused filters subscribe to nothing;
// delivery is at min(message QoS, granted QoS) [MQTT-3.8.4-8].
func TestV5PythonSubackReasonCodes(t *testing.T) {
	t.Parallel()
	filters := [][2]any{
		{"ok/+", 1},
		{"bad/#/x", 0},     // '#' not last
		{"a+b", 1},         // '+' not a whole level
		{"ok/two", 2},      // overlaps ok/+
		{"$share/g", 1},    // no filter after the share name
		{"$share/g+/t", 1}, // '+' in the share name
		{"$share/grp/sa/t", 2},
	}
	for _, tc := range []struct {
		name   string
		maxQoS byte
		codes  []int
		got    []string
	}{
		{"max-qos-2", 2, []int{1, 0x8f, 0x8f, 2, 0x8f, 0x8f, 2}, []string{"ok/two ok/two q2", "sa/t sa/t q2"}},
		{"max-qos-1", 1, []int{1, 0x8f, 0x8f, 1, 0x8f, 0x8f, 1}, []string{"ok/two ok/two q1", "sa/t sa/t q1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, addr := testutil.StartBroker(t, func(c *broker.Config) { c.MaxQoS = tc.maxQoS })
			r := runPython(t, addr, "subscribe.py", "suback_codes", map[string]any{
				"filters": filters,
				"publish": []string{"ok/two", "bad/x/x", "sa/t"},
				"qos":     tc.maxQoS, // never above the broker's Maximum QoS [MQTT-3.2.2-11]
				"expect":  len(tc.got),
			})
			wantCodes(t, "SUBACK", r.step(t, "suback").Codes, tc.codes...)
			wantMessages(t, "subscriber", r.step(t, "messages").Messages, tc.got...)
		})
	}
}

// TestV5PythonUnsubackReasonCodes: UNSUBACK has a code per filter, in
// order [MQTT-3.11.3-1]: 0x00 for a subscription removed, 0x11 No
// subscription existed for one that was not there, including the same
// filter again in the same packet [MQTT-3.10.4-6] (MQTT 5 section 3.11.3);
// nothing arrives after the removal [MQTT-3.10.4-2].
func TestV5PythonUnsubackReasonCodes(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	r := runPython(t, addr, "subscribe.py", "unsuback_codes", nil)
	wantCodes(t, "UNSUBACK", r.step(t, "unsuback").Codes, 0x00, 0x11, 0x11)
	wantMessages(t, "after UNSUBSCRIBE", r.step(t, "messages").Messages)
}

// TestV5PythonSharedNoLocal: No Local on a shared subscription is a
// Protocol Error [MQTT-3.8.3-4]: DISCONNECT 0x82 [MQTT-4.13.1-1].
func TestV5PythonSharedNoLocal(t *testing.T) {
	t.Parallel()
	b, addr := testutil.StartBroker(t, nil)
	r := runPython(t, addr, "subscribe.py", "shared_no_local", nil)
	wantServerDisconnect(t, "SUBSCRIBE $share with No Local", r.step(t, "disconnects").Disconnects, 0x82)
	if n := b.SubscriptionCount(); n != 0 {
		t.Errorf("%d subscriptions left, want 0", n)
	}
}

// TestV5PythonConnackProperties: what a CONNACK announces (MQTT 5 section
// 3.2.2.3): Receive Maximum (3.2.2.3.3), Maximum QoS [MQTT-3.2.2-9],
// Retain Available (3.2.2.3.5), Maximum Packet Size (3.2.2.3.6), Topic
// Alias Maximum (3.2.2.3.8), Server Keep Alive when the broker caps the
// client's [MQTT-3.2.2-21], Response Information only when asked for
// (section 3.2.2.3.15), and an Assigned Client Identifier only for an empty
// client id [MQTT-3.2.2-16].
func TestV5PythonConnackProperties(t *testing.T) {
	t.Parallel()
	connects := []map[string]any{
		{"label": "empty-id", "id": "", "keepalive": 60, "properties": map[string]any{"RequestResponseInformation": 1}},
		{"label": "named", "id": "named-client", "keepalive": 5},
		{"label": "no-keepalive", "id": "idle-client", "keepalive": 0},
	}
	for _, tc := range []struct {
		name string
		edit func(*broker.Config)
		want map[string]pyProps // by label; AssignedClientIdentifier checked apart
	}{
		{
			name: "defaults",
			want: map[string]pyProps{
				"empty-id":     {MaximumPacketSize: ptr(1 << 20), ReceiveMaximum: ptr(1024), TopicAliasMaximum: ptr(64)},
				"named":        {MaximumPacketSize: ptr(1 << 20), ReceiveMaximum: ptr(1024), TopicAliasMaximum: ptr(64)},
				"no-keepalive": {MaximumPacketSize: ptr(1 << 20), ReceiveMaximum: ptr(1024), TopicAliasMaximum: ptr(64)},
			},
		},
		{
			name: "configured",
			edit: func(c *broker.Config) {
				c.MaxKeepAlive = 10
				c.ResponseInformation = "resp/"
				c.TopicAliasMaximum = 5
				c.ReceiveMaximum = 20
				c.MaxPacketSize = 4096
				c.MaxQoS = 1
				c.RetainAvailable = false
			},
			want: map[string]pyProps{
				"empty-id": {
					MaximumPacketSize: ptr(4096), ReceiveMaximum: ptr(20), TopicAliasMaximum: ptr(5),
					MaximumQoS: ptr(1), RetainAvailable: ptr(0), ServerKeepAlive: ptr(10), ResponseInformation: ptr("resp/"),
				},
				"named": {
					MaximumPacketSize: ptr(4096), ReceiveMaximum: ptr(20), TopicAliasMaximum: ptr(5),
					MaximumQoS: ptr(1), RetainAvailable: ptr(0),
				},
				// Keep-alive 0 (off) is above any cap: the broker imposes its own.
				"no-keepalive": {
					MaximumPacketSize: ptr(4096), ReceiveMaximum: ptr(20), TopicAliasMaximum: ptr(5),
					MaximumQoS: ptr(1), RetainAvailable: ptr(0), ServerKeepAlive: ptr(10),
				},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, addr := testutil.StartBroker(t, tc.edit)
			r := runPython(t, addr, "connack.py", "connack", map[string]any{"connects": connects})
			for _, c := range connects {
				label := c["label"].(string)
				ack := r.connack(t, label)
				if ack.SessionPresent {
					t.Errorf("%s: Session Present with Clean Start [MQTT-3.2.2-2]", label)
				}
				got := ack.Props
				assigned := got.AssignedClientIdentifier
				got.AssignedClientIdentifier = nil
				wantProps(t, label, got, tc.want[label])
				switch {
				case c["id"] == "" && (assigned == nil || *assigned == ""):
					t.Errorf("%s: no Assigned Client Identifier [MQTT-3.2.2-16]", label)
				case c["id"] != "" && assigned != nil:
					t.Errorf("%s: Assigned Client Identifier %q for a client that named itself", label, *assigned)
				}
			}
		})
	}
}

// TestV5PythonAssignedClientID: the Assigned Client Identifier names the
// session the client got [MQTT-3.1.3-7]: reconnecting with it and Clean
// Start 0 resumes that session and its subscription [MQTT-3.2.2-3].
func TestV5PythonAssignedClientID(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	r := runPython(t, addr, "connack.py", "assigned_id", nil)
	if id := r.connack(t, "first.connack").Props.AssignedClientIdentifier; id == nil || *id == "" {
		t.Fatalf("no Assigned Client Identifier [MQTT-3.2.2-16]")
	}
	if !r.connack(t, "resume.connack").SessionPresent {
		t.Errorf("reconnect with the assigned id: Session Present 0, want 1 [MQTT-3.2.2-3]")
	}
	wantMessages(t, "resumed session", r.step(t, "resume.messages").Messages, "aid/t still-subscribed q1")
}

// TestV5PythonSessionExpiry: a session outlives its connection for its
// Session Expiry Interval (MQTT 5 section 3.1.2.11.2) and keeps what was
// published meanwhile: reconnecting within it finds the session
// [MQTT-3.2.2-3]; after it the session is gone [MQTT-4.1.0-2]; Session
// Expiry Interval 0 on DISCONNECT ends it at once (section 3.14.2.2.2).
func TestV5PythonSessionExpiry(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	// A real client on the real clock: a 1 s expiry has passed by the
	// script's 3 s wait.
	r := runPython(t, addr, "session.py", "session_expiry", map[string]any{"expiry": 1, "wait": 3})
	if r.connack(t, "first.connack").SessionPresent {
		t.Errorf("first connect (Clean Start 1): Session Present 1 [MQTT-3.2.2-2]")
	}
	if !r.connack(t, "resume.connack").SessionPresent {
		t.Errorf("reconnect within the expiry interval: Session Present 0, want 1")
	}
	wantMessages(t, "resumed session", r.step(t, "resume.messages").Messages, "se/t while-away q1")
	if r.connack(t, "expired.connack").SessionPresent {
		t.Errorf("reconnect after the expiry interval: Session Present 1, want 0")
	}
	wantMessages(t, "expired session", r.step(t, "expired.messages").Messages)
	if r.connack(t, "ended.connack").SessionPresent {
		t.Errorf("reconnect after DISCONNECT with Session Expiry Interval 0: Session Present 1, want 0")
	}
}

// TestV5PythonWillDelay: a will waits for its Will Delay Interval and is
// dropped if the session is resumed first [MQTT-3.1.3-9]; it goes out when
// the delay passes, or when the session ends if that is sooner
// [MQTT-3.1.2-8] (MQTT 5 section 3.1.3.2.2), with its properties but not
// the Will Delay Interval, which is no PUBLISH property.
func TestV5PythonWillDelay(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	r := runPython(t, addr, "will.py", "will_delay", nil)
	dropped := r.step(t, "dropped").T
	if !r.connack(t, "a.reconnect").SessionPresent {
		t.Errorf("reconnect within the will delay: Session Present 0, want 1")
	}
	msgs := r.step(t, "messages").Messages
	wantMessages(t, "wills", msgs, "will/c c q1", "will/b b q1")
	for _, m := range msgs {
		after := m.T - dropped
		switch m.Topic {
		case "will/b": // Will Delay Interval 2 s, session 10 s
			if after < 1.8 {
				t.Errorf("will/b published %.2fs after the close, want ≥ 2s (its Will Delay Interval)", after)
			}
			wantProps(t, "will/b", m.Props, pyProps{ContentType: ptr("text/plain")})
		case "will/c": // Will Delay Interval 30 s, session 1 s
			if after < 0.8 || after > 2.5 {
				t.Errorf("will/c published %.2fs after the close, want about 1s (its session's expiry)", after)
			}
		}
	}
}

// TestV5PythonDisconnectWithWill: DISCONNECT 0x04 publishes the will with
// its properties (MQTT 5 section 3.14.2.1); 0x00 discards it
// [MQTT-3.14.4-3]; a connection closed without DISCONNECT publishes it
// [MQTT-3.1.2-8].
func TestV5PythonDisconnectWithWill(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	props := pyProps{
		ContentType:            ptr("text/plain"),
		PayloadFormatIndicator: ptr(1),
		ResponseTopic:          ptr("will/reply"),
		CorrelationData:        ptr("0badcafe"),
		UserProperty:           [][2]string{{"why", "0x04"}, {"why", "again"}},
	}
	r := runPython(t, addr, "will.py", "disconnect_with_will", map[string]any{"properties": props})
	msgs := r.step(t, "messages").Messages
	slices.SortFunc(msgs, func(a, b pyMessage) int { return strings.Compare(a.Topic, b.Topic) })
	wantMessages(t, "wills", msgs, "will/d d q1", "will/f f q1")
	if len(msgs) > 0 && msgs[0].Topic == "will/d" {
		wantProps(t, "will/d", msgs[0].Props, props)
	}
}

// TestV5PythonTakeover: a second connection with the same client id takes
// the session over: the first gets DISCONNECT 0x8E [MQTT-3.1.4-3], the
// second gets the session and its subscription with Clean Start 0
// [MQTT-3.2.2-3]. The first connection's will follows MQTT 5 section
// 3.1.3.2.2: "the Will Message for the existing connection is sent unless
// the new connection specifies Clean Start of 0 and the Will Delay is
// greater than zero. If the Will Delay is 0 the Will Message is sent at
// the close of the existing Network Connection, and if Clean Start is 1
// the Will Message is sent because the Session ends" ([MQTT-3.1.2-8],
// [MQTT-3.1.3-9]).
func TestV5PythonTakeover(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	cases := []struct {
		ID         string `json:"id"`
		WillDelay  int    `json:"will_delay"`
		CleanStart bool   `json:"clean_start"`
		will       bool
	}{
		{ID: "to-nodelay-resume", WillDelay: 0, CleanStart: false, will: true},
		{ID: "to-delay-resume", WillDelay: 5, CleanStart: false, will: false},
		{ID: "to-delay-clean", WillDelay: 5, CleanStart: true, will: true},
	}
	r := runPython(t, addr, "will.py", "takeover", map[string]any{"cases": cases})
	var wantWills []string
	for _, c := range cases {
		ack := r.connack(t, c.ID+".connack")
		if ack.SessionPresent == c.CleanStart {
			t.Errorf("%s: Session Present %v with Clean Start %v", c.ID, ack.SessionPresent, c.CleanStart)
		}
		wantServerDisconnect(t, c.ID+": first connection", r.step(t, c.ID+".disconnects").Disconnects, 0x8e)
		if c.CleanStart {
			wantMessages(t, c.ID+": second connection (new session)", r.step(t, c.ID+".messages").Messages)
		} else {
			wantMessages(t, c.ID+": second connection", r.step(t, c.ID+".messages").Messages, "to/"+c.ID+" after-takeover q1")
		}
		wantMessages(t, c.ID+": first connection", r.step(t, c.ID+".first.messages").Messages)
		if c.will {
			wantWills = append(wantWills, "will/"+c.ID+" "+c.ID+" q1")
		}
	}
	wantMessages(t, "wills", r.step(t, "watch.messages").Messages, wantWills...)
}

// TestV5PythonSharedSubscription: three clients in $share/g/sh/t split the
// messages, each to exactly one member (MQTT 5 section 4.8.2), evenly with
// the round-robin strategy, in publish order per member; a plain
// subscriber to the same topic gets them all; joining a shared
// subscription sends no retained messages (section 4.8.2).
func TestV5PythonSharedSubscription(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	const members, count = 3, 30
	r := runPython(t, addr, "shared.py", "round_robin", map[string]any{"members": members, "count": count})
	seen := map[string]string{}
	for i := range members {
		name := fmt.Sprintf("member%d", i)
		wantCodes(t, name+" SUBACK", r.step(t, name+".suback").Codes, 1)
		msgs := r.step(t, name+".messages").Messages
		if len(msgs) != count/members {
			t.Errorf("%s got %d messages, want %d (round-robin over %d members): %q", name, len(msgs), count/members, members, briefs(msgs))
		}
		last := -1
		for _, m := range msgs {
			var n int
			if _, err := fmt.Sscan(m.Payload, &n); err != nil || m.Retain {
				t.Errorf("%s got %q: not one of the published messages", name, m.brief())
				continue
			}
			if other, dup := seen[m.Payload]; dup {
				t.Errorf("message %s went to %s and %s", m.Payload, other, name)
			}
			seen[m.Payload] = name
			if n < last {
				t.Errorf("%s got %d after %d: out of publish order", name, n, last)
			}
			last = n
		}
	}
	if len(seen) != count {
		t.Errorf("the group got %d distinct messages, want %d", len(seen), count)
	}
	obs := r.step(t, "observer.messages").Messages
	if len(obs) != count+1 || !obs[0].Retain {
		t.Errorf("plain subscriber got %d messages (first %q), want the retained one and %d", len(obs), briefs(obs[:min(1, len(obs))]), count)
	}
}

// TestV5PythonTopicAlias: topic aliases from the client (MQTT 5 section
// 3.3.2.3.4): set with a topic, used with an empty one, remapped; a
// PUBLISH without one leaves them alone; the broker accepts every alias up
// to its Topic Alias Maximum [MQTT-3.3.2-12] and forwards real topics
// without the alias. One above the maximum is answered with DISCONNECT
// 0x94 [MQTT-3.3.2-9]; aliases do not outlive the connection
// [MQTT-3.3.2-7], so a new connection's empty topic with an alias it never
// set is a Protocol Error, 0x82.
func TestV5PythonTopicAlias(t *testing.T) {
	t.Parallel()
	const aliasMax = 3
	_, addr := testutil.StartBroker(t, func(c *broker.Config) { c.TopicAliasMaximum = aliasMax })
	r := runPython(t, addr, "publish.py", "topic_alias", map[string]any{"over": aliasMax + 1})
	if got := deref(r.connack(t, "pub.connack").Props.TopicAliasMaximum); got != aliasMax {
		t.Fatalf("CONNACK Topic Alias Maximum %v, want %d", got, aliasMax)
	}
	msgs := r.step(t, "messages").Messages
	wantMessages(t, "subscriber", msgs,
		"ta/one 1 q1", "ta/one 2 q1", "ta/two 3 q1", "ta/two 4 q1",
		"ta/three 5 q1", "ta/three 6 q1", "ta/plain 7 q1", "ta/two 8 q1")
	for _, m := range msgs {
		wantProps(t, "forwarded "+m.Payload, m.Props, pyProps{})
	}
	wantServerDisconnect(t, "alias above the maximum", r.step(t, "over.disconnects").Disconnects, 0x94)
	wantServerDisconnect(t, "alias from the previous connection", r.step(t, "unset.disconnects").Disconnects, 0x82)
	if after := r.step(t, "after").Messages; len(after) != len(msgs) {
		t.Errorf("refused PUBLISHes were delivered: %q", briefs(after[len(msgs):]))
	}
}
