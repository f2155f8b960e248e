package mosqdb

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/shoalmq/shoal/store"
)

// FuzzParse reads arbitrary bytes as a persistence file. Parse must never
// panic and must fail only with a *FormatError; every slice it hands out
// must lie inside the input; a file it reads must import into a store
// without a panic, failing only with a *FormatError too, and what it
// imported must read back from the store without a corrupt record.
// Every cut of the input must also parse or fail the same way (Parse is
// not resumable: a cut is a shorter file).
func FuzzParse(f *testing.F) {
	f.Add(golden6)
	f.Add(golden5)
	if seeds, _ := filepath.Glob("testdata/*.db"); len(seeds) > 0 {
		for _, s := range seeds {
			if b, err := os.ReadFile(s); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		check(t, b)
		for _, n := range []int{len(b) / 2, len(b) - 1} {
			if n >= 0 && n < len(b) {
				check(t, b[:n])
			}
		}
	})
}

func check(t *testing.T, b []byte) {
	pf, err := Parse(b)
	if err != nil {
		var fe *FormatError
		if !errors.As(err, &fe) {
			t.Fatalf("Parse: %v (%T), want a *FormatError", err, err)
		}
		return
	}
	for _, m := range pf.Messages {
		for _, s := range [][]byte{m.SourceID, m.SourceUsername, m.Topic, m.Payload, m.Props} {
			if len(s) > 0 && !inside(s, b) {
				t.Fatalf("message at %d: a slice outside the input", m.Offset)
			}
		}
	}
	st := store.NewMem()
	w := st.NewWriter()
	if _, err := pf.Import(w, Options{Now: importNow}); err != nil {
		var fe *FormatError
		if !errors.As(err, &fe) {
			t.Fatalf("Import: %v (%T), want a *FormatError", err, err)
		}
		return
	}
	if err := w.Commit(true); err != nil {
		t.Fatal(err)
	}
	l := &loaded{}
	if err := st.Load(l); err != nil || len(l.corrupt) > 0 {
		t.Fatalf("Load: %v, corrupt %v", err, l.corrupt)
	}
}

// inside reports whether s lies within b.
func inside(s, b []byte) bool {
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	return len(b) > 0 && p >= lo && p+uintptr(len(s)) <= lo+uintptr(len(b))
}
