package auth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mustMosquittoACL(t testing.TB, text string) *ACL {
	t.Helper()
	a, err := ParseACLAs([]byte(text), "test.acl", ACLMosquitto)
	if err != nil {
		t.Fatalf("ParseACLAs: %v", err)
	}
	return a
}

func TestDetectACLFormat(t *testing.T) {
	tests := []struct {
		text string
		want ACLFormat
	}{
		{text: "", want: ACLShoal},
		{text: "# only a comment\n\n", want: ACLShoal},
		{text: "user alice\n", want: ACLShoal},
		{text: "topic read a/#\n", want: ACLMosquitto},
		{text: "# c\nuser roger\n  topic foo/bar\n", want: ACLMosquitto},
		{text: "pattern write $SYS/broker/connection/%c/state\n", want: ACLMosquitto},
		{text: "pattern\nallow read a\n", want: ACLShoal},
		{text: "pattern # everyone\nallow read a\n", want: ACLShoal},
		{text: "user alice\nallow read a\ntopic b\n", want: ACLShoal},
		{text: "default deny\n", want: ACLShoal},
		{text: "client dev\n", want: ACLShoal},
	}
	for _, tc := range tests {
		if got := DetectACLFormat([]byte(tc.text)); got != tc.want {
			t.Errorf("DetectACLFormat(%q) = %v, want %v", tc.text, got, tc.want)
		}
	}
	for _, s := range []string{"auto", "shoal", "mosquitto"} {
		if f, err := ParseACLFormat(s); err != nil || f.String() != s {
			t.Errorf("ParseACLFormat(%q) = %v, %v", s, f, err)
		}
	}
	if _, err := ParseACLFormat("Mosquitto"); err == nil {
		t.Error("ParseACLFormat accepts Mosquitto")
	}
}

func TestMosquittoACLParseErrors(t *testing.T) {
	tests := []struct {
		name string
		text string
		line int
		msg  string
	}{
		{name: "unknown directive", text: "topic a\nallowed read b\n", line: 2, msg: `unknown directive "allowed"`},
		{name: "shoal directive", text: "topic a\n\nallow read b\n", line: 3, msg: `"allow" is Shoal's ACL syntax`},
		{name: "empty topic", text: "topic\n", line: 1, msg: "topic needs a topic"},
		{name: "empty pattern", text: "pattern   \n", line: 1, msg: "pattern needs a topic"},
		{name: "bad access", text: "topic rw a/b\n", line: 1, msg: `unknown access "rw"`},
		{name: "user without name", text: "user\n", line: 1, msg: "user needs a user name"},
		{name: "hash not last", text: "topic read a/#/b\n", line: 1, msg: "'#' must be the last level"},
		{name: "comment after topic", text: "topic read a/b # no\n", line: 1, msg: "a comment cannot follow a topic"},
		{name: "plus in level", text: "pattern read a/b+\n", line: 1, msg: "'+' must be a whole level"},
		{name: "bad utf8", text: "topic read a/\xff\n", line: 1, msg: "not valid UTF-8"},
		{name: "indented comment is fine", text: "  # x\ntopic read\tb c/#\n", line: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseACLAs([]byte(tc.text), "m.acl", ACLMosquitto)
			if tc.line == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var e *ACLError
			if !errors.As(err, &e) || e.File != "m.acl" || e.Line != tc.line || !strings.Contains(e.Msg, tc.msg) {
				t.Fatalf("err = %v, want m.acl line %d containing %q", err, tc.line, tc.msg)
			}
		})
	}
}

// mosquittoTable is the ACL the table below and TestMosquittoACLAgrees
// (against the real Mosquitto) are about.
const mosquittoTable = `# For clients without a user name.
topic read public/#
topic read $SYS/broker/uptime
topic deny public/secret

user alice
topic readwrite alice/#
topic deny alice/locked
topic write shared/in
topic read shared/out/+
topic public/both
topic read with space/x

user bob
topic read #
topic deny bob/hidden

pattern readwrite devices/%c/#
pattern write users/%u/status
pattern deny devices/%c/forbidden
pattern read pub/%u/%c
`

// aclCase is one question to a client's permissions.
type aclCase struct {
	user, id string
	write    bool // CanPublish, else CanReceive
	topic    string
	want     bool
}

