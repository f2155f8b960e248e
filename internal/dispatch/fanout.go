package dispatch

import (
	"math/rand/v2"

	"github.com/shoalmq/shoal/internal/persist"
	"github.com/shoalmq/shoal/internal/sys"
	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/session"
	"github.com/shoalmq/shoal/store"
)

// fanout is the scratch of routing, so that routing allocates nothing:
// each router worker has one, and each loop one for the messages it routes
// itself (RouteInline). One goroutine uses it.
type fanout struct {
	matches router.Matches
	perLoop [][]item     // deliveries grouped by loop
	sw      store.Writer // the owner's store writer; nil: persistence off
	// offline are stored deliveries to sessions that were offline, for
	// handOffline once sw is committed.
	offline []item
	ids     [1]uint32 // PutDelivery's scratch
	// receipts are the confirmations of what was forwarded to other
	// nodes (Peer.Forward) since they were last waited for (confirm).
	receipts []Receipt
	failed   []bool // confirm's verdicts, by receipt
	// origin is the Origin of the last message this fanout gave one
	// (newOrigin): from a random start, so that the fanouts of every
	// node, and of every run of it, give numbers of their own.
	origin uint64
}

func newFanout(loops int) fanout {
	f := fanout{perLoop: make([][]item, loops), origin: rand.Uint64()}
	f.matches.Usable = usableMember
	return f
}

// newOrigin returns an identity for a message this node routes first
// (router.Message.Origin), which goes with it to the other nodes.
func (f *fanout) newOrigin() uint64 {
	f.origin++
	if f.origin == 0 {
		f.origin++
	}
	return f.origin
}

// SetWriter gives the worker its store writer. Call it before Run.
func (w *Worker) SetWriter(sw store.Writer) { w.sw = sw }

// handOffline puts the gathered deliveries to offline sessions into their
// queues — or, for a session that came back meanwhile, posts them to its
// loop. Call it after committing f.sw: its deletes must follow the puts.
func (f *fanout) handOffline(d *Dispatcher) {
	for i := range f.offline {
		p := &f.offline[i]
		s := p.sess
		s.Lock()
		if o := s.OwnerLocked(); o != nil {
			d.post(o.LoopIndex(), item{sess: s, d: p.d})
		} else {
			d.queueOfflineLocked(f.sw, s, p.d)
		}
		s.Unlock()
		f.offline[i] = item{}
	}
	f.offline = f.offline[:0]
}

// route gathers m's deliveries to every matching subscriber [MQTT-3.3.4]
// into f.perLoop, for the caller to hand on, and forwards m to the other
// nodes with matching sessions (Peers) — unless local: m came from one,
// and goes to this node's sessions only, or, to not "", to the session
// of that client id only. It reports whether it stored anything: a
// retained message, or a delivery to a persistent session.
func (f *fanout) route(d *Dispatcher, m *router.Message, local bool, to string) (stored bool) {
	if !local && m.Origin == 0 {
		m.Origin = f.newOrigin()
	}
	if m.Retain && !local { // the node m came from kept it
		d.retained.Set(m)                     // empty payload clears [MQTT-3.3.1-6], [MQTT-3.3.1-7]
		if f.sw != nil && !sys.Own(m.Topic) { // $SYS is republished, not restored
			if len(m.Payload) == 0 {
				f.sw.DeleteRetained(m.Topic)
			} else {
				rec := persist.Message(m)
				f.sw.PutRetained(rec)
			}
			stored = true
		}
	}
	f.matches.Reset()
	// Another node picked the member of each shared group already.
	f.matches.NoShared = local
	d.subs.Match(m.Topic, m.From, m.FromID, &f.matches)
	// Deliveries handed to loops share m; their references are taken in
	// one atomic add after the loop below (the caller's own reference
	// keeps m alive meanwhile, and nothing is handed on before route
	// returns).
	refs := int32(0)
	for i := range f.matches.List {
		mt := &f.matches.List[i]
		s, ok := mt.Sub.(*session.Session)
		if !ok {
			// Each node reports its own $SYS; a message from a Peer has
			// been to the others already.
			if p, ok := mt.Sub.(Peer); ok && !local && !sys.Own(m.Topic) {
				if r := p.Forward(m, mt); r != nil {
					f.receipts = append(f.receipts, r)
				}
			} else if mv, ok := mt.Sub.(Mover); ok && (to == "" || to == mv.ClientID()) && !sys.Own(m.Topic) {
				if r := mv.PassOn(m, mt); r != nil {
					f.receipts = append(f.receipts, passed{r})
				}
			}
			continue
		}
		if to != "" && s.ClientID() != to {
			continue
		}
		toLoop, st := f.deliver(d, m, mt, s)
		if toLoop {
			refs++
		}
		stored = stored || st
	}
	m.RefN(refs)
	return stored
}

// passed is the receipt of a message passed on (Mover.PassOn).
type passed struct{ Receipt }

// confirm waits for the receipts gathered since its last call, until stop
// closes (nil: as long as they take; the cluster bounds it), and records
// which failed in f.failed, by receipt. It reports whether any did.
func (f *fanout) confirm(stop <-chan struct{}) (anyFailed bool) {
	f.failed = f.failed[:0]
	for i, r := range f.receipts {
		bad := r.Wait(stop) != nil
		if _, ok := r.(passed); ok {
			// The message reached its subscribers here and the other
			// nodes; only a moved session's second way failed (counted
			// by the cluster): nobody is refused for it, nor is it sent
			// again, which would repeat it to all the others.
			bad = false
		}
		f.failed = append(f.failed, bad)
		anyFailed = anyFailed || bad
		f.receipts[i] = nil
	}
	f.receipts = f.receipts[:0]
	return anyFailed
}

