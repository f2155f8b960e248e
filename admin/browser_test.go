package admin_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
)

// browserDeps fails the test unless node, testdata/browser's npm packages
// and Chromium are installed (make deps), and returns that directory.
func browserDeps(t *testing.T) (node, dir string) {
	t.Helper()
	dir, err := filepath.Abs("testdata/browser")
	if err != nil {
		t.Fatal(err)
	}
	node, err = exec.LookPath("node")
	if err != nil {
		t.Fatal("node is not installed: run make deps")
	}
	for _, pkg := range []string{"playwright-core", "uplot"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg)); err != nil {
			t.Fatalf("%s is not installed in %s: run make deps", pkg, dir)
		}
	}
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		t.Fatal("/usr/bin/chromium is not installed: run make deps")
	}
	return node, dir
}

// pageChart is what dashboard.mjs reads of one chart.
type pageChart struct {
	Samples int
	T0      float64
	XLabel  string
	XTime   bool
	YLabel  string
	Legend  []string
	Last    []*float64
}

// pagePhase is one line dashboard.mjs prints.
type pagePhase struct {
	Phase        string
	Unauthorized struct {
		Status int
		Text   string
	}
	First struct {
		Samples int
		T0      int64
	}
	Charts   map[string]pageChart
	Tiles    map[string]string
	Inked    map[string]int
	Fragment struct {
		URL     string
		Samples int
	}
	Errors  []string
	Cluster pageCluster
}

// pageCluster is what dashboard.mjs reads of the cluster panel.
type pageCluster struct {
	Visible bool
	Answer  *struct{ Enabled bool }
	Note    string
	Traffic string
	Rows    [][]string
}

