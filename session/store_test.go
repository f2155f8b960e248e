package session_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoalmq/shoal/session"
)

// The Store tests run against the interface, so that another
// implementation can reuse them.
var _ session.Store = (*session.MemStore)(nil)

func TestStoreGetOrCreate(t *testing.T) {
	var st session.Store = session.NewMemStore()
	if st.Get("a") != nil || st.Len() != 0 {
		t.Fatal("new store is not empty")
	}
	a, created := st.GetOrCreate("a")
	if !created || a == nil || a.ClientID() != "a" || a.LoopHint() != -1 {
		t.Fatalf("GetOrCreate(a) = %v, %v; want a new offline session for a", a, created)
	}
	again, created := st.GetOrCreate("a")
	if created || again != a {
		t.Fatalf("second GetOrCreate(a) = %p, %v; want %p, false", again, created, a)
	}
	if got := st.Get("a"); got != a {
		t.Fatalf("Get(a) = %p, want %p", got, a)
	}
	b, created := st.GetOrCreate("b")
	if !created || b == a || b.ClientID() != "b" {
		t.Fatalf("GetOrCreate(b) = %p (%q), %v", b, b.ClientID(), created)
	}
	// The empty client id is a key like any other (the broker assigns ids
	// before it gets here, but the store must not care).
	e, created := st.GetOrCreate("")
	if !created || st.Get("") != e {
		t.Fatal("empty id not stored")
	}
	if st.Len() != 3 {
		t.Fatalf("Len = %d, want 3", st.Len())
	}
}

// Delete is compare-and-delete: a late cleanup of an old session must not
// remove the newer one that replaced it.
func TestStoreDelete(t *testing.T) {
	st := session.NewMemStore()
	old, _ := st.GetOrCreate("c")
	stranger := session.New("c") // same id, never stored

	tests := []struct {
		name    string
		id      string
		s       *session.Session
		want    bool
		wantGet *session.Session // Get("c") afterwards
	}{
		{name: "different session, same id", id: "c", s: stranger, want: false, wantGet: old},
		{name: "right session, wrong id", id: "d", s: old, want: false, wantGet: old},
		{name: "the stored session", id: "c", s: old, want: true, wantGet: nil},
		{name: "again", id: "c", s: old, want: false, wantGet: nil},
	}
	for _, tt := range tests {
		if got := st.Delete(tt.id, tt.s); got != tt.want {
			t.Errorf("%s: Delete = %v, want %v", tt.name, got, tt.want)
		}
		if got := st.Get("c"); got != tt.wantGet {
			t.Errorf("%s: Get(c) = %p, want %p", tt.name, got, tt.wantGet)
		}
	}

	// A new session under the same id is a different one, and the old
	// one's late Delete leaves it alone.
	fresh, created := st.GetOrCreate("c")
	if !created || fresh == old {
		t.Fatalf("GetOrCreate after Delete = %p, %v; want a new session", fresh, created)
	}
	if st.Delete("c", old) || st.Get("c") != fresh {
		t.Fatal("a stale Delete removed the newer session")
	}
	if st.Len() != 1 {
		t.Fatalf("Len = %d, want 1", st.Len())
	}
}

func TestStoreLen(t *testing.T) {
	st := session.NewMemStore()
	var all []*session.Session
	for i := range 500 { // enough to land in every shard
		s, _ := st.GetOrCreate(fmt.Sprintf("client-%d", i))
		all = append(all, s)
	}
	if st.Len() != 500 {
		t.Fatalf("Len = %d, want 500", st.Len())
	}
	for i, s := range all[:100] {
		st.Delete(fmt.Sprintf("client-%d", i), s)
	}
	if st.Len() != 400 {
		t.Fatalf("Len = %d after 100 deletes, want 400", st.Len())
	}
}

// rangeIDs collects the ids Range visits, sorted.
func rangeIDs(st session.Store) []string {
	var ids []string
	st.Range(func(s *session.Session) bool {
		ids = append(ids, s.ClientID())
		return true
	})
	slices.Sort(ids)
	return ids
}