// routeJob routes j's message: see route and routeShared.
func (f *fanout) routeJob(d *Dispatcher, j *Job) (stored bool) {
	if j.Group != "" {
		return f.routeShared(d, j.Msg, j.Group)
	}
	return f.route(d, j.Msg, j.Local, j.To)
}

// routeShared gives m to one of this node's members of the shared group
// named by group ("$share/g/f"), which another node picked among the
// group's members on every node: a usable one if there is one (see
// usableMember), else any. With no member left here, m is dropped. It
// reports whether it stored anything, as route does.
func (f *fanout) routeShared(d *Dispatcher, m *router.Message, group string) (stored bool) {
	mt, ok := d.subs.PickShared(group, usableLocal)
	s, _ := mt.Sub.(*session.Session)
	if ok && s == nil {
		mt, ok = d.subs.PickShared(group, anyLocal)
		s, _ = mt.Sub.(*session.Session)
	}
	if !ok || s == nil {
		return false
	}
	toLoop, stored := f.deliver(d, m, &mt, s)
	if toLoop {
		m.Ref()
	}
	return stored
}

// deliver gathers m's delivery to s, which mt matched: into f.perLoop when
// s is online (toLoop: the caller takes the reference it holds), into
// f.offline when it must be stored first, else into s's queue. It reports
// whether the delivery was stored for a persistent session.
func (f *fanout) deliver(d *Dispatcher, m *router.Message, mt *router.Match, s *session.Session) (toLoop, stored bool) {
	dv := session.Delivery{
		QoS: min(m.QoS, mt.QoS), // [MQTT-3.8.4-8]
		// Retain is cleared on normal delivery unless Retain As
		// Published [MQTT-3.3.1-12], [MQTT-3.3.1-13].
		Retain: m.Retain && mt.RetainAsPublished,
	}
	if dv.QoS > 0 && d.once != nil && d.once.Active() && !d.once.First(s.ClientID(), m.Origin) {
		return false, false // it came by another way already, while s moved here
	}
	dv.SetIDs(mt.SubIDs) // one identifier, the common case, costs no allocation
	if mt.Shared && dv.QoS > 0 {
		dv.Group = mt.Group // for Reroute, should the member's session end
	}
	dv.Msg = m
	if dv.QoS > 0 && f.sw != nil && s.Persistent() {
		d.persist.PutDelivery(f.sw, s, &dv, &f.ids)
		stored = true
	}
	if li := s.LoopHint(); li >= 0 {
		f.perLoop[li] = append(f.perLoop[li], item{sess: s, d: dv})
		return true, stored
	}
	if dv.QoS == 0 {
		return false, stored // offline: QoS 0 is not kept
	}
	if dv.Seq != 0 {
		// Stored: into the session only once the store has it, or the
		// session's own loop could complete and delete it first and the
		// late commit would bring it back (handOffline).
		m.Ref()
		f.offline = append(f.offline, item{sess: s, d: dv})
		return false, stored
	}
	s.Lock()
	defer s.Unlock()
	if o := s.OwnerLocked(); o != nil {
		// Came online since the hint: deliver through its loop.
		f.perLoop[o.LoopIndex()] = append(f.perLoop[o.LoopIndex()], item{sess: s, d: dv})
		return true, stored
	}
	m.Ref() // the queue may release it at once (drop policy)
	d.queueOfflineLocked(f.sw, s, dv)
	return false, stored
}

// Reroute gives the shared-subscription deliveries of a session that ended
// to another member of their group, so that a member leaving does not lose
// the group's QoS 1/2 messages (MQTT 5 section 4.8.2). A group that has no
// members left drops them. Deliveries to a persistent member are stored
// through w (nil: persistence off), committed before they are posted.
// Call with no session locked, on the goroutine that owns w.
func (d *Dispatcher) Reroute(w store.Writer, orphans []session.Delivery) {
	if len(orphans) == 0 {
		return
	}
	for _, dv := range orphans {
		mt, ok := d.subs.PickShared(dv.Group, usableMember)
		if p, isPeer := mt.Sub.(Peer); ok && isPeer {
			// A member on another node. The message was acknowledged
			// long ago, so nobody needs its receipt; but a Peer may hold
			// a message until its receipt is waited for.
			if r := p.Forward(dv.Msg, &mt); r != nil {
				go func() { _ = r.Wait(nil) }() // a failure is the Peer's to count
			}
			dv.Release()
			continue
		}
		s, _ := mt.Sub.(*session.Session)
		if !ok || s == nil {
			dv.Release()
			continue
		}
		dv = session.Delivery{Msg: dv.Msg, Group: mt.Group,
			QoS: min(dv.Msg.QoS, mt.QoS), Retain: dv.Msg.Retain && mt.RetainAsPublished}
		dv.SetIDs(mt.SubIDs)
		if dv.QoS == 0 {
			dv.Group = ""
		}
		if dv.QoS > 0 && w != nil && s.Persistent() {
			var ids [1]uint32
			d.persist.PutDelivery(w, s, &dv, &ids)
			d.persist.Commit(w) // before another loop can acknowledge it
		}
		s.Lock()
		if o := s.OwnerLocked(); o != nil {
			d.post(o.LoopIndex(), item{sess: s, d: dv})
		} else {
			d.queueOfflineLocked(w, s, dv)
		}
		s.Unlock()
	}
}
