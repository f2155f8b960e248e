package store

import (
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// TestPebbleDamagedDirectory: whatever happens to the files of a data
// directory — truncated or overwritten at random offsets — OpenPebble
// succeeds and Load finishes, reporting what it could not read. Each round
// damages a fresh copy of the same directory.
func TestPebbleDamagedDirectory(t *testing.T) {
	src := t.TempDir()
	p := openTestPebble(t, src)
	w := p.NewWriter()
	for i := range 200 {
		id := "client-" + string(rune('a'+i%26))
		w.PutSession(&Session{ClientID: id, Expiry: 60})
		w.PutDelivery(id, Delivery{Seq: uint64(i + 1), Msg: msg("t/x", strings.Repeat("p", 100), 1), QoS: 1})
		if i%3 == 0 {
			w.MarkSent(id, uint64(i+1), uint16(i+1), 1)
		}
		if i%50 == 0 {
			commit(t, w, true)
		}
	}
	commit(t, w, true)
	// Half the state in sstables, half only in the write-ahead log.
	if err := p.db.Flush(); err != nil {
		t.Fatal(err)
	}
	w.PutRetained(Message{Topic: []byte("r"), Payload: []byte("v"), QoS: 1})
	commit(t, w, true)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	var files []string
	_ = filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasSuffix(path, "LOCK") {
			files = append(files, path)
		}
		return nil
	})

	rounds := 16 // make test; make stress sets SHOAL_DAMAGE_ROUNDS
	if s := os.Getenv("SHOAL_DAMAGE_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("SHOAL_DAMAGE_ROUNDS=%q: want a positive number", s)
		}
		rounds = n
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var reported int
	for round := range rounds {
		dir := filepath.Join(t.TempDir(), "data")
		copyDir(t, src, dir)
		victim := files[rng.IntN(len(files))]
		path := filepath.Join(dir, strings.TrimPrefix(victim, src))
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		what := "truncated"
		if len(data) > 0 && round%2 == 1 {
			what = "overwritten"
			off := rng.IntN(len(data))
			for i := off; i < min(len(data), off+16); i++ {
				data[i] ^= byte(1 + rng.IntN(255))
			}
		} else if len(data) > 0 {
			data = data[:rng.IntN(len(data))]
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		q, err := OpenPebble(dir, testLogger(t))
		if err != nil {
			t.Fatalf("round %d (%s %s): OpenPebble: %v", round, filepath.Base(victim), what, err)
		}
		r := &recorder{}
		if err := q.Load(r); err != nil {
			t.Errorf("round %d (%s %s): Load: %v", round, filepath.Base(victim), what, err)
		}
		if len(r.corrupt) > 0 {
			reported++
		}
		t.Logf("round %d: %s %s: %d sessions, %d deliveries, %d retained, %d reports", round,
			filepath.Base(victim), what, len(r.sessions), len(r.deliveries), len(r.retained), len(r.corrupt))
		// The store works afterwards.
		w := q.NewWriter()
		w.PutSession(&Session{ClientID: "after", Expiry: 1})
		if err := w.Commit(true); err != nil {
			t.Errorf("round %d: Commit after damage: %v", round, err)
		}
		if err := q.Close(); err != nil {
			t.Errorf("round %d: Close: %v", round, err)
		}
		// What was damaged was dealt with once: the store opens clean now.
		again, err := OpenPebble(dir, testLogger(t))
		if err != nil {
			t.Fatalf("round %d: reopening: %v", round, err)
		}
		r2 := &recorder{}
		if err := again.Load(r2); err != nil || len(r2.corrupt) > 0 {
			t.Errorf("round %d: second load: %v, reports %q", round, err, r2.corrupt)
		}
		if len(r2.sessions) < len(r.sessions) {
			t.Errorf("round %d: second load has %d sessions, the first had %d", round, len(r2.sessions), len(r.sessions))
		}
		_ = again.Close()
	}
	if reported == 0 {
		t.Error("no round reported damage: the test damaged nothing that matters")
	}
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		to := filepath.Join(dst, strings.TrimPrefix(path, src))
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// BenchmarkPebbleDeliveryLife is one QoS 1 delivery's whole life in the
// store — stored, marked sent, deleted on PUBACK — with a commit per 100
// deliveries (a loop iteration's worth under load) and a syncing commit
// per 1,000. allocs/op is per delivery.
func BenchmarkPebbleDeliveryLife(b *testing.B) {
	p, err := OpenPebble(b.TempDir(), zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	w := p.NewWriter()
	d := Delivery{Msg: Message{Topic: []byte("bench/topic"), Payload: make([]byte, 64), From: []byte("publisher"), QoS: 1}, QoS: 1}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		d.Seq = uint64(i + 1)
		w.PutDelivery("subscriber", d)
		w.MarkSent("subscriber", d.Seq, uint16(i%65535+1), 1)
		w.DeleteDelivery("subscriber", d.Seq)
		if i%100 == 99 {
			if err := w.Commit(i%1000 == 999); err != nil {
				b.Fatal(err)
			}
		}
	}
}
