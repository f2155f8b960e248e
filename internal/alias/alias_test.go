package alias

import (
	"testing"

	"github.com/shoalmq/shoal/codec"
)

func TestIn(t *testing.T) {
	var in In
	if _, ok := in.Topic(1); ok {
		t.Fatal("alias 1 set in an empty table")
	}
	in.Set(3, 3, []byte("a/b"))
	if got, ok := in.Topic(3); !ok || string(got) != "a/b" {
		t.Fatalf("Topic(3) = %q, %v", got, ok)
	}
	in.Set(3, 3, []byte("c"))
	if got, _ := in.Topic(3); string(got) != "c" {
		t.Fatalf("Topic(3) after a new Set = %q", got)
	}
	if _, ok := in.Topic(2); ok {
		t.Fatal("alias 2 never set")
	}
}

// TestOut: the first PUBLISH of a topic carries topic and alias, later
// ones the alias alone; past Max, topics go out in full.
func TestOut(t *testing.T) {
	out := Out{Max: 1}
	o := codec.Outgoing{Topic: []byte("a")}
	out.Apply(&o)
	if o.TopicAlias != 1 || string(o.Topic) != "a" {
		t.Fatalf("first: alias %d topic %q", o.TopicAlias, o.Topic)
	}
	o = codec.Outgoing{Topic: []byte("a")}
	out.Apply(&o)
	if o.TopicAlias != 1 || o.Topic != nil {
		t.Fatalf("again: alias %d topic %q", o.TopicAlias, o.Topic)
	}
	o = codec.Outgoing{Topic: []byte("b")}
	out.Apply(&o)
	if o.TopicAlias != 0 || string(o.Topic) != "b" {
		t.Fatalf("past Max: alias %d topic %q", o.TopicAlias, o.Topic)
	}
}
