package retained

import "github.com/shoalmq/shoal/router"

// Backlog is how much unsent output a connection may have for its
// cursors to add more: about 64 messages of 1 KiB, or 2,000 of 30 bytes,
// per round. A round ends when the kernel takes no more; the loop wakes
// the cursor again when half of it has gone. Measured with 10,000
// retained 1 KiB messages to mosquitto_sub over loopback (3 runs of each
// QoS): 16 KiB and 64 KiB took the same time (65 to 90 ms at QoS 0, 140
// to 190 ms at QoS 1), 256 KiB was slower (80 to 117 ms, 234 to 238 ms);
// of the two, 64 KiB needs a quarter of the rounds, which counts with
// small messages. It is also what a stalled client costs in output.
const Backlog = 64 << 10

// cursor is one filter's retained messages still to send.
type cursor struct {
	list   []*router.Message // the snapshot; list[next:] hold one reference each
	next   int
	filter string
	opts   router.Options // its Subscription Identifier goes with each message
}

// Queue is a client's cursors, in SUBSCRIBE order. The zero value is
// empty.
type Queue struct {
	cursors []cursor
	// Watching says the connection asked to hear when its output has gone
	// down (eventloop.Conn.NotifyDrained) and has not heard yet.
	Watching bool
}

// Len is how many cursors have messages to send.
func (q *Queue) Len() int { return len(q.cursors) }

// Replace drops the cursors of filter — a subscription replaced sends its
// retained messages again [MQTT-3.8.4-3] — and adds one over list, the
// snapshot (router.Retained.Collect) of the messages matching filter for
// a subscription granted with o. It reports whether list had any; an
// empty list goes back to p.
func (q *Queue) Replace(p *Pool, filter string, list []*router.Message, o router.Options) bool {
	q.Drop(p, filter)
	if len(list) == 0 {
		p.Put(list)
		return false
	}
	q.cursors = append(q.cursors, cursor{list: list, filter: filter, opts: o})
	return true
}

// Resubscribed gives a cursor of filter the options of the subscription
// that replaced its own without asking for retained messages again
// (Retain Handling 1 or 2): what it still sends goes out as that
// subscription says.
func (q *Queue) Resubscribed(filter string, o router.Options) {
	for i := range q.cursors {
		if cur := &q.cursors[i]; cur.filter == filter {
			cur.opts = o
		}
	}
}

// Drop drops the cursors of filter (UNSUBSCRIBE, or a new snapshot
// replacing one), or every cursor when filter is "" (the client is gone),
// releasing what they still hold and giving their lists back to p.
func (q *Queue) Drop(p *Pool, filter string) {
	keep := q.cursors[:0]
	for i := range q.cursors {
		cur := &q.cursors[i]
		if filter != "" && cur.filter != filter {
			keep = append(keep, *cur)
			continue
		}
		for j := cur.next; j < len(cur.list); j++ {
			cur.list[j].Release()
			cur.list[j] = nil
		}
		p.Put(cur.list)
	}
	clear(q.cursors[len(keep):])
	q.cursors = keep
	if len(keep) == 0 {
		q.cursors = nil
	}
}

// Peek returns the next message to send and the options of the
// subscription it goes out under, leaving it in the queue (Take takes
// it); false when none is left. Cursors it finds done go back to p.
func (q *Queue) Peek(p *Pool) (*router.Message, router.Options, bool) {
	for len(q.cursors) > 0 {
		cur := &q.cursors[0]
		if cur.next < len(cur.list) {
			return cur.list[cur.next], cur.opts, true
		}
		p.Put(cur.list)
		copy(q.cursors, q.cursors[1:])
		q.cursors[len(q.cursors)-1] = cursor{}
		q.cursors = q.cursors[:len(q.cursors)-1]
	}
	q.cursors = nil
	return nil, router.Options{}, false
}

// Take removes the message Peek returned: its reference is the caller's.
func (q *Queue) Take() {
	cur := &q.cursors[0]
	cur.list[cur.next] = nil
	cur.next++
}

// maxPooledSnapshot bounds the snapshot lists a loop keeps for reuse: a
// "#" over a large store should not pin its list for ever.
const (
	maxPooledSnapshot  = 4096 // entries
	maxPooledSnapshots = 16   // lists per loop
)

// Pool is a loop's snapshot lists kept for reuse. The zero value is
// empty.
type Pool struct {
	lists [][]*router.Message
}

// Get returns an empty list for Collect, reused if the loop has one:
// SUBSCRIBE bursts after a reconnect storm allocate little.
func (p *Pool) Get() []*router.Message {
	if n := len(p.lists); n > 0 {
		list := p.lists[n-1]
		p.lists[n-1] = nil
		p.lists = p.lists[:n-1]
		return list
	}
	return nil
}

// Put keeps a list whose references are all given back (every entry nil)
// for reuse.
func (p *Pool) Put(list []*router.Message) {
	if cap(list) == 0 || cap(list) > maxPooledSnapshot || len(p.lists) >= maxPooledSnapshots {
		return
	}
	p.lists = append(p.lists, list[:0])
}
