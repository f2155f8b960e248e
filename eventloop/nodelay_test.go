package eventloop

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/shoalmq/shoal/codec"
)

// sockopt is a Handler that reports each accepted socket's TCP_NODELAY.
type sockopt struct{ noDelay chan int }

func (h sockopt) OnOpen(c *Conn) error {
	v, err := unix.GetsockoptInt(c.gc.Fd(), unix.IPPROTO_TCP, unix.TCP_NODELAY)
	if err != nil {
		v = -1
	}
	h.noDelay <- v
	return nil
}
func (sockopt) OnFrame(*Conn, codec.Header, []byte) error { return nil }
func (sockopt) OnFrameError(*Conn, error)                 {}
func (sockopt) OnClose(*Conn, error)                      {}
func (sockopt) OnWake(*Loop)                              {}
func (sockopt) OnTick(*Loop, time.Time)                   {}

// TestNagle: accepted sockets have TCP_NODELAY set unless Config.Nagle
// asks for Nagle's algorithm.
func TestNagle(t *testing.T) {
	for _, nagle := range []bool{false, true} {
		h := sockopt{noDelay: make(chan int, 1)}
		e := New(Config{Addr: "127.0.0.1:0", Loops: 1, MaxPacketSize: 1024, Nagle: nagle, Logger: zerolog.Nop()}, h)
		if err := e.Start(); err != nil {
			t.Fatal(err)
		}
		nc, err := net.DialTimeout("tcp", e.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		want := 1
		if nagle {
			want = 0
		}
		select {
		case got := <-h.noDelay:
			if got != want {
				t.Errorf("Nagle %v: accepted socket's TCP_NODELAY = %d; want %d", nagle, got, want)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Nagle %v: no OnOpen", nagle)
		}
		nc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := e.Stop(ctx); err != nil {
			t.Error(err)
		}
		cancel()
	}
}
