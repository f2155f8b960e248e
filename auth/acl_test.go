package auth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func mustACL(t testing.TB, text string) *ACL {
	t.Helper()
	a, err := ParseACL([]byte(text), "test.acl")
	if err != nil {
		t.Fatalf("ParseACL: %v", err)
	}
	return a
}

func TestParseACLErrors(t *testing.T) {
	tests := []struct {
		name string
		text string
		line int
		msg  string // substring of the message
	}{
		{name: "unknown directive", text: "# c\n\ntopic read a\n", line: 3, msg: `unknown directive "topic"`},
		{name: "unknown action", text: "allow rw a/b", line: 1, msg: `unknown action "rw"`},
		{name: "no action", text: "\ndeny", line: 2, msg: "needs an action"},
		{name: "comment for action", text: "deny # x", line: 1, msg: "needs an action"},
		{name: "no filter", text: "allow read", line: 1, msg: "needs a topic filter"},
		{name: "hash not last", text: "default deny\nallow read a/#/b", line: 2, msg: "'#' must be the last level"},
		{name: "hash in level", text: "allow read a/b#", line: 1, msg: "'#' must be a whole level"},
		{name: "plus in level", text: "allow write a+/b", line: 1, msg: "'+' must be a whole level"},
		{name: "user inside level", text: "allow read a%u/b", line: 1, msg: "%u and %c must be a whole level"},
		{name: "client inside level", text: "allow read a/x%c", line: 1, msg: "%u and %c must be a whole level"},
		{name: "bad utf8", text: "allow read a/\xff", line: 1, msg: "not valid UTF-8"},
		{name: "nul", text: "allow read a/\x00", line: 1, msg: "U+0000"},
		{name: "too long", text: "allow read " + strings.Repeat("a", maxFilterLen+1), line: 1, msg: "longer than 65535"},
		{name: "trailing word", text: "allow read a b", line: 1, msg: `unexpected "b"`},
		{name: "hash filter then word", text: "allow read # b", line: 1, msg: `unexpected "b"`},
		{name: "default value", text: "default maybe", line: 1, msg: `unknown default "maybe"`},
		{name: "default missing", text: "default", line: 1, msg: "default needs allow or deny"},
		{name: "default twice", text: "default deny\r\n\r\ndefault allow\r\n", line: 3, msg: "first is on line 1"},
		{name: "user without name", text: "user # alice", line: 1, msg: "user needs a name"},
		{name: "client without name", text: "client", line: 1, msg: "client needs a name"},
		{name: "user two names", text: "user alice bob", line: 1, msg: `unexpected "bob"`},
		{name: "pattern with argument", text: "pattern x", line: 1, msg: `unexpected "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseACL([]byte(tt.text), "x.acl")
			var e *ACLError
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *ACLError", err)
			}
			if e.File != "x.acl" || e.Line != tt.line || !strings.Contains(e.Msg, tt.msg) {
				t.Fatalf("err = %q (line %d), want line %d containing %q", err, e.Line, tt.line, tt.msg)
			}
			if !strings.HasPrefix(err.Error(), "auth: x.acl:") {
				t.Fatalf("err = %q, want prefix with file", err)
			}
		})
	}
}

func TestParseACLAccepts(t *testing.T) {
	a := mustACL(t, "  # indented comment\n"+
		"default allow # trailing comment\n"+
		"allow read #   # grants everything\n"+
		"user alice\t# tab\n"+
		"deny\twrite\ta//b/\n"+
		"client dev#1\n"+
		"pattern # back\n")
	p := a.For("alice", "c")
	if p.CanPublish([]byte("a//b/")) {
		t.Error("alice may publish to a//b/")
	}
	if !p.CanPublish([]byte("a/b/")) {
		t.Error("alice may not publish to a/b/")
	}
}

const semanticsACL = `
default deny
allow read  $SYS/broker/#
allow read  everyone/#
deny  read  everyone/secret
user alice
allow readwrite sensors/%u/#
deny  write     sensors/%u/locked
allow write     a//b
allow read      +/trailing/
client dev-42
allow write devices/%c/status
deny  read  everyone/+/hidden
pattern
allow read public/#
allow write +
`

func TestACLPublishReceive(t *testing.T) {
	a := mustACL(t, semanticsACL)
	tests := []struct {
		name          string
		user, client  string
		topic         string
		publish, recv bool
	}{
		{name: "sys granted", user: "", client: "x", topic: "$SYS/broker/uptime", recv: true},
		{name: "sys parent level", user: "", client: "x", topic: "$SYS/broker", recv: true},
		{name: "sys other", user: "alice", client: "x", topic: "$SYS/other"},
		{name: "wildcard first not on $", user: "", client: "x", topic: "$x"},
		{name: "everyone read", user: "", client: "x", topic: "everyone/news", recv: true},
		{name: "deny beats allow", user: "", client: "x", topic: "everyone/secret"},
		{name: "own sensors", user: "alice", client: "x", topic: "sensors/alice/t", publish: true, recv: true},
		{name: "own sensors parent", user: "alice", client: "x", topic: "sensors/alice", publish: true, recv: true},
		{name: "locked", user: "alice", client: "x", topic: "sensors/alice/locked", recv: true},
		{name: "other sensors", user: "alice", client: "x", topic: "sensors/bob/t"},
		{name: "bob has no sensors", user: "bob", client: "x", topic: "sensors/bob/t"},
		{name: "empty level", user: "alice", client: "x", topic: "a//b", publish: true},
		{name: "empty level is a level", user: "alice", client: "x", topic: "a/b"},
		{name: "trailing slash", user: "alice", client: "x", topic: "x/trailing/", recv: true},
		{name: "no trailing slash", user: "alice", client: "x", topic: "x/trailing"},
		{name: "client rule", user: "", client: "dev-42", topic: "devices/dev-42/status", publish: true},
		{name: "client rule other id", user: "", client: "dev-43", topic: "devices/dev-42/status"},
		{name: "client deny", user: "alice", client: "dev-42", topic: "everyone/x/hidden"},
		{name: "client deny other id", user: "alice", client: "dev-1", topic: "everyone/x/hidden", recv: true},
		{name: "pattern", user: "alice", client: "x", topic: "public/a", recv: true},
		{name: "plus is one level", user: "", client: "x", topic: "top", publish: true},
		{name: "plus not two", user: "", client: "x", topic: "top/x"},
		{name: "case sensitive", user: "Alice", client: "x", topic: "sensors/Alice/t"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := a.For(tt.user, tt.client)
			if got := p.CanPublish([]byte(tt.topic)); got != tt.publish {
				t.Errorf("CanPublish = %v, want %v", got, tt.publish)
			}
			if got := p.CanReceive([]byte(tt.topic)); got != tt.recv {
				t.Errorf("CanReceive = %v, want %v", got, tt.recv)
			}
		})
	}
}

func TestACLDefault(t *testing.T) {
	const rules = "allow write a/#\ndeny write a/b\ndeny read r\n"
	tests := []struct {
		name          string
		text          string
		topic         string
		publish, recv bool
	}{
		{name: "absent is deny", text: rules, topic: "x"},
		{name: "deny", text: "default deny\n" + rules, topic: "x"},
		{name: "deny allowed", text: "default deny\n" + rules, topic: "a/c", publish: true},
		{name: "allow", text: "default allow\n" + rules, topic: "x", publish: true, recv: true},
		{name: "allow denied", text: "default allow\n" + rules, topic: "a/b", recv: true},
		{name: "allow denied read", text: "default allow\n" + rules, topic: "r", publish: true},
		{name: "empty file", text: "", topic: "x"},
		{name: "default after rules", text: rules + "default allow\n", topic: "x", publish: true, recv: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustACL(t, tt.text).For("u", "c")
			if got := p.CanPublish([]byte(tt.topic)); got != tt.publish {
				t.Errorf("CanPublish = %v, want %v", got, tt.publish)
			}
			if got := p.CanReceive([]byte(tt.topic)); got != tt.recv {
				t.Errorf("CanReceive = %v, want %v", got, tt.recv)
			}
		})
	}
}

func TestACLPlaceholders(t *testing.T) {
	a := mustACL(t, `
allow readwrite users/%u/#
allow readwrite clients/%c/#
allow readwrite %c/own
allow readwrite both/%u/%c
`)
	tests := []struct {
		name         string
		user, client string
		topic        string
		want         bool
	}{
		{name: "user", user: "alice", client: "c1", topic: "users/alice/x", want: true},
		{name: "user other", user: "alice", client: "c1", topic: "users/bob/x"},
		{name: "anonymous", user: "", client: "c1", topic: "users//x"},
		{name: "anonymous parent", user: "", client: "c1", topic: "users"},
		{name: "client", user: "", client: "c1", topic: "clients/c1/x", want: true},
		{name: "client hash", user: "", client: "#", topic: "clients/x"},
		{name: "client hash literal", user: "", client: "#", topic: "clients/#/x"},
		{name: "client plus", user: "", client: "+", topic: "clients/x/y"},
		{name: "client slash", user: "", client: "a/b", topic: "clients/a/b/x"},
		{name: "client embedded plus", user: "", client: "a+b", topic: "clients/a+b/x"},
		{name: "user slash", user: "a/b", client: "c1", topic: "users/a/b"},
		{name: "user hash", user: "#", client: "c1", topic: "users/x"},
		{name: "empty client", user: "alice", client: "", topic: "clients//x"},
		{name: "first level", user: "", client: "c1", topic: "c1/own", want: true},
		{name: "first level dollar", user: "", client: "$SYS", topic: "$SYS/own"},
		{name: "later level dollar", user: "", client: "$x", topic: "clients/$x/y", want: true},
		{name: "both", user: "alice", client: "c1", topic: "both/alice/c1", want: true},
		{name: "both anonymous", user: "", client: "c1", topic: "both//c1"},
		{name: "both bad client", user: "alice", client: "+", topic: "both/alice/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := a.For(tt.user, tt.client)
			if got := p.CanPublish([]byte(tt.topic)); got != tt.want {
				t.Errorf("CanPublish(%q) = %v, want %v", tt.topic, got, tt.want)
			}
			if got := p.CanReceive([]byte(tt.topic)); got != tt.want {
				t.Errorf("CanReceive(%q) = %v, want %v", tt.topic, got, tt.want)
			}
		})
	}
}

func TestACLSubscribe(t *testing.T) {
	const rules = `
allow read a/#
allow read $SYS/broker/+
deny  read a/secret/#
deny  read a/+/hidden
deny  read +/private
`
	deny := mustACL(t, "default deny\n"+rules).For("u", "c")
	allow := mustACL(t, "default allow\n"+rules).For("u", "c")
	tests := []struct {
		name                string
		filter              string
		ok, checkEach       bool // default deny
		okAllow, checkAllow bool // default allow
	}{
		{name: "covered clean", filter: "a/b/c", ok: true, okAllow: true},
		{name: "covered parent", filter: "a", ok: true, okAllow: true},
		{name: "covered with deny inside", filter: "a/#", ok: true, checkEach: true, okAllow: true, checkAllow: true},
		{name: "plus meets deny", filter: "a/+", ok: true, checkEach: true, okAllow: true, checkAllow: true},
		{name: "plus level meets deny below", filter: "a/+/x", ok: true, checkEach: true, okAllow: true, checkAllow: true},
		{name: "deep clean", filter: "a/b/x/+", ok: true, okAllow: true},
		{name: "plus level meets deny", filter: "a/+/hidden", okAllow: false},
		{name: "denied exactly", filter: "a/secret/#"},
		{name: "denied parent", filter: "a/secret"},
		{name: "denied below", filter: "a/secret/x/+"},
		{name: "not covered", filter: "b/#", okAllow: true, checkAllow: true},
		{name: "not covered clean", filter: "b/x/y", okAllow: true},
		{name: "everything", filter: "#", okAllow: true, checkAllow: true},
		{name: "sys", filter: "$SYS/broker/uptime", ok: true, okAllow: true},
		{name: "sys plus", filter: "$SYS/broker/+", ok: true, okAllow: true},
		{name: "sys hash", filter: "$SYS/broker/#", okAllow: true},
		// "+/private" is wildcard-first: it cannot deny "$x/private".
		{name: "dollar not denied", filter: "$x/private", okAllow: true},
		{name: "private denied", filter: "x/private"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, each := deny.CanSubscribe([]byte(tt.filter))
			if ok != tt.ok || each != tt.checkEach {
				t.Errorf("default deny: CanSubscribe = %v, %v, want %v, %v", ok, each, tt.ok, tt.checkEach)
			}
			ok, each = allow.CanSubscribe([]byte(tt.filter))
			if ok != tt.okAllow || each != tt.checkAllow {
				t.Errorf("default allow: CanSubscribe = %v, %v, want %v, %v", ok, each, tt.okAllow, tt.checkAllow)
			}
		})
	}
}

func testFilter(s string) *aclFilter {
	f := newACLFilter(strings.Split(s, "/"))
	return &f
}

func TestACLSubsumesIntersects(t *testing.T) {
	tests := []struct {
		rule, filter         string
		subsumes, intersects bool
	}{
		{rule: "#", filter: "#", subsumes: true, intersects: true},
		{rule: "#", filter: "a/+/#", subsumes: true, intersects: true},
		{rule: "+/#", filter: "#", subsumes: true, intersects: true},
		{rule: "+", filter: "#", intersects: true},
		{rule: "#", filter: "$SYS/#"},
		{rule: "+/#", filter: "$SYS"},
		{rule: "$SYS/#", filter: "#"},
		{rule: "$SYS/#", filter: "+/x"},
		{rule: "$SYS/#", filter: "$SYS", subsumes: true, intersects: true},
		{rule: "$SYS/#", filter: "$SYS/+/x", subsumes: true, intersects: true},
		{rule: "$SYS/+", filter: "$SYS/#", intersects: true},
		{rule: "+/x", filter: "$SYS/x"},
		{rule: "a/#", filter: "a", subsumes: true, intersects: true},
		{rule: "a", filter: "a/#", intersects: true},
		{rule: "a/+", filter: "a/#", intersects: true},
		{rule: "a/+", filter: "a", intersects: false},
		{rule: "a/+/#", filter: "a/#", intersects: true},
		{rule: "a/+", filter: "a/+", subsumes: true, intersects: true},
		{rule: "a/+", filter: "a/b", subsumes: true, intersects: true},
		{rule: "a/b", filter: "a/+", intersects: true},
		{rule: "a/b", filter: "a/c"},
		{rule: "a/+/c", filter: "a/b/+", intersects: true},
		{rule: "a//b", filter: "a/+/b", intersects: true},
		{rule: "a/+/b", filter: "a//b", subsumes: true, intersects: true},
		{rule: "a/b", filter: "a//b"},
		{rule: "a/", filter: "a/+", intersects: true},
		{rule: "a/+", filter: "a/", subsumes: true, intersects: true},
		{rule: "a/", filter: "a"},
		{rule: "a/#", filter: "a/", subsumes: true, intersects: true},
		{rule: "/#", filter: "+/x", intersects: true},
		{rule: "+", filter: "/", intersects: false},
		{rule: "+/+", filter: "/", subsumes: true, intersects: true},
		{rule: "a/b/c", filter: "a/b", intersects: false},
		{rule: "a/b", filter: "a/b/c", intersects: false},
	}
	for _, tt := range tests {
		f := testFilter(tt.rule)
		if got := f.subsumes([]byte(tt.filter)); got != tt.subsumes {
			t.Errorf("subsumes(%q, %q) = %v, want %v", tt.rule, tt.filter, got, tt.subsumes)
		}
		if got := f.intersects([]byte(tt.filter)); got != tt.intersects {
			t.Errorf("intersects(%q, %q) = %v, want %v", tt.rule, tt.filter, got, tt.intersects)
		}
	}
}

// refMatch is the slow reference matcher: recursion on split levels.
func refMatch(filter, topic []string) bool {
	if filter[0] == "+" || filter[0] == "#" {
		if strings.HasPrefix(topic[0], "$") {
			return false // [MQTT-4.7.2-1]
		}
	}
	var rec func(f, t []string) bool
	rec = func(f, t []string) bool {
		switch {
		case len(f) == 0:
			return len(t) == 0
		case f[0] == "#":
			return true
		case len(t) == 0:
			return false
		case f[0] != "+" && f[0] != t[0]:
			return false
		}
		return rec(f[1:], t[1:])
	}
	return rec(filter, topic)
}

// allLevels lists every sequence of 1 to n elements of alphabet, joined
// by '/', that valid accepts.
func allLevels(alphabet []string, n int, valid func([]string) bool) []string {
	var out []string
	var gen func(prefix []string)
	gen = func(prefix []string) {
		if len(prefix) > 0 && valid(prefix) {
			out = append(out, strings.Join(prefix, "/"))
		}
		if len(prefix) == n {
			return
		}
		for _, l := range alphabet {
			gen(append(prefix[:len(prefix):len(prefix)], l))
		}
	}
	gen(nil)
	return out
}

// TestACLSubsumesExhaustive checks subsumes and intersects against their
// definitions for every pair of filters of up to three levels, by
// matching every topic of up to four levels over a small alphabet ("c"
// appears in no filter, "$" starts a '$' topic).
func TestACLSubsumesExhaustive(t *testing.T) {
	filters := allLevels([]string{"", "a", "b", "$", "+", "#"}, 3, func(l []string) bool {
		for i, x := range l {
			if x == "#" && i != len(l)-1 {
				return false
			}
		}
		return !(len(l) == 1 && l[0] == "")
	})
	topics := allLevels([]string{"", "a", "b", "c", "$"}, 4, func(l []string) bool {
		return !(len(l) == 1 && l[0] == "")
	})
	sets := make([][]bool, len(filters))
	for i, f := range filters {
		sets[i] = make([]bool, len(topics))
		for j, tp := range topics {
			sets[i][j] = refMatch(strings.Split(f, "/"), strings.Split(tp, "/"))
			first, next := nextLevel([]byte(tp), 0)
			if got := testFilter(f).match([]byte(tp), first, next); got != sets[i][j] {
				t.Fatalf("match(%q, %q) = %v, want %v", f, tp, got, sets[i][j])
			}
		}
	}
	for i, r := range filters {
		rf := testFilter(r)
		for k, f := range filters {
			sub, inter := true, false
			for j := range topics {
				if sets[k][j] && !sets[i][j] {
					sub = false
				}
				if sets[k][j] && sets[i][j] {
					inter = true
				}
			}
			if got := rf.subsumes([]byte(f)); got != sub {
				t.Fatalf("subsumes(%q, %q) = %v, want %v", r, f, got, sub)
			}
			if got := rf.intersects([]byte(f)); got != inter {
				t.Fatalf("intersects(%q, %q) = %v, want %v", r, f, got, inter)
			}
		}
	}
}

func TestACLReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shoal.acl")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("allow write a\n")
	a, err := LoadACLFile(path)
	if err != nil {
		t.Fatal(err)
	}
	old := a.For("", "c")
	write("allow write b\n")
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	p := a.For("", "c")
	if p.CanPublish([]byte("a")) || !p.CanPublish([]byte("b")) {
		t.Error("reloaded rules not in force")
	}
	if !old.CanPublish([]byte("a")) || old.CanPublish([]byte("b")) {
		t.Error("permissions given before Reload changed")
	}

	write("allow write c\nallow wrote d\n")
	err = a.Reload()
	var e *ACLError
	if !errors.As(err, &e) || e.File != path || e.Line != 2 {
		t.Fatalf("Reload of a bad file: %v, want *ACLError on line 2", err)
	}
	if p := a.For("", "c"); !p.CanPublish([]byte("b")) || p.CanPublish([]byte("c")) {
		t.Error("a bad file replaced the rules")
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Reload of a missing file: %v, want os.ErrNotExist", err)
	}
	if _, err := LoadACLFile(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadACLFile of a missing file: %v, want os.ErrNotExist", err)
	}
	if err := mustACL(t, "").Reload(); err == nil {
		t.Error("Reload of a parsed ACL succeeded")
	}
}

// TestACLConcurrent runs For and the checks during reloads; run with -race.
func TestACLConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shoal.acl")
	if err := os.WriteFile(path, []byte("allow readwrite x/#\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := LoadACLFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				p := a.For("u", "c")
				if !p.CanPublish([]byte("x/y")) {
					t.Error("lost the rule during reload")
					return
				}
			}
		})
		wg.Go(func() {
			for range 20 {
				if err := a.Reload(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

const benchACL = `
default deny
allow read  $SYS/broker/#
deny  write $SYS/#
user alice
allow readwrite sensors/%u/#
deny  write     sensors/%u/locked
allow read      public/#
allow write     devices/+/status
deny  readwrite private/#
allow write     logs/%u/%c
allow write     alerts/+/+/high
client dev-42
allow write devices/%c/cmd/+
deny  write devices/%c/cmd/reboot
pattern
allow read weather/+/temp
`

func TestACLAllocs(t *testing.T) {
	p := mustACL(t, benchACL).For("alice", "dev-42")
	topic := []byte("devices/dev-42/cmd/start")
	filter := []byte("sensors/alice/+/temp")
	allocs := testing.AllocsPerRun(100, func() {
		if !p.CanPublish(topic) || p.CanReceive(topic) {
			t.Fatal("unexpected decision")
		}
		if ok, _ := p.CanSubscribe(filter); !ok {
			t.Fatal("unexpected decision")
		}
	})
	if allocs != 0 {
		t.Fatalf("allocs per check = %v, want 0", allocs)
	}
}

func BenchmarkACLCanPublish(b *testing.B) {
	p := mustACL(b, benchACL).For("alice", "dev-42")
	for _, bc := range []struct {
		name  string
		topic string
	}{
		{name: "last rule", topic: "devices/dev-42/cmd/start"},
		{name: "first allow", topic: "sensors/alice/room1/temp"},
		{name: "no match", topic: "unknown/topic/with/levels"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			topic := []byte(bc.topic)
			b.ReportAllocs()
			for b.Loop() {
				p.CanPublish(topic)
			}
		})
	}
}

func BenchmarkACLCanSubscribe(b *testing.B) {
	p := mustACL(b, benchACL).For("alice", "dev-42")
	filter := []byte("sensors/alice/+/temp")
	b.ReportAllocs()
	for b.Loop() {
		p.CanSubscribe(filter)
	}
}

func BenchmarkACLFor(b *testing.B) {
	a := mustACL(b, benchACL)
	b.ReportAllocs()
	for b.Loop() {
		a.For("alice", "dev-42")
	}
}

// FuzzACLMatch builds a rule set from spec, then compares CanReceive and
// CanPublish on topic with a reference that substitutes and matches by
// recursion, and checks CanSubscribe's guarantee on filter: ok and not
// checkEach means every topic filter matches is readable.
func FuzzACLMatch(f *testing.F) {
	f.Add([]byte{0, 0, 1, 0, 4, 2, 1, 1, 6, 5}, "alice/a", "+/a")
	f.Add([]byte{1, 1, 2, 3, 7, 4, 8, 2, 0, 4}, "$SYS/b", "$SYS/#")
	f.Add([]byte{2, 8, 3, 6, 0, 5, 17, 1, 2}, "dev/a//", "#")
	f.Add([]byte{6, 24, 1, 7, 9, 1, 0}, "a", "a/#")
	f.Fuzz(func(t *testing.T, spec []byte, topic, filter string) {
		if len(spec) == 0 || len(topic) > 64 || len(filter) > 64 || len(spec) > 64 {
			return
		}
		if topic == "" || strings.ContainsAny(topic, "+#") {
			return // not a topic name
		}
		// Identities include values a placeholder must not take.
		ids := [][2]string{{"alice", "dev"}, {"", "dev"}, {"#", "+"}, {"$SYS", "a/b"}}
		id := ids[spec[0]>>1&3]
		alphabet := []string{"a", "b", "", "$SYS", "+", "#", "%u", "%c", "alice", "dev"}
		sections := []string{"pattern", "user " + id[0], "user other", "client " + id[1]}
		userSection := id[0] != "" && id[0][0] != '#' // "user #" is a comment
		if !userSection {
			sections[1] = "user nobody"
		}

		type refRule struct {
			allow, read, write, applies bool
			levels                      []string
		}
		var rules []refRule
		var text strings.Builder
		if spec[0]&1 != 0 {
			text.WriteString("default allow\n")
		}
		for s := spec[1:]; len(s) >= 2; {
			b, n := s[0], int(s[1]&3)+1
			s = s[2:]
			if len(s) < n {
				break
			}
			r := refRule{allow: b&1 != 0, read: b&6 != 2, write: b&6 != 0}
			sec := int(b >> 3 & 3)
			r.applies = sec == 0 || sec == 1 && userSection || sec == 3
			for i := range n {
				l := alphabet[int(s[i])%len(alphabet)]
				if l == "#" && i != n-1 {
					l = "+"
				}
				r.levels = append(r.levels, l)
			}
			if n == 1 && r.levels[0] == "" {
				r.levels[0] = "a" // "" is not a filter
			}
			s = s[n:]
			effect, action := "deny", map[bool]string{true: "readwrite", false: "read"}[r.write]
			if r.allow {
				effect = "allow"
			}
			if !r.read {
				action = "write"
			}
			text.WriteString(sections[sec] + "\n" + effect + " " + action + " " + strings.Join(r.levels, "/") + "\n")
			rules = append(rules, r)
		}
		a, err := ParseACL([]byte(text.String()), "fuzz.acl")
		if err != nil {
			t.Fatalf("generated ACL does not parse: %v\n%s", err, text.String())
		}
		p := a.For(id[0], id[1])

		tl := strings.Split(topic, "/")
		want := func(read bool) bool {
			allowed := spec[0]&1 != 0
			for _, r := range rules {
				if !r.applies || (read && !r.read) || (!read && !r.write) {
					continue
				}
				lv, usable := substitute(r.levels, id[0], id[1])
				if !usable || !refMatch(lv, tl) {
					continue
				}
				if !r.allow {
					return false
				}
				allowed = true
			}
			return allowed
		}
		if got, w := p.CanReceive([]byte(topic)), want(true); got != w {
			t.Fatalf("CanReceive(%q) = %v, want %v\n%s", topic, got, w, text.String())
		}
		if got, w := p.CanPublish([]byte(topic)), want(false); got != w {
			t.Fatalf("CanPublish(%q) = %v, want %v\n%s", topic, got, w, text.String())
		}

		if filter == "" || !validFilter(filter) {
			return
		}
		ok, each := p.CanSubscribe([]byte(filter))
		if ok && !each && refMatch(strings.Split(filter, "/"), tl) && !p.CanReceive([]byte(topic)) {
			t.Fatalf("CanSubscribe(%q) = ok, no checks, but topic %q is not readable\n%s", filter, topic, text.String())
		}
	})
}

// substitute is the reference placeholder replacement.
func substitute(levels []string, user, client string) ([]string, bool) {
	out := make([]string, len(levels))
	for i, l := range levels {
		v := l
		switch l {
		case "%u":
			v = user
		case "%c":
			v = client
		default:
			out[i] = l
			continue
		}
		if v == "" || strings.ContainsAny(v, "/+#") || i == 0 && strings.HasPrefix(v, "$") {
			return nil, false
		}
		out[i] = v
	}
	return out, true
}

// validFilter is the reference topic filter check [MQTT-4.7.1-2],
// [MQTT-4.7.1-3].
func validFilter(f string) bool {
	levels := strings.Split(f, "/")
	for i, l := range levels {
		if strings.Contains(l, "#") && (l != "#" || i != len(levels)-1) {
			return false
		}
		if strings.Contains(l, "+") && l != "+" {
			return false
		}
	}
	return true
}
