package bridge

import (
	"strings"

	"github.com/shoalmq/shoal/codec"
)

// Renaming topics across a bridge, as Mosquitto does (bridge_topic.c's
// remap functions describe the same rules): a message crossing is renamed
// by the first topic line of its direction that has a prefix and whose
// filter on the side it came from matches it. That line's prefix of the
// source side is removed from the front of the topic, if the topic starts
// with it, and the prefix of the destination side is put in front. A
// message that no prefixed line matches keeps its topic.

// toRemote renames a local topic for the remote broker.
func toRemote(topics []Topic, topic string) string {
	for i := range topics {
		t := &topics[i]
		if !t.Direction.out() || (t.LocalPrefix == "" && t.RemotePrefix == "") {
			continue
		}
		if codec.Matches(t.Local(), topic) {
			return rename(topic, t.LocalPrefix, t.RemotePrefix)
		}
	}
	return topic
}

// toLocal renames a remote topic for the local broker.
func toLocal(topics []Topic, topic string) string {
	for i := range topics {
		t := &topics[i]
		if !t.Direction.in() || (t.LocalPrefix == "" && t.RemotePrefix == "") {
			continue
		}
		if codec.Matches(t.Remote(), topic) {
			return rename(topic, t.RemotePrefix, t.LocalPrefix)
		}
	}
	return topic
}

func rename(topic, from, to string) string {
	return to + strings.TrimPrefix(topic, from)
}
