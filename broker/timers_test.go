package broker_test

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/deadline"
	"github.com/shoalmq/shoal/internal/testutil"
	"github.com/shoalmq/shoal/store"
)

// Session expiry and delayed wills on a fake clock: the test moves time,
// so a 30-second delay takes no 30 seconds. The real clock's wiring is
// proven by the mosquitto tests (e2e_v5_mosquitto_test.go), which wait a
// second or two for real.

// startFakeTime starts a broker whose session expiry and will delays run
// on the fake clock clk (new if nil), with edit applied.
func startFakeTime(t *testing.T, clk *deadline.Fake, edit func(*broker.Config)) (*broker.Broker, string, *deadline.Fake) {
	t.Helper()
	if clk == nil {
		clk = deadline.NewFake(time.Now())
	}
	b, addr := testutil.StartBroker(t, func(c *broker.Config) {
		broker.UseClock(c, clk)
		if edit != nil {
			edit(c)
		}
	})
	return b, addr, clk
}

// advance moves clk by d and waits until b has handled every deadline
// that came due: sessions ended, wills handed to the router.
func advance(t *testing.T, b *broker.Broker, clk *deadline.Fake, d time.Duration) {
	t.Helper()
	clk.Advance(d)
	if !b.SyncTimers() {
		t.Fatal("the timer goroutine has stopped")
	}
}

// waitPending waits until n deadlines wait: the broker has handled the
// closes of the clients whose sessions or wills they are.
func waitPending(t *testing.T, b *broker.Broker, n int) {
	t.Helper()
	testutil.Eventually(t, waitPkt, "the connections' close to be handled", func() bool { return b.PendingTimers() == n })
}

// TestExpiryTouchesOnlyDue: with 100,000 offline sessions waiting, each
// step of the clock locks exactly the sessions whose expiry came
// [MQTT-3.1.2-23], and no other: the broker used to copy the set of
// offline sessions and lock every one of them once a second.
func TestExpiryTouchesOnlyDue(t *testing.T) {
	t.Parallel()
	b, addr, clk := startFakeTime(t, nil, nil)
	b.AddOfflineSessions("soon-", 100, 5)
	b.AddOfflineSessions("minute-", 49_900, 60)
	b.AddOfflineSessions("hour-", 50_000, 3600)
	// And one a client left, for the whole path.
	c, _ := dial5(t, addr, "client", true, expiring(5))
	sub5(t, c, 1, codec.Subscription{Filter: []byte("t"), QoS: 1}, nil)
	goOffline(c)
	waitPending(t, b, 100_001)

	steps := []struct {
		by       time.Duration
		visits   int64 // sessions locked by this step
		sessions int   // left after it
	}{
		{by: 4 * time.Second, visits: 0, sessions: 100_001},
		{by: time.Second, visits: 101, sessions: 99_900},
		{by: 54 * time.Second, visits: 0, sessions: 99_900},
		{by: time.Second, visits: 49_900, sessions: 50_000},
		{by: 3539 * time.Second, visits: 0, sessions: 50_000},
		{by: time.Second, visits: 50_000, sessions: 0},
	}
	for i, s := range steps {
		before := b.TimerVisits()
		advance(t, b, clk, s.by)
		if got := b.TimerVisits() - before; got != s.visits {
			t.Fatalf("step %d (+%v): %d sessions locked, want the %d due", i, s.by, got, s.visits)
		}
		if got := b.SessionCount(); got != s.sessions {
			t.Fatalf("step %d (+%v): %d sessions left, want %d", i, s.by, got, s.sessions)
		}
		if got := b.PendingTimers(); got != s.sessions {
			t.Fatalf("step %d: %d deadlines wait for %d sessions", i, got, s.sessions)
		}
	}
	if n := b.SubscriptionCount(); n != 0 {
		t.Fatalf("%d subscriptions left after every session expired [MQTT-4.1.0-2]", n)
	}
}

