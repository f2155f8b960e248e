package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/valyala/bytebufferpool"

	"github.com/shoalmq/shoal/internal/dispatch"
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
// unconfirmed messages, and its router workers wait past that, and with
// them its publishers. A stream that is full, or cannot reach a majority,
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
	// forwardMaxPending is how many messages a node may have sent into
	// the stream and not yet had confirmed; forwardStall is how long a
	// sender waits for room past that before the message counts as not
	// stored.
	forwardMaxPending = 4096
	forwardStall      = 5 * time.Second
	// forwardAckTimeout bounds the wait for the stream's
	// acknowledgement: past it, the message counts as not stored.
	forwardAckTimeout = 10 * time.Second
	// forwardReadAhead is how many messages a node's consumer holds
	// that its router workers have not acknowledged; forwardAckWait is
	// how long the stream waits for an acknowledgement before it sends a
	// message again.
	forwardReadAhead = 8192
	forwardAckWait   = 30 * time.Second // Peers.ackWait: a test's may be shorter
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
	var stream jetstream.Stream
	err = n.retryOpen(ctx, forwardStream, func(actx context.Context) (err error) {
		stream, err = n.js.CreateOrUpdateStream(actx, jetstream.StreamConfig{
			Name:        forwardStream,
			Description: "Shoal: QoS 1 and 2 messages on their way between nodes",
			Subjects:    []string{forwardSubject("*")},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    n.cfg.Replicas,
			MaxBytes:    forwardMaxBytes,
			Discard:     jetstream.DiscardNew,
			MaxMsgSize:  maxPayload,
		})
		return err
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
	ps.fwd = &forwarder{js: js, cons: cons,
		stallOpt: []jetstream.PublishOpt{jetstream.WithStallWait(forwardStall)}}
	return nil
}

// consume starts reading this node's messages from the forward stream.
func (ps *Peers) consume() error {
	cc, err := ps.fwd.cons.Consume(ps.receiveStored,
		jetstream.PullMaxMessages(forwardReadAhead/8),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			ps.log.Debug().Err(err).Msg("cluster: reading the forward stream")
		}))
	if err != nil {
		return fmt.Errorf("cluster: reading the forward stream: %w", err)
	}
	ps.fwd.cc = cc
	return nil
}

// receiveStored routes a message from the forward stream to this node's
// sessions; the router worker acknowledges it to the stream once routed
// and stored (dispatch.Job.Done). It waits for room with the workers: the
// rest waits in the stream.
func (ps *Peers) receiveStored(msg jetstream.Msg) {
	m, group, err := decodeFrame(msg.Data(), time.Now().UnixNano())
	if err != nil {
		ps.Dropped.Add(1)
		ps.log.Warn().Err(err).Msg("cluster: a malformed message in the forward stream")
		_ = msg.Term() // never again
		return
	}
	ps.Received.Add(1)
	if !ps.disp.SubmitWait(dispatch.Job{Msg: m, Local: true, Group: group, Done: msg}, ps.stop) {
		m.Release() // stopping: the stream sends it again
	}
}

// forwardStored puts a frame (in buf, which the receipt returns to
// framePool once the stream is done with it) into the forward stream for
// the node of subject.
func (ps *Peers) forwardStored(subject string, buf *bytebufferpool.ByteBuffer) dispatch.Receipt {
	f, err := ps.fwd.js.PublishMsgAsync(&nats.Msg{Subject: subject, Data: buf.B}, ps.fwd.stallOpt...)
	if err != nil {
		framePool.Put(buf)
		ps.NotStored.Add(1)
		return failedReceipt{fmt.Errorf("cluster: forwarding: %w", err)}
	}
	ps.Sent.Add(1)
	return &receipt{ps: ps, f: f, buf: buf, start: time.Now()}
}

// receipt is a dispatch.Receipt for a message in the forward stream.
type receipt struct {
	ps    *Peers
	f     jetstream.PubAckFuture
	buf   *bytebufferpool.ByteBuffer
	start time.Time
}

// Wait implements dispatch.Receipt. The future resolves within
// forwardAckTimeout, whatever happens to the stream.
func (r *receipt) Wait(stop <-chan struct{}) error {
	select {
	case <-r.f.Ok():
		r.ps.Forwards.Observe(time.Since(r.start))
		framePool.Put(r.buf)
		return nil
	case err := <-r.f.Err():
		r.ps.NotStored.Add(1)
		framePool.Put(r.buf)
		return fmt.Errorf("cluster: the forward stream did not take a message: %w", err)
	case <-stop:
		return errForwardStopped // the frame may still be sent again: not pooled
	}
}

// failedReceipt is the receipt of a message the stream never got.
type failedReceipt struct{ err error }

func (f failedReceipt) Wait(<-chan struct{}) error { return f.err }

// closeForward stops reading the forward stream.
func (ps *Peers) closeForward() {
	if ps.fwd != nil && ps.fwd.cc != nil {
		ps.fwd.cc.Stop()
	}
}