// checkACLCases asks a for each case's answer.
func checkACLCases(t *testing.T, a *ACL, cases []aclCase) {
	t.Helper()
	for _, tc := range cases {
		p := a.For(tc.user, tc.id)
		got := p.CanReceive([]byte(tc.topic))
		if tc.write {
			got = p.CanPublish([]byte(tc.topic))
		}
		if got != tc.want {
			t.Errorf("user %q id %q write %v %q: %v, want %v", tc.user, tc.id, tc.write, tc.topic, got, tc.want)
		}
	}
}

// mosquittoCases are answers Mosquitto 2 gives for mosquittoTable, each
// the reason for a rule of its semantics.
var mosquittoCases = []aclCase{
	// Anonymous clients get the lines before the first user line.
	{user: "", id: "anon", topic: "public/a", want: true},
	{user: "", id: "anon", write: true, topic: "public/a", want: false},
	{user: "", id: "anon", topic: "public/secret", want: false}, // deny first
	{user: "", id: "anon", topic: "$SYS/broker/uptime", want: true},
	{user: "", id: "anon", topic: "alice/x", want: false},
	// ... and users do not.
	{user: "alice", id: "a1", topic: "public/a", want: false},
	{user: "carol", id: "c1", topic: "public/a", want: false},
	// A user's own lines.
	{user: "alice", id: "a1", topic: "alice/x/y", want: true},
	{user: "alice", id: "a1", write: true, topic: "alice", want: true}, // a/# matches a
	{user: "alice", id: "a1", write: true, topic: "alice/locked", want: false},
	{user: "alice", id: "a1", write: true, topic: "shared/in", want: true},
	{user: "alice", id: "a1", topic: "shared/in", want: false},
	{user: "alice", id: "a1", topic: "shared/out/1", want: true},
	{user: "alice", id: "a1", topic: "shared/out/1/2", want: false},
	{user: "alice", id: "a1", write: true, topic: "public/both", want: true}, // no access word: readwrite
	{user: "alice", id: "a1", topic: "with space/x", want: true},             // the topic is the rest of the line
	{user: "bob", id: "b1", topic: "anything/at/all", want: true},
	{user: "bob", id: "b1", topic: "$SYS/broker/uptime", want: false}, // # does not reach $ topics
	{user: "bob", id: "b1", topic: "bob/hidden", want: false},
	// Patterns, for everyone, after the client's own lines.
	{user: "", id: "anon", write: true, topic: "devices/anon/t", want: true},
	{user: "alice", id: "a1", write: true, topic: "devices/a1/t", want: true},
	{user: "alice", id: "a1", write: true, topic: "devices/b1/t", want: false},
	{user: "alice", id: "a1", write: true, topic: "users/alice/status", want: true},
	{user: "", id: "anon", write: true, topic: "users//status", want: false}, // %u needs a user name
	{user: "carol", id: "c1", topic: "pub/carol/c1", want: true},
	{user: "carol", id: "c1", topic: "devices/c1/forbidden", want: false},
	// A client's own allow comes before a pattern's deny.
	{user: "bob", id: "b1", topic: "devices/b1/forbidden", want: true},
	// A client identifier with '/' adds levels to a pattern, as in Mosquitto 2.0.
	{user: "dave", id: "x/y", write: true, topic: "devices/x/y/t", want: true},
	// One with '+' or '#' gets no pattern at all; its own lines still count.
	{user: "carol", id: "c+", write: true, topic: "devices/c+/t", want: false},
	{user: "alice", id: "a#", write: true, topic: "alice/x", want: true},
	{user: "alice", id: "a#", write: true, topic: "users/alice/status", want: false},
}

func TestMosquittoACL(t *testing.T) {
	a := mustMosquittoACL(t, mosquittoTable)
	checkACLCases(t, a, mosquittoCases)
}

