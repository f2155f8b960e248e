package store

import (
	"errors"
	"fmt"

	"github.com/shoalmq/shoal/router"
)

// ErrUnvouched is a syncing Commit's answer when the changes are on this
// node's disk but the node cannot vouch that its cluster's copy of the
// sessions holds them before another node may have taken the sessions
// on — it was frozen, or cut off from its cluster's majority, while it
// waited. What the changes acknowledge (a QoS 2 PUBLISH sent, a PUBREL,
// a PUBACK) must not reach the clients: the sessions' next node would
// not know it was sent.
var ErrUnvouched = errors.New("store: committed on this node, but not vouched for by its cluster")

// UnvouchedError is ErrUnvouched for some sessions only (errors.Is tells
// it for ErrUnvouched): changes to them were committed on this node but
// not copied, as another node holds them by now. What waited for those
// changes must not go out to these sessions' clients; the rest of the
// commit is vouched for.
type UnvouchedError struct {
	// Clients are the sessions' client ids.
	Clients []string
}

func (e *UnvouchedError) Error() string {
	return fmt.Sprintf("store: committed on this node, but %d sessions are held by another node of its cluster", len(e.Clients))
}

// Is reports whether target is ErrUnvouched.
func (e *UnvouchedError) Is(target error) bool { return target == ErrUnvouched }

// Store keeps the broker's durable state: persistent sessions, the QoS 1/2
// messages owed to them, inbound QoS 2 packet ids awaiting PUBREL, and
// retained messages. Changes go through Writers, one per goroutine; Load
// reads everything back at start-up. Store's methods are safe for
// concurrent use; a Writer's are not.
type Store interface {
	// NewWriter returns a writer for one goroutine. Make writers after
	// Load: Load may replace a damaged database with a salvaged one.
	NewWriter() Writer
	// Load reads the stored state back, calling l's methods in this order:
	// every session, then every delivery (per client in Seq order), then
	// every awaited QoS 2 id, then every retained message. A record that
	// cannot be read is reported to l.Corrupt and skipped. Load fails when
	// nothing can be read at all, or when the store is damaged and was
	// opened to refuse damage (OnDamage Refuse: a *DamagedError).
	Load(l Loader) error
	// Mark returns the value of the mark named name, or nil if the store
	// has none. Marks record events of the store's life that must happen
	// once, such as an import (Writer.PutMark); Load does not see them.
	Mark(name string) ([]byte, error)
	// Empty reports whether the store holds no state: no session,
	// delivery, awaited QoS 2 id or retained message. Marks do not count.
	Empty() (bool, error)
	// Sync makes every change committed so far durable.
	Sync() error
	// Close syncs and releases the store. Writers must not be used after.
	Close() error
}

// Writer gathers changes and applies them on Commit, atomically and in
// order. The record arguments are copied: callers may reuse them at once.
// A Writer belongs to one goroutine.
type Writer interface {
	// PutSession stores (or replaces) a session record.
	PutSession(s *Session)
	// DeleteSession removes a session with its deliveries and awaited ids.
	DeleteSession(clientID string)
	// PutDelivery stores a message owed to clientID's session, not yet
	// sent.
	PutDelivery(clientID string, d Delivery)
	// MarkSent records that delivery seq went out with packetID and is in
	// outbound state state (session.AwaitPuback, AwaitPubrec or
	// AwaitPubcomp).
	MarkSent(clientID string, seq uint64, packetID uint16, state uint8)
	// DeleteDelivery removes delivery seq: completed, dropped or expired.
	DeleteDelivery(clientID string, seq uint64)
	// PutAwaitRel records inbound QoS 2 packet id as received (PUBREC sent).
	PutAwaitRel(clientID string, id uint16)
	// DeleteAwaitRel forgets it (PUBREL came).
	DeleteAwaitRel(clientID string, id uint16)
	// PutRetained stores the retained message of m.Topic.
	PutRetained(m Message)
	// DeleteRetained removes topic's retained message.
	DeleteRetained(topic []byte)
	// PutMark stores the mark name with value (Store.Mark). Committed with
	// the records it vouches for, in the same Commit, it holds only if
	// they do.
	PutMark(name string, value []byte)
	// Dirty reports whether changes wait for Commit.
	Dirty() bool
	// Commit applies the changes made since the last Commit. With sync,
	// they — and every change any writer committed before — are durable
	// when it returns; concurrent syncing commits share one disk sync.
	// A syncing commit of a cluster's copy (package replica) may return
	// ErrUnvouched: the changes are committed, but what waited for
	// them must not go out.
	Commit(sync bool) error
}

// ReceiptWriter is a Writer that also keeps, for a while, which QoS 2
// messages a session's client has received (its PUBREC came): package
// replica's, whose copy of the session tells the session's next node
// that such a message, should it come to the session again — a stream
// whose acknowledgement was lost sends it anew — was delivered already.
// A node's own store has no use for it.
type ReceiptWriter interface {
	Writer
	// Received records that clientID's client received the message of
	// Origin origin (router.Message.Origin; 0 is none, and ignored).
	Received(clientID string, origin uint64)
}

// Loader receives the stored state from Store.Load. The records and their
// byte slices are valid only during the call. Each method returns whether
// to keep the record: false deletes it (an expired session or message, a
// delivery whose session is gone).
type Loader interface {
	Session(s *Session) bool
	Delivery(clientID string, d *Delivery) bool
	AwaitRel(clientID string, id uint16) bool
	Retained(m *Message) bool
	// Corrupt reports a record, or a part of the store, that could not be
	// read and was skipped. Such records are left as they are.
	Corrupt(what string, err error)
}

// Session is a persistent session as stored.
type Session struct {
	ClientID string
	// Expiry is the Session Expiry Interval in seconds (never 0: sessions
	// that end with their connection are not stored).
	Expiry uint32
	// ExpireAt is when the offline session ends, Unix ns; 0 if it was
	// connected when stored, or never expires. A connected session counts
	// its expiry from the broker's restart.
	ExpireAt int64
	Subs     []Sub
	// Will is the will of the last connection when it has a Will Delay
	// Interval, nil otherwise: a broker that stops abruptly publishes it
	// after restarting, as the connection was lost.
	Will      *Message
	WillDelay uint32
}

// Sub is one subscription of a stored session.
type Sub struct {
	Filter string
	Opts   router.Options
}

// Message is a PUBLISH as stored.
type Message struct {
	Topic   []byte
	Payload []byte
	Props   []byte // MQTT 5 properties as forwarded (router.Message.Props)
	From    []byte // publisher's client id
	QoS     byte
	Retain  bool
	Expiry  int64 // Unix ns; 0 never. A will's is relative until published.
	// Origin is router.Message.Origin. Not in the store's records: the
	// cluster's copy of the sessions keeps it beside them (package
	// replica), and a Bundle after them.
	Origin uint64
}

// Delivery is a message owed to a session: queued, or sent and awaiting
// its acknowledgement.
type Delivery struct {
	Seq    uint64 // orders a session's deliveries; unique in the store
	Msg    Message
	QoS    byte // delivery QoS
	Retain bool
	SubIDs []uint32
	Group  string // shared subscription it came through, "" if none

	// PacketID and State are set once it was sent; State 0 means queued.
	PacketID uint16
	State    uint8
}
