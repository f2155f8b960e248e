package proc

import (
	"slices"
	"testing"
)

func TestWrap(t *testing.T) {
	argv := []string{"/b/shoal", "-c", "x"}
	ps := &Procs{Pin: true, NoFile: 20000}
	want := []string{"taskset", "-c", "0", "prlimit", "--nofile=20000:20000", "--", "/b/shoal", "-c", "x"}
	if got := ps.Wrap(argv, 0); !slices.Equal(got, want) {
		t.Errorf("Wrap = %q; want %q", got, want)
	}
	ps = &Procs{}
	if got := ps.Wrap(argv, 1); !slices.Equal(got, argv) {
		t.Errorf("Wrap unpinned = %q; want %q", got, argv)
	}
}
