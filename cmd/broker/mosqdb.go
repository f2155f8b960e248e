package main

import (
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/internal/mosqdb"
	"github.com/shoalmq/shoal/store"
)

// mosquittoImport is the import of Mosquitto's persistence file at path
// (import_mosquitto_db) into a new store: the broker runs it once, after
// it has opened and locked the store (broker.Import). The file is read
// whole and read-only, and parsed before anything is written; it is never
// changed or moved, whatever happens.
func mosquittoImport(path string, maxSessionExpiry time.Duration) *broker.Import {
	return &broker.Import{Name: "mosquitto.db", Source: path, Fill: func(w store.Writer) (broker.ImportReport, error) {
		f, err := mosqdb.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil // Mosquitto never saved one: nothing to import
		}
		if err == nil {
			var sum *mosqdb.Summary
			if sum, err = f.Import(w, mosqdb.Options{MaxSessionExpiry: maxSessionExpiry}); err == nil {
				return sum, nil
			}
		}
		return nil, fmt.Errorf("%w (the file is left as it is: to start without importing it, move it elsewhere)", err)
	}}
}
