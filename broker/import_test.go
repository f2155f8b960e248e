package broker_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/session"
	"github.com/shoalmq/shoal/store"
)

// report is an ImportReport for the tests.
type report struct{ n int }

func (r report) MarshalZerologObject(e *zerolog.Event) { e.Int("sessions", r.n) }
func (r report) String() string                        { return "a session and its message" }

// fillOne is an import of one session ("imp", subscribed to t/#) with a
// queued message, and a retained message; calls counts its runs.
func fillOne(calls *int) func(w store.Writer) (broker.ImportReport, error) {
	return func(w store.Writer) (broker.ImportReport, error) {
		*calls++
		w.PutSession(&store.Session{ClientID: "imp", Expiry: session.NeverExpire,
			Subs: []store.Sub{{Filter: "t/#", Opts: router.Options{QoS: 1}}}})
		w.PutDelivery("imp", store.Delivery{Seq: 1, QoS: 1,
			Msg: store.Message{Topic: []byte("t/1"), Payload: []byte("queued"), QoS: 1}})
		w.PutRetained(store.Message{Topic: []byte("r/1"), Payload: []byte("kept"), QoS: 0, Retain: true})
		return report{n: 1}, nil
	}
}

// TestImportOnce: the import fills a new store before it is loaded — its
// session gets its queued message, its retained message is served — and
// is logged; a second start does not import again.
func TestImportOnce(t *testing.T) {
	for name, use := range storeKinds(t) {
		t.Run(name, func(t *testing.T) {
			calls := 0
			log := &testutil.SyncBuffer{}
			withImport := func(c *broker.Config) {
				use(c)
				c.Logger = zerolog.New(log)
				c.Import = &broker.Import{Name: "test.db", Source: "/x/test.db", Fill: fillOne(&calls)}
			}
			a, addr := testutil.StartBroker(t, withImport)
			log.WaitLine(t, testutil.Wait, "imported into the store", map[string]any{"import": "test.db", "from": "/x/test.db", "sessions": 1})
			if n := a.SessionCount(); n != 1 {
				t.Fatalf("%d sessions, want the imported one", n)
			}
			c, ack := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("imp")})
			if !ack.SessionPresent {
				t.Error("Session Present 0 for the imported session")
			}
			p, _ := c.ExpectPublish(testutil.Wait)
			if string(p.Topic) != "t/1" || string(p.Payload) != "queued" || p.QoS != 1 {
				t.Errorf("got %s %q QoS %d, want the queued message", p.Topic, p.Payload, p.QoS)
			}
			c.SendAck(codec.PUBACK, p.PacketID)
			r, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("fresh"), CleanStart: true})
			r.Subscribe(1, "r/#", 0)
			if p, _ := r.ExpectPublish(testutil.Wait); string(p.Payload) != "kept" || !p.Retain {
				t.Errorf("retained: %s %q retain %v", p.Topic, p.Payload, p.Retain)
			}
			c.Drop()
			r.Drop()
			stop(t, a)

			testutil.StartBroker(t, withImport)
			log.WaitLine(t, testutil.Wait, "imported into this store before: not again", map[string]any{"import": "test.db"})
			if calls != 1 {
				t.Errorf("Fill ran %d times, want once", calls)
			}
		})
	}
}

// TestImportNotIntoState: a store that holds state already is newer than
// the import, which is not made, then or later.
func TestImportNotIntoState(t *testing.T) {
	mem := store.NewMem()
	w := mem.NewWriter()
	w.PutRetained(store.Message{Topic: []byte("mine"), Payload: []byte("x"), Retain: true})
	if err := w.Commit(true); err != nil {
		t.Fatal(err)
	}
	calls := 0
	log := &testutil.SyncBuffer{}
	b, _ := testutil.StartBroker(t, func(c *broker.Config) {
		c.Store, c.Logger = mem, zerolog.New(log)
		c.Import = &broker.Import{Name: "test.db", Source: "x", Fill: fillOne(&calls)}
	})
	log.WaitLine(t, testutil.Wait, "not imported: the store already holds state, which is newer; it never will be (to import, start once with an empty data directory)", nil)
	if calls != 0 || b.SessionCount() != 0 {
		t.Errorf("Fill ran %d times, %d sessions", calls, b.SessionCount())
	}
	if m, _ := mem.Mark("import test.db"); !strings.Contains(string(m), "not imported") {
		t.Errorf("mark %q", m)
	}
}

// TestImportFails: an import that fails stops the start and commits
// nothing, not even what it wrote before failing; the store is closed
// (its directory can be opened again).
func TestImportFails(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	cfg := broker.DefaultConfig()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", dir
	cfg.Import = &broker.Import{Name: "test.db", Source: "x", Fill: func(w store.Writer) (broker.ImportReport, error) {
		w.PutRetained(store.Message{Topic: []byte("half"), Payload: []byte("x"), Retain: true})
		return nil, errors.New("damaged at byte 7")
	}}
	b, err := broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = b.Start()
	if err == nil || !strings.Contains(err.Error(), "importing test.db from x: damaged at byte 7; nothing was imported") {
		t.Fatalf("Start: %v", err)
	}
	p, err := store.OpenPebble(dir, store.PebbleOptions{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatalf("the store was left open: %v", err)
	}
	defer p.Close()
	empty, _ := p.Empty()
	mark, _ := p.Mark("import test.db")
	if !empty || mark != nil {
		t.Errorf("after a failed import: empty %v, mark %q", empty, mark)
	}
}

// TestImportNothing: a source that is not there writes no mark: the next
// start looks again.
func TestImportNothing(t *testing.T) {
	mem := store.NewMem()
	calls := 0
	for range 2 {
		b, _ := testutil.StartBroker(t, func(c *broker.Config) {
			c.Store = mem
			c.Import = &broker.Import{Name: "test.db", Source: "x", Fill: func(store.Writer) (broker.ImportReport, error) {
				calls++
				return nil, nil
			}}
		})
		stop(t, b)
	}
	if m, _ := mem.Mark("import test.db"); calls != 2 || m != nil {
		t.Errorf("Fill ran %d times, mark %q; want 2, none", calls, m)
	}
}

func TestImportNeedsStore(t *testing.T) {
	cfg := broker.DefaultConfig()
	cfg.DataDir = ""
	cfg.Import = &broker.Import{Name: "test.db", Fill: fillOne(new(int))}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "no store") {
		t.Errorf("Validate: %v", err)
	}
}
