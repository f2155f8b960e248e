package main

import (
	"runtime"
	"testing"
)

// TestSetProcs: one P more than the event loops, unless GOMAXPROCS is set
// in the environment, which the runtime has applied already.
func TestSetProcs(t *testing.T) {
	old := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(old) })

	if procs, set := setProcs(3, func(string) string { return "" }); !set || procs != 4 || runtime.GOMAXPROCS(0) != 4 {
		t.Errorf("3 loops: setProcs = %d, %v; GOMAXPROCS %d; want 4, true, 4", procs, set, runtime.GOMAXPROCS(0))
	}
	runtime.GOMAXPROCS(2)
	env := func(k string) string {
		if k == "GOMAXPROCS" {
			return "2"
		}
		return ""
	}
	if procs, set := setProcs(3, env); set || procs != 2 || runtime.GOMAXPROCS(0) != 2 {
		t.Errorf("GOMAXPROCS=2 in the environment: setProcs = %d, %v; GOMAXPROCS %d; want 2, false, 2", procs, set, runtime.GOMAXPROCS(0))
	}
}
