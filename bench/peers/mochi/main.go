// Command mochi runs mochi-mqtt (github.com/mochi-mqtt/server/v2) as one of
// the benchmark's peers: its default options, an allow-all auth hook and
// one TCP listener. Its log level is raised to warn, like the other peers',
// so that logging costs none of them anything during a run.
//
// It is its own module so that mochi-mqtt never enters Shoal's
// dependencies; the harness builds it with `go build` in this directory.
//
//	mochi -addr 127.0.0.1:1883
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:1883", "listen on `ADDR` (host:port)")
	flag.Parse()
	if err := run(*addr); err != nil {
		fmt.Fprintln(os.Stderr, "mochi:", err)
		os.Exit(1)
	}
}

func run(addr string) error {
	s := mqtt.New(&mqtt.Options{
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err := s.AddHook(new(auth.AllowHook), nil); err != nil {
		return err
	}
	if err := s.AddListener(listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr})); err != nil {
		return err
	}
	if err := s.Serve(); err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	return s.Close()
}
