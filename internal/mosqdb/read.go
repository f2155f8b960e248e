package mosqdb

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// magic opens every persistence file Mosquitto writes.
var magic = [15]byte{0x00, 0xB5, 0x00, 'm', 'o', 's', 'q', 'u', 'i', 't', 't', 'o', ' ', 'd', 'b'}

// headerSize is the magic, the CRC field and the version.
const headerSize = 15 + 4 + 4

// Chunk types.
const (
	chunkConfig    = 1
	chunkMessage   = 2
	chunkClientMsg = 3
	chunkRetain    = 4
	chunkSub       = 5
	chunkClient    = 6
)

var chunkNames = [...]string{chunkConfig: "config", chunkMessage: "message", chunkClientMsg: "client message",
	chunkRetain: "retain", chunkSub: "subscription", chunkClient: "client"}

// Fixed parts of the chunks (doc.go).
const (
	configFields  = 10 // last db id, shutdown, db id size; padded to 12 or 16
	messageFixed  = 32
	clientFixedV5 = 16
	clientFieldV6 = 20 // padded to 24 on 64-bit machines
	clientMsgSize = 16
	subFixed      = 12
	retainSize    = 8
)

// NeverExpires is the session expiry interval of a session that never
// expires.
const NeverExpires = 0xFFFFFFFF

// File is what a persistence file holds, chunk by chunk, in file order.
type File struct {
	Version  uint32 // 5 (Mosquitto 1.6) or 6 (2.0)
	LastDBID uint64
	// Shutdown says the file was written by a broker that was stopping.
	Shutdown bool

	Messages   []Message
	Clients    []Client
	ClientMsgs []ClientMsg
	Subs       []Sub
	Retains    []Retain
	// Unknown counts the chunks of types this package does not know,
	// skipped.
	Unknown int

	byID map[uint64]int // store id -> index in Messages
}

// Message is a stored PUBLISH, which client messages and retain chunks
// refer to by ID.
type Message struct {
	Offset int64 // of its chunk, for reports
	ID     uint64
	// Expiry is when the message expires, Unix seconds; 0 never.
	Expiry         int64
	SourceMID      uint16
	SourcePort     uint16
	SourceID       []byte // the publisher's client id
	SourceUsername []byte
	Topic          []byte
	Payload        []byte
	// Props are the MQTT 5 properties as Mosquitto wrote them: their
	// length (a variable byte integer), then the properties. Empty if
	// none.
	Props  []byte
	QoS    byte
	Retain bool
}

// Client is a persistent session.
type Client struct {
	Offset int64
	ID     string
	// Username is the last user name it connected with (version 6).
	Username string
	// ExpiryTime is when the session ends, Unix seconds; 0: never, or not
	// known.
	ExpiryTime int64
	// ExpiryInterval is the Session Expiry Interval in seconds;
	// NeverExpires for a session without end.
	ExpiryInterval uint32
	LastMID        uint16
	ListenerPort   uint16 // version 6; 0 when not known
}

// Direction says which way a client message goes.
type Direction uint8

const (
	// In is a message received from the client: a QoS 2 PUBLISH waiting
	// for its PUBREL before Mosquitto sends it on.
	In Direction = 0
	// Out is a message owed to the client.
	Out Direction = 1
)

// State is the state of a client message: Mosquitto's enum
// mosquitto_msg_state.
type State uint8

// The states, as Mosquitto numbers them.
const (
	StateInvalid       State = 0
	StatePublishQoS0   State = 1
	StatePublishQoS1   State = 2  // to be sent
	StateWaitPuback    State = 3  // sent, PUBACK awaited
	StatePublishQoS2   State = 4  // to be sent
	StateWaitPubrec    State = 5  // sent, PUBREC awaited
	StateResendPubrel  State = 6  // PUBREC received, PUBREL to send
	StateWaitPubrel    State = 7  // inbound: PUBREC sent, PUBREL awaited
	StateResendPubcomp State = 8  // inbound: PUBCOMP to send
	StateWaitPubcomp   State = 9  // PUBREL sent, PUBCOMP awaited
	StateSendPubrec    State = 10 // inbound: PUBREC to send
	StateQueued        State = 11 // waiting for room in flight
	stateMax                 = StateQueued
)

