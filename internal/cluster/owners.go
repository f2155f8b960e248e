package cluster

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// Owners says which node owns each client identifier's session. It is a
// JetStream key-value bucket, replicated like the rest of the cluster's
// state; a node claims a session with a compare-and-set on its key, and
// every claim carries an epoch one above the last: never a timestamp, so
// clocks that disagree cannot give a session two owners. A node watches
// the bucket and lets go of every session another node claimed after it
// (the broker takes the connection over: MQTT 5 DISCONNECT 0x8E).
type Owners struct {
	kv   jetstream.KeyValue
	node string
}

// ownersBucket is the key-value bucket of session owners.
const ownersBucket = "shoal_owners"

// Owner is a session's owner: a node and the epoch of its claim.
type Owner struct {
	Node  string
	Epoch uint64
	// Rescue marks a claim a node made of a session of a node that was
	// gone (rescue.go): the session is in the replicated copy, not in
	// that node's memory.
	Rescue bool
}

func (o Owner) encode() []byte {
	b := []byte(o.Node + " " + strconv.FormatUint(o.Epoch, 10))
	if o.Rescue {
		b = append(b, " rescue"...)
	}
	return b
}

func decodeOwner(b []byte) (Owner, error) {
	node, rest, ok := strings.Cut(string(b), " ")
	epoch, flag, _ := strings.Cut(rest, " ")
	e, err := strconv.ParseUint(epoch, 10, 64)
	if !ok || err != nil || node == "" || (flag != "" && flag != "rescue") {
		return Owner{}, fmt.Errorf("cluster: malformed owner record %q", b)
	}
	return Owner{Node: node, Epoch: e, Rescue: flag != ""}, nil
}

// ownerKey is clientID's key: its escape (subject.go) behind "c.".
func ownerKey(clientID string) string { return string(appendLevel([]byte("c."), clientID)) }

// OpenOwners opens the bucket of session owners, creating it when this is
// the cluster's first node to ask.
func (n *Node) OpenOwners(ctx context.Context) (*Owners, error) {
	kv, err := n.openBucket(ctx, ownersBucket)
	if err != nil {
		return nil, err
	}
	return &Owners{kv: kv, node: n.cfg.Node}, nil
}

// openBucket opens the key-value bucket name (keeping the last value of
// each key, replicated as configured), creating it when this is the
// cluster's first node to ask.
//
// Nodes started together may answer JetStream before they know each other
// as peers: a replicated bucket then has "no suitable peers for placement"
// for a moment, and openBucket tries again until ctx ends. Nodes that ask
// at the same moment — three brokers started together each open their
// buckets as they start — get no answer at all to the first request, the
// one that raced to create the bucket (measured: it waited out a 20s
// attempt, while the next request, on the bucket then made, was answered
// at once); so an attempt waits openAttempt at first, doubling to
// openAttemptMax, and one that gets no answer is tried again.
func (n *Node) openBucket(ctx context.Context, name string) (kv jetstream.KeyValue, err error) {
	err = n.retryOpen(ctx, "bucket "+name, func(actx context.Context) (err error) {
		kv, err = n.js.CreateOrUpdateKeyValue(actx, jetstream.KeyValueConfig{
			Bucket:   name,
			History:  1,
			Replicas: n.cfg.Replicas,
		})
		return err
	})
	return kv, err
}

// OpenStream creates the stream cfg describes, or finds it and updates
// its configuration, replicated as the cluster's state is, retrying as
// openBucket does.
func (n *Node) OpenStream(ctx context.Context, cfg jetstream.StreamConfig) (s jetstream.Stream, err error) {
	cfg.Replicas = n.cfg.Replicas
	err = n.retryOpen(ctx, "stream "+cfg.Name, func(actx context.Context) (err error) {
		s, err = n.js.CreateOrUpdateStream(actx, cfg)
		return err
	})
	return s, err
}

