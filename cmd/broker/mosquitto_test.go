package main

import (
	"bytes"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
)

// mosquittoExamples is where Debian's mosquitto package puts the example
// files it ships.
const mosquittoExamples = "/usr/share/doc/mosquitto/examples"

// example returns the path of one of the package's example files.
func example(t *testing.T, name string) string {
	t.Helper()
	path := filepath.Join(mosquittoExamples, name)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%v: run `make deps` (installs the mosquitto package)", err)
	}
	return path
}

// asRootInProcess returns conf as it is, or, when the tests run as root, a
// copy with "user root" added: a mosquitto.conf without a user line asks
// to run as the mosquitto user, and a broker run in this process
// (runWith) would give up root for every test after it.
// TestMosquittoUserAsRoot tests the switch, in a process of its own.
func asRootInProcess(t *testing.T, conf string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		return conf
	}
	data, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(t.TempDir(), "mosquitto.conf")
	if err := os.WriteFile(cp, append(data, "\nuser root\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	return cp
}

// TestMosquittoFlagErrors: the Mosquitto flags' mistakes exit 2, naming
// the flag.
func TestMosquittoFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-p", "1883", "-p", "1884"}, "-p: given twice"},
		{[]string{"-p", "0"}, `"0" is not a port`},
		{[]string{"--port", "http"}, `"http" is not a port`},
		{[]string{"-p", "1883", "--listen", "127.0.0.1:1"}, "-p and --listen: give one"},
		{[]string{"-v", "--log-level", "warn"}, "-v and --log-level: give one"},
		{[]string{"--config-format", "toml"}, `unknown configuration format "toml"`},
		{[]string{"--mosquitto-unsupported", "ignore"}, `unknown choice "ignore"`},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(tc.args, &stdout, &stderr, nil); code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("run(%q) = %d, stderr %q; want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}

// TestMosquittoExampleWithPortAndVerbose: shoal runs the mosquitto.conf
// the package ships, started as Mosquitto would be: -c FILE -p PORT -v.
// The file has no listener, so -p's, on loopback, with anonymous clients
// (Mosquitto 2's local-only mode); -v logs at debug level.
func TestMosquittoExampleWithPortAndVerbose(t *testing.T) {
	port := strconv.Itoa(testutil.FreePort(t))
	addr, logs, _ := runWith(t, asRootInProcess(t, example(t, "mosquitto.conf")), "-p", port, "-v", "--admin-listen", "", "--mosquitto-unsupported", "warn")
	if addr != "127.0.0.1:"+port {
		t.Fatalf("listening on %s, want 127.0.0.1:%s", addr, port)
	}
	if out, err := testutil.Mosquitto(t, 10*time.Second, "mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-t", "t", "-m", "x"); err != nil {
		t.Fatalf("anonymous mosquitto_pub: %v: %s", err, out)
	}
	testutil.Eventually(t, 5*time.Second, "a debug line", func() bool { return strings.Contains(logs.String(), `"level":"debug"`) })
	if !strings.Contains(logs.String(), `"config_format":"mosquitto"`) {
		t.Errorf("the format read is not logged:\n%s", logs.String())
	}
}

// TestMosquittoPortIgnored: -p is passed over, with a warning, when the
// file has a listener, as Mosquitto 2 does.
func TestMosquittoPortIgnored(t *testing.T) {
	port := testutil.FreePort(t)
	conf := writeFile(t, fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\nuser root\n", port))
	addr, logs, _ := runWith(t, conf, "--config-format", "mosquitto", "-p", "1", "--admin-listen", "")
	if addr != fmt.Sprintf("127.0.0.1:%d", port) || !strings.Contains(logs.String(), "-p 127.0.0.1:1 ignored: the file sets listen (listener, line 1)") {
		t.Errorf("listening on %s; logs:\n%s", addr, logs.String())
	}
}

// TestMosquittoConf: a mosquitto.conf as a site runs it — a plain, a TLS
// and a WebSocket listener, a password file made by mosquitto_passwd with
// both its hash formats (and the package's pwfile.example), an ACL file in
// Mosquitto's syntax (the package's aclfile.example and more), persistence
// — and Mosquitto's own clients use it over TCP and TLS, a WebSocket
// client over WebSocket at the root path.
func TestMosquittoConf(t *testing.T) {
	dir := t.TempDir()
	pki := testutil.NewPKI(t, dir, "site")
	srv := pki.Server("server")
	pw := filepath.Join(dir, "passwd")
	testutil.CopyFile(t, pw, example(t, "pwfile.example")) // roger, sub_client, pub_client: "password"
	for _, args := range [][]string{
		{"-H", "sha512", "-b", pw, "alice", "alice-pw"},
		{"-H", "sha512-pbkdf2", "-b", pw, "bob", "bob-pw"},
	} {
		if out, err := testutil.Mosquitto(t, 10*time.Second, "mosquitto_passwd", args...); err != nil {
			t.Fatalf("mosquitto_passwd %q: %v: %s", args, err, out)
		}
	}
	acl := filepath.Join(dir, "acl")
	example, err := os.ReadFile(example(t, "aclfile.example"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(acl, append(example, "\nuser alice\ntopic readwrite test/#\nuser bob\ntopic read test/#\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	tcp, tlsPort, ws := testutil.FreePort(t), testutil.FreePort(t), testutil.FreePort(t)
	conf := filepath.Join(dir, "mosquitto.conf")
	body := fmt.Sprintf(`# A site's broker.
user root

listener %d 127.0.0.1

listener %d 127.0.0.1
certfile %s
keyfile %s

listener %d 127.0.0.1
protocol websockets

password_file %s
acl_file %s

persistence true
persistence_location %s/
autosave_interval 600
`, tcp, tlsPort, srv.CertFile, srv.KeyFile, ws, pw, acl, dir)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	_, logs, _ := runWith(t, conf, "--admin-listen", "") // returns once a listener says it listens
	testutil.Eventually(t, 5*time.Second, "the plain listener", func() bool {
		return strings.Contains(logs.String(), fmt.Sprintf(`"addr":"127.0.0.1:%d","version"`, tcp))
	})
	client := func(name string, port int, args ...string) (string, error) {
		return testutil.Mosquitto(t, 10*time.Second, name, append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(port), "-V", "mqttv311"}, args...)...)
	}
	overTLS := []string{"--cafile", pki.CAFile}

	// alice ($6$) publishes a retained message over TLS; bob ($7$) reads
	// it over TCP.
	if out, err := client("mosquitto_pub", tlsPort, append(overTLS, "-u", "alice", "-P", "alice-pw", "-t", "test/tls", "-m", "hello", "-r", "-q", "1")...); err != nil {
		t.Fatalf("alice over TLS: %v: %s", err, out)
	}
	if out, err := client("mosquitto_sub", tcp, "-u", "bob", "-P", "bob-pw", "-t", "test/tls", "-C", "1", "-W", "5"); err != nil || strings.TrimSpace(out) != "hello" {
		t.Errorf("bob over TCP: %q, %v; want hello", out, err)
	}
	// roger, of pwfile.example, has foo/bar in aclfile.example.
	if out, err := client("mosquitto_pub", tcp, "-u", "roger", "-P", "password", "-t", "foo/bar", "-m", "r", "-r", "-q", "1"); err != nil {
		t.Errorf("roger: %v: %s", err, out)
	}
	if out, err := client("mosquitto_sub", tlsPort, append(overTLS, "-u", "roger", "-P", "password", "-t", "foo/bar", "-C", "1", "-W", "5")...); err != nil || strings.TrimSpace(out) != "r" {
		t.Errorf("roger over TLS: %q, %v; want r", out, err)
	}
	// Refused: anonymous (a listener is defined, so allow_anonymous is
	// false), a wrong password (Mosquitto says "not authorised" there
	// too; Shoal says which: README, Coming from Mosquitto).
	for _, tc := range []struct {
		args []string
		want string
	}{{nil, "not authorised"}, {[]string{"-u", "alice", "-P", "wrong"}, "bad user name or password"}} {
		if out, err := client("mosquitto_pub", tcp, append(tc.args, "-t", "test/x", "-m", "x")...); err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("mosquitto_pub %q: %v, %q; want refused, %s", tc.args, err, out, tc.want)
		}
	}
	// The ACL: bob may read test/#, not write it; what he publishes there
	// is acknowledged and dropped (Mosquitto's way with MQTT 3.1.1).
	if out, err := client("mosquitto_pub", tcp, "-u", "bob", "-P", "bob-pw", "-t", "test/bob", "-m", "b", "-r", "-q", "1"); err != nil {
		t.Errorf("bob publishing: %v: %s", err, out)
	}
	if out, err := client("mosquitto_sub", tcp, "-u", "alice", "-P", "alice-pw", "-t", "test/bob", "-C", "1", "-W", "1"); err == nil || strings.TrimSpace(out) != "Timed out" {
		t.Errorf("bob's message got through: %q, %v", out, err)
	}

	// WebSocket, at the root path, as Mosquitto takes it.
	r := testutil.DialWS(t, fmt.Sprintf("ws://127.0.0.1:%d/", ws), nil, codec.V311)
	if ack := r.Connect(codec.Connect{ClientID: []byte("ws-bob"), CleanStart: true, UsernameFlag: true, PasswordFlag: true,
		Username: []byte("bob"), Password: []byte("bob-pw")}); ack.Code != 0 {
		t.Fatalf("bob over WebSocket: CONNACK %v", ack.Code)
	}
	if codes := r.Subscribe(1, "test/tls", 1); codes[0] > 2 {
		t.Fatalf("SUBACK %v", codes)
	}
	if p := r.Publish(r.Expect(codec.PUBLISH, 5*time.Second)); string(p.Payload) != "hello" {
		t.Errorf("over WebSocket: %q, want hello", p.Payload)
	}

	// Persistence: Shoal's store beside where mosquitto.db would be.
	if fi, err := os.Stat(filepath.Join(dir, "mosquitto.shoal")); err != nil || !fi.IsDir() {
		t.Errorf("the store: %v", err)
	}
	if strings.Contains(logs.String(), `"level":"warn"`) {
		t.Errorf("warnings for a file Shoal supports:\n%s", logs.String())
	}
}

// TestMosquittoUnsupported: a directive Shoal has no equivalent for stops
// the start (exit 1), named with its line and the reason; with
// --mosquitto-unsupported warn it is a warning and the broker runs.
func TestMosquittoUnsupported(t *testing.T) {
	port := testutil.FreePort(t)
	conf := writeFile(t, fmt.Sprintf("user root\nlistener %d 127.0.0.1\nallow_anonymous true\nmount_point site/\nmemory_limit 1000000\n", port))
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-c", conf, "--config-format", "mosquitto", "--admin-listen", ""}, &stdout, &stderr, nil); code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr.String())
	}
	for _, want := range []string{conf + ":4: mount_point: not supported: ", conf + ":5: memory_limit: not supported: Shoal has no heap limit"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	_, logs, _ := runWith(t, conf, "--config-format", "mosquitto", "--admin-listen", "", "--mosquitto-unsupported", "warn")
	if !strings.Contains(logs.String(), "mount_point: not supported, left out") {
		t.Errorf("no warning:\n%s", logs.String())
	}
}

// TestMosquittoUserAsRoot: started as root, a Mosquitto configuration
// without "user root" binds its listeners, then runs as the mosquitto user,
// as Mosquitto does (issue 19's privilege drop); not as root, the user line
// has no effect. Run as a separate process: giving up root in this one
// would take it from the tests after.
func TestMosquittoUserAsRoot(t *testing.T) {
	port := testutil.FreePort(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\n", port)), 0o644); err != nil {
		t.Fatal(err)
	}
	want, err := user.Lookup("mosquitto")
	if os.Geteuid() != 0 || err != nil {
		runWith(t, conf, "--config-format", "mosquitto", "--admin-listen", "") // fails the test unless it listens
		return
	}
	bin := buildBroker(t)
	br := startBrokerIn(t, bin, dir, "127.0.0.1:"+strconv.Itoa(port), "-c", conf, "--config-format", "mosquitto", "--admin-listen", "")
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", br.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	var uid string
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			uid = strings.Fields(rest)[1] // effective
		}
	}
	if uid != want.Uid {
		t.Errorf("running with uid %s, want mosquitto's %s; log:\n%s", uid, want.Uid, br.stderr.String())
	}
}

// TestPasswordFileWarning: a line of the password file that cannot be
// read is logged, naming the line and the user, and the others log in.
func TestPasswordFileWarning(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "passwd")
	if err := os.WriteFile(pw, []byte("eve:not-a-hash\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := testutil.Mosquitto(t, 10*time.Second, "mosquitto_passwd", "-b", pw, "alice", "pw"); err != nil {
		t.Fatal(err, out)
	}
	conf := writeFile(t, "listen: 127.0.0.1:0\npersistence: false\nadmin_listen: \"\"\nallow_anonymous: false\npassword_file: "+pw+"\n")
	addr, logs, _ := runWith(t, conf)
	if !strings.Contains(logs.String(), pw+`:1: unknown password hash scheme: user \"eve\": the user is left out`) {
		t.Errorf("no warning naming line and user:\n%s", logs.String())
	}
	_, port := testutil.HostPort(t, addr)
	if out, err := testutil.Mosquitto(t, 10*time.Second, "mosquitto_pub", "-p", port, "-u", "alice", "-P", "pw", "-t", "t", "-m", "x"); err != nil {
		t.Errorf("alice: %v: %s", err, out)
	}
}

// TestLogFileReopened: log_dest file appends to the file, and SIGHUP
// opens it again, so that a rotation (rename, then SIGHUP) moves the log
// to a new file.
func TestLogFileReopened(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "shoal.log")
	conf := writeFile(t, "listen: 127.0.0.1:0\npersistence: false\nadmin_listen: \"\"\nallow_anonymous: true\nlog_format: json\n"+
		"log_dest: [stderr, \"file "+log+"\"]\n")
	_, logs, signals := runWith(t, conf)
	data, err := os.ReadFile(log)
	if err != nil || !strings.Contains(string(data), `"listening"`) {
		t.Fatalf("log file: %q, %v", data, err)
	}
	if err := os.Rename(log, log+".1"); err != nil {
		t.Fatal(err)
	}
	signals <- syscall.SIGHUP
	testutil.Eventually(t, 5*time.Second, "the reload", func() bool { return strings.Contains(logs.String(), "configuration reloaded") })
	testutil.Eventually(t, 5*time.Second, "a new log file", func() bool {
		data, err := os.ReadFile(log)
		return err == nil && strings.Contains(string(data), "configuration reloaded")
	})
	if old, _ := os.ReadFile(log + ".1"); strings.Contains(string(old), "configuration reloaded") {
		t.Error("the rotated file got the line after SIGHUP")
	}
}

// TestDaemon: -d returns once the broker listens, which runs on in its
// own session, writing its pid file and its log file; SIGTERM stops it
// and its pid file goes. A broker that cannot start makes -d exit 1 with
// the reason.
func TestDaemon(t *testing.T) {
	bin := buildBroker(t)
	dir := t.TempDir()
	port := testutil.FreePort(t)
	pidFile, log := filepath.Join(dir, "shoal.pid"), filepath.Join(dir, "shoal.log")
	conf := filepath.Join(dir, "shoal.yaml")
	body := fmt.Sprintf("listen: 127.0.0.1:%d\npersistence: false\nadmin_listen: \"\"\nallow_anonymous: true\npid_file: %s\nlog_dest: [\"file %s\"]\n", port, pidFile, log)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out := runToExit(t, bin, dir, "-c", conf, "-d")
	if code != 0 || !strings.Contains(out, "running in the background as process") {
		t.Fatalf("-d exited %d: %s", code, out)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	if sid, err := unix.Getsid(pid); err != nil || sid != pid {
		t.Errorf("the daemon's session %d, %v; want its own (%d)", sid, err, pid)
	}
	if out, err := testutil.Mosquitto(t, 10*time.Second, "mosquitto_pub", "-p", strconv.Itoa(port), "-t", "t", "-m", "x"); err != nil {
		t.Fatalf("mosquitto_pub to the daemon: %v: %s", err, out)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 15*time.Second, "the daemon to stop and remove its pid file", func() bool {
		_, err := os.Stat(pidFile)
		return os.IsNotExist(err)
	})
	if data, _ := os.ReadFile(log); !strings.Contains(string(data), `"stopped"`) {
		t.Errorf("log file:\n%s", data)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("listen: 127.0.0.1:0\nmax_inflight: 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out = runToExit(t, bin, dir, "-c", bad, "--daemon")
	if code != 1 || !strings.Contains(out, bad+":2:15: max_inflight: 0 is outside 1..65535") || !strings.Contains(out, "did not start") {
		t.Errorf("-d with a bad file exited %d: %s", code, out)
	}
}

// TestMosquittoClientCertificates: a TLS listener with
// require_certificate and use_identity_as_username lets in the clients
// whose certificate its cafile signed, each named by its Common Name for
// the ACL, with no password; mosquitto_pub and mosquitto_sub present
// their certificates with --cert and --key.
func TestMosquittoClientCertificates(t *testing.T) {
	dir := t.TempDir()
	pki := testutil.NewPKI(t, dir, "site")
	srv := pki.Server("server")
	dev := pki.Client("device-1", "device-1", nil, nil, nil)
	acl := filepath.Join(dir, "acl")
	if err := os.WriteFile(acl, []byte("user device-1\ntopic readwrite dev/#\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port := testutil.FreePort(t)
	conf := filepath.Join(dir, "mosquitto.conf")
	body := fmt.Sprintf("user root\nlistener %d 127.0.0.1\ncertfile %s\nkeyfile %s\ncafile %s\nrequire_certificate true\nuse_identity_as_username true\nacl_file %s\n",
		port, srv.CertFile, srv.KeyFile, pki.CAFile, acl)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	_, logs, _ := runWith(t, conf, "--admin-listen", "")
	tls := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(port), "--cafile", pki.CAFile}
	withCert := append(tls, "--cert", dev.CertFile, "--key", dev.KeyFile)
	if out, err := testutil.Mosquitto(t, 10*time.Second, "mosquitto_pub", append(withCert, "-t", "dev/1", "-m", "up", "-r", "-q", "1")...); err != nil {
		t.Fatalf("with a certificate: %v: %s\n%s", err, out, logs.String())
	}
	if out, err := testutil.Mosquitto(t, 10*time.Second, "mosquitto_sub", append(withCert, "-t", "dev/#", "-C", "1", "-W", "5")...); err != nil || strings.TrimSpace(out) != "up" {
		t.Errorf("reading it back: %q, %v", out, err)
	}
	if out, err := testutil.Mosquitto(t, 10*time.Second, "mosquitto_pub", append(tls, "-t", "dev/1", "-m", "x")...); err == nil {
		t.Errorf("without a certificate: connected: %s", out)
	}
}
