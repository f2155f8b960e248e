package testutil

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/shoalmq/shoal/admin"
	"github.com/shoalmq/shoal/broker"
)

// StartAdmin starts b's admin server as cfg says, on a loopback port of
// the kernel's choosing and without logs; setup, when not nil, is called
// before it serves (to give the history sampler its ticks). The server is
// closed when the test ends. It returns the server's base URL.
func StartAdmin(t testing.TB, b *broker.Broker, cfg admin.Config, setup func(*admin.Server)) string {
	t.Helper()
	cfg.Listen, cfg.Logger = "127.0.0.1:0", zerolog.Nop()
	s, err := admin.New(b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(s)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("admin Close: %v", err)
		}
	})
	return "http://" + s.Addr().String()
}
