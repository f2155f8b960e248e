package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/valyala/bytebufferpool"

	"github.com/shoalmq/shoal/internal/dispatch"
	"github.com/shoalmq/shoal/router"
)

// How QoS 1 and 2 messages cross nodes: through a stream.
//
// A QoS 0 message goes to the other node's subject on core NATS (at most
// once: a node that cannot keep up drops, counted in Drops). A QoS 1 or 2
// message goes into the forward stream instead, a JetStream stream kept
// with the cluster's replication, on the subject of the node it is for
// ("shoal.fwd.{node}"). The publisher's PUBACK or PUBREC waits for the
// stream's acknowledgement (dispatch.Receipt), so a message a publisher
// was told is taken is on a majority of the replicas before it is routed
// any further. Each node reads its own subject through one durable
// consumer (not one per session or subscription), routes what it reads to
// its sessions, and acknowledges it to the stream once its deliveries to
// persistent sessions are on its disk (dispatch.Acker); until then the
// stream keeps it, and sends it again after a restart. The stream is a
// work queue: an acknowledged message leaves it.
//
// Back-pressure crosses nodes this way too: a node that reads slowly
// leaves its messages in the stream (on disk, up to forwardMaxBytes)
// rather than in memory; a sender holds at most forwardMaxPending
// unconfirmed batches of messages, and its router workers wait past that,
// and with them its publishers. A stream that is full, or cannot reach a majority,
// refuses, and the publishers hear so (Conn.NotStored).
//
// One publisher's messages keep their order to each subscriber: they are
// forwarded from one router worker, in order, on one connection, into one
// stream subject read by one consumer. A QoS 0 message and a QoS 1 message
// take different ways and may pass each other; MQTT asks for the order
// per topic and QoS (MQTT 5 section 4.6).

// forwardStream is the stream of QoS 1 and 2 messages between nodes.
const forwardStream = "shoal_forward"

// forwardSubject is the subject of node's messages in the forward stream.
func forwardSubject(node string) string { return "shoal.fwd." + node }

// The forward stream's bounds.
const (
	// forwardMaxBytes is how much the stream keeps, unread, for all nodes
	// together, before it refuses new messages.
	forwardMaxBytes = 1 << 30
	// forwardMaxPending is how many batches a node may have sent into
	// the stream and not yet had confirmed; forwardStall is how long a
	// sender waits for room past that before the batch counts as not
	// stored.
	forwardMaxPending = 256
	forwardStall      = 5 * time.Second
	// forwardAckTimeout bounds the wait for the stream's
	// acknowledgement: past it, the message counts as not stored.
	forwardAckTimeout = 10 * time.Second
	// forwardReadAhead is how many batches a node's consumer holds that
	// its router workers have not acknowledged; forwardAckWait is how
	// long the stream waits for an acknowledgement before it sends a
	// batch again.
	forwardReadAhead = 16
	forwardAckWait   = 30 * time.Second // Peers.ackWait: a test's may be shorter
	// forwardPullBytes bounds what the consumer asks for at once: 8 full
	// batches. With forwardReadAhead, it keeps what a node holds unrouted
	// (16 batches, 16k messages at most) far from what its workers clear
	// in forwardAckWait, so that the stream does not send again what the
	// node is still routing.
	forwardPullBytes = 8 * forwardBatchBytes
	// forwardPullExpiry and forwardPullHeartbeat are the consumer's pulls'
	// life and the heartbeats it expects meanwhile.
	forwardPullExpiry    = 5 * time.Second
	forwardPullHeartbeat = time.Second
)

// errForwardStopped is a receipt given up on because the node is stopping.
var errForwardStopped = errors.New("cluster: stopping before the stream confirmed a message")

// forwarder is the forward stream as a node sees it: its publishing side
// (confirmations bounded by forwardMaxPending) and its consumer.
type forwarder struct {
	js       jetstream.JetStream // publishing side, with its own bounds
	stallOpt []jetstream.PublishOpt
	cons     jetstream.Consumer
	cc       jetstream.ConsumeContext
}