var stateNames = [...]string{"invalid", "publish_qos0", "publish_qos1", "wait_for_puback", "publish_qos2",
	"wait_for_pubrec", "resend_pubrel", "wait_for_pubrel", "resend_pubcomp", "wait_for_pubcomp", "send_pubrec", "queued"}

// String returns Mosquitto's name of the state, without its mosq_ms_
// prefix.
func (s State) String() string {
	if s <= stateMax {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// ClientMsg is a message queued or in flight to or from a client.
type ClientMsg struct {
	Offset    int64
	ClientID  string
	StoreID   uint64 // the Message
	MID       uint16 // packet id
	QoS       byte   // the delivery's
	State     State
	Retain    bool // the delivery's retain flag
	Dup       bool
	Direction Direction
	// Props are MQTT 5 properties as Message.Props: the Subscription
	// Identifier the message matched. Empty if none.
	Props []byte
}

// Sub is a subscription of a persistent session.
type Sub struct {
	Offset   int64
	ClientID string
	Filter   string
	QoS      byte
	// Options are MQTT's subscription option bits but QoS: 0x04 No Local,
	// 0x08 Retain As Published, 0x30 Retain Handling (Mosquitto 2.0
	// keeps none of the last).
	Options    byte
	Identifier uint32 // Subscription Identifier; 0 none
}

// Retain marks a message as the retained one of its topic.
type Retain struct {
	Offset  int64
	StoreID uint64
}

// FormatError says where a file is not what Mosquitto writes: the byte
// offset of the chunk (or of the header), the kind of chunk, and why.
type FormatError struct {
	Offset int64
	Chunk  string
	Reason string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("mosqdb: %s at byte %d: %s", e.Chunk, e.Offset, e.Reason)
}

// Message returns the message with store id id, or nil.
func (f *File) Message(id uint64) *Message {
	i, ok := f.byID[id]
	if !ok {
		return nil
	}
	return &f.Messages[i]
}

// ReadFile reads and parses the persistence file at path, opened
// read-only: the file is never changed.
func ReadFile(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("mosqdb: %s is not a regular file", path)
	}
	// The size read up front bounds the buffer; a file that grows while
	// it is read (Mosquitto renames a new one into place, it never writes
	// in place) is read to its end all the same.
	buf := bytes.NewBuffer(make([]byte, 0, st.Size()+1))
	if _, err := io.Copy(buf, fh); err != nil {
		return nil, fmt.Errorf("mosqdb: reading %s: %w", path, err)
	}
	f, err := Parse(buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// Parse reads a whole persistence file. Every length is checked against
// the chunk and the file before it is used, so a damaged or crafted file
// yields a *FormatError, never a panic or an allocation larger than b. The
// File's byte slices alias b.
func Parse(b []byte) (*File, error) {
	if len(b) < headerSize {
		if len(b) == 0 {
			return nil, &FormatError{Chunk: "header", Reason: "the file is empty"}
		}
		return nil, &FormatError{Chunk: "header", Reason: fmt.Sprintf("%d bytes, shorter than the %d-byte header", len(b), headerSize)}
	}
	if !bytes.Equal(b[:15], magic[:]) {
		return nil, &FormatError{Chunk: "header", Reason: "not a Mosquitto persistence file (no \"mosquitto db\" magic)"}
	}
	f := &File{Version: binary.BigEndian.Uint32(b[19:23]), byID: make(map[uint64]int)}
	switch f.Version {
	case 5, 6:
	default:
		return nil, &FormatError{Offset: 19, Chunk: "header", Reason: fmt.Sprintf(
			"format version %d; this reader knows 5 (Mosquitto 1.6) and 6 (Mosquitto 2.0): start that Mosquitto once on the file to convert it", f.Version)}
	}
	for off := headerSize; off < len(b); {
		if len(b)-off < 8 {
			return nil, &FormatError{Offset: int64(off), Chunk: "chunk header", Reason: fmt.Sprintf("%d bytes left, want 8: the file is cut short", len(b)-off)}
		}
		typ := binary.BigEndian.Uint32(b[off:])
		n := binary.BigEndian.Uint32(b[off+4:])
		c := chunk{off: int64(off), typ: typ}
		if uint64(n) > uint64(len(b)-off-8) {
			return nil, c.errorf("length %d runs past the end of the file (%d bytes left): the file is cut short", n, len(b)-off-8)
		}
		c.b = b[off+8 : off+8+int(n)]
		if err := f.chunk(&c); err != nil {
			return nil, err
		}
		off += 8 + int(n)
	}
	return f, nil
}

// chunk is one chunk being read.
type chunk struct {
	off int64
	typ uint32
	b   []byte // its body
}

func (c *chunk) errorf(format string, args ...any) *FormatError {
	name := fmt.Sprintf("chunk of type %d", c.typ)
	if c.typ < uint32(len(chunkNames)) && chunkNames[c.typ] != "" {
		name = chunkNames[c.typ] + " chunk"
	}
	return &FormatError{Offset: c.off, Chunk: name, Reason: fmt.Sprintf(format, args...)}
}

func (c *chunk) u16(at int) uint16 { return binary.BigEndian.Uint16(c.b[at:]) }
func (c *chunk) u32(at int) uint32 { return binary.BigEndian.Uint32(c.b[at:]) }

// host64 reads a 64-bit field, which Mosquitto writes in its machine's
// byte order (doc.go).
func (c *chunk) host64(at int) uint64 { return binary.LittleEndian.Uint64(c.b[at:]) }

// need fails unless the body has at least n bytes.
func (c *chunk) need(n int) error {
	if len(c.b) < n {
		return c.errorf("length %d, shorter than its %d-byte fixed part", len(c.b), n)
	}
	return nil
}

func (f *File) chunk(c *chunk) error {
	switch c.typ {
	case chunkConfig:
		return f.config(c)
	case chunkMessage:
		return f.message(c)
	case chunkClient:
		return f.client(c)
	case chunkClientMsg:
		return f.clientMsg(c)
	case chunkSub:
		return f.sub(c)
	case chunkRetain:
		if err := c.need(retainSize); err != nil {
			return err
		}
		f.Retains = append(f.Retains, Retain{Offset: c.off, StoreID: c.host64(0)})
		return nil
	}
	f.Unknown++
	return nil
}

func (f *File) config(c *chunk) error {
	if err := c.need(configFields); err != nil {
		return err
	}
	if size := c.b[9]; size != 8 {
		return c.errorf("database ids of %d bytes; Mosquitto writes 8", size)
	}
	f.LastDBID, f.Shutdown = c.host64(0), c.b[8] != 0
	return nil
}

func (f *File) message(c *chunk) error {
	if err := c.need(messageFixed); err != nil {
		return err
	}
	m := Message{
		Offset:     c.off,
		ID:         c.host64(0),
		Expiry:     int64(c.host64(8)),
		SourceMID:  c.u16(20),
		SourcePort: c.u16(28),
		QoS:        c.b[30],
	}
	payload, idLen, userLen, topicLen := uint64(c.u32(16)), int(c.u16(22)), int(c.u16(24)), int(c.u16(26))
	if m.QoS > 2 {
		return c.errorf("QoS %d", m.QoS)
	}
	switch c.b[31] {
	case 0:
	case 1:
		m.Retain = true
	default:
		return c.errorf("retain flag %d", c.b[31])
	}
	if topicLen == 0 {
		return c.errorf("message without a topic") // Mosquitto refuses it too
	}
	if uint64(messageFixed+idLen+userLen+topicLen)+payload > uint64(len(c.b)) {
		return c.errorf("its parts (%d bytes of client id, %d of username, %d of topic, %d of payload) run past its length %d",
			idLen, userLen, topicLen, payload, len(c.b))
	}
	rest := c.b[messageFixed:]
	m.SourceID, rest = rest[:idLen:idLen], rest[idLen:]
	m.SourceUsername, rest = rest[:userLen:userLen], rest[userLen:]
	m.Topic, rest = rest[:topicLen:topicLen], rest[topicLen:]
	m.Payload, m.Props = rest[:payload:payload], rest[payload:]
	if i, dup := f.byID[m.ID]; dup {
		return c.errorf("store id %d again (first at byte %d)", m.ID, f.Messages[i].Offset)
	}
	f.byID[m.ID] = len(f.Messages)
	f.Messages = append(f.Messages, m)
	return nil
}

func (f *File) client(c *chunk) error {
	fixed := clientFixedV5
	if f.Version == 6 {
		fixed = clientFieldV6
	}
	if err := c.need(fixed); err != nil {
		return err
	}
	cl := Client{
		Offset:         c.off,
		ExpiryTime:     int64(c.host64(0)),
		ExpiryInterval: c.u32(8),
		LastMID:        c.u16(12),
	}
	idLen, userLen := int(c.u16(14)), 0
	if f.Version == 6 {
		cl.ListenerPort, userLen = c.u16(16), int(c.u16(18))
		// The struct is padded to a multiple of 8 bytes where 64-bit
		// fields are aligned to 8 (24 bytes), not where they are aligned
		// to 4 (20): the length tells which.
		switch len(c.b) - idLen - userLen {
		case clientFieldV6, clientFieldV6 + 4:
			fixed = len(c.b) - idLen - userLen
		default:
			return c.errorf("length %d does not fit its fixed part with %d bytes of client id and %d of username", len(c.b), idLen, userLen)
		}
	} else if len(c.b) != fixed+idLen {
		return c.errorf("length %d does not fit its fixed part with %d bytes of client id", len(c.b), idLen)
	}
	cl.ID = string(c.b[fixed : fixed+idLen])
	cl.Username = string(c.b[fixed+idLen:])
	f.Clients = append(f.Clients, cl)
	return nil
}

func (f *File) clientMsg(c *chunk) error {
	if err := c.need(clientMsgSize); err != nil {
		return err
	}
	m := ClientMsg{
		Offset:    c.off,
		StoreID:   c.host64(0),
		MID:       c.u16(8),
		QoS:       c.b[12],
		State:     State(c.b[13]),
		Retain:    c.b[14]>>4 != 0,
		Dup:       c.b[14]&0x0F != 0,
		Direction: Direction(c.b[15]),
	}
	idLen := int(c.u16(10))
	switch {
	case m.QoS > 2:
		return c.errorf("QoS %d", m.QoS)
	case m.State > stateMax:
		return c.errorf("unknown state %d", m.State)
	case m.Direction > Out:
		return c.errorf("unknown direction %d", m.Direction)
	case clientMsgSize+idLen > len(c.b):
		return c.errorf("%d bytes of client id run past its length %d", idLen, len(c.b))
	}
	m.ClientID = string(c.b[clientMsgSize : clientMsgSize+idLen])
	m.Props = c.b[clientMsgSize+idLen:]
	f.ClientMsgs = append(f.ClientMsgs, m)
	return nil
}

func (f *File) sub(c *chunk) error {
	if err := c.need(subFixed); err != nil {
		return err
	}
	s := Sub{Offset: c.off, Identifier: c.u32(0), QoS: c.b[8], Options: c.b[9]}
	idLen, filterLen := int(c.u16(4)), int(c.u16(6))
	if s.QoS > 2 {
		return c.errorf("QoS %d", s.QoS)
	}
	if len(c.b) != subFixed+idLen+filterLen {
		return c.errorf("length %d does not fit its fixed part with %d bytes of client id and %d of filter", len(c.b), idLen, filterLen)
	}
	s.ClientID = string(c.b[subFixed : subFixed+idLen])
	s.Filter = string(c.b[subFixed+idLen:])
	f.Subs = append(f.Subs, s)
	return nil
}
