package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoalmq/shoal/auth"
	"github.com/shoalmq/shoal/internal/testutil"
)

// TestConfigFileRefusesAnonymous: a configuration file whose listener is
// not on loopback, and that does not say allow_anonymous, lets in only
// clients with credentials (allow_anonymous: loopback, the default).
// Mosquitto's clients log in with -u/-P against the password file; SIGHUP
// re-reads the file, so a user added to it can log in without a restart.
func TestConfigFileRefusesAnonymous(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "users.pw")
	if err := auth.SetPassword(pw, "alice", "wonderland", 4); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "shoal.yaml")
	body := "listen: 0.0.0.0:0\npersistence: false\nadmin_listen: \"\"\nlog_format: json\nallow_root: true\npassword_file: " + pw + "\n"
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	addr, _, signals := runWith(t, cfg)
	_, port := testutil.HostPort(t, addr)
	host := "127.0.0.1" // the listener is on every address, loopback too
	pub := func(args ...string) (string, error) {
		return testutil.Mosquitto(t, 10*time.Second, "mosquitto_pub",
			append([]string{"-h", host, "-p", port, "-t", "t", "-m", "x", "-V", "mqttv311"}, args...)...)
	}
	if out, err := pub(); err == nil || !strings.Contains(strings.ToLower(out), "not authori") {
		t.Errorf("anonymous mosquitto_pub: err %v, output %q; want refused as not authorised", err, out)
	}
	if out, err := pub("-u", "alice", "-P", "wonderland"); err != nil {
		t.Errorf("mosquitto_pub -u alice: %v: %s", err, out)
	}
	if out, err := pub("-u", "bob", "-P", "builder"); err == nil {
		t.Errorf("bob logged in before being added: %s", out)
	}
	if err := auth.SetPassword(pw, "bob", "builder", 4); err != nil {
		t.Fatal(err)
	}
	signals <- syscall.SIGHUP
	testutil.Eventually(t, 5*time.Second, "bob to be let in after SIGHUP", func() bool {
		_, err := pub("-u", "bob", "-P", "builder")
		return err == nil
	})
}

// TestAnonymousWarnings: the broker says at start what the anonymous rule
// means for a listener that is not on loopback: a warning when anonymous
// clients are let in there (allow_anonymous: true), and one when nothing
// at all would let a client in.
func TestAnonymousWarnings(t *testing.T) {
	for _, tc := range []struct {
		name, extra, want string
	}{
		{"allowed", "allow_anonymous: true\n", "anonymous clients are allowed on a listener that is not on loopback"},
		{"nobody", "", "nothing is configured to let anyone else in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "shoal.yaml")
			body := "listen: 0.0.0.0:0\npersistence: false\nadmin_listen: \"\"\nlog_format: json\nallow_root: true\n" + tc.extra
			if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			_, logs, _ := runWith(t, cfg)
			if !strings.Contains(logs.String(), tc.want) {
				t.Errorf("logs lack %q:\n%s", tc.want, logs.String())
			}
		})
	}
}
