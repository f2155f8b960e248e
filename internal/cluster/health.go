package cluster

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// A node serves only while it is with the cluster's majority.
//
// Every rescueCheck a node pings the others it knows (pingSubject): those
// routed to it, those with interest in the bucket, and every one it has
// seen since it started. With this one, those that answer must be more
// than half of the nodes it knows (at least the config's: routes and this
// one) — without them JetStream cannot store anything with its
// replication, and the majority may rescue this node's sessions. A node
// that misses that twice in a row is cut off:
//
//   - it refuses new connections (CONNACK 0x88, Server unavailable: 3.x's
//     return code 3) and QoS 1 and 2 messages (MQTT 5: PUBACK or PUBREC
//     0x80; 3.x has no such code: the connection is closed, and the
//     client publishes again where it reconnects); /readyz says so, and
//     the log once;
//   - it stops reading its subject of the forward stream, and its writers
//     stop waiting for the stream of replicated sessions (Member.Hold):
//     a connection whose output waited for such a write is closed
//     without it (store.ErrUnvouched, as for any syncing commit that
//     ends while the node does not serve);
//   - once it has been cut off for rescue_after, when the others may have
//     rescued its sessions, it closes its clients' connections (MQTT 5:
//     DISCONNECT 0x9C, Use another server) so that they reconnect to a
//     node that may serve them (Member.Retire).
//
// When it reaches a majority again — or finds, any round, that another
// node rescued it, as after a freeze (SIGSTOP) longer than rescue_after —
// it closes its connections if it had not, waits until the rescue of it
// is done, settles its sessions with the cluster as a node that restarts
// does (Member.Rejoin: its own claimed again, those rescued from it taken
// back from the copy, those taken elsewhere ended here), and serves
// again. A node whose rounds stop for rescue_after (frozen, or starved;
// staleAfter at least) does not serve until its next round: what it holds
// may be stale.
//
// With an external NATS cluster the Shoal nodes are no quorum of their
// own: a node serves while its connection to NATS is up, and what NATS
// cannot store with its replication is refused as it comes
// (Conn.NotStored).

// staleAfter is how long a node serves after its last round, at least:
// past it, it waits for the next one. Rounds are rescueCheck apart, each
// about pingWait long. A node is stale after rescue_after if that is
// longer: the others rescue no node that did not answer them for that
// long, so a shorter pause (a loaded machine) costs nothing.
const staleAfter = 2*rescueCheck + pingWait

// cutOffRounds is how many rounds in a row without a majority cut a
// serving node off: one may be answers that came late.
const cutOffRounds = 2

// rejoinTimeout bounds one attempt to rejoin: a failed one is made again
// the next round.
const rejoinTimeout = time.Minute

// Member is what the broker does when its node is cut off and back.
type Member interface {
	// Retire closes the clients' connections: the cluster may have
	// moved their sessions.
	Retire()
	// Rejoin reads anew what the node mirrors of the cluster's state
	// and, if settle, settles its sessions with the cluster once the
	// rescue of it (if any) is done.
	Rejoin(ctx context.Context, settle bool) error
	// Hold, on, stops the node's waits for its cluster's replication
	// (the stream cannot confirm what it cannot store): while it does
	// not serve, its event loops must not stall on them.
	Hold(on bool)
	// Resume sends what the sessions of connected clients queued while
	// the node did not serve.
	Resume()
}

// The states of a node's Health.
const (
	serving   int32 = iota
	cutOff          // without a majority
	rejoining       // back, settling its sessions
)

// Health decides whether this node serves: Serving. Safe for concurrent
// use.
type Health struct {
	node    *Node
	peers   *Peers
	rescuer *Rescuer // nil: sessions are not replicated
	member  Member
	log     zerolog.Logger
	after   time.Duration
	stale   int64 // ns: staleAfter, or after if longer

	state atomic.Int32
	last  atomic.Int64 // when the last round ended, Unix ns

	// mu guards round, closed (and made anew) as each round ends: Await
	// waits on it.
	mu    sync.Mutex
	round chan struct{}

	// Rounds' own, on the run goroutine.
	known   map[string]bool // every other node seen
	misses  int             // rounds in a row without a majority
	cutAt   time.Time
	retired bool

	stop chan struct{}
	done sync.WaitGroup
}

// NewHealth returns the Health of a node that is serving; Open starts its
// rounds.
func NewHealth() *Health {
	h := &Health{round: make(chan struct{}), known: map[string]bool{}, stop: make(chan struct{})}
	h.last.Store(time.Now().UnixNano())
	return h
}

// Open starts the rounds on node n, whose Peers name the nodes with
// interest, whose rescuer (nil without replicated sessions) rescues the
// nodes gone and tells whether this one was, and whose member acts on
// what they find. The Sessions' claims ask it first (Serving), and so
// does the reading of the forward stream (Await).
func (h *Health) Open(n *Node, peers *Peers, sessions *Sessions, rescuer *Rescuer, member Member, log zerolog.Logger) {
	h.node, h.peers, h.rescuer, h.member, h.log = n, peers, rescuer, member, log
	h.after = rescueAfter
	if n.cfg.RescueAfter > 0 {
		h.after = n.cfg.RescueAfter
	}
	h.stale = int64(max(staleAfter, h.after))
	sessions.setHealth(h)
	peers.setGate(h)
	h.done.Add(1)
	go h.run()
}

// Close stops the rounds.
func (h *Health) Close() {
	if h.node == nil {
		return
	}
	select {
	case <-h.stop:
		return
	default:
	}
	close(h.stop)
	h.done.Wait()
}

