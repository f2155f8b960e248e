package cluster

import (
	"strings"
	"testing"

	"github.com/shoalmq/shoal/codec"
)

// natsMatch is NATS's subject matching: '*' is one token, '>' one or more
// at the end.
func natsMatch(filter, subject string) bool {
	f, s := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, tok := range f {
		switch {
		case tok == ">":
			return len(s) > i
		case i >= len(s):
			return false
		case tok != "*" && tok != s[i]:
			return false
		}
	}
	return len(f) == len(s)
}

// checkSubject fails unless subject is a valid NATS subject and key-value
// key: tokens of [A-Za-z0-9_=-], none empty.
func checkSubject(t *testing.T, subject string) {
	t.Helper()
	for _, tok := range strings.Split(subject, ".") {
		if tok == "" {
			t.Fatalf("subject %q has an empty token", subject)
		}
		for i := 0; i < len(tok); i++ {
			if c := tok[i]; !safe(c) && c != '=' {
				t.Fatalf("subject %q has %q", subject, c)
			}
		}
	}
}

func TestSubjects(t *testing.T) {
	for _, tc := range []struct{ topic, subject string }{
		{"a/b", "shoal.m.a.b"},
		{"a.b/c d", "shoal.m.a=2Eb.c=20d"},
		{"/a//b/", "shoal.m.=.a.=.b.="},
		{"", "shoal.m.="},
		{"$SYS/broker/x", "shoal.s.=24SYS.broker.x"},
		{"*/>/~=", "shoal.m.=2A.=3E.=7E=3D"},
		{"häuser", "shoal.m.h=C3=A4user"},
	} {
		got, err := Subject(nil, "shoal", tc.topic)
		if err != nil || string(got) != tc.subject {
			t.Errorf("Subject(%q) = %q, %v; want %q", tc.topic, got, err, tc.subject)
		}
		if back, ok := Topic("shoal", string(got)); !ok || back != tc.topic {
			t.Errorf("Topic(%q) = %q, %v; want %q", got, back, ok, tc.topic)
		}
	}
	for _, tc := range []struct {
		filter string
		want   []string
	}{
		{"#", []string{"shoal.m.>"}},
		{"a/#", []string{"shoal.m.a.>", "shoal.m.a"}},
		{"+/x", []string{"shoal.m.*.x"}},
		{"$SYS/#", []string{"shoal.s.=24SYS.>", "shoal.s.=24SYS"}},
		{"a/+/c.d", []string{"shoal.m.a.*.c=2Ed"}},
	} {
		got, err := Filter("shoal", tc.filter)
		if err != nil || strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("Filter(%q) = %q, %v; want %q", tc.filter, got, err, tc.want)
		}
	}
	long := strings.Repeat(".", maxSubject)
	if _, err := Subject(nil, "shoal", long); err != ErrTopicTooLong {
		t.Errorf("a topic of %d dots: %v, want ErrTopicTooLong", len(long), err)
	}
	for _, bad := range []string{"shoal.x.a", "shoal.m.a=2", "shoal.m.a..b", "shoal.m.a=ZZ", "other.m.a", "shoal.s.a", "shoal.m.=24a", "shoal.m.a~b"} {
		if topic, ok := Topic("shoal", bad); ok {
			t.Errorf("Topic(%q) = %q, want not a subject of ours", bad, topic)
		}
	}
}

// FuzzSubject: every valid topic survives the trip to a subject and back,
// and its subject is a valid NATS subject and key-value key.
func FuzzSubject(f *testing.F) {
	for _, s := range []string{"a/b", "", "/", "$SYS/x", "a.b c/~/*/>", "\x00\xff", "//////"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, topic string) {
		if codec.CheckTopicName([]byte(topic)) != nil {
			return
		}
		subj, err := Subject(nil, "shoal", topic)
		if err == ErrTopicTooLong {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		checkSubject(t, string(subj))
		if back, ok := Topic("shoal", string(subj)); !ok || back != topic {
			t.Fatalf("%q -> %q -> %q, %v", topic, subj, back, ok)
		}
	})
}

// FuzzFilterMatches: a filter's subjects match a topic's subject under
// NATS's rules exactly when the filter matches the topic under MQTT's,
// '$' topics included.
func FuzzFilterMatches(f *testing.F) {
	for _, s := range [][2]string{{"#", "a"}, {"#", "$SYS/x"}, {"+/x", "$a/x"}, {"a/#", "a"}, {"a/+", "a/"},
		{"+", ""}, {"+/+", "/"}, {"$SYS/#", "$SYS"}, {"a/b.c", "a/b.c"}, {"a/*", "a/b"}, {"/#", "/"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, filter, topic string) {
		if codec.CheckFilter([]byte(filter)) != nil || codec.IsShared([]byte(filter)) || codec.CheckTopicName([]byte(topic)) != nil {
			return
		}
		subs, err := Filter("shoal", filter)
		if err != nil {
			return
		}
		subj, err := Subject(nil, "shoal", topic)
		if err != nil {
			return
		}
		got := false
		for _, s := range subs {
			got = got || natsMatch(s, string(subj))
		}
		if want := codec.Matches(filter, topic); got != want {
			t.Fatalf("filter %q topic %q: subjects %q match %q: %v, MQTT says %v", filter, topic, subs, subj, got, want)
		}
	})
}

func TestSubjectAllocs(t *testing.T) {
	buf := make([]byte, 0, 256)
	n := testing.AllocsPerRun(1000, func() { buf, _ = Subject(buf[:0], "shoal", "sensors/hall 1/temp.c") })
	if n != 0 {
		t.Fatalf("Subject: %v allocations, want 0", n)
	}
}