// TestWillDelayCancelledByResume: a client resuming its session before the
// Will Delay Interval passes cancels the will [MQTT-3.1.3-9] — its
// deadline is gone at once, not merely ignored when it comes — and the
// session's expiry goes with it.
func TestWillDelayCancelledByResume(t *testing.T) {
	t.Parallel()
	b, addr, clk := startFakeTime(t, nil, nil)
	watch, _ := dial5(t, addr, "watch", true, nil)
	sub5(t, watch, 1, codec.Subscription{Filter: []byte("wr/#"), QoS: 1}, nil)
	dialWill(t, addr, "back", "wr/back", 30, 60).Drop()
	waitPending(t, b, 1)
	advance(t, b, clk, 29*time.Second)
	back, ack := dial5(t, addr, "back", false, expiring(60))
	if !ack.SessionPresent {
		t.Fatal("Session Present 0 on resuming within the expiry")
	}
	if n := b.PendingTimers(); n != 0 {
		t.Fatalf("%d deadlines wait after the resume, want none", n)
	}
	advance(t, b, clk, 2*time.Hour)
	watch.ExpectSilence(quietFor) // no will [MQTT-3.1.3-9]
	if n := b.SessionCount(); n != 2 {
		t.Fatalf("%d sessions: the connected one expired", n)
	}
	// Leaving again starts afresh: expiry 60 s from now.
	goOffline(back)
	waitPending(t, b, 1)
	advance(t, b, clk, 59*time.Second)
	if n := b.SessionCount(); n != 2 {
		t.Fatal("the session expired before its 60 s from the last close")
	}
	advance(t, b, clk, time.Second)
	if n := b.SessionCount(); n != 1 {
		t.Fatal("the session outlived its expiry [MQTT-3.1.2-23]")
	}
}

// TestWillDelayTimes: a delayed will goes out when its delay passes, the
// session staying for the rest of its expiry [MQTT-3.1.2-8]; when the
// expiry is shorter it goes out as the session ends (MQTT 5 section
// 3.1.3.2.2); a Clean Start ends an offline session, and so publishes its
// waiting will at once.
func TestWillDelayTimes(t *testing.T) {
	t.Parallel()
	b, addr, clk := startFakeTime(t, nil, nil)
	watch, _ := dial5(t, addr, "watch", true, nil)
	sub5(t, watch, 1, codec.Subscription{Filter: []byte("wt/#"), QoS: 1}, nil)

	dialWill(t, addr, "delay", "wt/delay", 10, 100).Drop()    // will at 10 s, session to 100 s
	dialWill(t, addr, "expiry", "wt/expiry", 60, 20).Drop()   // session ends at 20 s, and its will
	dialWill(t, addr, "clean", "wt/clean", 3600, 3600).Drop() // until a Clean Start
	waitPending(t, b, 3)

	advance(t, b, clk, 9*time.Second)
	watch.ExpectSilence(quietFor)
	advance(t, b, clk, time.Second)
	receiveAcked(t, watch, "wt/delay", "bye delay")
	if b.SessionFor("delay") == nil {
		t.Fatal("the session ended with its will, 90 s before its expiry")
	}

	advance(t, b, clk, 9*time.Second)
	watch.ExpectSilence(quietFor)
	advance(t, b, clk, time.Second)
	receiveAcked(t, watch, "wt/expiry", "bye expiry")
	if b.SessionFor("expiry") != nil {
		t.Fatal("the session outlived its 20 s expiry")
	}

	if _, ack := dial5(t, addr, "clean", true, nil); ack.SessionPresent {
		t.Fatal("Session Present 1 with Clean Start")
	}
	receiveAcked(t, watch, "wt/clean", "bye clean")

	advance(t, b, clk, 80*time.Second)
	watch.ExpectSilence(quietFor) // each will once
	if b.SessionFor("delay") != nil {
		t.Fatal("the session whose will went out outlived its expiry")
	}
}

