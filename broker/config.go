package broker

import (
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/rs/zerolog"

	"github.com/shoalmq/shoal/auth"
	"github.com/shoalmq/shoal/bridge"
	"github.com/shoalmq/shoal/internal/admit"
	"github.com/shoalmq/shoal/internal/cluster"
	"github.com/shoalmq/shoal/internal/conn"
	"github.com/shoalmq/shoal/internal/deadline"
	"github.com/shoalmq/shoal/internal/enum"
	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/store"
	"github.com/shoalmq/shoal/transport"
)

// QueuePolicy says what a persistent session's offline queue does when it is
// full and another QoS 1/2 message arrives for it.
type QueuePolicy uint8

const (
	// DropOldest discards the oldest queued message to make room (default):
	// a device that comes back sees the freshest data.
	DropOldest QueuePolicy = iota
	// DropNewest discards the arriving message and keeps the queue as it is.
	DropNewest
)

// String returns the config-file spelling.
func (p QueuePolicy) String() string { return queuePolicies.String(p) }

// ParseQueuePolicy reads the config-file spelling of a QueuePolicy.
func ParseQueuePolicy(s string) (QueuePolicy, error) { return queuePolicies.Parse(s) }

// queuePolicies spells the QueuePolicy values, in order.
var queuePolicies = enum.New[QueuePolicy]("QueuePolicy", "queue policy", "drop-oldest", "drop-newest")

// SlowConsumerPolicy says what happens to a connected client whose session
// queue is full: it receives QoS 1/2 messages slower than they arrive.
type SlowConsumerPolicy uint8

const (
	// DisconnectSlow closes the connection (MQTT 5: DISCONNECT 0x97 Quota
	// exceeded) once its queue is full (default). The message that did not
	// fit goes by QueuePolicy; a persistent session keeps its queue for the
	// client's return. One stalled subscriber then costs the broker at most
	// its queue, and the client learns that it fell behind instead of
	// silently missing messages.
	DisconnectSlow SlowConsumerPolicy = iota
	// DropSlow keeps the client connected and applies QueuePolicy to every
	// message that does not fit, for as long as it stays behind.
	DropSlow
)

// String returns the config-file spelling.
func (p SlowConsumerPolicy) String() string { return slowConsumerPolicies.String(p) }

// ParseSlowConsumerPolicy reads the config-file spelling of a SlowConsumerPolicy.
func ParseSlowConsumerPolicy(s string) (SlowConsumerPolicy, error) {
	return slowConsumerPolicies.Parse(s)
}

// slowConsumerPolicies spells the SlowConsumerPolicy values, in order.
var slowConsumerPolicies = enum.New[SlowConsumerPolicy]("SlowConsumerPolicy", "slow consumer policy", "disconnect", "drop")

