package testutil

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// SyncBuffer is a bytes.Buffer that goroutines may write while a test
// reads it: a log sink, or a command's output.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Lines parses what was written as JSON lines, as a zerolog logger with
// the JSON format writes them, and returns those whose "message" is msg
// ("" for all). A line that is not JSON fails the test.
func (s *SyncBuffer) Lines(t testing.TB, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(s.String(), "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line not JSON: %v: %s", err, l)
		}
		if msg == "" || m["message"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// WaitLine waits up to d for a JSON line whose "message" is msg and whose
// fields include every one of want (compared as fmt %v does, so numbers
// and strings both read plainly), and returns it.
func (s *SyncBuffer) WaitLine(t testing.TB, d time.Duration, msg string, want map[string]any) map[string]any {
	t.Helper()
	var found map[string]any
	deadline := time.Now().Add(d)
	for {
		for _, m := range s.Lines(t, msg) {
			if hasFields(m, want) {
				found = m
				break
			}
		}
		if found != nil {
			return found
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q log line with %v within %v; lines:\n%s", msg, want, d, s.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func hasFields(m, want map[string]any) bool {
	for k, v := range want {
		got, ok := m[k]
		if !ok || fmt.Sprint(got) != fmt.Sprint(v) {
			return false
		}
	}
	return true
}
