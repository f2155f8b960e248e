package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
)

// TestDashboardInBrowser loads /dashboard in headless Chromium (Debian's
// chromium, driven by npm's playwright-core from testdata/browser; make deps
// installs both) while a client publishes, and checks that the page shows
// the broker's figures, that its message rate moves with the traffic, that
// its charts are drawn, and that it logs no error. It keeps a screenshot of
// the page in the test's temporary directory.
func TestDashboardInBrowser(t *testing.T) {
	dir, err := filepath.Abs("testdata/browser")
	if err != nil {
		t.Fatal(err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is not installed: run make deps")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core")); err != nil {
		t.Fatalf("playwright-core is not installed in %s: run make deps", dir)
	}
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		t.Fatal("/usr/bin/chromium is not installed: run make deps")
	}

	_, addr, base := startAdmin(t, token)
	sub, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("watcher"), CleanStart: true})
	sub.Subscribe(1, "dash/#", 0)
	pub, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("ticker"), CleanStart: true})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	published := make(chan struct{})
	go func() { // publishes until the page has seen it (QoS 0: no replies to read)
		defer close(published)
		for i := 0; ctx.Err() == nil; i++ {
			p := codec.Publish{Topic: []byte("dash/" + strconv.Itoa(i%10)), Payload: []byte("tick")}
			if _, err := pub.Conn.Write(p.Append(nil, codec.V311)); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()

	shot := filepath.Join(t.TempDir(), "dashboard.png")
	if s := os.Getenv("SHOAL_DASHBOARD_SCREENSHOT"); s != "" {
		shot = s // keep it where asked
	}
	runCtx, stop := context.WithTimeout(ctx, 60*time.Second)
	defer stop()
	cmd := exec.CommandContext(runCtx, node, filepath.Join(dir, "dashboard.mjs"), base+"/dashboard#token="+token, shot)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	cancel()
	<-published
	if err != nil {
		t.Fatalf("dashboard.mjs: %v\n%s", err, stderr.String())
	}
	var page struct {
		Status, ConnectedFirst, Connected, Inrate, Outrate, Subscriptions string
		Inked                                                             []int
		Errors                                                            []string
	}
	if err := json.Unmarshal(out, &page); err != nil {
		t.Fatalf("dashboard.mjs printed %q: %v", out, err)
	}
	t.Logf("page: %+v", page)
	if page.Connected != "2" || page.Subscriptions != "1" {
		t.Errorf("page shows %s connected, %s subscriptions; want 2 and 1", page.Connected, page.Subscriptions)
	}
	if n, err := strconv.Atoi(page.Inrate); err != nil || n <= 0 {
		t.Errorf("incoming rate %q: does not follow the traffic", page.Inrate)
	}
	if len(page.Inked) != 3 {
		t.Errorf("%d charts, want 3", len(page.Inked))
	}
	for i, n := range page.Inked {
		if n == 0 {
			t.Errorf("chart %d is blank", i)
		}
	}
	if len(page.Errors) > 0 {
		t.Errorf("the page logged errors: %q", page.Errors)
	}
	png, err := os.ReadFile(shot)
	if err != nil || len(png) < 10_000 || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Errorf("screenshot: %d bytes, %v", len(png), err)
	}
}