// Config holds every setting of a Broker. The zero value is not usable; start
// from DefaultConfig and change what you need. Each field documents its
// default and its config-file key.
type Config struct {
	// Listen is the TCP address of the MQTT listener (listen).
	// Default "127.0.0.1:1883"; ":0" picks a free port (see Broker.Addr).
	Listen string

	// Loops is the number of reactor event loops (loops). Default 0: one per CPU.
	Loops int

	// Workers is the number of router workers that match and fan out
	// PUBLISH packets (workers). Default 0: one per CPU.
	Workers int

	// Coalesce lets a message to a client that was written to less than
	// this ago wait while more work for its loop is already on the way
	// (the rest of a poll, deliveries posted meanwhile), to go out with
	// the messages that follow in one system call and fewer TCP segments
	// (coalesce); never longer than this after that write. An idle loop
	// writes at once, as does the first message after a quiet spell;
	// answers (CONNACK, acknowledgements, PINGRESP) are never held.
	// Default 2ms; 0 turns it off.
	Coalesce time.Duration

	// TCPNoDelay sets TCP_NODELAY on accepted MQTT connections, so that
	// the kernel sends each write at once (tcp_nodelay). Turned off,
	// Nagle's algorithm holds a small write while the one before is
	// unacknowledged: fewer segments, but tens of milliseconds added at
	// low rates when the client delays its ACKs. Default true, measured
	// (bench/results/2026-12-07-nagle.md, 5 paired rounds on loopback):
	// with Nagle on top of coalescing, fan-out to 500 at 100,000
	// deliveries/s used 0.91× the CPU per delivery at 2.5× the p99 (37
	// against 9.5 ms), plain fan-in 0.92× at 1.21×, and no other
	// fixed-rate variant changed beyond noise; on a real network, where an
	// ACK takes a round trip, Nagle's holds grow with it.
	TCPNoDelay bool

	// WorkerQueue bounds each router worker's queue of messages (worker_queue).
	// When it is full, QoS 0 messages are dropped and a QoS 1/2 publisher is
	// paused: its PUBLISH stays unread and unacknowledged until there is
	// room (eventloop.ErrPause). Default 16384.
	WorkerQueue int

	// MaxPacketSize is the largest packet accepted from a client, in bytes,
	// fixed header included (max_packet_size). Larger packets close the
	// connection before their body is buffered. Default 1 MiB; at most
	// 268,435,460 (the protocol maximum).
	MaxPacketSize int

	// ConnectTimeout is how long a new connection may take to send CONNECT
	// (connect_timeout). Default 10s.
	ConnectTimeout time.Duration

	// MaxKeepAlive caps the keep-alive a client may ask for, in seconds
	// (max_keepalive). 0 means no cap. Default 0. Clients asking for more get
	// MaxKeepAlive (v5 announces it as Server Keep Alive).
	MaxKeepAlive uint16

	// MaxInflight is how many QoS 1/2 messages may be sent to one client and
	// not yet acknowledged (max_inflight). Default 64. A v5 client's Receive
	// Maximum lowers it for that client.
	MaxInflight int

	// MaxQueued bounds the QoS 1/2 messages kept for one session beyond its
	// in-flight window: while it is offline, or while the window is full
	// (max_queued). Default 1000.
	MaxQueued int

	// QueuePolicy says what happens when that queue is full (queue_policy).
	// Default DropOldest.
	QueuePolicy QueuePolicy

	// SlowConsumer says what happens to a connected client whose queue is
	// full (slow_consumer). Default DisconnectSlow. QoS 0 messages to a
	// client are dropped instead once 4 MiB of output waits for it.
	SlowConsumer SlowConsumerPolicy

	// RetryInterval, when non-zero, resends unacknowledged QoS 1/2 messages
	// with DUP set to MQTT 3.1/3.1.1 clients that stay connected
	// (retry_interval). MQTT 5 forbids such resends [MQTT-4.4.0-1]; for every
	// version the in-flight messages are resent on reconnect. Default 0 (off).
	RetryInterval time.Duration

	// MaxSessionExpiry caps how long a persistent session outlives its
	// connection (max_session_expiry). 0 means no cap. Default 0.
	// MQTT 3.1.1 sessions with clean session 0 never expire unless capped.
	MaxSessionExpiry time.Duration

	// ReceiveMaximum is the Receive Maximum the broker announces to MQTT 5
	// clients: how many QoS 1/2 PUBLISH packets each may have unacknowledged
	// (receive_maximum). QoS 1 is acknowledged at once, so in practice it
	// bounds QoS 2 messages awaiting PUBREL; a client exceeding it is
	// disconnected with 0x93 [MQTT-3.3.4-7]. Default 1024, 1..65535.
	ReceiveMaximum uint16

	// TopicAliasMaximum is the highest Topic Alias an MQTT 5 client may use
	// in its PUBLISH packets (topic_alias_maximum); 0 refuses aliases.
	// Each alias in use holds a topic string for the connection's life.
	// Default 64.
	TopicAliasMaximum uint16

	// OutboundTopicAliases is how many topic aliases the broker itself uses
	// toward an MQTT 5 client that accepts them, capped by the client's
	// Topic Alias Maximum (outbound_topic_aliases). Aliases save bandwidth
	// on long, repeated topics at the cost of a small map per connection
	// that uses them; clients announcing no Topic Alias Maximum (the
	// default) never get them. 0 turns them off. Default 16.
	OutboundTopicAliases uint16

	// SharedStrategy picks the member of a shared subscription group that
	// gets each message (shared_strategy): round-robin, random, hash-client
	// (the publisher's id) or hash-topic. Offline or stalled members are
	// passed over. Default round-robin.
	SharedStrategy router.SharedStrategy

	// MaxQoS is the highest QoS the broker accepts and grants (max_qos):
	// subscriptions are granted at most this, an MQTT 5 client publishing
	// above it is disconnected with 0x9B (MQTT 5 section 3.2.2.3.4). Default 2.
	MaxQoS byte

	// RetainAvailable says whether clients may publish retained messages
	// (retain_available). When false, an MQTT 5 client that tries is
	// disconnected with 0x9A [MQTT-3.2.2-14]; an MQTT 3.x client is
	// disconnected. Default true.
	RetainAvailable bool

	// ResponseInformation is returned to MQTT 5 clients that ask for it with
	// Request Response Information, as the base of their response topics
	// (response_information). Default "": none is returned.
	ResponseInformation string

	// AuthMethods are the MQTT 5 enhanced authentication methods clients
	// may name in CONNECT, e.g. scram.New(...) of package auth/scram. A
	// CONNECT naming another method is refused with 0x8C [MQTT-4.12.0-1].
	// From the config file: scram_users. Default none.
	AuthMethods []auth.Method

	// AllowAnonymous says whether clients may connect without credentials:
	// no user name, no verified client certificate, no enhanced
	// authentication (allow_anonymous). Refused ones get CONNACK 0x87
	// (MQTT 3.1.1: 0x05). Default AnonymousLoopback: allowed while every
	// listener is on loopback, refused once one is not (and the broker
	// says so at start); AnonymousAllow and AnonymousDeny decide for every
	// listener, the former with a warning at start when a listener is not
	// on loopback.
	AllowAnonymous Anonymous

	// Authenticator checks the user name and password of CONNECT
	// (password_file, http_auth_url; both: the file first). It runs on a
	// pool of AuthWorkers goroutines, never on an event loop, and the
	// client's CONNACK waits for it. nil: nothing checks user names, so a
	// client sending one is let in as anonymous when AllowAnonymous is set
	// (the name gets it no rights from the Authorizer), refused with 0x86
	// (0x04) otherwise.
	Authenticator auth.Authenticator

	// Authorizer says which topics each client may publish and subscribe
	// to (acl_file); nil: all of them.
	Authorizer auth.Authorizer

	// AuthWorkers is how many logins are checked at once (auth_workers).
	// Default 0: one per CPU — a password hash is CPU-bound work.
	AuthWorkers int

	// AuthQueue bounds the logins waiting for an AuthWorker (auth_queue).
	// A CONNECT finding it full is refused with 0x89 Server busy (3.1.1:
	// 0x03), so a reconnect storm costs a bounded queue, and clients retry
	// later. Default 256: at bcrypt cost 10 (55 ms a hash, measured) two
	// CPUs get through it in about 7 s, inside the default connect_timeout;
	// a client further back would time out waiting anyway.
	AuthQueue int

	// MaxConnections bounds the open client connections (max_connections).
	// A CONNECT over it is refused with 0x97 Quota exceeded (3.1.1: 0x03
	// Server unavailable); a connection opened far beyond it is closed at
	// once. Default 0: the process's file limit less 256 for the store,
	// listeners and the admin API. Reloadable.
	MaxConnections int

	// ConnectRate is how many connections per second one source address
	// may open (connect_rate); ConnectBurst how many it may open at once
	// (connect_burst). Over it, CONNECT is refused with 0x9F Connection
	// rate exceeded (3.1.1: 0x03). Default 0 (off). Reloadable.
	ConnectRate  float64
	ConnectBurst int

	// PublishRate is how many PUBLISH packets per second one client may
	// send (publish_rate), PublishBurst how many at once (publish_burst).
	// A client over it is not read until it is under it again: TCP pushes
	// back on it, and nothing it sent is dropped. Default 0 (off).
	// Reloadable for new connections.
	PublishRate  float64
	PublishBurst int

	// MaxSubscriptions bounds one session's subscriptions
	// (max_subscriptions). Further filters are refused with SUBACK 0x97
	// (3.1.1: 0x80). Default 10000. Reloadable.
	MaxSubscriptions int

	// MaxTopicLength and MaxTopicLevels bound topic names and filters in
	// bytes and levels (max_topic_length, max_topic_levels). Longer filters
	// get SUBACK 0x8F (3.1.1: 0x80); a longer topic is refused with
	// PUBACK/PUBREC 0x90 (MQTT 5) or closes a 3.x connection. Defaults
	// 1024 and 32. Reloadable.
	MaxTopicLength int
	MaxTopicLevels int

	// MaxQueuedBytes bounds the message bytes (topic, payload, properties)
	// queued for one session, alongside MaxQueued (max_queued_bytes).
	// Default 64 MiB. Reloadable.
	MaxQueuedBytes int

	// MaxClientIDLength bounds the client identifier, in bytes
	// (max_client_id_length). Longer ones are refused with CONNACK 0x85
	// (3.1.1: 0x02). Default 256. Reloadable.
	MaxClientIDLength int

	// AssignClientIDs says whether a client connecting with an empty
	// client identifier gets one from the broker (assign_client_ids), as
	// MQTT 3.1.1 allows with clean session 1 and MQTT 5 always
	// [MQTT-3.1.3-6]; when false it is refused with CONNACK 0x85 (3.1.1:
	// 0x02), as Mosquitto's allow_zero_length_clientid false does.
	// Default true.
	AssignClientIDs bool

	// AssignedIDPrefix starts every client identifier the broker assigns
	// (assigned_id_prefix); a counter and the time follow. Default
	// "shoal-".
	AssignedIDPrefix string

	// MaxMessageSize bounds a PUBLISH payload, in bytes
	// (max_message_size). A larger message is acknowledged and dropped
	// (MQTT 5: PUBACK or PUBREC 0x83, Implementation specific error) and
	// the client stays connected, as Mosquitto's message_size_limit does;
	// max_packet_size, which closes the connection, still applies first.
	// Default 0: no bound but max_packet_size.
	MaxMessageSize int

	// LogConnections says whether the connection lifecycle is logged
	// (log_connections): connected, disconnected, taken over, login
	// refused, at info level. Default true.
	LogConnections bool

	// SysInterval is how often the $SYS topics are published (sys_interval).
	// Default 10s; 0 turns them off.
	SysInterval time.Duration

	// Version is what $SYS/broker/version and the admin API say; the
	// program sets it. Default "dev".
	Version string

	// DataDir is the directory of the persistent store (data_dir; the
	// config file's persistence: false clears it). Empty (the default):
	// nothing is stored, and a restart forgets every session.
	DataDir string

	// Durability says when the store syncs to disk (durability). Default
	// Strict: before acknowledging what it must keep.
	Durability Durability

	// OnDamage says what happens to a damaged store in DataDir
	// (on_damage). Default store.Salvage: what can be read is copied into
	// a fresh store and the damaged directory is kept beside it, renamed;
	// store.Refuse: the broker does not start, and nothing is changed.
	OnDamage store.OnDamage

	// Store, when set, is the persistent store to use instead of one in
	// DataDir: for embedders and tests (store.NewMem survives a broker
	// restart within the process). The broker syncs it on Close but does
	// not close it.
	Store store.Store

	// Import, when set, fills a store that has never had it with state
	// kept by another program (Mosquitto's persistence file), before the
	// store is loaded: see Import. Needs a store (DataDir or Store). Set
	// by the program, not by a config file's key directly.
	Import *Import

	// Transports configures the TLS, WebSocket and secure WebSocket
	// listeners (tls_listen, ws_listen, wss_listen and the tls_* and
	// ws_path keys; see package transport). Default: none. Reload re-reads
	// the certificate files; new listen addresses need a restart.
	Transports transport.Config

	// Bridges are the connections to other brokers that this one forwards
	// messages to and from (package bridge; Mosquitto's bridge
	// directives). Started after the listeners, stopped first on Close.
	// Default: none. Changes need a restart.
	Bridges bridge.Config

	// Cluster, when set, makes the broker a node of a cluster (the config
	// file's cluster section; see ClusterConfig): Start starts the node
	// before it serves, Close stops it after the listeners. An embedded
	// node keeps its JetStream state in DataDir/cluster. Default nil: no
	// cluster, the broker alone. Changes need a restart.
	Cluster *ClusterConfig

	// Logger receives the broker's logs. Default: zerolog.Nop().
	Logger zerolog.Logger

	// clock is the time of session expiry and will delays; nil: the
	// system clock. Tests set a deadline.Fake through export_test.go.
	// Unexported, so not part of the API nor of any config file.
	clock deadline.Clock
}

