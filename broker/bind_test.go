package broker_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
)

func bindOnly(t *testing.T, cfg broker.Config) (*broker.Broker, error) {
	t.Helper()
	b, err := broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b, b.Bind()
}

// TestBindThenStart: Bind holds the ports — another broker cannot take
// them — without opening the store; Start then opens the store and
// serves. A program started as root gives up root between the two
// (cmd/broker).
func TestBindThenStart(t *testing.T) {
	cfg := broker.DefaultConfig()
	cfg.Listen = testutil.FreeAddr(t)
	cfg.Transports.WSListen = testutil.FreeAddr(t)
	cfg.DataDir = filepath.Join(t.TempDir(), "store")
	cfg.SysInterval = 0
	b, err := bindOnly(t, cfg)
	if err != nil {
		t.Fatalf("Bind: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	defer b.Close(ctx)
	if _, err := os.Stat(cfg.DataDir); !os.IsNotExist(err) {
		t.Errorf("after Bind, the data directory: %v; want it not made yet", err)
	}
	// The TCP port is only reserved (SO_REUSEADDR, not listening), which
	// does not keep another reservation out: a second broker finds it in
	// use when its loops listen (cmd/broker's TestSecondBrokerTouchesNothing).
	other := broker.DefaultConfig()
	other.Listen = testutil.FreeAddr(t)
	other.Transports.WSListen = cfg.Transports.WSListen
	if _, err := bindOnly(t, other); err == nil || !strings.Contains(err.Error(), "ws_listen") ||
		!strings.Contains(err.Error(), "address already in use") {
		t.Errorf("a second Bind on ws_listen %s: %v; want address already in use, naming ws_listen", other.Transports.WSListen, err)
	}

	if err := b.Bind(); err == nil {
		t.Error("a second Bind succeeded")
	}
	if err := b.Start(); err != nil {
		t.Fatalf("Start after Bind: %v", err)
	}
	if got := b.Addr().String(); got != cfg.Listen {
		t.Errorf("serving on %s, want %s", got, cfg.Listen)
	}
	if _, err := os.Stat(cfg.DataDir); err != nil {
		t.Errorf("after Start, the data directory: %v", err)
	}
	testutil.DialConnect(t, cfg.Listen, codec.V311, codec.Connect{ClientID: []byte("c"), CleanStart: true})
}

// TestCloseAfterBind: a broker bound and never started lets its ports go
// on Close, so the next one can bind them.
func TestCloseAfterBind(t *testing.T) {
	cfg := broker.DefaultConfig()
	cfg.Listen = testutil.FreeAddr(t)
	cfg.Transports.WSListen = testutil.FreeAddr(t)
	cfg.SysInterval = 0
	for i := range 2 {
		b, err := bindOnly(t, cfg)
		if err != nil {
			t.Fatalf("Bind %d: %v", i+1, err)
		}
		if err := b.Close(context.Background()); err != nil {
			t.Fatalf("Close after Bind: %v", err)
		}
	}
}
