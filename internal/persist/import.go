package persist

import (
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/shoalmq/shoal/store"
)

// Import is state another program kept, brought into the store once in
// the store's life (broker.Import says what the broker's user sees).
type Import struct {
	// Name names what is imported; the store's mark is "import " + Name.
	Name string
	// Source says where it comes from, for the log and the mark.
	Source string
	// Fill writes the records to w without committing them; a nil Report
	// means there is nothing to import. See broker.Import.Fill.
	Fill func(w store.Writer) (Report, error)
}

// Report is what an import wrote: fields of its log line, and a line kept
// in the store's mark.
type Report interface {
	zerolog.LogObjectMarshaler
	String() string
}

// ImportOnce runs im on the open store, before Load and before any writer
// is made (the import's writer is its own, committed here):
//
//   - a store with the import's mark has been through it (or decided
//     against it) before: nothing happens but a line in the log;
//   - a store that already holds state is newer than what would be
//     imported: the import is not made, and the mark says so, so that it
//     is never made later;
//   - otherwise Fill writes the records, and they are committed with the
//     mark in one atomic, synced batch: a crash during the import leaves
//     the store as it was, and the next start imports again.
//
// With persistence off it does nothing. Call it from the goroutine that
// starts the broker, once.
func (k *Keeper) ImportOnce(im Import) error {
	if k.st == nil {
		return nil
	}
	lg := k.log.Load().With().Str("import", im.Name).Str("from", im.Source).Logger()
	mark := "import " + im.Name
	done, err := k.st.Mark(mark)
	if err != nil {
		return fmt.Errorf("broker: import of %s: %w", im.Name, err)
	}
	if done != nil {
		lg.Info().Str("mark", string(done)).Msg("imported into this store before: not again")
		return nil
	}
	empty, err := k.st.Empty()
	if err != nil {
		return fmt.Errorf("broker: import of %s: %w", im.Name, err)
	}
	now := time.Now().UTC().Format(time.RFC3339)
	if !empty {
		w := k.st.NewWriter()
		w.PutMark(mark, []byte(fmt.Sprintf("not imported from %s at %s: the store held state already", im.Source, now)))
		if err := w.Commit(true); err != nil {
			return fmt.Errorf("broker: import of %s: %w", im.Name, err)
		}
		lg.Warn().Msg("not imported: the store already holds state, which is newer; it never will be (to import, start once with an empty data directory)")
		return nil
	}
	w := k.st.NewWriter()
	report, err := im.Fill(w)
	if err != nil {
		return fmt.Errorf("broker: importing %s from %s: %w; nothing was imported", im.Name, im.Source, err)
	}
	if report == nil {
		lg.Info().Msg("nothing to import: no such file")
		return nil
	}
	w.PutMark(mark, []byte(fmt.Sprintf("imported from %s at %s: %s", im.Source, now, report)))
	if err := w.Commit(true); err != nil {
		return fmt.Errorf("broker: importing %s from %s: %w", im.Name, im.Source, err)
	}
	lg.Info().EmbedObject(report).Msg("imported into the store")
	return nil
}