// DefaultConfig returns the configuration `make run` uses.
func DefaultConfig() Config {
	return Config{
		Listen:               "127.0.0.1:1883",
		Coalesce:             2 * time.Millisecond,
		TCPNoDelay:           true,
		WorkerQueue:          16384,
		MaxPacketSize:        1 << 20,
		ConnectTimeout:       10 * time.Second,
		MaxInflight:          64,
		MaxQueued:            1000,
		QueuePolicy:          DropOldest,
		SlowConsumer:         DisconnectSlow,
		SysInterval:          10 * time.Second,
		Version:              "dev",
		ReceiveMaximum:       1024,
		TopicAliasMaximum:    64,
		OutboundTopicAliases: 16,
		SharedStrategy:       router.RoundRobin,
		MaxQoS:               2,
		RetainAvailable:      true,
		AuthQueue:            256,
		MaxSubscriptions:     10000,
		MaxTopicLength:       1024,
		MaxTopicLevels:       32,
		MaxQueuedBytes:       64 << 20,
		MaxClientIDLength:    256,
		AssignClientIDs:      true,
		AssignedIDPrefix:     "shoal-",
		LogConnections:       true,
		Transports:           transport.DefaultConfig(),
		Logger:               zerolog.Nop(),
	}
}

// maxCoalesce bounds Coalesce: past it a delay would be felt as latency
// rather than traded for CPU.
const maxCoalesce = 100 * time.Millisecond

