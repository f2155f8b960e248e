package main

import (
	"fmt"
	"os"
	"testing"
)

// TestMain fails the package when a test left this process as another user
// than it started as: run() gives up root when a configuration asks it to
// (user, or a mosquitto.conf's default mosquitto), and a test that did so
// in this process would run the tests after it without root, failing them
// in ways that say nothing of the cause. Such tests run the built binary.
func TestMain(m *testing.M) {
	uid, gid := os.Geteuid(), os.Getegid()
	code := m.Run()
	if os.Geteuid() != uid || os.Getegid() != gid {
		fmt.Fprintf(os.Stderr, "FAIL: a test switched this process from uid %d gid %d to uid %d gid %d: run such a broker as a process of its own\n",
			uid, gid, os.Geteuid(), os.Getegid())
		code = 1
	}
	os.Exit(code)
}
