package broker

import (
	"errors"
	"net"

	"github.com/shoalmq/shoal/eventloop"
)

// Connections the embedding program makes to its own broker, for bridges:
// the broker's side is enrolled in an event loop like a TLS connection
// (eventloop.Engine.Enroll), so it is framed, handled and persisted as any
// client; the caller's side is an in-memory net.Pipe. No port, no
// credentials: the origin marks it internal (package conn admits it, with
// every right).

// internalAddr is the address an internal connection shows in logs and
// the admin API: "internal:NAME".
type internalAddr string

func (a internalAddr) Network() string { return "internal" }
func (a internalAddr) String() string  { return "internal:" + string(a) }

// DialInternal opens an MQTT connection to the broker from inside the
// process; name says who opens it (logs, /api/clients). The caller speaks
// MQTT over the returned net.Conn as a client and closes it when done.
// Safe for concurrent use, between Start and Close.
func (b *Broker) DialInternal(name string) (net.Conn, error) {
	if !b.ready.Load() {
		return nil, errors.New("broker: DialInternal before Start or after Close")
	}
	mine, theirs := net.Pipe()
	if err := b.engine.Enroll(theirs, &eventloop.Origin{Listener: "internal", Remote: internalAddr(name), Internal: true}); err != nil {
		_ = mine.Close()
		_ = theirs.Close()
		return nil, err
	}
	return mine, nil
}

// SessionQueue reports, for the session of client id, the QoS 1/2
// messages queued for it and those a full queue cost it since the broker
// started; ok is false when there is no such session. Safe for concurrent
// use.
func (b *Broker) SessionQueue(id string) (queued int, dropped uint64, ok bool) {
	s := b.sessions.Get(id)
	if s == nil {
		return 0, 0, false
	}
	s.Lock()
	defer s.Unlock()
	return s.QueueLen(), s.DroppedLocked(), true
}