// maxProtocolPacket is the largest packet MQTT can express: a 268,435,455
// byte remaining length plus a 5-byte fixed header.
const maxProtocolPacket = 268435455 + 5

// Validate reports the first setting that cannot work, naming its
// config-file key.
func (c *Config) Validate() error {
	switch {
	case c.Listen == "":
		return errors.New("listen: must not be empty")
	case c.Loops < 0:
		return fmt.Errorf("loops: %d is negative", c.Loops)
	case c.Workers < 0:
		return fmt.Errorf("workers: %d is negative", c.Workers)
	case c.Coalesce < 0 || c.Coalesce > maxCoalesce:
		return fmt.Errorf("coalesce: %v is outside 0s..%v", c.Coalesce, maxCoalesce)
	case c.WorkerQueue < 1:
		return fmt.Errorf("worker_queue: %d must be at least 1", c.WorkerQueue)
	case c.MaxPacketSize < 64 || c.MaxPacketSize > maxProtocolPacket:
		return fmt.Errorf("max_packet_size: %d is outside 64..%d", c.MaxPacketSize, maxProtocolPacket)
	case c.ConnectTimeout <= 0:
		return fmt.Errorf("connect_timeout: %v must be positive", c.ConnectTimeout)
	case c.MaxInflight < 1 || c.MaxInflight > 65535:
		return fmt.Errorf("max_inflight: %d is outside 1..65535", c.MaxInflight)
	case c.MaxQueued < 0:
		return fmt.Errorf("max_queued: %d is negative", c.MaxQueued)
	case !queuePolicies.Valid(c.QueuePolicy):
		return fmt.Errorf("queue_policy: %v is unknown", c.QueuePolicy)
	case !slowConsumerPolicies.Valid(c.SlowConsumer):
		return fmt.Errorf("slow_consumer: %v is unknown", c.SlowConsumer)
	case c.SysInterval < 0:
		return fmt.Errorf("sys_interval: %v is negative", c.SysInterval)
	case !durabilities.Valid(c.Durability):
		return fmt.Errorf("durability: %v is unknown", c.Durability)
	case c.RetryInterval < 0:
		return fmt.Errorf("retry_interval: %v is negative", c.RetryInterval)
	case c.MaxSessionExpiry < 0:
		return fmt.Errorf("max_session_expiry: %v is negative", c.MaxSessionExpiry)
	case c.ReceiveMaximum == 0:
		return errors.New("receive_maximum: must be at least 1")
	case c.SharedStrategy > router.HashTopic:
		return fmt.Errorf("shared_strategy: %v is unknown", c.SharedStrategy)
	case !anonymousNames.Valid(c.AllowAnonymous):
		return fmt.Errorf("allow_anonymous: %v is unknown", c.AllowAnonymous)
	case c.MaxQoS > 2:
		return fmt.Errorf("max_qos: %d is outside 0..2", c.MaxQoS)
	case c.AuthWorkers < 0:
		return fmt.Errorf("auth_workers: %d is negative", c.AuthWorkers)
	case c.AuthQueue < 1:
		return fmt.Errorf("auth_queue: %d must be at least 1", c.AuthQueue)
	case c.MaxConnections < 0:
		return fmt.Errorf("max_connections: %d is negative", c.MaxConnections)
	case c.ConnectRate < 0:
		return fmt.Errorf("connect_rate: %v is negative", c.ConnectRate)
	case c.ConnectRate > 0 && c.ConnectBurst < 1:
		return fmt.Errorf("connect_burst: %d must be at least 1 when connect_rate is set", c.ConnectBurst)
	case c.PublishRate < 0:
		return fmt.Errorf("publish_rate: %v is negative", c.PublishRate)
	case c.PublishRate > 0 && c.PublishBurst < 1:
		return fmt.Errorf("publish_burst: %d must be at least 1 when publish_rate is set", c.PublishBurst)
	case c.MaxSubscriptions < 1:
		return fmt.Errorf("max_subscriptions: %d must be at least 1", c.MaxSubscriptions)
	case c.MaxTopicLength < 1 || c.MaxTopicLength > 65535:
		return fmt.Errorf("max_topic_length: %d is outside 1..65535", c.MaxTopicLength)
	case c.MaxTopicLevels < 1:
		return fmt.Errorf("max_topic_levels: %d must be at least 1", c.MaxTopicLevels)
	case c.MaxQueuedBytes < 0:
		return fmt.Errorf("max_queued_bytes: %d is negative", c.MaxQueuedBytes)
	case c.MaxClientIDLength < 1 || c.MaxClientIDLength > 65535:
		return fmt.Errorf("max_client_id_length: %d is outside 1..65535", c.MaxClientIDLength)
	case c.MaxMessageSize < 0:
		return fmt.Errorf("max_message_size: %d is negative", c.MaxMessageSize)
	case len(c.AssignedIDPrefix) > 64:
		return fmt.Errorf("assigned_id_prefix: %d bytes, at most 64", len(c.AssignedIDPrefix))
	case c.Import != nil && (c.Import.Fill == nil || c.Import.Name == ""):
		return errors.New("import: needs a Name and a Fill")
	case c.Import != nil && c.DataDir == "" && c.Store == nil:
		return fmt.Errorf("import: %s has no store to go into (persistence is off)", c.Import.Name)
	}
	if err := c.Bridges.Validate(); err != nil {
		return err
	}
	if c.Cluster != nil {
		cc := c.clusterConfig()
		if err := cc.Validate(); err != nil {
			return err
		}
		if c.MaxTopicLength > cluster.MaxTopicLength {
			return fmt.Errorf("max_topic_length: %d is more than a cluster takes (%d): a longer topic's key does not fit NATS's subjects",
				c.MaxTopicLength, cluster.MaxTopicLength)
		}
	}
	return c.Transports.Validate()
}

