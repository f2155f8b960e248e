// Command idleconns measures what an idle, subscribed MQTT connection costs
// a broker: it reads the broker's RSS from /proc, opens N connections that
// each CONNECT and SUBSCRIBE to their own topic, waits for the broker to
// settle, reads the RSS again and prints the difference per connection,
// with the CONNACK latency percentiles.
//
// It runs in its own process, so the broker's figure doesn't include the
// clients. One process may hold at most ~19,000 sockets here; run several
// with different -src addresses for more.
//
//	idleconns -addr 127.0.0.1:1883 -pid $(pidof shoal) -n 19000
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoalmq/shoal/codec"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:1883", "broker address")
	n := flag.Int("n", 1000, "connections to open")
	pid := flag.Int("pid", 0, "broker process id, for its RSS (required)")
	src := flag.String("src", "127.0.0.1", "comma-separated local source addresses, used in turn")
	par := flag.Int("c", 16, "connections opened concurrently")
	settle := flag.Duration("settle", 3*time.Second, "wait before reading the RSS after the last connection")
	version := flag.Int("V", 4, "protocol level: 3, 4 or 5")
	flag.Parse()
	if *pid == 0 {
		fmt.Fprintln(os.Stderr, "idleconns: -pid is required")
		os.Exit(2)
	}
	if err := run(*addr, *n, *pid, strings.Split(*src, ","), *par, *settle, byte(*version)); err != nil {
		fmt.Fprintln(os.Stderr, "idleconns:", err)
		os.Exit(1)
	}
}

func run(addr string, n, pid int, srcs []string, par int, settle time.Duration, version byte) error {
	before, err := rss(pid)
	if err != nil {
		return err
	}
	conns := make([]net.Conn, n)
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < par; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				c, d, err := open(addr, srcs[i%len(srcs)], i, version)
				if err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("connection %d: %w", i, err) })
					return
				}
				conns[i], lat[i] = c, d
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	if firstErr != nil {
		return firstErr
	}
	time.Sleep(settle)
	after, err := rss(pid)
	if err != nil {
		return err
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	fmt.Printf("connections %d in %v (%.0f/s)\n", n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())
	fmt.Printf("connack p50 %v p99 %v\n", lat[n/2], lat[n*99/100])
	fmt.Printf("broker rss before %d KiB after %d KiB\n", before/1024, after/1024)
	fmt.Printf("bytes per idle subscribed connection %d\n", (after-before)/int64(n))
	return nil
}

// open connects from src, sends CONNECT and SUBSCRIBE idle/<i>, and waits
// for CONNACK and SUBACK. It returns the CONNACK latency.
func open(addr, src string, i int, version byte) (net.Conn, time.Duration, error) {
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	t0 := time.Now()
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, 0, err
	}
	id := "idle-" + strconv.Itoa(i)
	conn := codec.Connect{Version: version, CleanStart: true, KeepAlive: 600, ClientID: []byte(id)}
	if _, err := c.Write(conn.Append(nil)); err != nil {
		c.Close()
		return nil, 0, err
	}
	var dec codec.Decoder
	if err := expect(c, &dec, codec.CONNACK); err != nil {
		c.Close()
		return nil, 0, err
	}
	lat := time.Since(t0)
	sub := codec.Subscribe{PacketID: 1, Filters: []codec.Subscription{{Filter: []byte("idle/" + strconv.Itoa(i)), QoS: 1}}}
	if _, err := c.Write(sub.Append(nil, version)); err != nil {
		c.Close()
		return nil, 0, err
	}
	if err := expect(c, &dec, codec.SUBACK); err != nil {
		c.Close()
		return nil, 0, err
	}
	return c, lat, nil
}

func expect(c net.Conn, dec *codec.Decoder, want codec.Type) error {
	buf := make([]byte, 256)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		h, _, ok, err := dec.Next()
		if err != nil {
			return err
		}
		if ok {
			if h.Type != want {
				return fmt.Errorf("got %v, want %v", h.Type, want)
			}
			return nil
		}
		n, err := c.Read(buf)
		if n > 0 {
			_, _ = dec.Write(buf[:n])
		} else if err != nil {
			return err
		}
	}
}

// rss reads a process's resident set size in bytes.
func rss(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}
