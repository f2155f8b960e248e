package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/shoalmq/shoal/internal/dispatch"
)

// Sessions belong to the cluster, not to a node. A client that connects to
// a node makes that node its session's owner (Owners.Claim: a
// compare-and-set with an epoch one above the last), and the node that
// owned it before hands the session over: asked on its handoff subject
// ("shoal.handoff.{node}") with the new claim's epoch, it takes its
// connection over (MQTT 5: DISCONNECT 0x8E), ends the session there and
// answers with it (subscriptions, messages in flight both ways, the queue:
// a store.Bundle, package handoff), which the claiming node adopts before
// its client gets CONNACK, Session Present and all.
//
// Of several connects with one client id on several nodes at once, each
// claim gets its own epoch and the highest one wins: every node watches
// the owners' bucket, and one that holds a claim of a lower epoch takes
// its connection over when it sees the newer one; one whose client
// attaches after that sees it has lost (Holds) and does the same. So
// exactly one connection stays, on the owner.
//
// A persistent session is also kept in the cluster's replicated state as
// it changes (Replicas, package replica): a session whose node does not
// answer — down, or cut off — is read from there instead, so that it needs
// no node to outlive one.

// handoffSubject is where node answers for the sessions it owns.
func handoffSubject(node string) string { return "shoal.handoff." + node }

// handoffWait bounds a handoff: the old node takes its connection over,
// waits for it to let go (handoff.detachWait, 5s) and answers.
const handoffWait = 8 * time.Second

// giveWait bounds how long a node asked for a session waits for a claim
// of it under way there to end (Sessions.give): within handoffWait, and
// past the detachWait of a node that claim asks in turn.
const giveWait = 6 * time.Second

// Local is this node's side of moving sessions: package handoff's
// Sessions, with the connections' TakeOver.
type Local interface {
	// Give ends this node's session of clientID, its connection taken
	// over, and returns it encoded (nil: none here, or clean).
	Give(clientID string, clean bool) ([]byte, error)
	// Adopt makes a session another node gave this node's.
	Adopt(clientID string, bundle []byte) error
	// Filters returns the filters of clientID's session here (none: no
	// session).
	Filters(clientID string) []string
	// TakeOver closes the connection attached to clientID's session
	// here, if any, as a takeover.
	TakeOver(clientID string, clean bool) bool
}

// Replicas is the cluster's replicated copy of the persistent sessions
// (package replica's Store).
type Replicas interface {
	// Bundle returns clientID's session as the copy has it, encoded as a
	// store.Bundle; nil when it has none.
	Bundle(ctx context.Context, clientID string) ([]byte, error)
	// Flush waits until every change made to the copy so far is stored.
	Flush()
}