// TestNoTimerAfterClose: Close stops the timer goroutine; the deadlines
// left never fire, whatever the clock does after, and a will still
// waiting is not published but kept in the store, to be published after
// the next start, its delay counted from there.
func TestNoTimerAfterClose(t *testing.T) {
	mem := store.NewMem()
	a, addr, clk := startFakeTime(t, nil, func(c *broker.Config) { c.Store = mem })
	dialWill(t, addr, "w", "will", 10, 60).Drop()
	waitPending(t, a, 1)
	stop(t, a)
	if a.SyncTimers() {
		t.Fatal("the timer goroutine still runs after Close")
	}
	if n := a.PendingTimers(); n != 0 {
		t.Fatalf("%d deadlines left after Close", n)
	}
	visits := a.TimerVisits()
	clk.Advance(30 * time.Second) // past the will's delay, within the session's expiry
	if a.TimerVisits() != visits {
		t.Fatal("a timer fired after Close")
	}
	testutil.Eventually(t, waitPkt, "no goroutine of a timer queue", func() bool {
		buf := make([]byte, 1<<20)
		return !strings.Contains(string(buf[:runtime.Stack(buf, true)]), "internal/deadline.(*Queue")
	})
	if mem.Len() != 1 {
		t.Fatalf("%d records after Close, want the session's with its will", mem.Len())
	}

	b, addr, _ := startFakeTime(t, clk, func(c *broker.Config) { c.Store = mem })
	watch, _ := dial5(t, addr, "watch", true, nil)
	sub5(t, watch, 1, codec.Subscription{Filter: []byte("will"), QoS: 1}, nil)
	advance(t, b, clk, 9*time.Second)
	watch.ExpectSilence(quietFor)
	advance(t, b, clk, time.Second)
	receiveAcked(t, watch, "will", "bye w")
}

// TestWillDueBeforeResume: a will whose delay has passed before its client
// comes back is published, once, however far the timer goroutine has got
// with it: only a connection made before the delay passed stops it
// [MQTT-3.1.3-9]. The timer goroutine is held (HoldBackground) while one
// will is off its queue but not yet fired, and another is due but still
// queued; then both clients resume. Before, the first was released by the
// timer goroutine (its client had come back) and the second by the
// returning connection (it took it for a resume in time).
func TestWillDueBeforeResume(t *testing.T) {
	t.Parallel()
	b, addr, clk := startFakeTime(t, nil, func(c *broker.Config) { c.Store = store.NewMem() })
	watch, _ := dial5(t, addr, "watch", true, nil)
	sub5(t, watch, 1, codec.Subscription{Filter: []byte("late/#"), QoS: 1}, nil)
	dialWill(t, addr, "taken", "late/taken", 10, 3600).Drop()
	dialWill(t, addr, "queued", "late/queued", 20, 3600).Drop()
	waitPending(t, b, 2)

	release := b.HoldBackground()
	clk.Advance(11 * time.Second) // "taken" leaves the queue; its firing waits for the hold
	testutil.Eventually(t, waitPkt, "the timer goroutine to take the first will", func() bool { return b.PendingTimers() == 1 })
	clk.Advance(10 * time.Second) // "queued" is due, but the goroutine is held
	for _, id := range []string{"taken", "queued"} {
		if _, ack := dial5(t, addr, id, false, expiring(3600)); !ack.SessionPresent {
			t.Fatalf("%s: Session Present 0", id)
		}
	}
	release()
	if !b.SyncTimers() {
		t.Fatal("the timer goroutine has stopped")
	}
	got := map[string]int{}
	for range 2 {
		p, _ := watch.ExpectPublish(waitPkt)
		if p.QoS == 1 {
			watch.SendAck(codec.PUBACK, p.PacketID)
		}
		got[string(p.Topic)]++
	}
	watch.ExpectSilence(quietFor) // each once
	if got["late/taken"] != 1 || got["late/queued"] != 1 {
		t.Errorf("wills received %v, want each of late/taken and late/queued once", got)
	}
}
