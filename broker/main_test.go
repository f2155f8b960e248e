package broker_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoalmq/shoal/internal/testutil"
)

// routedSuites are the tests run once more over each routing path, forced:
// the protocol, QoS, MQTT 5, retained, session and end-to-end suites. The
// broker routes a PUBLISH on the publisher's loop below saturation and
// through the router workers under pressure (doc.go, "Two paths, one
// order"), so a suite run once would test one path (STYLE item 26).
const routedSuites = `^(TestClusterRoute|TestProtocol|TestV5|TestMosquitto|TestPaho|TestWebSocket|TestLargeMessage|TestRetained|TestPersist|TestSlowConsumer|TestShared|TestACL|TestReceiveMaximum|TestRefusing)`

// TestMain runs the package's tests as they are (the broker picks its
// path), then runs them again in a child process per forced path — the
// routed suites, or what -run asked for — with testutil.RouteEnv set.
func TestMain(m *testing.M) {
	start := time.Now()
	code := m.Run()
	if code != 0 || os.Getenv(testutil.RouteEnv) != "" || !wantRoutedPasses() {
		os.Exit(code)
	}
	run := routedSuites
	if f := flag.Lookup("test.run"); f != nil && f.Value.String() != "" {
		run = f.Value.String()
	}
	// The two passes run at once: their tests mostly wait (on clients,
	// keep-alives, expiries), so together they take little longer than
	// one. Each one's output is printed whole when it ends.
	modes := []string{"inline", "workers"}
	codes := make([]int, len(modes))
	outs := make([]bytes.Buffer, len(modes))
	var wg sync.WaitGroup
	// The passes share what is left of -timeout, so that go test's own
	// deadline still ends them (and the clients they started).
	left := time.Duration(0)
	if f := flag.Lookup("test.timeout"); f != nil {
		if d, ok := f.Value.(flag.Getter).Get().(time.Duration); ok && d > 0 {
			if left = d - time.Since(start); left <= 0 {
				fmt.Println("routing passes skipped: no time left under -timeout")
				os.Exit(code)
			}
		}
	}
	for i, mode := range modes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = rerun(mode, run, left, &outs[i])
		}()
	}
	wg.Wait()
	for i, mode := range modes {
		fmt.Printf("=== routing %s: %s\n", mode, run)
		_, _ = os.Stdout.Write(outs[i].Bytes())
		if codes[i] != 0 {
			fmt.Printf("--- FAIL: routing %s\n", mode)
			code = codes[i]
		}
	}
	os.Exit(code)
}

// wantRoutedPasses reports whether this run is one of tests: not a list,
// a benchmark, a fuzz run or a profile, which a second pass would confuse.
func wantRoutedPasses() bool {
	for _, name := range []string{"test.list", "test.bench", "test.fuzz", "test.coverprofile", "test.cpuprofile", "test.memprofile", "test.blockprofile", "test.mutexprofile", "test.trace"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return false
		}
	}
	return flag.Lookup("test.run") == nil || flag.Lookup("test.run").Value.String() != "^$"
}

// rerun runs this test binary with its flags, -run replaced by run and
// -timeout by left (0: none), and testutil.RouteEnv=mode, with its output
// into out, and returns its exit code. A pass still running a little after
// left is killed.
func rerun(mode, run string, left time.Duration, out *bytes.Buffer) int {
	args := []string{"-test.run=" + run}
	ctx := context.Background()
	if left > 0 {
		args = append(args, "-test.timeout="+left.String())
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, left+10*time.Second)
		defer cancel()
	}
	for _, a := range os.Args[1:] {
		if !strings.HasPrefix(a, "-test.run") && !strings.HasPrefix(a, "-test.timeout") {
			args = append(args, a)
		}
	}
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), testutil.RouteEnv+"="+mode)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		fmt.Fprintf(out, "routing %s: %v\n", mode, err)
		return 1
	}
	return 0
}
