package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoalmq/shoal/internal/testutil"
)

// runStoppable runs the broker in-process with config file cfg, as
// runWith does, and returns its logs and a function that stops it with
// SIGTERM and waits for run to return its exit code.
func runStoppable(t *testing.T, cfg string, args ...string) (*testutil.SyncBuffer, func() int) {
	t.Helper()
	logs := new(testutil.SyncBuffer)
	signals := make(chan os.Signal, 1)
	exited := make(chan struct{})
	code := -1
	go func() {
		defer close(exited)
		code = run(append([]string{"-c", cfg}, args...), new(bytes.Buffer), logs, signals)
	}()
	stopped := false
	stop := func() int {
		if !stopped {
			stopped = true
			signals <- syscall.SIGTERM
			<-exited
		}
		return code
	}
	t.Cleanup(func() { stop() })
	listenAddr(t, logs, exited)
	return logs, stop
}

// TestMosquittoDBImported: a mosquitto.db that the real Mosquitto saved
// as it stopped on SIGTERM — two persistent sessions (MQTT 3.1.1 and 5)
// with QoS 1 and 2 messages queued while they were away, two retained
// messages — is imported by Shoal started on the same mosquitto.conf
// lines: the sessions resume and get their messages, a new subscriber the
// retained ones, the log counts them. A second start does not import
// again, and mosquitto.db is byte for byte what Mosquitto left.
func TestMosquittoDBImported(t *testing.T) {
	dir := t.TempDir()
	persistence := fmt.Sprintf("allow_anonymous true\npersistence true\npersistence_location %s/\n", dir)
	m := testutil.StartMosquittoConf(t, persistence+"log_dest stderr\n")
	host, port := testutil.HostPort(t, m.Addr)
	cli := func(port, name string, args ...string) (string, error) {
		return testutil.Mosquitto(t, 10*time.Second, name, append([]string{"-h", host, "-p", port}, args...)...)
	}
	must := func(out string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
	v3 := []string{"-c", "-i", "keeper", "-q", "1", "-t", "q/#"}
	v5 := []string{"-V", "mqttv5", "-c", "-x", "3600", "-i", "keeper5", "-q", "2", "-t", "q/#"}
	must(cli(port, "mosquitto_sub", append(v3, "-E")...))
	must(cli(port, "mosquitto_sub", append(v5, "-E")...))
	must(cli(port, "mosquitto_pub", "-q", "1", "-t", "q/1", "-m", "one"))
	must(cli(port, "mosquitto_pub", "-q", "2", "-t", "q/2", "-m", "two"))
	must(cli(port, "mosquitto_pub", "-r", "-q", "1", "-t", "r/a", "-m", "ra"))
	must(cli(port, "mosquitto_pub", "-V", "mqttv5", "-r", "-t", "r/b", "-m", "rb", "-D", "publish", "user-property", "k", "v"))
	// QoS 0: mosquitto_pub does not wait for Mosquitto to take it. Both
	// retained messages are there once a subscriber gets them (stopped
	// before, under load, Mosquitto saved one retained message).
	must(cli(port, "mosquitto_sub", "-t", "r/#", "-C", "2", "-W", "5"))
	m.Stop()
	db := filepath.Join(dir, "mosquitto.db")
	saved, err := os.ReadFile(db)
	if err != nil {
		t.Fatalf("Mosquitto saved no database: %v", err)
	}
	savedStat, _ := os.Stat(db)

	shoalPort := strconv.Itoa(testutil.FreePort(t))
	conf := filepath.Join(t.TempDir(), "mosquitto.conf")
	if err := os.WriteFile(conf, []byte("listener "+shoalPort+" 127.0.0.1\n"+persistence), 0o600); err != nil {
		t.Fatal(err)
	}
	conf = asRootInProcess(t, conf)
	logs, stop := runStoppable(t, conf, "--admin-listen", "")
	logs.WaitLine(t, 30*time.Second, "imported into the store", map[string]any{
		"import": "mosquitto.db", "from": db, "db_version": 6,
		"sessions": 2, "subscriptions": 2, "retained": 2, "queued": 4, "in_flight": 0, "skipped": 0,
	})
	for _, args := range [][]string{v3, v5} {
		out, err := cli(shoalPort, "mosquitto_sub", append(args, "-C", "2", "-W", "5")...)
		if err != nil || out != "one\ntwo\n" {
			t.Errorf("%s after the import: %q, %v; want one, two", args[slices.Index(args, "-i")+1], out, err)
		}
	}
	retained := func() {
		t.Helper()
		out, err := cli(shoalPort, "mosquitto_sub", "-t", "r/#", "-v", "-C", "2", "-W", "5")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		slices.Sort(lines)
		if err != nil || !slices.Equal(lines, []string{"r/a ra", "r/b rb"}) {
			t.Errorf("retained: %q, %v; want r/a ra, r/b rb", out, err)
		}
	}
	retained()
	if code := stop(); code != 0 {
		t.Fatalf("exit %d; logs:\n%s", code, logs.String())
	}

	logs, stop = runStoppable(t, conf, "--admin-listen", "")
	logs.WaitLine(t, 30*time.Second, "imported into this store before: not again", map[string]any{"import": "mosquitto.db"})
	if n := len(logs.Lines(t, "imported into the store")); n != 0 {
		t.Errorf("imported again on the second start")
	}
	// Not imported again, so "one", acknowledged, does not come back.
	// "two" may: mosquitto_sub -C 2 disconnects from its message callback,
	// most often before it sends the last message's PUBACK, so MQTT has
	// the broker resend it [MQTT-4.4.0-1].
	if out, err := cli(shoalPort, "mosquitto_sub", append(v3, "-C", "1", "-W", "1")...); strings.TrimSpace(out) != "Timed out" && out != "two\n" {
		t.Errorf("keeper's acknowledged message came again: %q, %v", out, err)
	}
	retained()
	stop()

	now, err := os.ReadFile(db)
	if err != nil || !bytes.Equal(now, saved) {
		t.Errorf("mosquitto.db changed (%v)", err)
	}
	if st, err := os.Stat(db); err != nil || !st.ModTime().Equal(savedStat.ModTime()) || st.Mode() != savedStat.Mode() {
		t.Errorf("mosquitto.db's modification time or mode changed: %v", err)
	}
}

// TestMosquittoDBDamaged: a mosquitto.db that is not what Mosquitto
// writes stops the start (exit 1), saying where and that nothing was
// imported; the file stays as it is, and the store holds nothing.
func TestMosquittoDBDamaged(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "mosquitto.db")
	damaged := append([]byte("\x00\xb5\x00mosquitto db\x00\x00\x00\x00\x00\x00\x00\x06"), 0, 0, 0, 1, 0, 0, 0, 16, 1, 2, 3) // a config chunk cut short
	if err := os.WriteFile(db, damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "mosquitto.conf")
	body := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\n", testutil.FreePort(t), dir)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	conf = asRootInProcess(t, conf)
	logs := new(testutil.SyncBuffer)
	code := run([]string{"-c", conf, "--admin-listen", ""}, new(bytes.Buffer), logs, make(chan os.Signal, 1))
	if code != 1 {
		t.Fatalf("exit %d, want 1; logs:\n%s", code, logs.String())
	}
	lines := logs.Lines(t, "cannot start the broker")
	if len(lines) != 1 {
		t.Fatalf("no \"cannot start the broker\" line; logs:\n%s", logs.String())
	}
	for _, want := range []string{db, "config chunk at byte 23", "cut short", "nothing was imported", "move it elsewhere"} {
		if !strings.Contains(fmt.Sprint(lines[0]["error"]), want) {
			t.Errorf("error %q does not say %q", lines[0]["error"], want)
		}
	}
	if now, err := os.ReadFile(db); err != nil || !bytes.Equal(now, damaged) {
		t.Errorf("mosquitto.db changed (%v)", err)
	}
}
