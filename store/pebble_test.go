package store

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2"
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
		q, err := OpenPebble(dir, PebbleOptions{Logger: testLogger(t)})
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
		again, err := OpenPebble(dir, PebbleOptions{Logger: testLogger(t)})
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
	p, err := OpenPebble(b.TempDir(), PebbleOptions{Logger: zerolog.Nop()})
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

// snapshot is every file under dir with its contents, to show that an
// open changed nothing.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		out[strings.TrimPrefix(path, dir)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// damagedStore makes a store in a new directory with one session and one
// retained message, closes it and truncates its manifest to nothing:
// Pebble cannot open it ("malformed manifest").
func damagedStore(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	p, err := OpenPebble(dir, PebbleOptions{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	w := p.NewWriter()
	w.PutSession(&Session{ClientID: "kept", Expiry: 60})
	w.PutRetained(Message{Topic: []byte("r"), Payload: []byte("v"), QoS: 1})
	commit(t, w, true)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	manifests, _ := filepath.Glob(filepath.Join(dir, "MANIFEST-*"))
	if len(manifests) == 0 {
		t.Fatal("no manifest")
	}
	for _, m := range manifests {
		if err := os.Truncate(m, 0); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestPebbleInUse: a store that is open is not opened again — Pebble's
// lock error is not damage — and the second open changes nothing.
func TestPebbleInUse(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	p := openTestPebble(t, dir)
	w := p.NewWriter()
	w.PutRetained(Message{Topic: []byte("r"), Payload: []byte("v"), QoS: 1})
	commit(t, w, true)
	before := snapshot(t, dir)
	for _, on := range []OnDamage{Salvage, Refuse} {
		q, err := OpenPebble(dir, PebbleOptions{Logger: testLogger(t), OnDamage: on})
		var inUse *InUseError
		if !errors.As(err, &inUse) {
			if q != nil {
				_ = q.Close()
			}
			t.Fatalf("on_damage %v: second OpenPebble: %v, want an *InUseError", on, err)
		}
		if inUse.PID != os.Getpid() || !strings.Contains(err.Error(), dir) {
			t.Errorf("on_damage %v: %v: want the directory and this process named", on, err)
		}
	}
	if after := snapshot(t, dir); !maps.Equal(before, after) {
		t.Error("the store's files changed under a refused open")
	}
	if aside, _ := filepath.Glob(dir + ".*"); len(aside) != 0 {
		t.Errorf("something was made beside the store: %v", aside)
	}
}

// TestPebbleRefuseDamage: with OnDamage Refuse a store Pebble cannot open
// is reported as damaged and left exactly as it was.
func TestPebbleRefuseDamage(t *testing.T) {
	dir := damagedStore(t)
	before := snapshot(t, dir)
	p, err := OpenPebble(dir, PebbleOptions{Logger: testLogger(t), OnDamage: Refuse})
	var dmg *DamagedError
	if !errors.As(err, &dmg) {
		if p != nil {
			_ = p.Close()
		}
		t.Fatalf("OpenPebble: %v, want a *DamagedError", err)
	}
	if after := snapshot(t, dir); !maps.Equal(before, after) {
		t.Error("a refused damaged store was changed")
	}
	if aside, _ := filepath.Glob(dir + ".*"); len(aside) != 0 {
		t.Errorf("something was made beside the store: %v", aside)
	}
}

// TestPebbleSalvageKeepsOriginal: with OnDamage Salvage a store Pebble
// cannot open is kept whole, renamed beside a fresh one; Load reports it;
// the broker's store works.
func TestPebbleSalvageKeepsOriginal(t *testing.T) {
	dir := damagedStore(t)
	before := snapshot(t, dir)
	p := openTestPebble(t, dir)
	aside, _ := filepath.Glob(dir + ".damaged-*")
	if len(aside) != 1 {
		t.Fatalf("beside the store: %v, want one dir.damaged-<time>", aside)
	}
	if kept := snapshot(t, aside[0]); !maps.Equal(before, kept) {
		t.Errorf("the damaged store was not kept as it was: %d files before, %d kept", len(before), len(kept))
	}
	if work, _ := filepath.Glob(dir + ".damaged-*.work"); len(work) != 0 {
		t.Errorf("the salvage's working copy was left: %v", work)
	}
	r := &recorder{}
	if err := p.Load(r); err != nil {
		t.Fatal(err)
	}
	if len(r.corrupt) == 0 || !strings.Contains(strings.Join(r.corrupt, " "), aside[0]) {
		t.Errorf("Load reported %q, want the kept directory named", r.corrupt)
	}
	w := p.NewWriter()
	w.PutSession(&Session{ClientID: "after", Expiry: 1})
	commit(t, w, true)
}

// TestPebbleSalvageLoadDamage: records that do not decode make Load
// salvage — the decodable ones into a fresh store, the original kept — or,
// with Refuse, fail and delete nothing.
func TestPebbleSalvageLoadDamage(t *testing.T) {
	for _, on := range []OnDamage{Salvage, Refuse} {
		t.Run(on.String(), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			p, err := OpenPebble(dir, PebbleOptions{Logger: testLogger(t), OnDamage: on})
			if err != nil {
				t.Fatal(err)
			}
			w := p.NewWriter()
			w.PutSession(&Session{ClientID: "good", Expiry: 60})
			commit(t, w, true)
			if err := p.db.Set(clientKey(nil, kindSession, "bad"), []byte{0xff, 1, 2}, pebble.Sync); err != nil {
				t.Fatal(err)
			}
			r := &recorder{}
			err = p.Load(r)
			_ = p.Close()
			var dmg *DamagedError
			if on == Refuse {
				if !errors.As(err, &dmg) {
					t.Fatalf("Load: %v, want a *DamagedError", err)
				}
				q := openTestPebble(t, dir) // Salvage: the bad record is still there
				r2 := &recorder{}
				if err := q.Load(r2); err != nil || len(r2.corrupt) != 1 {
					t.Errorf("after a refusal: Load %v, reports %q: want the bad record still there", err, r2.corrupt)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if aside, _ := filepath.Glob(dir + ".damaged-*"); len(aside) != 1 {
				t.Errorf("beside the store: %v, want the original kept", aside)
			}
			q := openTestPebble(t, dir)
			r2 := &recorder{}
			if err := q.Load(r2); err != nil || len(r2.corrupt) != 0 || len(r2.sessions) != 1 {
				t.Errorf("after salvage: Load %v, reports %q, %d sessions: want the good session alone", err, r2.corrupt, len(r2.sessions))
			}
		})
	}
}

// TestPebbleForeignDirectory: a data directory holding anything but a
// store's files is refused, and nothing is written into it.
func TestPebbleForeignDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	p, err := OpenPebble(dir, PebbleOptions{Logger: testLogger(t)})
	var fe *ForeignError
	if !errors.As(err, &fe) || fe.File != "notes.txt" {
		if p != nil {
			_ = p.Close()
		}
		t.Fatalf("OpenPebble: %v, want a *ForeignError naming notes.txt", err)
	}
	if after := snapshot(t, dir); !maps.Equal(before, after) {
		t.Error("files were written into a directory that is not a store")
	}
}

// TestIsDamage: errors of the operating system are not damage.
func TestIsDamage(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&fs.PathError{Op: "open", Path: "x", Err: syscall.EACCES}, false},
		{fmt.Errorf("pebble: %w", syscall.ENOSPC), false},
		{errors.New(`pebble: database "x" written in format major version 99`), false},
		{errors.New(`pebble: malformed manifest file "MANIFEST-000001"`), true},
		{errors.New("L0: 000005: object size mismatch"), true},
		// What openDB makes of Pebble's Fatalf, as when the manifest cannot
		// be written for a full disk, and of a fatal error about the data.
		{recovered(newFatal("MANIFEST write failed: %v", []any{fmt.Errorf("write MANIFEST-000009: %w", syscall.ENOSPC)})), false},
		{recovered(newFatal("pebble: corrupt log file %q", []any{"000004.log"})), true},
		{recovered("a panic of another kind"), true},
	} {
		if got := isDamage(tc.err); got != tc.want {
			t.Errorf("isDamage(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestPebbleCutSalvageRefused: a missing or empty data directory with a
// damaged store kept beside it — what a salvage cut short by a crash
// leaves — is refused, and nothing is created, rather than started empty
// with the data out of sight.
func TestPebbleCutSalvageRefused(t *testing.T) {
	for _, empty := range []bool{false, true} {
		dir := damagedStore(t)
		if err := os.Rename(dir, dir+".damaged-20261206T000000.000Z"); err != nil {
			t.Fatal(err)
		}
		if empty {
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		p, err := OpenPebble(dir, PebbleOptions{Logger: testLogger(t)})
		if err == nil {
			_ = p.Close()
			t.Fatalf("empty %v: OpenPebble started a fresh store beside a kept damaged one", empty)
		}
		if !strings.Contains(err.Error(), "cut short") {
			t.Errorf("empty %v: %v, want it to say a salvage may have been cut short", empty, err)
		}
		if _, serr := os.Stat(dir); empty == errors.Is(serr, fs.ErrNotExist) {
			t.Errorf("empty %v: the data directory was created or removed: %v", empty, serr)
		}
	}
}

// TestPebbleClusterDir: a store's directory may hold a cluster node's
// JetStream state in ClusterDir: the store opens beside it, and a salvage
// leaves it in place rather than set aside with the damaged store.
func TestPebbleClusterDir(t *testing.T) {
	put := func(dir string) string {
		t.Helper()
		f := filepath.Join(dir, ClusterDir, "jetstream")
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte("state"), 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	healthy := filepath.Join(t.TempDir(), "data")
	for range 2 { // made, then opened again beside the cluster's state
		p, err := OpenPebble(healthy, PebbleOptions{Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		put(healthy)
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
	}

	dir := damagedStore(t)
	state := put(dir)
	_ = openTestPebble(t, dir) // salvages
	if b, err := os.ReadFile(state); err != nil || string(b) != "state" {
		t.Errorf("after salvage, %s: %q, %v; want the cluster's state in place", state, b, err)
	}
	aside, _ := filepath.Glob(dir + ".damaged-*")
	if len(aside) != 1 {
		t.Fatalf("beside the store: %v, want one dir.damaged-<time>", aside)
	}
	if _, err := os.Stat(filepath.Join(aside[0], ClusterDir)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the cluster's state went aside with the damaged store (%v)", err)
	}
}
