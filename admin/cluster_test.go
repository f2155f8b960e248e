package admin_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/internal/testutil"
)

// TestAPIClusterSingleNode: /api/cluster needs the token like the rest of
// the API, and a broker without a cluster section answers that it has
// none.
func TestAPIClusterSingleNode(t *testing.T) {
	_, _, base := startAdmin(t, token)
	if code, _ := call(t, "GET", base+"/api/cluster", ""); code != 401 {
		t.Errorf("/api/cluster without the token: %d, want 401", code)
	}
	code, body := call(t, "GET", base+"/api/cluster", token)
	if code != 200 || strings.Join(strings.Fields(body), "") != `{"enabled":false}` {
		t.Errorf("/api/cluster: %d %s, want {\"enabled\": false}", code, body)
	}
}

// TestDashboardClusterInBrowser: on a cluster node (a cluster of one:
// JetStream's meta leader itself) the dashboard shows the cluster panel —
// its name, the nodes up, a row per node with its state, role and
// sessions, the traffic between nodes — from /api/cluster, and logs no
// error. The single node's hidden panel is TestDashboardInBrowser's.
func TestDashboardClusterInBrowser(t *testing.T) {
	node, dir := browserDeps(t)
	_, _, base := startAdminWith(t, adminOpts{token: token, edit: func(c *broker.Config) {
		c.DataDir = filepath.Join(t.TempDir(), "data")
		c.Cluster = &broker.ClusterConfig{Name: "dash", Node: "solo", Listen: testutil.FreeAddr(t), Replicas: 1}
	}})
	shot := filepath.Join(t.TempDir(), "cluster.png")
	if s := os.Getenv("SHOAL_DASHBOARD_SCREENSHOT"); s != "" {
		shot = strings.TrimSuffix(s, ".png") + "-cluster.png" // beside TestDashboardInBrowser's
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	p, ok := runPage(t, ctx, node, dir, []string{base, token, shot, "cluster"}, nil)["cluster"]
	if !ok {
		t.Fatal("dashboard.mjs printed no cluster phase")
	}
	c := p.Cluster
	t.Logf("cluster panel: %+v", c)
	if !c.Visible || c.Answer == nil || !c.Answer.Enabled {
		t.Fatalf("the cluster panel: %+v, want it shown", c)
	}
	if want := [][]string{{"solo (this node)", "● up", "JetStream meta leader", "0"}}; !slices.EqualFunc(c.Rows, want, slices.Equal) {
		t.Errorf("rows %q, want %q", c.Rows, want)
	}
	if !strings.Contains(c.Note, "1 of 1 nodes up") || !strings.Contains(c.Note, "NATS embedded") {
		t.Errorf("note %q, want 1 of 1 nodes up, NATS embedded", c.Note)
	}
	if !strings.Contains(c.Traffic, "messages to other nodes 0") || !strings.Contains(c.Traffic, "other nodes' subscriptions here 0") {
		t.Errorf("traffic %q", c.Traffic)
	}
	if len(p.Errors) > 0 {
		t.Errorf("the page logged errors: %q", p.Errors)
	}
	checkScreenshot(t, shot)
}