// Sessions decides, with the other nodes, which node owns each session,
// and moves sessions to where their clients connect. It is the broker's
// admit.Owners. Safe for concurrent use.
type Sessions struct {
	node     *Node
	owners   *Owners
	local    Local
	replicas Replicas // nil: sessions are not replicated
	log      zerolog.Logger

	// newest is the newest claim this node knows of each client id it
	// claimed: its own, until another node's newer claim comes (watched,
	// or asking for the session). This node holds a claim while its epoch
	// is the newest. An entry stays as long as the node runs (a few dozen
	// bytes per client id that connected here). Guarded by mu.
	mu     sync.Mutex
	newest map[string]claim
	// unread are the sessions this node claimed and could not yet read
	// from the replicated copy, by client id, with the node each came
	// from (adoptCopy). Guarded by mu.
	unread map[string]string
	// copied are the sessions this node claimed and could not read
	// (unread) that another node claimed since (forgetUnread): asked for
	// one, this node answers that the copy has it (giveUnread). Guarded
	// by mu.
	copied map[string]struct{}
	// given is, by client id, the newest claim whose request for the
	// session this node answered (adopt). Guarded by mu.
	given map[string]uint64
	// adopted is, by client id, the claim whose adoption (adopt) came
	// last here. Guarded by mu.
	adopted map[string]uint64
	// adoptMu orders an adoption (adopt) and a handoff's record of its
	// answer (given): a handoff that gave up its wait for the claim
	// adopting gives what that claim adopted, or the claim adopts
	// nothing.
	adoptMu sync.Mutex
	// claiming has an entry for each client id a claim of this node is
	// under way for, closed when it ends: a client that gives up on its
	// CONNECT and tries again here waits for its first claim to end,
	// which may be moving the session here (turn). Guarded by mu.
	claiming map[string]chan struct{}
	// moving is, by client id, the epoch of the claim under way here
	// that reads the session from the copy (adoptCopy). Guarded by mu.
	moving map[string]uint64
	// parked are the messages addressed to a session being claimed here,
	// held until the claim ends (park). Guarded by mu.
	parked map[string][]dispatch.Job
	// peers are the node's Peers, once Handover (nil before): they route
	// what was parked, and keep the stand-ins of sessions that left.
	peers atomic.Pointer[Peers]
	// arrivals are the sessions that moved here lately (handover.go).
	arrivals arrivals

	// shelf is this node's rescuer (rescue.go): the sessions it keeps in
	// the replicated copy alone, handed over as shelfReply. Set by Open.
	shelf *Rescuer
	// health says whether this node serves (nil: it does). Set by
	// Health.Open; read without mu: every QoS 1 and 2 delivery asks.
	health atomic.Pointer[Health]

	sub    *nats.Subscription
	cancel context.CancelFunc
}

// setShelf makes r the keeper of the sessions this node rescued.
func (s *Sessions) setShelf(r *Rescuer) {
	s.mu.Lock()
	s.shelf = r
	s.mu.Unlock()
}

// setHealth makes h the judge of whether this node serves.
func (s *Sessions) setHealth(h *Health) { s.health.Store(h) }

// Serving implements admit.Owners: whether this node may take clients and
// QoS 1 and 2 messages now (Health.Serving).
func (s *Sessions) Serving() bool {
	h := s.health.Load()
	return h == nil || h.Serving()
}

// NewSessions returns the Sessions of a node that is not yet in its
// cluster: Open brings them in. Until then a claim fails.
func NewSessions() *Sessions {
	return &Sessions{newest: map[string]claim{}, unread: map[string]string{}, copied: map[string]struct{}{}, given: map[string]uint64{}, adopted: map[string]uint64{}, claiming: map[string]chan struct{}{}, moving: map[string]uint64{},
		parked: map[string][]dispatch.Job{}}
}

// claim is a claim of a session this node knows of.
type claim struct {
	epoch uint64
	mine  bool   // this node's
	node  string // another node's, when known
}

// Open joins s to its cluster on n: claims go through owners, sessions to
// and from local, and from replicas (if not nil) when the node that had
// one does not answer.
func (s *Sessions) Open(n *Node, owners *Owners, local Local, replicas Replicas, log zerolog.Logger) error {
	s.mu.Lock()
	s.node, s.owners, s.local, s.replicas, s.log = n, owners, local, replicas, log
	s.mu.Unlock()
	sub, err := n.nc.Subscribe(handoffSubject(n.cfg.Node), func(m *nats.Msg) { go s.give(m) })
	if err != nil {
		return fmt.Errorf("cluster: subscribing to handoffs: %w", err)
	}
	s.sub = sub
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	if err := owners.Watch(ctx, s.claimedElsewhere); err != nil {
		cancel()
		_ = sub.Unsubscribe()
		return err
	}
	return nil
}

// Close stops answering handoffs and watching claims.
func (s *Sessions) Close() {
	if s.cancel != nil {
		s.cancel()
	}
	if s.sub != nil {
		_ = s.sub.Unsubscribe()
	}
}

