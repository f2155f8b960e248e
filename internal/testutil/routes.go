package testutil

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// RouteNet stands between the nodes of a test's cluster: each node's
// route listener gets a proxy (Proxy), which the other nodes reach it at
// (its routes name the proxies, and its cluster.advertise its own), so
// that a test can cut nodes off from the rest (Cut) and join them again
// (Heal) — a partition inside the test, without a firewall rule.
//
// A proxy tells which node dials it by the NATS route protocol: the
// dialing server's INFO names it ("server_name"). It holds the dialer's
// bytes until it has seen that, then joins the two sides — or closes both,
// when Cut separates them.
type RouteNet struct {
	t     testing.TB
	mu    sync.Mutex
	cut   map[string]bool
	links map[*routeLink]struct{}
}

// routeLink is one route connection through a proxy.
type routeLink struct {
	from, to   string // the dialing node, the node behind the proxy
	dial, back net.Conn
}

// NewRouteNet returns a RouteNet with no node cut off; its proxies close
// when the test ends.
func NewRouteNet(t testing.TB) *RouteNet {
	return &RouteNet{t: t, cut: map[string]bool{}, links: map[*routeLink]struct{}{}}
}

// routeSniff bounds how much of a dialer's first bytes a proxy reads, and
// for how long, to find its name; a dialer that did not name itself is
// closed.
const (
	routeSniffBytes = 64 << 10
	routeSniffWait  = 10 * time.Second
)

// Proxy starts the proxy of node, whose route listener is at target, on
// a loopback port, and returns its address.
func (rn *RouteNet) Proxy(node, target string) string {
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		rn.t.Fatal(err)
	}
	Serve(rn.t, ln, func() { rn.closeLinks(func(*routeLink) bool { return true }) },
		func(c net.Conn) { rn.serve(node, target, c) })
	return ln.Addr().String()
}

// Serve accepts connections on ln until the test ends, and runs fn for
// each on a goroutine of its own. When the test ends it closes ln, calls
// stop (which must make every fn return: close what they copy between)
// and waits for them.
func Serve(t testing.TB, ln net.Listener, stop func(), fn func(net.Conn)) {
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		stop()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				fn(c)
			}()
		}
	}()
}

// serve joins a dialer to node's listener at target once it has named
// itself, unless the two are cut apart.
func (rn *RouteNet) serve(node, target string, dial net.Conn) {
	back, err := net.DialTimeout("tcp", target, routeSniffWait)
	if err != nil {
		dial.Close()
		return
	}
	l := &routeLink{to: node, dial: dial, back: back}
	done := make(chan struct{})
	go func() { _, _ = io.Copy(dial, back); dial.Close(); close(done) }() // node's INFO, first
	defer func() { <-done }()
	held, from := sniffServerName(dial)
	l.from = from
	if from == "" || !rn.add(l) {
		dial.Close()
		back.Close()
		return
	}
	if _, err := back.Write(held); err == nil {
		_, _ = io.Copy(back, dial)
	}
	back.Close()
	rn.mu.Lock()
	delete(rn.links, l)
	rn.mu.Unlock()
}

// sniffServerName reads from c until its bytes name the NATS server that
// sent them ("server_name" in its INFO), and returns what it read and the
// name: "" when c did not name itself within routeSniffBytes and
// routeSniffWait.
func sniffServerName(c net.Conn) (held []byte, name string) {
	key := []byte(`"server_name":"`)
	_ = c.SetReadDeadline(time.Now().Add(routeSniffWait))
	defer func() { _ = c.SetReadDeadline(time.Time{}) }()
	buf := make([]byte, 0, 4096)
	for len(buf) < routeSniffBytes {
		if i := bytes.Index(buf, key); i >= 0 {
			rest := buf[i+len(key):]
			if j := bytes.IndexByte(rest, '"'); j >= 0 {
				return buf, string(rest[:j])
			}
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			return buf, ""
		}
	}
	return buf, ""
}

// add records l, unless its two nodes are cut apart.
func (rn *RouteNet) add(l *routeLink) bool {
	rn.mu.Lock()
	defer rn.mu.Unlock()
	if rn.cut[l.from] != rn.cut[l.to] {
		return false
	}
	rn.links[l] = struct{}{}
	return true
}

// Cut cuts nodes off from the others: the routes between the two sides
// close, and new ones are closed as they come. Those within a side stay.
func (rn *RouteNet) Cut(nodes ...string) {
	rn.mu.Lock()
	for _, n := range nodes {
		rn.cut[n] = true
	}
	rn.mu.Unlock()
	rn.closeLinks(func(l *routeLink) bool { return rn.cut[l.from] != rn.cut[l.to] })
}

// Heal joins the sides again: new routes go through.
func (rn *RouteNet) Heal() {
	rn.mu.Lock()
	rn.cut = map[string]bool{}
	rn.mu.Unlock()
}

// closeLinks closes the links that match, under rn.mu.
func (rn *RouteNet) closeLinks(match func(*routeLink) bool) {
	rn.mu.Lock()
	defer rn.mu.Unlock()
	for l := range rn.links {
		if match(l) {
			l.dial.Close()
			l.back.Close()
			delete(rn.links, l)
		}
	}
}
