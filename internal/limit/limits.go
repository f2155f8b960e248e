package limit

import (
	"bytes"
	"fmt"
	"time"
)

// Limits are the settings a running broker can change, as the connections
// and the router read them: package broker builds them from its public
// Limits (the policies as booleans) at start and at every reload.
type Limits struct {
	ConnectTimeout   time.Duration
	MaxKeepAlive     uint16
	MaxInflight      int
	MaxQueued        int
	DropOldest       bool // QueuePolicy: drop the oldest queued message, else the arriving one
	DisconnectSlow   bool // SlowConsumer: disconnect a client whose queue is full, else drop
	RetryInterval    time.Duration
	MaxSessionExpiry time.Duration

	MaxConnections    int // resolved: never 0
	ConnectRate       float64
	ConnectBurst      int
	PublishRate       float64
	PublishBurst      int
	MaxSubscriptions  int
	MaxTopicLength    int
	MaxTopicLevels    int
	MaxQueuedBytes    int
	MaxClientIDLength int
}

// TopicRule says which of lim's topic limits t is over, for the log:
// what names the topic ("will topic").
func TopicRule(what string, t []byte, lim *Limits) string {
	if len(t) > lim.MaxTopicLength {
		return fmt.Sprintf("%s of %d bytes longer than max_topic_length (%d)", what, len(t), lim.MaxTopicLength)
	}
	return fmt.Sprintf("%s of %d levels deeper than max_topic_levels (%d)", what, bytes.Count(t, []byte{'/'})+1, lim.MaxTopicLevels)
}

// TopicOver reports whether a topic name or filter is longer, in bytes or
// levels, than lim allows.
func TopicOver(t []byte, lim *Limits) bool {
	if len(t) > lim.MaxTopicLength {
		return true
	}
	// n bytes hold at most n+1 levels ("//" is three): short topics need
	// no count.
	return len(t)+1 > lim.MaxTopicLevels && bytes.Count(t, []byte{'/'})+1 > lim.MaxTopicLevels
}