// errNotJoined refuses a claim before the node is in its cluster.
var errNotJoined = errors.New("cluster: this node has not joined its cluster")

// Claim implements admit.Owners: this node claims clientID's session,
// then the node that owned it hands it over (or, clean, ends it), and done
// gets the claim's epoch. Of a previous owner that does not answer (down,
// or cut off), the session is taken from the replicated copy.
func (s *Sessions) Claim(clientID string, clean bool, done func(epoch uint64, err error)) {
	s.claim(clientID, clean, nil, done)
}

// Reclaim is Claim (not clean) made only while the session's owner is
// still was, as this node read it: for a node that settles the sessions
// it stored with the cluster (rescued from it, or its own), which must
// not take one that a client claimed elsewhere meanwhile — that client's
// connection would be taken over, its session moved to a node it is not
// connected to. done gets ErrOwnerChanged then.
func (s *Sessions) Reclaim(clientID string, was Owner, done func(epoch uint64, err error)) {
	s.claim(clientID, false, &was, done)
}

// claim is Claim, on condition that the owner is still expect if it is
// not nil (Reclaim).
func (s *Sessions) claim(clientID string, clean bool, expect *Owner, done func(epoch uint64, err error)) {
	s.mu.Lock()
	owners := s.owners
	s.mu.Unlock()
	if owners == nil {
		done(0, errNotJoined)
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), handoffWait+rescueClaimWait+2*time.Second)
		defer cancel()
		end, err := s.turn(ctx, clientID)
		if err != nil {
			done(0, err)
			return
		}
		// The claim ends before its client hears: what was addressed to
		// the session meanwhile (parked) is routed ahead of what comes
		// once it is attached.
		done := func(epoch uint64, err error) {
			end()
			done(epoch, err)
		}
		if shelf := s.shelfOf(); shelf != nil && !clean {
			if err := shelf.beforeClaim(ctx, clientID); err != nil {
				done(0, err)
				return
			}
		}
		now, before, err := owners.claim(ctx, clientID, expect, false)
		if err != nil {
			done(0, err)
			return
		}
		// A newer claim known already (its node asked this one for the
		// session, or the watch brought it) has the session: this
		// connection will not keep it. The session still comes here
		// first: that claim's node asks this one for it (the claim
		// before it is this one), and waits for this claim to end.
		s.learn(clientID, now.Epoch, true, "")
		if before.Node != "" {
			self := s.node.cfg.Node
			switch from, unread := s.unreadOf(clientID, clean); {
			case before.Node != self:
				err = s.take(clientID, clean, now.Epoch, before.Node)
			case unread && !clean: // its last claim could not read it
				var sh *shelved
				if shelf := s.shelfOf(); shelf != nil {
					sh, _ = shelf.unshelve(clientID, self, false) // back on it then (reshelve)
				}
				err = s.adoptShelved(clientID, from, now.Epoch, sh)
			default:
				if shelf := s.shelfOf(); shelf != nil {
					var sh *shelved
					if sh, err = shelf.unshelve(clientID, self, !clean); sh != nil && err == nil && !clean {
						err = s.adoptShelved(clientID, before.Node, now.Epoch, sh) // rescued here
					}
				}
			}
		}
		done(now.Epoch, err)
	}()
}