// openForward creates (or finds) the forward stream and this node's
// consumer of it.
func (ps *Peers) openForward(ctx context.Context) error {
	n := ps.node
	js, err := jetstream.New(n.nc,
		jetstream.WithPublishAsyncMaxPending(forwardMaxPending),
		jetstream.WithPublishAsyncTimeout(forwardAckTimeout))
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	stream, err := n.OpenStream(ctx, jetstream.StreamConfig{
		Name:        forwardStream,
		Description: "Shoal: QoS 1 and 2 messages on their way between nodes",
		Subjects:    []string{forwardSubject("*")},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		MaxBytes:    forwardMaxBytes,
		Discard:     jetstream.DiscardNew,
		MaxMsgSize:  maxPayload,
	})
	if err != nil {
		return err
	}
	var cons jetstream.Consumer
	err = n.retryOpen(ctx, forwardStream+" consumer", func(actx context.Context) (err error) {
		cons, err = stream.CreateOrUpdateConsumer(actx, jetstream.ConsumerConfig{
			Durable:       "node-" + ps.self,
			Description:   "Shoal: node " + ps.self + "'s messages from the others",
			FilterSubject: forwardSubject(ps.self),
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       ps.ackWait,
			MaxAckPending: forwardReadAhead,
			Replicas:      n.cfg.Replicas,
		})
		return err
	})
	if err != nil {
		return err
	}
	// A pull made before the consumer's replicas have a leader finds no
	// one to answer it, and the next comes only seconds later: the
	// consumer's info, which its leader answers, says it has one.
	err = n.retryOpen(ctx, forwardStream+" consumer's leader", func(actx context.Context) error {
		info, err := cons.Info(actx)
		if err == nil && info.Cluster != nil && info.Cluster.Leader == "" {
			err = context.DeadlineExceeded // not yet: try again
		}
		return err
	})
	if err != nil {
		return err
	}
	// What waits for this node already: the stand-ins of the sessions
	// taken elsewhere while it was gone pass it on (Peers.LeaveFor)
	// until this node has read it, however long that takes.
	err = n.retryOpen(ctx, "this node's backlog in "+forwardStream, func(actx context.Context) error {
		m, err := stream.GetLastMsgForSubject(actx, forwardSubject(ps.self))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil // none
		}
		if err == nil {
			ps.backlog.Store(m.Sequence)
		}
		return err
	})
	if err != nil {
		return err
	}
	ps.fwd.Store(&forwarder{js: js, cons: cons,
		stallOpt: []jetstream.PublishOpt{jetstream.WithStallWait(forwardStall)}})
	return nil
}

// consume starts reading this node's messages from the forward stream.
func (ps *Peers) consume() error {
	fwd := ps.fwd.Load()
	cc, err := fwd.cons.Consume(ps.receiveStored,
		jetstream.PullMaxBytes(forwardPullBytes),
		// A pull lost to a change of the consumer's leader (a node died,
		// or the network split) is made again once two heartbeats are
		// missed: with NATS's defaults (30s pulls, 15s heartbeats) a
		// node went half a minute without its messages.
		jetstream.PullExpiry(forwardPullExpiry),
		jetstream.PullHeartbeat(forwardPullHeartbeat),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			ps.log.Debug().Err(err).Msg("cluster: reading the forward stream")
		}))
	if err != nil {
		return fmt.Errorf("cluster: reading the forward stream: %w", err)
	}
	fwd.cc = cc
	return nil
}

// A stream message carries a batch of frames (each a 4-byte big-endian
// length, then the frame), all for one node: the frames
// that node got from this one's router workers while the previous batch
// was on its way. One JetStream message, replicated and acknowledged, then
// carries many MQTT messages when the rate is high, and one when it is
// low: a batch goes when the first receipt of it is waited for (the end of
// a router worker's batch, or the message a loop routed itself), or when
// it is full — but while the node's previous batch is still on its way,
// the open one waits for it and gathers what comes meanwhile (group
// commit): at a low rate a message goes at once, at a higher one each
// replication round trip carries what came during the last. Measured with
// make bench's cluster scenario (p2p QoS 1, node A to node B): one stream
// message per MQTT message held the cluster to 17k msg/s at saturation,
// with p99 92 ms at 10,000 msg/s, the three nodes' CPU spent on
// JetStream's per-message work.

// The forward stream's batches' bounds: a batch is sent once it holds
// either. A frame larger than forwardBatchBytes goes alone.
const (
	forwardBatchBytes  = 1 << 20
	forwardBatchFrames = 1024
)

// nodeOut is the batch this node fills for another node. Every Peer of the
// node (a member of a shared group too) shares it.
type nodeOut struct {
	ps      *Peers
	subject string // the node's subject in the forward stream
	mu      sync.Mutex
	cur     *batch // open: frames go in until it is sent; nil: none open
	flying  *batch // the last batch sent, until resolved
}

