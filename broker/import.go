package broker

import (
	"github.com/rs/zerolog"

	"github.com/shoalmq/shoal/internal/persist"
	"github.com/shoalmq/shoal/store"
)

// Import brings state that another program kept — Mosquitto's
// persistence file — into the store, once in the store's life
// (Config.Import). Start runs it after the store is opened, and locked
// against any other process, and before the store is loaded:
//
//   - a store with the import's mark has been through it (or decided
//     against it) before: nothing happens but a line in the log;
//   - a store that already holds state (Shoal ran on it without the
//     import) is newer than what would be imported: the import is not
//     made, and the mark says so, so that it is never made later;
//   - otherwise Fill writes the records, and they are committed with the
//     mark in one atomic, synced batch: a crash during the import leaves
//     the store as it was, and the next start imports again.
type Import struct {
	// Name names what is imported, e.g. "mosquitto.db"; the mark is
	// "import " + Name.
	Name string
	// Source says where it comes from, for the log: a path.
	Source string
	// Fill writes what is imported to w without committing it, and says
	// what it wrote. Start calls it, at most once, before any goroutine of
	// the broker runs. It runs only on a store that holds no state, so its
	// records clash with none (delivery Seqs may start at 1). A nil
	// report means there is nothing to import (the source does not
	// exist): nothing is written, no mark either, and the next start
	// looks again. An error stops the start, and nothing of the import is
	// committed.
	Fill func(w store.Writer) (ImportReport, error)
}

// ImportReport is what an import wrote: logged as fields of its log line,
// and kept, as a line, in the store's mark.
type ImportReport interface {
	zerolog.LogObjectMarshaler
	String() string
}

// importOnce runs Config.Import on the open store (package persist does
// it, as Import says).
func (b *Broker) importOnce() error {
	im := b.cfg.Import
	if im == nil {
		return nil
	}
	return b.persist.ImportOnce(persist.Import{Name: im.Name, Source: im.Source,
		Fill: func(w store.Writer) (persist.Report, error) {
			r, err := im.Fill(w)
			if r == nil { // a nil ImportReport is a nil Report: nothing to import
				return nil, err
			}
			return r, err
		}})
}
