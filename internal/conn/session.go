package conn

import (
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/session"
)

// Kick disconnects client id's connection (MQTT 5: DISCONNECT 0x98
// Administrative action) on its loop; its session stays as its expiry
// says. It reports whether the client was connected.
func (h *Handler) Kick(id string) bool {
	c := h.attached(id)
	if c != nil {
		h.disp.Notify(c, noteAdminKick)
	}
	return c != nil
}

// attached returns the client attached to id's session, or nil.
func (h *Handler) attached(id string) *client {
	s := h.sessions.Get(id)
	if s == nil {
		return nil
	}
	s.Lock()
	defer s.Unlock()
	c, _ := s.OwnerLocked().(*client)
	return c
}

// TakeOver closes the connection attached to id's session, if there is
// one, as a takeover by a new connection does (MQTT 5: DISCONNECT 0x8E):
// its client connected to another node of the cluster. clean says the new
// connection starts afresh. It reports whether there was one.
func (h *Handler) TakeOver(id string, clean bool) bool {
	c := h.attached(id)
	if c != nil {
		h.kick(c, clean)
	}
	return c != nil
}

// Peer describes the connection a session is attached to.
type Peer struct {
	Address      string
	Protocol     string // "3.1", "3.1.1" or "5.0"
	KeepAlive    uint16 // seconds
	Listener     string // "tcp", "tls", "ws", "wss" or "internal"
	CertIdentity string // of a verified client certificate, by tls_identity
}

// PeerOf describes o, a session's owner (Session.OwnerLocked, under the
// session's lock): false if there is none. The fields read here are set
// before the connection attaches to the session, under that lock.
func PeerOf(o session.Owner) (Peer, bool) {
	c, _ := o.(*client)
	if c == nil {
		return Peer{}, false
	}
	p := Peer{Address: c.conn.RemoteAddr().String(), Protocol: protocolNames[c.version], KeepAlive: c.keepAlive, Listener: "tcp"}
	if o := c.conn.Origin(); o != nil {
		p.Listener, p.CertIdentity = o.Listener, o.CertIdentity
	}
	return p, true
}

var protocolNames = map[byte]string{codec.V31: "3.1", codec.V311: "3.1.1", codec.V5: "5.0"}

// attachedClients counts the sessions a client connection is attached to,
// but the embedding program's own.
func (h *Handler) attachedClients() int {
	n := 0
	h.sessions.Range(func(s *session.Session) bool {
		s.Lock()
		c, _ := s.OwnerLocked().(*client)
		s.Unlock()
		if c != nil {
			if o := c.conn.Origin(); o == nil || !o.Internal {
				n++
			}
		}
		return true
	})
	return n
}