// batch is frames for one node in one stream message, and the receipt of
// each of them (dispatch.Receipt): the stream takes the batch whole or
// not at all. Once sent, a goroutine of the Peers (resolve) waits for the
// stream's answer, which comes within forwardAckTimeout, and closes done.
type batch struct {
	out    *nodeOut
	buf    *bytebufferpool.ByteBuffer
	frames int
	f      jetstream.PubAckFuture // once sent
	err    error                  // read once done is closed
	start  time.Time
	done   chan struct{}
}

// add puts m's frame, for group ("" for none) or for the session of
// client id to alone (not ""), into the node's open batch and returns the
// batch as m's receipt. A full batch is sent first.
func (o *nodeOut) add(m *router.Message, group, to string, now int64) dispatch.Receipt {
	o.mu.Lock()
	defer o.mu.Unlock()
	for {
		b := o.cur
		if b == nil {
			b = &batch{out: o, buf: framePool.Get(), done: make(chan struct{})}
			b.buf.B = b.buf.B[:0]
			o.cur = b
		}
		at := len(b.buf.B)
		b.buf.B = append(b.buf.B, 0, 0, 0, 0)
		b.buf.B = appendFrameTo(b.buf.B, m, group, to, now)
		size := len(b.buf.B) - at - 4
		if b.frames > 0 && len(b.buf.B) > forwardBatchBytes {
			b.buf.B = b.buf.B[:at] // not with these: send them, then try again
			o.sendLocked(b)
			continue
		}
		binary.BigEndian.PutUint32(b.buf.B[at:], uint32(size))
		b.frames++
		if b.frames >= forwardBatchFrames || len(b.buf.B) >= forwardBatchBytes {
			o.sendLocked(b)
		}
		return b
	}
}

// sendLocked publishes b, the open batch, into the stream, and starts the
// goroutine that waits for its answer. Publishing waits while this node
// has forwardMaxPending batches unconfirmed (forwardStall at most), which
// holds whoever forwards — the router workers and, behind them, the
// publishers. o.mu must be held: it orders the batches of a node.
func (o *nodeOut) sendLocked(b *batch) {
	o.cur = nil
	o.flying = b
	ps := o.ps
	b.start = time.Now()
	fwd := ps.fwd.Load()
	if fwd == nil { // not started: a stand-in's message routed before Start
		b.err = errForwardStopped
		ps.NotStored.Add(int64(b.frames))
		framePool.Put(b.buf)
		close(b.done)
		return
	}
	f, err := fwd.js.PublishMsgAsync(&nats.Msg{Subject: o.subject, Data: b.buf.B}, fwd.stallOpt...)
	if err != nil {
		b.err = fmt.Errorf("cluster: forwarding: %w", err)
		ps.NotStored.Add(int64(b.frames))
		framePool.Put(b.buf)
		close(b.done)
		return
	}
	b.f = f
	ps.Sent.Add(int64(b.frames))
	// Not counted in ps.done: a router worker may still send while the
	// Peers close; each of these ends within forwardAckTimeout, or at
	// once when the Peers stop.
	go b.resolve()
}

// Wait implements dispatch.Receipt: it sends b if it is still open — once
// the batch before it is answered, waiting for that if need be, so that b
// gathers what comes meanwhile — and waits until the stream took b (nil),
// did not, or stop closes.
func (b *batch) Wait(stop <-chan struct{}) error {
	o := b.out
	for {
		o.mu.Lock()
		if o.cur != b { // sent, by this or another waiter, or full
			o.mu.Unlock()
			break
		}
		prev := o.flying
		if prev == nil || closed(prev.done) {
			o.sendLocked(b)
			o.mu.Unlock()
			break
		}
		o.mu.Unlock()
		select {
		case <-prev.done:
		case <-stop:
			return errForwardStopped
		}
	}
	select {
	case <-b.done:
		return b.err
	case <-stop:
		return errForwardStopped
	}
}

