package broker

import (
	"github.com/shoalmq/shoal/internal/enum"
	"github.com/shoalmq/shoal/internal/persist"
	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/store"
)

// Persistence (README "Persistence"): the broker opens the store and
// hands it to package persist, which decides what is committed when (the
// durability contract is in its doc.go).

// Durability says when the persistent store is synced to disk.
type Durability uint8

const (
	// Strict syncs before acknowledging (default): what the broker
	// acknowledged survives a power cut.
	Strict Durability = iota
	// Relaxed syncs once a second.
	Relaxed
)

// String returns the config-file spelling.
func (d Durability) String() string { return durabilities.String(d) }

// ParseDurability reads the config-file spelling of a Durability.
func ParseDurability(s string) (Durability, error) { return durabilities.Parse(s) }

// durabilities spells the Durability values, in order.
var durabilities = enum.New[Durability]("Durability", "durability", "strict", "relaxed")

// openStore opens the configured store, if any: Config.Store as given, or a
// Pebble store in Config.DataDir, which the broker then owns and closes.
func (b *Broker) openStore() error {
	var st store.Store
	switch {
	case b.cfg.Store != nil:
		st = b.cfg.Store
	case b.cfg.DataDir != "":
		p, err := store.OpenPebble(b.cfg.DataDir, store.PebbleOptions{Logger: *b.lg(), OnDamage: b.cfg.OnDamage})
		if err != nil {
			return err
		}
		st, b.ownStore = p, true
	default:
		return nil
	}
	b.persist.Use(st, b.cfg.Durability == Strict)
	return nil
}

// makeWriters gives every loop and every worker its store writer. After
// restore: Load may replace the store's database (salvage), and writers
// made before would write to the old one.
func (b *Broker) makeWriters() {
	if !b.persist.On() {
		return
	}
	for _, w := range b.disp.Workers() {
		w.SetWriter(b.persist.Writer())
	}
	for i, pl := range b.ploops {
		pl.W = b.persist.Writer()
		b.disp.Loop(i).SetWriter(pl.W)
	}
}

// closeStore commits every writer and syncs the store, closing it if the
// broker opened it.
func (b *Broker) closeStore() error { return b.persist.Close(b.ownStore) }

// restore loads the stored state before the listener opens (package
// persist).
func (b *Broker) restore() error {
	retained := b.retained
	if b.clusterRetained != nil {
		// The cluster's bucket has the retained messages: what this
		// node stored of them may be stale, and must not be written back.
		retained = router.NewRetained()
	}
	return b.persist.Load(persist.Target{Sessions: b.sessions, Subs: b.subs, Retained: retained,
		Clock: b.clock.Now(), ArmLocked: b.expiry.RestoreLocked})
}