// turn waits until no other claim of clientID is under way on this node,
// or ctx ends, and makes the caller's the one under way until it calls
// end. Two claims of one session at once on one node would each see the
// session where it was before either: the second, finding it gone from
// there (the first took it), would start the client afresh.
func (s *Sessions) turn(ctx context.Context, clientID string) (end func(), err error) {
	for {
		s.mu.Lock()
		busy, ok := s.claiming[clientID]
		if !ok {
			mine := make(chan struct{})
			s.claiming[clientID] = mine
			s.mu.Unlock()
			return func() {
				s.mu.Lock()
				delete(s.claiming, clientID)
				delete(s.moving, clientID)
				var parked []dispatch.Job
				if _, unread := s.unread[clientID]; !unread {
					// Else the claim could not read the session: what
					// was parked waits for the next (park).
					parked = s.parked[clientID]
					delete(s.parked, clientID)
				}
				// Another node's claim is the newest (this one was
				// overtaken, or the turn was a handoff's): what was
				// parked goes on there.
				to := ""
				if c := s.newest[clientID]; !c.mine {
					to = c.node
				}
				s.mu.Unlock()
				close(mine)
				if to != "" {
					s.passParked(to, parked)
				} else {
					s.unpark(parked)
				}
			}, nil
		}
		s.mu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, fmt.Errorf("cluster: waiting for another claim of the session here: %w", ctx.Err())
		}
	}
}

// take asks node for clientID's session, as the claim of epoch, and adopts
// what it gives — or, when node does not answer or keeps the session in
// the replicated copy (a rescuer's shelf), what the copy has.
func (s *Sessions) take(clientID string, clean bool, epoch uint64, node string) error {
	req := strconv.FormatUint(epoch, 10) + " " + strconv.FormatBool(clean) + " " + clientID
	reply, err := s.node.nc.RequestMsg(s.handoffRequest(node, []byte(req)), handoffWait)
	switch {
	case err == nil && !bytes.Equal(reply.Data, shelfReply):
		if len(reply.Data) > 0 && !clean {
			s.adopt(clientID, node, epoch, reply.Data)
		}
	case clean:
	case s.replicas == nil:
		s.log.Warn().Err(err).Str("client", clientID).Str("from", node).
			Msg("cluster: the session's last node did not hand it over; it starts afresh here")
	default:
		if err != nil {
			s.log.Info().Err(err).Str("client", clientID).Str("from", node).
				Msg("cluster: the session's last node did not answer; the session is read from the copy")
		}
		return s.adoptCopy(clientID, node, epoch)
	}
	return nil
}

// unreadOf reports whether this node claimed clientID's session and could
// not read it from the copy (adoptCopy), and from which node it came; a
// clean claim forgets that.
func (s *Sessions) unreadOf(clientID string, clean bool) (from string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	from, ok = s.unread[clientID]
	delete(s.copied, clientID) // claimed here again
	if clean {
		delete(s.unread, clientID)
	}
	return from, ok
}

// adoptShelved is adoptCopy of a session this node's rescuer had on its
// shelf (sh; nil: none), which goes back on it if the copy could not be
// read (Rescuer.reshelve).
func (s *Sessions) adoptShelved(clientID, node string, epoch uint64, sh *shelved) error {
	err := s.adoptCopy(clientID, node, epoch)
	if err != nil && sh != nil {
		s.shelfOf().reshelve(sh)
	}
	return err
}

// adoptCopy adopts clientID's session, from node, as the replicated copy
// has it; an error when the copy could not be read (the claim must then
// refuse its client: the session is not lost, only not here yet).
func (s *Sessions) adoptCopy(clientID, node string, epoch uint64) error {
	s.mu.Lock()
	s.moving[clientID] = epoch // until the claim's turn ends
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), handoffWait)
	bundle, err := s.replicas.Bundle(ctx, clientID)
	cancel()
	if err != nil {
		// The claim is this node's, the session not yet: the client is
		// refused, and its next claim here reads the copy again.
		s.mu.Lock()
		s.unread[clientID] = node
		s.mu.Unlock()
		s.log.Warn().Err(err).Str("client", clientID).Str("from", node).
			Msg("cluster: the session's replicated copy could not be read yet; the client is refused until it can")
		return fmt.Errorf("cluster: reading the session's replicated copy: %w", err)
	}
	s.mu.Lock()
	delete(s.unread, clientID)
	s.mu.Unlock()
	s.log.Info().Str("client", clientID).Str("from", node).Bool("found", bundle != nil).
		Msg("cluster: the session is taken from its replicated copy")
	if bundle != nil {
		s.adopt(clientID, node, epoch, bundle)
	}
	return nil
}

