package replica

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/shoalmq/shoal/store"
)

// readBatch is how many records one fetch of Bundle asks for.
const readBatch = 256

// Bundle reads clientID's session from the stream, as the last node that
// held it wrote it, and returns it encoded as a store.Bundle (package
// handoff adopts it); nil when the stream has no session of clientID.
func (r *Store) Bundle(ctx context.Context, clientID string) ([]byte, error) {
	recs, err := r.read(ctx, clientID)
	if err != nil {
		return nil, fmt.Errorf("replica: reading %q's session: %w", clientID, err)
	}
	b, err := assemble(clientID, recs)
	if err != nil || b == nil {
		return nil, err
	}
	return store.AppendBundle(nil, b), nil
}

// read returns the last record of each subject of clientID's session,
// by subject.
func (r *Store) read(ctx context.Context, clientID string) (map[string][]byte, error) {
	prefix := string(subjectOf(nil, clientID, 0, 0, 0))
	prefix = prefix[:len(prefix)-1] // "shoal.ss.{client}."
	cons, err := r.stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		FilterSubject:     prefix + ">",
		DeliverPolicy:     jetstream.DeliverLastPerSubjectPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: time.Minute,
		MemoryStorage:     true,
		Replicas:          1,
	})
	if err != nil {
		return nil, err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), ackTimeout)
		_ = r.stream.DeleteConsumer(dctx, cons.CachedInfo().Name)
		cancel()
	}()
	recs := map[string][]byte{}
	if cons.CachedInfo().NumPending == 0 {
		return recs, nil
	}
	for {
		wait := time.Until(deadlineOf(ctx))
		batch, err := cons.Fetch(readBatch, jetstream.FetchMaxWait(wait))
		if err != nil {
			return nil, err
		}
		got := 0
		for m := range batch.Messages() {
			got++
			recs[strings.TrimPrefix(m.Subject(), prefix)] = m.Data()
			if meta, err := m.Metadata(); err == nil && meta.NumPending == 0 {
				// The last: the fetch would wait out its time for more.
				return recs, nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, err
		}
		if got == 0 {
			return nil, fmt.Errorf("the stream stopped short of the session's last record: %w", context.DeadlineExceeded)
		}
	}
}

// deadlineOf is ctx's deadline, or ackTimeout from now.
func deadlineOf(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(ackTimeout)
}

// assemble makes the session of clientID out of its records, keyed by
// their subjects after "shoal.ss.{client}.": the records of the
// generation the session record names, tombstones (empty) left out. Nil
// when there is no session record.
func assemble(clientID string, recs map[string][]byte) (*store.Bundle, error) {
	srec := recs["s"]
	if len(srec) == 0 {
		return nil, nil
	}
	gen, n := binary.Uvarint(srec)
	if n <= 0 {
		return nil, fmt.Errorf("replica: %q's session record is malformed", clientID)
	}
	b := &store.Bundle{Session: store.Session{ClientID: clientID}}
	if err := store.DecodeSession(srec[n:], &b.Session); err != nil {
		return nil, fmt.Errorf("replica: %q's session record: %w", clientID, err)
	}
	b.Session.ClientID = clientID
	genTok := strconv.FormatUint(gen, 10) + "."
	sent := map[uint64][]byte{}
	type owed struct {
		seq uint64
		rec []byte
	}
	var deliveries []owed
	for subj, v := range recs {
		rest, ok := strings.CutPrefix(subj, genTok)
		if !ok || len(v) == 0 || len(rest) < 3 || rest[1] != '.' {
			continue // another generation's, or removed
		}
		num, err := strconv.ParseUint(rest[2:], 10, 64)
		if err != nil {
			continue
		}
		switch rest[0] {
		case 'd':
			deliveries = append(deliveries, owed{num, v})
		case 'm':
			sent[num] = v
		case 'r':
			if num > 0 && num <= 0xFFFF {
				b.AwaitRel = append(b.AwaitRel, uint16(num))
			}
		}
	}
	slices.SortFunc(deliveries, func(a, b owed) int { return cmp.Compare(a.seq, b.seq) })
	slices.Sort(b.AwaitRel)
	var queued []store.Delivery
	for _, o := range deliveries {
		d := store.Delivery{Seq: o.seq}
		if err := store.DecodeDelivery(o.rec, &d); err != nil {
			return nil, fmt.Errorf("replica: %q's delivery %d: %w", clientID, o.seq, err)
		}
		if s, ok := sent[o.seq]; ok {
			pid, state, err := store.DecodeSent(s)
			if err != nil {
				return nil, fmt.Errorf("replica: %q's delivery %d: %w", clientID, o.seq, err)
			}
			d.PacketID, d.State = pid, state
			b.Deliveries = append(b.Deliveries, d) // in flight: first
			continue
		}
		queued = append(queued, d)
	}
	b.Deliveries = append(b.Deliveries, queued...)
	return b, nil
}