// Serving reports whether this node may take clients, sessions and QoS 1
// and 2 messages now: it is with the cluster's majority, settled, and its
// last round is recent.
func (h *Health) Serving() bool {
	return h.state.Load() == serving && time.Now().UnixNano()-h.last.Load() < h.stale
}

// CutOff reports whether this node is cut off from the cluster's
// majority, or settling its sessions after.
func (h *Health) CutOff() bool { return h.state.Load() != serving }

// Await waits until this node serves: it reports false if stop closed
// first.
func (h *Health) Await(stop <-chan struct{}) bool {
	for !h.Serving() {
		h.mu.Lock()
		round := h.round
		h.mu.Unlock()
		select {
		case <-round:
		case <-stop:
			return false
		}
	}
	return true
}

// run makes a round every rescueCheck until Close.
func (h *Health) run() {
	defer h.done.Done()
	t := time.NewTicker(rescueCheck)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		start := time.Now().UnixNano()
		frozen := start-h.last.Load() >= h.stale // since the last round
		if frozen {
			h.member.Hold(true) // until this round knows better
		}
		alive, majority := h.ping()
		was := h.state.Load()
		state := h.step(majority, frozen)
		if was == serving && state == serving && !frozen && time.Now().UnixNano()-start >= h.stale {
			// Frozen during the round: its answers came once the node
			// ran again, and say nothing of what the cluster did
			// meanwhile. Taken for a round like the others, it let the
			// node serve on the moment it thawed: its loops answered the
			// PUBRECs that waited in their sockets and sent on from the
			// queues, while a rescuer had the sessions already (QoS 2
			// messages delivered twice, in 2 of 8 freeze runs). Not
			// counted, the node does not serve, and the next round finds
			// it frozen.
			h.member.Hold(true)
			continue
		}
		if state == serving {
			h.member.Hold(false)
		}
		h.last.Store(time.Now().UnixNano())
		h.state.Store(state)
		h.mu.Lock()
		close(h.round)
		h.round = make(chan struct{})
		h.mu.Unlock()
		if state == serving && (was != serving || frozen) {
			h.member.Resume()
		}
		if state == serving && h.rescuer != nil {
			h.rescuer.check(alive)
		}
	}
}

// ping pings the other nodes this node knows, all at once, and reports
// those that answered and whether, with this one, they are a majority.
func (h *Health) ping() (alive map[string]bool, majority bool) {
	n := h.node
	for _, name := range h.peers.Nodes() {
		h.known[name] = true
	}
	if n.srv != nil {
		if rz, err := n.srv.Routez(nil); err == nil {
			for _, r := range rz.Routes {
				if r.RemoteName != "" && r.RemoteName != n.cfg.Node {
					h.known[r.RemoteName] = true
				}
			}
		}
	}
	alive = make(map[string]bool, len(h.known))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name := range h.known {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok := n.answers(name)
			mu.Lock()
			alive[name] = ok
			mu.Unlock()
		}()
	}
	wg.Wait()
	if n.srv == nil {
		return alive, n.nc.IsConnected() // NATS's quorum, not the nodes'
	}
	up := 1
	for _, ok := range alive {
		if ok {
			up++
		}
	}
	size := max(len(n.cfg.Routes)+1, len(h.known)+1)
	return alive, 2*up > size
}

// step moves the state on by a round's finding and returns the new one.
// frozen: the round came h.stale or more after the last.
func (h *Health) step(majority, frozen bool) int32 {
	state := h.state.Load()
	if !majority {
		h.misses++
		if state == serving && h.misses < cutOffRounds && !frozen {
			return serving
		}
		h.member.Hold(true)
		now := time.Now()
		if state != cutOff {
			h.cutAt = now
			h.log.Error().Int64("rescue_after_ms", h.after.Milliseconds()).
				Msg("cluster: this node is cut off from the cluster's majority; it refuses new connections and QoS 1 and 2 messages")
		}
		if !h.retired && now.Sub(h.cutAt) >= h.after {
			h.retire("cut off for rescue_after: the cluster may have moved their sessions")
		}
		return cutOff
	}
	h.misses = 0
	rescued := false
	if h.rescuer != nil {
		ctx, cancel := context.WithTimeout(context.Background(), pingWait)
		var err error
		rescued, err = h.rescuer.rescuedNow(ctx)
		cancel()
		if err != nil && (state != serving || frozen) {
			// Not known whether the cluster rescued this node while it
			// was away: it may not serve, nor let a stale connection
			// deliver, until a round knows (after a freeze the reads
			// fail for seconds, while JetStream elects leaders anew).
			if state == serving {
				return rejoining
			}
			return state
		}
	}
	if state == serving && !frozen && !rescued {
		return serving
	}
	// Back from a cut, a freeze or a rescue: the watches may have missed
	// changes; the sessions need settling if the cluster may have moved
	// them.
	settle := h.retired || rescued
	if settle && !h.retired {
		h.retire("the cluster rescued this node's sessions while it was away")
	}
	h.state.Store(rejoining)
	ctx, cancel := context.WithTimeout(context.Background(), rejoinTimeout)
	defer cancel()
	if err := h.member.Rejoin(ctx, settle); err != nil {
		h.log.Error().Err(err).Msg("cluster: rejoining the cluster failed; trying again")
		return cutOff
	}
	h.retired = false
	h.log.Warn().Bool("settled", settle).Msg("cluster: this node is with the cluster's majority again; it serves")
	return serving
}

// retire has the member close its clients' connections, why.
func (h *Health) retire(why string) {
	h.retired = true
	h.member.Hold(true) // the loops close the connections: none may wait
	h.log.Error().Str("why", why).Msg("cluster: closing this node's client connections (MQTT 5: 0x9C, use another server)")
	h.member.Retire()
}