// adopt makes bundle, clientID's session from node, this node's, as
// the claim of epoch — unless this node answered a newer claim's request
// for the session meanwhile (giving up its wait for this claim: that
// claimer reads the copy): the session would be here with no client, and
// no longer written to the copy. Its handover window opens first: from
// the moment the session is in the table, a message that comes by two
// ways (and one it brought) reaches it once.
func (s *Sessions) adopt(clientID, node string, epoch uint64, bundle []byte) {
	s.adoptMu.Lock() // not while a handoff that gave up its wait answers (answered)
	defer s.adoptMu.Unlock()
	s.mu.Lock()
	given := s.given[clientID]
	s.mu.Unlock()
	if given > epoch {
		s.log.Warn().Str("client", clientID).Str("from", node).
			Msg("cluster: a newer claim took the session while this node read it; not adopted here")
		return
	}
	s.arrivals.arrived(clientID, time.Now(), broughtOrigins(bundle))
	if ps := s.peersOf(); ps != nil {
		ps.stayBack(clientID) // it left this node lately, and is back
	}
	if err := s.local.Adopt(clientID, bundle); err != nil {
		s.log.Error().Err(err).Str("client", clientID).Str("from", node).Msg("cluster: a session handed over could not be adopted")
	}
	s.mu.Lock()
	s.adopted[clientID] = epoch
	s.mu.Unlock()
}

// shelfOf returns this node's rescuer, if it has one.
func (s *Sessions) shelfOf() *Rescuer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shelf
}

// claimerHeader names the node a handoff request comes from.
const claimerHeader = "Shoal-Claimer"

// handoffRequest is a handoff request with data to node, from this one.
func (s *Sessions) handoffRequest(node string, data []byte) *nats.Msg {
	m := nats.NewMsg(handoffSubject(node))
	m.Data = data
	m.Header.Set(claimerHeader, s.node.cfg.Node)
	return m
}