func (c *Config) loops() int {
	if c.Loops > 0 {
		return c.Loops
	}
	return runtime.NumCPU()
}

// EventLoops is how many event loops the broker runs: Loops, or one per
// CPU when Loops is 0.
func (c *Config) EventLoops() int { return c.loops() }

func (c *Config) authWorkers() int {
	if c.AuthWorkers > 0 {
		return c.AuthWorkers
	}
	return runtime.NumCPU()
}

func (c *Config) workers() int {
	if c.Workers > 0 {
		return c.Workers
	}
	return runtime.NumCPU()
}

// connConfig is what the connections need of c that never changes while
// the broker runs.
func (c *Config) connConfig() conn.Config {
	return conn.Config{
		MaxQoS:               c.MaxQoS,
		RetainAvailable:      c.RetainAvailable,
		ReceiveMaximum:       c.ReceiveMaximum,
		TopicAliasMaximum:    c.TopicAliasMaximum,
		OutboundTopicAliases: c.OutboundTopicAliases,
		MaxPacketSize:        c.MaxPacketSize,
		MaxMessageSize:       c.MaxMessageSize,
		ResponseInformation:  c.ResponseInformation,
		AssignClientIDs:      c.AssignClientIDs,
		AssignedIDPrefix:     c.AssignedIDPrefix,
		LogConnections:       c.LogConnections,
		AuthQueue:            c.AuthQueue,
		AuthMethods:          c.AuthMethods,
	}
}

// access is who may connect under c and what they may do: what Reload
// swaps.
func (c *Config) access() admit.Access {
	return admit.Access{Anonymous: c.anonymousAllowed(), Authn: c.Authenticator, Authz: c.Authorizer}
}