// TestMosquittoACLSubscribe: every subscription is granted; the check of
// each message is skipped only when the client's own lines allow all of
// the filter and deny none of it.
func TestMosquittoACLSubscribe(t *testing.T) {
	a := mustMosquittoACL(t, mosquittoTable)
	tests := []struct {
		user, id, filter string
		each             bool
	}{
		{user: "alice", id: "a1", filter: "alice/x/#", each: false},
		{user: "alice", id: "a1", filter: "alice/#", each: true}, // meets alice/locked
		{user: "alice", id: "a1", filter: "secret/#", each: true},
		{user: "bob", id: "b1", filter: "#", each: true},
		{user: "bob", id: "b1", filter: "news/+", each: false},
		{user: "", id: "anon", filter: "devices/anon/#", each: true}, // a pattern: asked second
	}
	for _, tc := range tests {
		ok, each := a.For(tc.user, tc.id).CanSubscribe([]byte(tc.filter))
		if !ok || each != tc.each {
			t.Errorf("user %q %q: ok %v each %v, want true %v", tc.user, tc.filter, ok, each, tc.each)
		}
	}
}

// TestMosquittoACLEmpty: an ACL file in Mosquitto's format refuses what it
// does not grant, even when it grants nothing.
func TestMosquittoACLEmpty(t *testing.T) {
	p := mustMosquittoACL(t, "# nothing\n").For("alice", "a1")
	if p.CanPublish([]byte("a")) || p.CanReceive([]byte("a")) {
		t.Error("an empty file grants")
	}
}

// TestMosquittoACLExample reads the aclfile.example that the mosquitto
// package ships, as LoadACLFile finds it (its format told from the file).
func TestMosquittoACLExample(t *testing.T) {
	path := filepath.Join(mosquittoExamples, "aclfile.example")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%v: run `make deps` (installs the mosquitto package)", err)
	}
	a, err := LoadACLFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if a.Format() != ACLMosquitto {
		t.Fatalf("format %v", a.Format())
	}
	tests := []aclCase{
		{user: "", id: "x", topic: "$SYS/broker/load", want: true},
		{user: "", id: "x", topic: "foo/bar", want: false},
		{user: "roger", id: "x", topic: "foo/bar", want: true},
		{user: "roger", id: "x", write: true, topic: "foo/bar", want: true},
		{user: "roger", id: "x", topic: "$SYS/broker/load", want: false},
		{user: "roger", id: "bridge1", write: true, topic: "$SYS/broker/connection/bridge1/state", want: true},
		{user: "", id: "bridge1", write: true, topic: "$SYS/broker/connection/other/state", want: false},
	}
	checkACLCases(t, a, tests)
}

// TestACLFormatOnReload: a file loaded in the auto format is told again at
// each Reload; a forced format stays.
func TestACLFormatOnReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "acl")
	if err := os.WriteFile(path, []byte("topic read a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	auto, err := LoadACLFile(path)
	if err != nil {
		t.Fatal(err)
	}
	forced, err := LoadACLFileAs(path, ACLMosquitto)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LoadACLFileAs(path, ACLShoal); err == nil || !strings.Contains(err.Error(), "Mosquitto's ACL syntax") {
		t.Fatalf("a Mosquitto file read as Shoal's: %v", err)
	}
	if err := os.WriteFile(path, []byte("allow read b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := auto.Reload(); err != nil || auto.Format() != ACLShoal || !auto.For("", "c").CanReceive([]byte("b")) {
		t.Errorf("auto after reload: %v, %v", err, auto.Format())
	}
	if err := forced.Reload(); err == nil || forced.Format() != ACLMosquitto {
		t.Errorf("forced after reload: %v, %v", err, forced.Format())
	}
}

func TestMosquittoACLAllocs(t *testing.T) {
	p := mustMosquittoACL(t, mosquittoTable).For("alice", "a1")
	topic := []byte("devices/a1/t")
	filter := []byte("alice/x/#")
	allocs := testing.AllocsPerRun(100, func() {
		if !p.CanPublish(topic) || !p.CanReceive(topic) {
			t.Fatal("unexpected decision")
		}
		if ok, each := p.CanSubscribe(filter); !ok || each {
			t.Fatal("unexpected decision")
		}
	})
	if allocs != 0 {
		t.Fatalf("allocs per check = %v, want 0", allocs)
	}
}

func BenchmarkMosquittoACLCanPublish(b *testing.B) {
	p := mustMosquittoACL(b, mosquittoTable).For("alice", "a1")
	topic := []byte("devices/a1/t") // through the user's lines to a pattern
	b.ReportAllocs()
	for b.Loop() {
		p.CanPublish(topic)
	}
}