// give answers a handoff request: the session goes to the node that
// claimed it, if that claim is newer than this node's.
func (s *Sessions) give(m *nats.Msg) {
	epochS, rest, _ := strings.Cut(string(m.Data), " ")
	cleanS, clientID, _ := strings.Cut(rest, " ")
	epoch, err1 := strconv.ParseUint(epochS, 10, 64)
	clean, err2 := strconv.ParseBool(cleanS)
	if err1 != nil || err2 != nil {
		s.log.Warn().Str("request", string(m.Data)).Msg("cluster: a malformed handoff request")
		_ = m.Respond(nil)
		return
	}
	if epoch == 0 { // a settle request (rescue.go): no claim
		reply := shelfReply
		if shelf := s.shelfOf(); shelf != nil && !shelf.settled(clientID, m.Header.Get(claimerHeader)) {
			reply = notSettledReply
		}
		_ = m.Respond(reply)
		return
	}
	// The watch may have brought this very claim first. A newer claim
	// of this node's keeps the session here; another node's asks the
	// asker (its claim came before), which passes the session on.
	claimer := m.Header.Get(claimerHeader)
	s.learn(clientID, epoch, false, claimer)
	if c := s.newestOf(clientID); c.mine && c.epoch > epoch {
		_ = m.Respond(nil)
		return
	}
	// A claim of the session under way here (one reading it from the
	// copy, say) ends first: what it adopts is what goes. Given before,
	// the session as it was here went, and the claim adopted the copy's
	// for no client: a freeze run lost 132 messages so. Should the claim
	// take longer than giveWait, the claimer reads the copy, which has it
	// all, and this claim does not adopt it (adopt: a newer claim came).
	// (What was parked meanwhile goes on to the claimer as the turn
	// ends.)
	// Only for a claim older than the asker's that reads the copy: one
	// newer, or still waiting for the owners' bucket (it will be newer),
	// takes the session from the asker next; and waiting for every claim
	// under way, twenty claims of one client id on three nodes at once
	// waited on each other one by one, past their clients' patience.
	readCopy := false
	s.mu.Lock()
	adopted := s.adopted[clientID]
	under, moving := s.moving[clientID]
	s.mu.Unlock()
	end := func() {}
	if moving && under < epoch {
		wctx, cancel := context.WithTimeout(context.Background(), giveWait)
		var err error
		end, err = s.turn(wctx, clientID)
		cancel()
		if err != nil {
			readCopy, end = true, func() {}
		}
	}
	defer func() {
		if clean { // what was parked meanwhile is not the new session's
			s.dropParked(clientID)
		}
		end()
	}()
	if c := s.newestOf(clientID); c.mine && c.epoch > epoch {
		_ = m.Respond(nil) // the claim here is newer: the session stays
		return
	} // a newer claim of another node's asks the asker, which passes it on
	// Before the session goes: the claim here, overtaken, adopts it
	// before, and it goes on, or adopts nothing.
	s.adoptMu.Lock()
	s.answered(clientID, epoch)
	s.mu.Lock()
	if s.adopted[clientID] != adopted {
		readCopy = false // adopted while this waited: what goes is the session
	}
	s.mu.Unlock()
	s.adoptMu.Unlock()
	if shelf := s.shelfOf(); shelf != nil {
		if sh, _ := shelf.unshelve(clientID, claimer, false); sh != nil {
			s.giveUnread(clientID, claimer, clean) // back on the shelf (reshelve)
			_ = m.Respond(shelfReply)
			return
		}
	}
	if s.giveUnread(clientID, claimer, clean) {
		// The copy is all there is of the session: read it there. An
		// empty answer (none here) would start it afresh there.
		if clean {
			_ = m.Respond(nil)
		} else {
			_ = m.Respond(shelfReply)
		}
		return
	}
	var l *leaving
	if ps := s.peersOf(); ps != nil && !clean {
		// What comes here for the session until the others know where
		// it went goes on there (handover.go).
		if filters := s.local.Filters(clientID); len(filters) > 0 {
			l = ps.leave(clientID, m.Header.Get(claimerHeader), filters, true)
		}
	}
	bundle, err := s.local.Give(clientID, clean)
	if err != nil {
		s.log.Warn().Err(err).Str("client", clientID).Msg("cluster: a session could not be handed over")
	}
	if l != nil && len(bundle) == 0 && !readCopy {
		l.ps.stay(l) // it did not leave
	}
	if s.replicas != nil {
		// What this node wrote of the session is in the copy before the
		// new owner writes over it.
		s.replicas.Flush()
	}
	if readCopy && !clean {
		bundle = shelfReply
	}
	_ = m.Respond(bundle)
}

// claimedElsewhere runs for every claim the owners' bucket takes: a claim
// by another node newer than this node's takes this node's connection
// over.
func (s *Sessions) claimedElsewhere(clientID string, o Owner) {
	if o.Node == s.node.cfg.Node {
		return
	}
	s.mu.Lock()
	_, claimed := s.newest[clientID]
	s.mu.Unlock()
	if claimed && s.learn(clientID, o.Epoch, false, o.Node) {
		s.local.TakeOver(clientID, false)
		s.forgetUnread(clientID, o.Node)
	}
}

// forgetUnread ends the wait of what was parked for clientID's session
// while this node could not read it (park), now that node took it: it
// goes on to node, addressed to the session (passParked), unless a claim
// here is under way. Routed here, it would find no session; held on, it
// would wait for a claim here that may never come. Asked for the
// session, this node still answers that the copy has it (giveUnread):
// the watch may bring the claim before its request.
func (s *Sessions) forgetUnread(clientID, node string) {
	s.mu.Lock()
	_, unread := s.unread[clientID]
	_, claiming := s.claiming[clientID]
	var parked []dispatch.Job
	if unread {
		delete(s.unread, clientID)
		s.copied[clientID] = struct{}{}
		if !claiming {
			parked = s.parked[clientID]
			delete(s.parked, clientID)
		}
	}
	s.mu.Unlock()
	s.passParked(node, parked)
}