func closed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// resolve waits for the stream's answer to b and gives back b's buffer,
// which NATS is done with; when the node stops first, b counts as not
// stored (it may have been) and its buffer is left to the collector, as
// NATS may still send it again.
func (b *batch) resolve() {
	ps := b.out.ps
	select {
	case <-b.f.Ok():
		ps.Forwards.Observe(time.Since(b.start))
		framePool.Put(b.buf)
	case err := <-b.f.Err():
		b.err = fmt.Errorf("cluster: the forward stream did not take a message: %w", err)
		framePool.Put(b.buf)
	case <-ps.stop:
		b.err = errForwardStopped
	}
	if b.err != nil {
		ps.NotStored.Add(int64(b.frames))
	}
	close(b.done)
}

// receiveStored routes a batch from the forward stream to this node's
// sessions — once the node serves (Health): one cut off, or back and not
// yet settled, may hold sessions the cluster moved; the router workers acknowledge it to the stream once all its
// messages are routed and stored (dispatch.Job.Done). It waits for room
// with the workers: the rest waits in the stream. A message's expiry
// counts from the time the stream took the batch, not from now.
func (ps *Peers) receiveStored(msg jetstream.Msg) {
	if g := ps.gate; g != nil && !g.Await(ps.stop) {
		return // stopping: the stream sends it again
	}
	data := msg.Data()
	n, ok := countFrames(data)
	if !ok || n == 0 {
		ps.Dropped.Add(1)
		ps.log.Warn().Msg("cluster: a malformed batch in the forward stream")
		_ = msg.Term() // never again
		return
	}
	sent := time.Now().UnixNano()
	var seq uint64
	if meta, err := msg.Metadata(); err == nil {
		sent, seq = meta.Timestamp.UnixNano(), meta.Sequence.Stream
	}
	if b := ps.backlog.Load(); b != 0 && seq >= b {
		defer ps.caughtUp() // once its messages are on their way
	}
	a := &batchAck{msg: msg, ps: ps}
	a.left.Store(int32(n))
	eachFrame(data, seq, sent, func(m *router.Message, group, to string, err error) bool {
		if err != nil {
			ps.Dropped.Add(1)
			ps.log.Warn().Err(err).Msg("cluster: a malformed message in the forward stream")
			_ = a.Ack()
			return true
		}
		ps.Received.Add(1)
		j := dispatch.Job{Msg: m, Local: true, Group: group, To: to, Done: a}
		if to != "" && ps.sessions != nil {
			ps.sessions.arrivals.extend(to, time.Now())
			if shelf := ps.sessions.shelfOf(); shelf != nil {
				if on, err := ps.toShelf(shelf, a, m, group, to); on {
					m.Release()
					if err != nil {
						return false // the stream sends the batch again
					}
					_ = a.Ack()
					return true
				}
			}
			if ps.sessions.park(j) {
				a.keepInHand()
				return true // routed when the claim of its session ends
			}
		}
		if !ps.disp.SubmitWait(j, ps.stop) {
			m.Release() // stopping: the stream sends the batch again
			return false
		}
		return true
	})
}

// toShelf offers m, addressed to the session to, to this node's shelf
// (Rescuer.addressed) and reports whether the shelf took it. When the
// copy (or the stream, for a session that left the shelf for another
// node) does not confirm it — JetStream electing leaders, as it does
// while a frozen node comes back — it offers m again every
// addressedRetry, telling the stream every second that a's batch is in
// hand, until it is confirmed, the session is neither on the shelf nor
// lately moved from it, the node stops, or half the stream's ack wait is
// over (the error, then: the stream sends the batch again). Left to the
// stream at once, the batch would come again after its ack wait, and its
// messages routed already would be routed twice; held longer, so would
// the batches the consumer holds behind it.
func (ps *Peers) toShelf(shelf *Rescuer, a *batchAck, m *router.Message, group, to string) (bool, error) {
	start := time.Now()
	held := start
	for {
		on, err := shelf.addressed(m, group, to)
		if !on || err == nil {
			return on, nil
		}
		ps.log.Debug().Err(err).Str("client", to).Msg("cluster: a message for a shelved session not confirmed; trying again")
		now := time.Now()
		if now.Sub(start) >= ps.ackWaitOr()/2 {
			return true, err
		}
		if now.Sub(held) >= time.Second {
			_ = a.msg.InProgress()
			held = now
		}
		select {
		case <-ps.stop:
			return true, err
		case <-time.After(addressedRetry):
		}
	}
}

// addressedRetry is how often Peers.toShelf offers again a message not
// confirmed.
const addressedRetry = 250 * time.Millisecond