// retryOpen runs create, which creates or finds what (a bucket, a stream),
// until it succeeds, ctx ends, or it fails for a reason waiting would not
// cure: JetStream answers a creation only once its replicas have a leader,
// and refuses it while it knows fewer peers than the replicas asked for.
func (n *Node) retryOpen(ctx context.Context, what string, create func(actx context.Context) error) error {
	for attempt := openAttempt; ; attempt = min(2*attempt, openAttemptMax) {
		actx, cancel := context.WithTimeout(ctx, attempt)
		err := create(actx)
		cancel()
		if err == nil {
			return nil
		}
		noAnswer := errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil
		// A bucket just made may not be known yet to the server asked
		// next (seen under load: its listing found "stream not found").
		notYet := errors.Is(err, jetstream.ErrStreamNotFound)
		if !noPeersYet(err) && !noAnswer && !notYet {
			return fmt.Errorf("cluster: %s: %w", what, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: %s: %w (last: %v)", what, ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// openAttempt is how long openBucket's first attempt waits for JetStream's
// answer, and openAttemptMax how long its later ones do: a bucket's
// creation is answered in milliseconds once its replicas have a leader;
// seconds leave room for a loaded machine.
const (
	openAttempt    = 500 * time.Millisecond
	openAttemptMax = 3 * time.Second
)

// noPeersYet reports whether err is JetStream's "no suitable peers for
// placement": fewer peers known than the replicas asked for.
func noPeersYet(err error) bool {
	var api *jetstream.APIError
	return errors.As(err, &api) && uint16(api.ErrorCode) == uint16(server.JSClusterNoPeersErrF)
}

// Claim makes this node the owner of clientID's session, whoever owned it
// before, and returns the new owner record and the previous one (Node ""
// when there was none). Claims of one key are ordered by the bucket: of
// any number made at once, on any nodes, each gets its own epoch, and the
// one with the highest is the owner.
func (o *Owners) Claim(ctx context.Context, clientID string) (now, before Owner, err error) {
	return o.claim(ctx, clientID, nil, false)
}

// ErrOwnerChanged fails a claim made on condition (Sessions.Reclaim): the
// session's owner is no longer the one it was made on.
var ErrOwnerChanged = errors.New("cluster: the session's owner changed since it was read")

// claim is Claim, made only while the session's owner is still expect
// (its node and epoch), if expect is not nil; else ErrOwnerChanged. The
// claim is a rescue claim (Owner.Rescue) if rescue is true.
//
// A read may be answered by a replica of the bucket that is behind: a
// compare-and-set on what it read fails, and the claim reads again. With
// expect, a read below expect's epoch (or without the key, never
// deleted) is such a past value too: read again, up to staleReads times.
func (o *Owners) claim(ctx context.Context, clientID string, expect *Owner, rescue bool) (now, before Owner, err error) {
	key := ownerKey(clientID)
	stale := 0
	for tries := 0; ; tries++ {
		if tries > 0 {
			// Another node claimed it between the read and the write:
			// read again and go one above its epoch, after a random pause
			// that grows with the tries, so that many claims at once
			// (a client reconnecting in a loop to several nodes) do not
			// all read and fail together again.
			select {
			case <-time.After(time.Duration(rand.Int64N(int64(min(tries, 8)) * int64(5*time.Millisecond)))):
			case <-ctx.Done():
				return Owner{}, Owner{}, ctx.Err()
			}
		}
		e, err := o.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound) && expect != nil:
			if stale++; stale < staleReads {
				continue
			}
			return Owner{}, Owner{}, ErrOwnerChanged
		case errors.Is(err, jetstream.ErrKeyNotFound):
			now = Owner{Node: o.node, Epoch: 1, Rescue: rescue}
			if _, err = o.kv.Create(ctx, key, now.encode()); err == nil {
				return now, Owner{}, nil
			}
			if !errors.Is(err, jetstream.ErrKeyExists) {
				return Owner{}, Owner{}, fmt.Errorf("cluster: claiming %q: %w", clientID, err)
			}
		case err != nil:
			return Owner{}, Owner{}, fmt.Errorf("cluster: claiming %q: %w", clientID, err)
		default:
			if before, err = decodeOwner(e.Value()); err != nil {
				return Owner{}, Owner{}, err
			}
			if expect != nil && before.Epoch < expect.Epoch {
				if stale++; stale < staleReads {
					continue
				}
			}
			if expect != nil && (before.Node != expect.Node || before.Epoch != expect.Epoch) {
				return Owner{}, Owner{}, ErrOwnerChanged
			}
			now = Owner{Node: o.node, Epoch: before.Epoch + 1, Rescue: rescue}
			if _, err = o.kv.Update(ctx, key, now.encode(), e.Revision()); err == nil {
				return now, before, nil
			}
			if !isWrongRevision(err) {
				return Owner{}, Owner{}, fmt.Errorf("cluster: claiming %q: %w", clientID, err)
			}
		}
	}
}

// staleReads bounds the reads of a conditional claim that find a past
// value: a replica catches up in milliseconds.
const staleReads = 20

// ClaimFrom makes this node the owner of clientID's session if from (a
// node and epoch, read by Select) owns it still, with a rescue claim
// (Owner.Rescue); ok is false when another claim came first.
func (o *Owners) ClaimFrom(ctx context.Context, clientID string, from Owner) (now Owner, ok bool, err error) {
	now, _, err = o.claim(ctx, clientID, &from, true)
	if errors.Is(err, ErrOwnerChanged) {
		return Owner{}, false, nil
	}
	return now, err == nil, err
}

// Select returns the owners keep says to, by client id, as of the
// moment it is called (scan), until ctx ends.
func (o *Owners) Select(ctx context.Context, keep func(Owner) bool) (map[string]Owner, error) {
	owners, err := o.scan(ctx, 0)
	if err != nil {
		return nil, err
	}
	maps.DeleteFunc(owners, func(_ string, ow Owner) bool { return !keep(ow) })
	return owners, nil
}

// isWrongRevision reports whether err is a compare-and-set's failure: the
// key changed since it was read.
func isWrongRevision(err error) bool { return errors.Is(err, jetstream.ErrKeyRevisionMismatch) }

// Get returns clientID's owner; ok is false when it has none.
func (o *Owners) Get(ctx context.Context, clientID string) (Owner, bool, error) {
	e, err := o.kv.Get(ctx, ownerKey(clientID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Owner{}, false, nil
	}
	if err != nil {
		return Owner{}, false, err
	}
	ow, err := decodeOwner(e.Value())
	return ow, err == nil, err
}

// Watch calls fn for every claim made from now on, by any node, until ctx
// ends, in the order the bucket took them; fn runs on one goroutine.
func (o *Owners) Watch(ctx context.Context, fn func(clientID string, owner Owner)) error {
	w, err := o.kv.WatchAll(ctx, jetstream.UpdatesOnly())
	if err != nil {
		return fmt.Errorf("cluster: watching session owners: %w", err)
	}
	go func() {
		defer func() { _ = w.Stop() }()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil || e.Operation() != jetstream.KeyValuePut {
					continue
				}
				ow, err := decodeOwner(e.Value())
				id, ok := clientIDOf(e.Key())
				if err != nil || !ok {
					continue
				}
				fn(id, ow)
			}
		}
	}()
	return nil
}

// clientIDOf is ownerKey's inverse.
func clientIDOf(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, "c.")
	if !ok {
		return "", false
	}
	var b strings.Builder
	if strings.Contains(rest, ".") || !appendUnescaped(&b, rest) {
		return "", false
	}
	return b.String(), true
}
