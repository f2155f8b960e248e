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
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/shoalmq/shoal/store"
)

// Bundle reads clientID's session from the stream, as the last node that
// held it wrote it, and returns it encoded as a store.Bundle (package
// handoff adopts it); nil when the stream has no session of clientID.
func (r *Store) Bundle(ctx context.Context, clientID string) ([]byte, error) {
	b, gen, err := r.Read(ctx, clientID)
	if err != nil || b == nil {
		return nil, err
	}
	r.log.Debug().Str("client", clientID).Uint64("gen", gen).Int("deliveries", len(b.Deliveries)).
		Int("received", len(b.Received)).Msg("replica: a session read from the copy")
	return store.AppendBundle(nil, b), nil
}

// Read reads clientID's session from the stream, with the generation its
// records are under; nil when the stream has none.
func (r *Store) Read(ctx context.Context, clientID string) (*store.Bundle, uint64, error) {
	recs, err := r.read(ctx, clientID)
	if err != nil {
		return nil, 0, fmt.Errorf("replica: reading %q's session: %w", clientID, err)
	}
	return assemble(clientID, recs)
}

// read returns the last record of each subject of clientID's session,
// by subject, as the stream's leader has them. The leader lists the
// subjects (stream info, filtered), then readers ask it for the last
// message of each, readParallel at once; then, one request per record
// ("the next message on these subjects from this sequence on"), what was
// written since the list. A consumer would be quicker still, but one
// placed on a replica that is catching up — a node just back — reads a
// past state; one request per record alone took seconds for a session
// with thousands of messages queued, longer than a claim waits.
func (r *Store) read(ctx context.Context, clientID string) (map[string][]byte, error) {
	prefix := string(subjectOf(nil, clientID, 0, 0, 0))
	prefix = prefix[:len(prefix)-1] // "shoal.ss.{client}."
	// A barrier first. The stream's leader may be new — the node that led
	// it froze or died, and that is why the session is read — and a new
	// leader answers reads before it has applied all that its log has
	// committed: a read then missed the last changes the old leader had
	// confirmed (in a freeze run: 32 messages owed, and two QoS 2
	// messages' progress, so sent again). The leader confirms a write
	// made now only once it has applied everything before it.
	if _, err := r.js.Publish(ctx, prefix+"b", nil, jetstream.WithMsgTTL(tombstoneTTL)); err != nil {
		return nil, err
	}
	info, err := r.stream.Info(ctx, jetstream.WithSubjectFilter(prefix+">"))
	if err != nil {
		return nil, err
	}
	recs := map[string][]byte{}
	var mu sync.Mutex
	subjects := make(chan string)
	errs := make(chan error, readParallel)
	var wg sync.WaitGroup
	for range min(readParallel, len(info.State.Subjects)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for subject := range subjects {
				m, err := r.stream.GetLastMsgForSubject(ctx, subject)
				if errors.Is(err, jetstream.ErrMsgNotFound) {
					continue // removed since the list
				}
				if err != nil {
					errs <- err
					for range subjects { // let the sender finish
					}
					return
				}
				mu.Lock()
				recs[strings.TrimPrefix(m.Subject, prefix)] = m.Data
				mu.Unlock()
			}
		}()
	}
	for subject := range info.State.Subjects {
		if key := strings.TrimPrefix(subject, prefix); isReceipt(key) {
			mu.Lock()
			recs[key] = nil // all it says is in its subject
			mu.Unlock()
			continue
		}
		subjects <- subject
	}
	close(subjects)
	wg.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	for seq := info.State.LastSeq + 1; ; {
		m, err := r.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(prefix+">"))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return recs, nil
		}
		if err != nil {
			return nil, err
		}
		recs[strings.TrimPrefix(m.Subject, prefix)] = m.Data
		seq = m.Sequence + 1
	}
}

// isReceipt reports whether key, a subject after "shoal.ss.{client}.",
// is a receipt's: "{gen}.o.{origin}".
func isReceipt(key string) bool {
	_, rest, ok := strings.Cut(key, ".")
	return ok && strings.HasPrefix(rest, "o.")
}

// readParallel bounds the requests a read of one session has under way.
const readParallel = 32

// assemble makes the session of clientID out of its records, keyed by
// their subjects after "shoal.ss.{client}.": the records of the
// generation the session record names, tombstones (empty) left out. Nil
// when there is no session record.
func assemble(clientID string, recs map[string][]byte) (*store.Bundle, uint64, error) {
	srec := recs["s"]
	if len(srec) == 0 {
		return nil, 0, nil
	}
	gen, n := binary.Uvarint(srec)
	if n <= 0 {
		return nil, 0, fmt.Errorf("replica: %q's session record is malformed", clientID)
	}
	b := &store.Bundle{Session: store.Session{ClientID: clientID}}
	if err := store.DecodeSession(srec[n:], &b.Session); err != nil {
		return nil, 0, fmt.Errorf("replica: %q's session record: %w", clientID, err)
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
		if isReceipt(subj) {
			// A receipt of any generation: adoptions and repairs leave
			// them, and they expire by themselves.
			if o, err := strconv.ParseUint(subj[strings.LastIndexByte(subj, '.')+1:], 10, 64); err == nil && o != 0 {
				b.Received = append(b.Received, o)
			}
			continue
		}
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
	slices.Sort(b.Received)
	var queued []store.Delivery
	for _, o := range deliveries {
		d := store.Delivery{Seq: o.seq}
		origin, n := binary.Uvarint(o.rec)
		if n <= 0 {
			return nil, 0, fmt.Errorf("replica: %q's delivery %d is malformed", clientID, o.seq)
		}
		if err := store.DecodeDelivery(o.rec[n:], &d); err != nil {
			return nil, 0, fmt.Errorf("replica: %q's delivery %d: %w", clientID, o.seq, err)
		}
		d.Msg.Origin = origin
		if s, ok := sent[o.seq]; ok {
			pid, state, err := store.DecodeSent(s)
			if err != nil {
				return nil, 0, fmt.Errorf("replica: %q's delivery %d: %w", clientID, o.seq, err)
			}
			d.PacketID, d.State = pid, state
			b.Deliveries = append(b.Deliveries, d) // in flight: first
			continue
		}
		queued = append(queued, d)
	}
	b.Deliveries = append(b.Deliveries, queued...)
	return b, gen, nil
}
