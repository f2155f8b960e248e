package alias

import (
	"unsafe"

	"github.com/shoalmq/shoal/codec"
)

// In is a connection's inbound topic aliases, by alias. The zero value
// holds none.
type In struct {
	topics []string // by alias; sized Topic Alias Maximum + 1 at first use
}

// Set makes alias, from 1 to max (the broker's Topic Alias Maximum),
// stand for topic.
func (t *In) Set(alias, max uint16, topic []byte) {
	if t.topics == nil {
		t.topics = make([]string, int(max)+1) // int: max may be 65535
	}
	if t.topics[alias] != string(topic) {
		t.topics[alias] = string(topic)
	}
}

// Topic is the topic alias stands for, as a read-only view; false when
// it was never set.
func (t *In) Topic(alias uint16) ([]byte, bool) {
	if int(alias) >= len(t.topics) || t.topics[alias] == "" {
		return nil, false
	}
	s := t.topics[alias]
	return unsafe.Slice(unsafe.StringData(s), len(s)), true
}

// Out is a connection's outbound topic aliases: topic -> alias, assigned
// until Max are in use; later topics go out in full. The zero value
// assigns none.
type Out struct {
	Max    uint16 // the client's Topic Alias Maximum, capped by the broker's
	topics map[string]uint16
}

// Apply replaces o's topic with its alias when it has one, or assigns
// one while fewer than Max are in use; the first PUBLISH with a new alias
// carries both [MQTT-3.3.2-12].
func (t *Out) Apply(o *codec.Outgoing) {
	if a, ok := t.topics[string(o.Topic)]; ok {
		o.TopicAlias, o.Topic = a, nil
		return
	}
	if len(t.topics) >= int(t.Max) {
		return
	}
	if t.topics == nil {
		t.topics = make(map[string]uint16)
	}
	a := uint16(len(t.topics) + 1)
	t.topics[string(o.Topic)] = a
	o.TopicAlias = a
}
