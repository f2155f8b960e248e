package eventloop_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoalmq/shoal/eventloop"
)

// TestEachClosingInside: a callback of OnEach (and Loop.Each) may close
// connections inside the call. A write to a connection the client has
// reset fails, and gnet then closes the connection at once, inside the
// write: OnClose takes it out of the loop's list while the walk is on it.
// Walking the list itself reached a nil entry and crashed (the broker's
// Close on shutdown, reached from OnEach: a nil pointer dereference seen in
// make test), and skipped the connection moved into the visited slot. Each
// connection must be visited exactly once, and all must close.
func TestEachClosingInside(t *testing.T) {
	const n = 40
	r := newRecorder()
	e := start(t, r)
	clients := map[string]interface{ Close() error }{}
	loops := map[int]bool{}
	for range n {
		nc, a := dial(t, e, r)
		_ = nc.SetLinger(0) // its Close sends a reset
		clients[a] = nc
		r.mu.Lock()
		loops[r.conns[a].Loop().Index()] = true
		r.mu.Unlock()
	}

	// The first visit on each loop holds the loop until every client has
	// reset its connection, so that the loop has not yet seen the resets
	// when the callback writes: each write then fails, and closes, inside
	// the callback.
	var (
		mu      sync.Mutex
		visits  = map[string]int{}
		entered = map[int]bool{}
	)
	held := make(chan int, len(loops))
	gate := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*wait)
		defer cancel()
		done <- e.OnEach(ctx, func(c *eventloop.Conn) {
			a := addr(c) // a nil entry crashes here
			li := c.Loop().Index()
			mu.Lock()
			visits[a]++
			first := !entered[li]
			entered[li] = true
			mu.Unlock()
			if first {
				held <- li
				select { // blocking a loop is for this test only
				case <-gate:
				case <-time.After(wait):
				}
			}
			c.Write([]byte("bye"))
			c.Close()
		})
	}()
	for range loops {
		select {
		case <-held:
		case <-time.After(wait):
			t.Fatal("OnEach did not start on every loop with connections")
		}
	}
	var ports []int
	for a, nc := range clients {
		_ = nc.Close()
		p, _ := strconv.Atoi(a[strings.LastIndexByte(a, ':')+1:])
		ports = append(ports, p)
	}
	waitResetSeen(t, ports)
	close(gate)
	if err := <-done; err != nil {
		t.Fatalf("OnEach: %v", err)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(visits) != n {
		t.Errorf("OnEach visited %d connections, want %d", len(visits), n)
	}
	for a, v := range visits {
		if v != 1 {
			t.Errorf("%s visited %d times, want once", a, v)
		}
	}
	r.waitFor(t, "OnClose of every connection", func() bool {
		for a := range clients {
			if r.closes[a] != 1 {
				return false
			}
		}
		return true
	})
}

// waitResetSeen waits until the kernel has no established connection left
// whose remote port is one of ports (the server's ends of connections the
// clients reset), reading /proc/net/tcp: an event to wait for, not a time.
func waitResetSeen(t *testing.T, ports []int) {
	t.Helper()
	want := map[int]bool{}
	for _, p := range ports {
		want[p] = true
	}
	deadline := time.Now().Add(wait)
	for {
		left := 0
		for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
			left += establishedTo(t, f, want)
		}
		if left == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still established %v after the clients reset them", left, wait)
		}
		time.Sleep(time.Millisecond)
	}
}

// establishedTo counts the established sockets in a /proc/net/tcp file
// whose remote port is in ports.
func establishedTo(t *testing.T, file string, ports map[int]bool) int {
	f, err := os.Open(file)
	if err != nil {
		return 0 // no IPv6, say
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// sl local_address rem_address st ...; addresses are HEXIP:HEXPORT.
		fs := strings.Fields(sc.Text())
		if len(fs) < 4 || fs[3] != "01" { // 01: TCP_ESTABLISHED
			continue
		}
		i := strings.LastIndexByte(fs[2], ':')
		if i < 0 {
			continue
		}
		var port int
		if _, err := fmt.Sscanf(fs[2][i+1:], "%X", &port); err == nil && ports[port] {
			n++
		}
	}
	return n
}