// ackWaitOr is the forward stream's ack wait for this node's consumer.
func (ps *Peers) ackWaitOr() time.Duration {
	if ps.ackWait > 0 {
		return ps.ackWait
	}
	return forwardAckWait
}

// eachFrame calls fn with the message of each frame of data, a batch the
// stream took as its message seq (0: unknown) at sent (Unix ns), its
// Origin set (a frame of version 1 has none: its place in the stream is
// its identity), the shared group and the session it is for — or with
// the error that kept a frame from decoding — until fn returns false.
// data's framing must be checked (countFrames).
func eachFrame(data []byte, seq uint64, sent int64, fn func(m *router.Message, group, to string, err error) bool) {
	for i := uint64(0); len(data) > 0; i++ {
		size := binary.BigEndian.Uint32(data)
		frame := data[4 : 4+size]
		data = data[4+size:]
		m, group, to, err := decodeFrameTo(frame, sent)
		if err == nil && m.Origin == 0 && seq != 0 {
			m.Origin = origin(seq, i)
		}
		if !fn(m, group, to, err) {
			return
		}
	}
}

// origin is the identity of frame i of the forward stream's batch seq
// (router.Message.Origin): batches hold at most forwardBatchFrames frames,
// and stream sequences are the stream's, across all nodes' subjects.
func origin(seq, i uint64) uint64 { return seq*forwardBatchFrames + i + 1 }

// countFrames counts the frames of a batch, checking its framing.
func countFrames(data []byte) (n int, ok bool) {
	for len(data) > 0 {
		if len(data) < 4 {
			return n, false
		}
		size := binary.BigEndian.Uint32(data)
		if uint64(len(data)-4) < uint64(size) {
			return n, false
		}
		data = data[4+size:]
		n++
	}
	return n, true
}

// batchAck acknowledges a batch to the stream once each of its messages
// is routed and stored: the last of their acknowledgements does.
type batchAck struct {
	msg    jetstream.Msg
	ps     *Peers
	left   atomic.Int32
	inHand atomic.Bool // keepInHand runs
}

// Ack implements dispatch.Acker. The batch goes from the stream once this
// node serves: stored while it did not — frozen, or cut off, as the
// worker waited for the copy — its messages may be missing from the
// copy of their sessions, which a rescuer may have read already. Left
// in the stream until the node serves again, the batch is there for the
// rescuer to read (it reads the gone node's subject, not through the
// node's consumer) until its rescue ends, which the node waits for
// before it serves; a node that was not rescued keeps what it stored.
// Acknowledged at once, it was gone: a freeze run lost the 32 messages
// of one batch.
func (a *batchAck) Ack() error {
	if a.left.Add(-1) != 0 {
		return nil
	}
	if g := a.ps.gate; g != nil && !g.Serving() {
		go a.ackServing(g)
		return nil
	}
	return a.msg.Ack()
}

// keepInHand tells the stream, every half ack wait, that the batch is
// still in hand, until each of its messages is acknowledged or the node
// stops: a message parked for a session (Sessions.park) may wait longer
// than the ack wait, and the batch sent again would be routed twice.
func (a *batchAck) keepInHand() {
	if !a.inHand.CompareAndSwap(false, true) {
		return
	}
	go func() {
		tick := time.NewTicker(a.ps.ackWaitOr() / 2)
		defer tick.Stop()
		for a.left.Load() > 0 {
			select {
			case <-a.ps.stop:
				return
			case <-tick.C:
				if a.left.Load() > 0 {
					_ = a.msg.InProgress()
				}
			}
		}
	}()
}

// ackServing acknowledges the batch once this node serves, unless it
// stops first: the stream then sends the batch again. Meanwhile it tells
// the stream, every half ack wait, that the batch is still in hand: sent
// again, it would be stored here twice.
func (a *batchAck) ackServing(g gate) {
	half := a.ps.ackWaitOr() / 2
	poll := time.NewTicker(min(time.Second, half))
	defer poll.Stop()
	held := time.Now()
	for !g.Serving() {
		select {
		case <-a.ps.stop:
			return
		case now := <-poll.C:
			if now.Sub(held) >= half {
				_ = a.msg.InProgress()
				held = now
			}
		}
	}
	_ = a.msg.Ack()
}

// closeForward stops reading the forward stream.
func (ps *Peers) closeForward() {
	if fwd := ps.fwd.Load(); fwd != nil && fwd.cc != nil {
		fwd.cc.Stop()
	}
}
