package inline

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/client"
	"github.com/shoalmq/shoal/codec"
)

// Options configure a Client.
type Options struct {
	// ClientID may be empty: the broker assigns one (with CleanStart).
	ClientID   string
	CleanStart bool
	// SessionExpiry is the MQTT 5 Session Expiry Interval in seconds: how
	// long the broker keeps the session (subscriptions, queued QoS 1/2
	// messages) after Close. 0: it ends with the connection.
	SessionExpiry uint32
	// Username and Password, when the broker asks for them.
	Username, Password string
	// Will, when set, is published if the Client goes away without Close.
	Will *client.Will
	// OnMessage receives the messages no subscription's handler matches:
	// those a resumed session had queued, which arrive right after the
	// connection, before Subscribe can name a handler. Nil drops them
	// (they are acknowledged all the same).
	OnMessage Handler
}

// Message is one message a subscription received. Its slices are valid
// only during the handler's call: copy what you keep.
type Message struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
}

// Handler receives the messages of a subscription.
type Handler func(Message)

// Client is a connection to a broker in the same process.
type Client struct {
	eng      *client.Engine
	conn     *client.Conn
	fallback Handler

	mu   sync.Mutex
	subs []sub // by filter; looked up for each message
}

type sub struct {
	filter string // without a $share/{group}/ prefix
	full   string // as subscribed
	fn     Handler
}

// Connect connects to b, which must be started, with MQTT 5.
func Connect(ctx context.Context, b *broker.Broker, o Options) (*Client, error) {
	addr := b.Addr()
	if addr == nil {
		return nil, errors.New("inline: the broker is not started")
	}
	target := addr.String()
	if ta, ok := addr.(*net.TCPAddr); ok && ta.IP.IsUnspecified() {
		target = net.JoinHostPort("127.0.0.1", fmt.Sprint(ta.Port)) // listening on all addresses
	}
	eng, err := client.NewEngine(1)
	if err != nil {
		return nil, err
	}
	c := &Client{eng: eng, fallback: o.OnMessage}
	conn, err := eng.Connect(ctx, client.Options{
		Addr: target, ClientID: o.ClientID, Version: codec.V5, CleanStart: o.CleanStart,
		SessionExpiry: o.SessionExpiry, Username: o.Username, Password: o.Password, Will: o.Will,
		OnMessage: c.dispatch,
	})
	if err != nil {
		_ = eng.Close()
		return nil, err
	}
	c.conn = conn
	return c, nil
}

// SessionPresent reports whether the broker resumed an existing session.
func (c *Client) SessionPresent() bool { return c.conn.SessionPresent() }

// Publish sends a message. At QoS 1 and 2 it returns once the broker has
// acknowledged it (PUBACK, PUBCOMP): the broker then has it, routed and,
// with persistence, stored.
func (c *Client) Publish(ctx context.Context, topic string, payload []byte, qos byte, retain bool) error {
	return c.conn.PublishWait(ctx, topic, payload, qos, retain)
}

// Subscribe subscribes to filter at qos and calls fn for each message that
// arrives through it; a filter subscribed again replaces its handler. It
// returns the granted QoS.
func (c *Client) Subscribe(ctx context.Context, filter string, qos byte, fn Handler) (byte, error) {
	if fn == nil {
		return 0, errors.New("inline: Subscribe needs a handler")
	}
	plain := filter
	if rest, ok := strings.CutPrefix(filter, "$share/"); ok {
		_, plain, _ = strings.Cut(rest, "/")
	}
	c.mu.Lock()
	c.subs = append(c.removeLocked(filter), sub{filter: plain, full: filter, fn: fn})
	c.mu.Unlock()
	granted, err := c.conn.Subscribe(ctx, filter, qos)
	if err == nil && granted >= 0x80 {
		err = fmt.Errorf("inline: subscription to %q refused: %v", filter, codec.ReasonCode(granted))
	}
	if err != nil {
		c.mu.Lock()
		c.subs = c.removeLocked(filter)
		c.mu.Unlock()
	}
	return granted, err
}

// Unsubscribe ends a subscription and forgets its handler.
func (c *Client) Unsubscribe(ctx context.Context, filter string) error {
	err := c.conn.Unsubscribe(ctx, filter)
	c.mu.Lock()
	c.subs = c.removeLocked(filter)
	c.mu.Unlock()
	return err
}

// Close disconnects normally (no will) and releases the client.
func (c *Client) Close() error {
	return errors.Join(c.conn.Disconnect(), c.eng.Close())
}

// removeLocked returns c.subs without filter. c.mu must be held.
func (c *Client) removeLocked(filter string) []sub {
	out := c.subs[:0]
	for _, s := range c.subs {
		if s.full != filter {
			out = append(out, s)
		}
	}
	return out
}

// dispatch hands a message to every handler whose filter matches it: the
// broker sends one copy for overlapping subscriptions [MQTT-3.3.4-2].
func (c *Client) dispatch(m *client.Message) {
	msg := Message{Topic: string(m.Topic), Payload: m.Payload, QoS: m.QoS, Retain: m.Retain}
	c.mu.Lock()
	var fns []Handler
	for _, s := range c.subs {
		if codec.Matches(s.filter, msg.Topic) {
			fns = append(fns, s.fn)
		}
	}
	c.mu.Unlock()
	if len(fns) == 0 && c.fallback != nil {
		fns = append(fns, c.fallback)
	}
	for _, fn := range fns {
		fn(msg)
	}
}
