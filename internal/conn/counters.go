package conn

import (
	"errors"
	"sync/atomic"
)

// Counters live per loop: a loop counts its packets in plain fields and
// publishes them to atomics once per event (publishCounters, before its
// output is written), so that nothing shared is touched per packet. Stats
// sums them when asked.

// CloseReason says why a connected client's connection ended.
type CloseReason uint8

const (
	closeNetwork      CloseReason = iota // the connection was lost, no DISCONNECT
	closeNormal                          // DISCONNECT 0x00
	closeWithWill                        // DISCONNECT 0x04
	closeTakeover                        // another connection took the session
	closeKeepAlive                       // keep-alive expired
	closeSlowConsumer                    // slow-consumer policy
	closeProtocol                        // malformed packet or protocol violation
	closeShutdown                        // the broker is stopping
	closeAdmin                           // kicked through the admin API
	CloseReasons
)

// String is the reason's label in metrics and the admin API.
func (r CloseReason) String() string {
	return [...]string{"network", "normal", "disconnect_with_will", "takeover", "keepalive",
		"slow_consumer", "protocol_error", "shutdown", "admin"}[r]
}

// reasonOf classifies the error a connection is closed with.
func reasonOf(err error) CloseReason {
	switch {
	case errors.Is(err, errKeepAlive):
		return closeKeepAlive
	case errors.Is(err, errSuperseded):
		return closeTakeover
	case errors.Is(err, errSlowConsumer), errors.Is(err, errOutputBacklog):
		return closeSlowConsumer
	case errors.Is(err, errAdminKick):
		return closeAdmin
	}
	return closeProtocol
}

// LoopCounters are one loop's counters.
type LoopCounters struct {
	// Loop goroutine only, between publishes.
	pubIn, pubOut [3]int64

	// Published: read by Stats.
	MsgsIn, MsgsOut [3]atomic.Int64 // PUBLISH packets from and to clients, by QoS
	Connected       atomic.Int64    // clients connected on the loop
	Connects        atomic.Int64    // CONNECT packets taken
	Closes          [CloseReasons]atomic.Int64
}

// publishCounters moves the loop's packet counts to where Stats reads
// them. Loop goroutine only.
func (lc *LoopCounters) publishCounters() {
	for q := range lc.pubIn {
		if n := lc.pubIn[q]; n != 0 {
			lc.MsgsIn[q].Add(n)
			lc.pubIn[q] = 0
		}
		if n := lc.pubOut[q]; n != 0 {
			lc.MsgsOut[q].Add(n)
			lc.pubOut[q] = 0
		}
	}
}

// Counters are the connections' counters, read by the broker's Stats and
// tests. Each is bumped off the per-message path (connects, drops), so a
// shared atomic is fine.
type Counters struct {
	DropsWorkerFull   atomic.Int64
	PublishPauses     atomic.Int64
	DropsSlowClient   atomic.Int64
	DropsExpired      atomic.Int64
	DropsTooLarge     atomic.Int64
	ProtocolFailures  atomic.Int64
	SlowConsumerKicks atomic.Int64
	DropsUnauthorized atomic.Int64
	ConnsRejected     atomic.Int64 // closed at accept: far over MaxConnections
	// CONNECTs refused, by cause.
	RefusedConnections atomic.Int64 // MaxConnections
	RefusedRate        atomic.Int64 // ConnectRate
	RefusedClientID    atomic.Int64 // MaxClientIDLength
	RefusedLogin       atomic.Int64 // credentials, anonymous, will topic
	RefusedLoginBusy   atomic.Int64 // AuthQueue full
	// Refused topics and subscriptions.
	DropsTopicLimit  atomic.Int64 // MaxTopicLength, MaxTopicLevels
	RefusedSubs      atomic.Int64 // MaxSubscriptions, limits, Authorizer
	PublishThrottled atomic.Int64 // PublishRate paused a client
}