// runPage runs dashboard.mjs in dir with args (after its path), calls
// onPhase (when not nil) with each line it prints as it comes, and
// returns every phase by name once it has ended.
func runPage(t *testing.T, ctx context.Context, node, dir string, args []string, onPhase func(pagePhase)) map[string]pagePhase {
	t.Helper()
	cmd := exec.CommandContext(ctx, node, append([]string{filepath.Join(dir, "dashboard.mjs")}, args...)...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	phases := map[string]pagePhase{}
	lines := bufio.NewScanner(stdout)
	lines.Buffer(nil, 1<<20)
	for lines.Scan() {
		var p pagePhase
		if err := json.Unmarshal(lines.Bytes(), &p); err != nil {
			t.Errorf("dashboard.mjs printed %q: %v", lines.Text(), err)
			continue
		}
		phases[p.Phase] = p
		if onPhase != nil {
			onPhase(p)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("dashboard.mjs: %v\n%s", err, stderr.String())
	}
	return phases
}

// TestDashboardInBrowser loads /dashboard in headless Chromium (Debian's
// chromium, driven by npm's playwright-core from testdata/browser; make deps
// installs both). The server's history already holds a minute of samples,
// taken at ticks the test sends, when the page opens. The test checks that
// the page first shows the 401 page, which says how to pass the token, and
// signs in through its form; that the first answer draws the whole history
// at once; that the charts have a time axis, value axes with units and
// legends (in, out); that the tiles show the broker's figures, retained
// messages split into user and $SYS; that a new sample is appended
// without a reload; that an old /dashboard#token=... address still signs
// in; and that the pages log no error. It keeps a screenshot of the page in
// the test's temporary directory, or at $SHOAL_DASHBOARD_SCREENSHOT.
func TestDashboardInBrowser(t *testing.T) {
	node, dir := browserDeps(t)
	ticks := make(chan time.Time)
	b, addr, base := startAdminWith(t, adminOpts{token: token, sys: time.Hour, ticks: ticks})
	sub, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("watcher"), CleanStart: true})
	sub.Subscribe(1, "#", 0) // so that messages go out too
	pub, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("ticker"), CleanStart: true})
	pub.SendPublish(codec.Publish{Topic: []byte("dash/config"), QoS: 1, PacketID: 1, Retain: true, Payload: []byte("on")})
	pub.ExpectAck(codec.PUBACK, 1, testutil.Wait)
	testutil.Eventually(t, testutil.Wait, "the $SYS topics to be retained", func() bool { return b.Stats().RetainedSys > 0 })

	// A minute of history, 2 s apart, ending now; 1 to 3 messages between
	// samples, so that every rate after the first is above zero.
	const prefilled = 30
	start := time.Now().Add(-2 * time.Second * (prefilled - 1)).Truncate(time.Millisecond)
	id := uint16(1)
	for i := range prefilled {
		if i > 0 {
			publishAcked(t, pub, 1+i%3, &id)
		}
		tick(t, ticks, base, start.Add(time.Duration(i)*2*time.Second))
	}
	h := getHistory(t, base, "")
	if len(h.T) != prefilled {
		t.Fatalf("%d samples, want %d", len(h.T), prefilled)
	}

	shot := filepath.Join(t.TempDir(), "dashboard.png")
	if s := os.Getenv("SHOAL_DASHBOARD_SCREENSHOT"); s != "" {
		shot = s // keep it where asked
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	live := make(chan struct{}) // closed when the live ticks stop
	liveCtx, stopLive := context.WithCancel(ctx)
	phases := runPage(t, ctx, node, dir, []string{base, token, shot}, func(p pagePhase) {
		if p.Phase == "loaded" { // the first answer is drawn: new samples may come
			go func() {
				defer close(live)
				for {
					select {
					case <-liveCtx.Done():
						return
					case <-time.After(300 * time.Millisecond):
					}
					p := codec.Publish{Topic: []byte("dash/live"), Payload: []byte("tick")} // QoS 0: no reply to read here
					_, _ = pub.Conn.Write(p.Append(nil, codec.V311))
					select {
					case ticks <- time.Now():
					case <-liveCtx.Done():
						return
					}
				}
			}()
		}
	})
	stopLive()
	if _, ok := phases["loaded"]; ok {
		<-live
	}
	if t.Failed() {
		t.FailNow()
	}
	loaded, done := phases["loaded"], phases["done"]
	t.Logf("loaded: first %+v, tiles %v", loaded.First, loaded.Tiles)
	t.Logf("done: inked %v, fragment %+v", done.Inked, done.Fragment)

	// The 401 page says how to pass the token.
	if u := loaded.Unauthorized; u.Status != 401 || !strings.Contains(u.Text, "401: this needs the admin token") ||
		!strings.Contains(u.Text, `Authorization: Bearer $TOKEN`) || !strings.Contains(u.Text, "admin_token") {
		t.Errorf("the 401 page: %d %q", u.Status, u.Text)
	}

	// The history was drawn at once: the first answer had every prefilled
	// sample, and so did every chart before any new one was taken.
	if loaded.First.Samples != prefilled || loaded.First.T0 != h.T[0] {
		t.Errorf("the first answer drew %d samples from %d; want the %d prefilled from %d",
			loaded.First.Samples, loaded.First.T0, prefilled, h.T[0])
	}
	units := map[string]string{"conn": "connections", "msgs": "msg/s", "bytes": "B/s", "drops": "msg/s",
		"queued": "messages", "retained": "messages"}
	if len(loaded.Charts) != len(units) {
		t.Errorf("%d charts, want %d", len(loaded.Charts), len(units))
	}
	for id, unit := range units {
		c := loaded.Charts[id]
		if c.Samples != prefilled || c.T0 != float64(h.T[0])/1000 {
			t.Errorf("chart %s at load: %d samples from %v, want %d from %v", id, c.Samples, c.T0, prefilled, float64(h.T[0])/1000)
		}
		if !c.XTime || c.XLabel != "time" || c.YLabel != unit {
			t.Errorf("chart %s: x axis %q (time scale %v), y axis %q; want a time axis and %q", id, c.XLabel, c.XTime, c.YLabel, unit)
		}
	}
	for _, id := range []string{"msgs", "bytes"} {
		if legend := loaded.Charts[id].Legend; !slices.Contains(legend, "in") || !slices.Contains(legend, "out") {
			t.Errorf("chart %s: legend %q, want in and out", id, legend)
		}
	}
	if legend := loaded.Charts["retained"].Legend; !slices.Contains(legend, "user") || !slices.Contains(legend, "$SYS") {
		t.Errorf("retained chart: legend %q, want user and $SYS", legend)
	}
	if in := loaded.Charts["msgs"].Last; len(in) != 2 || in[0] == nil || *in[0] <= 0 {
		t.Errorf("messages chart: last values %v, want a rate in above zero", deref(in))
	}

	// The tiles show the last sample at once: no "–" while a rate waits
	// for a second sample.
	lastSys := h.Series["retained_sys"][prefilled-1]
	for k, want := range map[string]string{"connected": "2", "subscriptions": "1", "retained-user": "1",
		"retained-sys": strconv.FormatFloat(*lastSys, 'f', -1, 64)} {
		if got := loaded.Tiles[k]; got != want {
			t.Errorf("tile %s: %q, want %q", k, got, want)
		}
	}
	if n, err := strconv.ParseFloat(loaded.Tiles["inrate"], 64); err != nil || n <= 0 {
		t.Errorf("incoming rate %q at load: want the last sample's, above zero", loaded.Tiles["inrate"])
	}

	// New samples are appended.
	for id, c := range done.Charts {
		if c.Samples <= prefilled {
			t.Errorf("chart %s: %d samples after the live ticks, want more than %d", id, c.Samples, prefilled)
		}
	}
	for id := range units {
		if done.Inked[id] == 0 {
			t.Errorf("chart %s is blank", id)
		}
	}
	if done.Fragment.URL != base+"/dashboard" || done.Fragment.Samples < prefilled {
		t.Errorf("/dashboard#token=...: ended at %q with %d samples", done.Fragment.URL, done.Fragment.Samples)
	}
	if len(done.Errors) > 0 {
		t.Errorf("the pages logged errors: %q", done.Errors)
	}
	if c := done.Cluster; c.Visible || c.Answer == nil || c.Answer.Enabled || len(c.Rows) > 0 {
		t.Errorf("a single node's cluster panel: %+v, want hidden after /api/cluster said not enabled", c)
	}
	checkScreenshot(t, shot)
}

// checkScreenshot fails the test unless shot is a PNG of some size.
func checkScreenshot(t *testing.T, shot string) {
	t.Helper()
	png, err := os.ReadFile(shot)
	if err != nil || len(png) < 10_000 || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Errorf("screenshot: %d bytes, %v", len(png), err)
	}
}
