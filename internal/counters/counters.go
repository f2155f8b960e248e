package counters

import "sync/atomic"

// CloseReason says why a connected client's connection ended.
type CloseReason uint8

const (
	CloseNetwork      CloseReason = iota // the connection was lost, no DISCONNECT
	CloseNormal                          // DISCONNECT 0x00
	CloseWithWill                        // DISCONNECT 0x04
	CloseTakeover                        // another connection took the session
	CloseKeepAlive                       // keep-alive expired
	CloseSlowConsumer                    // slow-consumer policy
	CloseProtocol                        // malformed packet or protocol violation
	CloseShutdown                        // the broker is stopping
	CloseAdmin                           // kicked through the admin API
	CloseCutOff                          // the node was cut off from its cluster's majority
	CloseReasons
)

// String is the reason's label in metrics and the admin API.
func (r CloseReason) String() string {
	return [...]string{"network", "normal", "disconnect_with_will", "takeover", "keepalive",
		"slow_consumer", "protocol_error", "shutdown", "admin", "cut_off"}[r]
}

// Loop are one event loop's counters.
type Loop struct {
	// PubIn and PubOut count PUBLISH packets from and to clients, by QoS,
	// since the last Publish. Loop goroutine only.
	PubIn, PubOut [3]int64

	// Published: read by Stats.
	MsgsIn, MsgsOut [3]atomic.Int64 // PUBLISH packets from and to clients, by QoS
	Connected       atomic.Int64    // clients connected on the loop
	Connects        atomic.Int64    // CONNECT packets taken
	Closes          [CloseReasons]atomic.Int64
}

// Publish moves the loop's packet counts to where Stats reads them. Loop
// goroutine only.
func (lc *Loop) Publish() {
	for q := range lc.PubIn {
		if n := lc.PubIn[q]; n != 0 {
			lc.MsgsIn[q].Add(n)
			lc.PubIn[q] = 0
		}
		if n := lc.PubOut[q]; n != 0 {
			lc.MsgsOut[q].Add(n)
			lc.PubOut[q] = 0
		}
	}
}

// Conns are the connections' counters shared by every loop. Each is
// bumped off the per-message path (connects, drops), so a shared atomic
// is fine.
type Conns struct {
	DropsWorkerFull   atomic.Int64
	PublishPauses     atomic.Int64
	DropsSlowClient   atomic.Int64
	DropsExpired      atomic.Int64
	DropsTooLarge     atomic.Int64
	DropsNotStored    atomic.Int64 // refused: the cluster could not store them (dispatch.Receipt)
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