// giveUnread ends the wait of what was parked for clientID's session,
// which claimer asks for, if this node's last claim of the session could
// not read it from the copy (unread, or copied once the watch brought
// the other claim): it goes on to claimer, or, for a clean claim, which
// starts afresh, is dropped. It reports whether the session was such a
// one: the copy is all there is of it then.
func (s *Sessions) giveUnread(clientID, claimer string, clean bool) bool {
	s.mu.Lock()
	_, unread := s.unread[clientID]
	_, copied := s.copied[clientID]
	parked := s.parked[clientID]
	if unread || copied {
		delete(s.unread, clientID)
		delete(s.copied, clientID)
		delete(s.parked, clientID)
	}
	s.mu.Unlock()
	if !unread && !copied {
		return false
	}
	if clean {
		dropJobs(parked)
	} else {
		s.passParked(claimer, parked)
	}
	return true
}

// dropParked drops what was parked for clientID's session, but for a
// session whose claim could not read it, acknowledging it: for a session
// that ends (a clean claim).
func (s *Sessions) dropParked(clientID string) {
	s.mu.Lock()
	var parked []dispatch.Job
	if _, unread := s.unread[clientID]; !unread {
		parked = s.parked[clientID]
		delete(s.parked, clientID)
	}
	s.mu.Unlock()
	dropJobs(parked)
}

// dropJobs releases jobs' messages and acknowledges them.
func dropJobs(jobs []dispatch.Job) {
	for _, j := range jobs {
		j.Msg.Release()
		if j.Done != nil {
			_ = j.Done.Ack()
		}
	}
}

// newestOf returns the newest claim of clientID this node knows of.
func (s *Sessions) newestOf(clientID string) claim {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.newest[clientID]
}

// answered records that this node answered a request for clientID's
// session by the claim of epoch (adopt).
func (s *Sessions) answered(clientID string, epoch uint64) {
	s.mu.Lock()
	if epoch > s.given[clientID] {
		s.given[clientID] = epoch
	}
	s.mu.Unlock()
}

// passParked sends jobs, parked for a session node took, on to node
// (Peers.passParked), or, without Peers, drops them.
func (s *Sessions) passParked(node string, jobs []dispatch.Job) {
	if len(jobs) == 0 {
		return
	}
	if ps := s.peersOf(); ps != nil {
		ps.passParked(node, jobs)
	} else {
		s.unpark(jobs)
	}
}

// learn records a claim of clientID with epoch, this node's if mine,
// else node's ("" if not known), and reports whether it is the newest
// this node knows of.
func (s *Sessions) learn(clientID string, epoch uint64, mine bool, node string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if epoch <= s.newest[clientID].epoch {
		return false
	}
	s.newest[clientID] = claim{epoch: epoch, mine: mine, node: node}
	return true
}

// takenBy returns the node whose claim of clientID is the newest this
// node knows of, if it is another node's and known; else "".
func (s *Sessions) takenBy(clientID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.newest[clientID]; !c.mine {
		return c.node
	}
	return ""
}

// Holds implements admit.Owners: whether this node still holds its claim
// of clientID with epoch.
func (s *Sessions) Holds(clientID string, epoch uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.newest[clientID].epoch == epoch
}

// Mine returns the epoch of this node's claim of clientID's session, if
// that is the newest claim the node knows of: whether what the node
// writes of the session is the session's (package replica).
func (s *Sessions) Mine(clientID string) (epoch uint64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.newest[clientID]
	return c.epoch, c.mine
}