func TestStoreRange(t *testing.T) {
	st := session.NewMemStore()
	if ids := rangeIDs(st); len(ids) != 0 {
		t.Fatalf("empty store: Range visited %v", ids)
	}
	var want []string
	for i := range 200 {
		id := fmt.Sprintf("c%03d", i)
		st.GetOrCreate(id)
		want = append(want, id)
	}
	if got := rangeIDs(st); !slices.Equal(got, want) {
		t.Fatalf("Range visited %d ids, want the 200 stored", len(got))
	}

	for _, stopAfter := range []int{1, 5, 199, 200} {
		calls := 0
		st.Range(func(*session.Session) bool {
			calls++
			return calls < stopAfter
		})
		if calls != stopAfter {
			t.Errorf("Range told to stop at %d: %d calls", stopAfter, calls)
		}
	}

	// Stopping early must leave no shard locked: every id is reachable
	// again, within a bound instead of a hang.
	st.Range(func(*session.Session) bool { return false })
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, id := range want {
			st.GetOrCreate(id)
			st.Get(id)
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("store operations blocked after Range stopped early: a shard lock was left held")
	}
}

// TestStoreConcurrent runs under -race: many goroutines create, get and
// delete the same and different ids.
func TestStoreConcurrent(t *testing.T) {
	const goroutines = 32
	st := session.NewMemStore()

	// All goroutines ask for one id at once: they must all get the same
	// session, and exactly one of them must have created it.
	got := make([]*session.Session, goroutines)
	createdBy := make([]bool, goroutines)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			got[g], createdBy[g] = st.GetOrCreate("shared")
		}()
	}
	close(start)
	wg.Wait()
	creators := 0
	for g := range goroutines {
		if got[g] != got[0] {
			t.Fatalf("goroutine %d got session %p, goroutine 0 got %p", g, got[g], got[0])
		}
		if createdBy[g] {
			creators++
		}
	}
	if creators != 1 {
		t.Fatalf("%d goroutines report creating the shared session, want 1", creators)
	}

	// Churn: each goroutine repeatedly creates and deletes its own ids,
	// whose results it can predict, and races the others on a few shared
	// ids, whose results it cannot.
	const rounds = 300
	errs := make(chan error, goroutines)
	start = make(chan struct{})
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			own := fmt.Sprintf("own-%d", g)
			for i := range rounds {
				s, created := st.GetOrCreate(own)
				if !created || s.ClientID() != own {
					errs <- fmt.Errorf("goroutine %d round %d: GetOrCreate(%s) = %q, created %v", g, i, own, s.ClientID(), created)
					return
				}
				if st.Get(own) != s {
					errs <- fmt.Errorf("goroutine %d round %d: Get(%s) is not the session just created", g, i, own)
					return
				}
				if !st.Delete(own, s) {
					errs <- fmt.Errorf("goroutine %d round %d: Delete(%s) of its own session refused", g, i, own)
					return
				}
				shared := fmt.Sprintf("shared-%d", i%4)
				sh, _ := st.GetOrCreate(shared)
				if sh.ClientID() != shared {
					errs <- fmt.Errorf("GetOrCreate(%s) returned the session of %q", shared, sh.ClientID())
					return
				}
				if i%3 == 0 {
					st.Delete(shared, sh) // may lose to another goroutine's delete
				}
				st.Get(shared)
				_ = st.Len()
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// What is left is consistent: every session Range sees is the one Get
	// returns for its id, and Len agrees with Range.
	var seen []*session.Session
	st.Range(func(s *session.Session) bool {
		seen = append(seen, s)
		return true
	})
	if st.Len() != len(seen) {
		t.Errorf("Len %d, Range saw %d", st.Len(), len(seen))
	}
	for _, s := range seen {
		if st.Get(s.ClientID()) != s {
			t.Errorf("Range saw a session for %q that Get does not return", s.ClientID())
		}
		if strings.HasPrefix(s.ClientID(), "own-") {
			t.Errorf("%q survived its owner's Delete", s.ClientID())
		}
	}
}
