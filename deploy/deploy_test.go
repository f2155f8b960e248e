// Package deploy_test checks the deployment files beside it: the Grafana
// dashboard and the Prometheus alert rules name only metrics — and label
// values — that a running broker exports, and the Dockerfile has the
// stages, user, volume and healthcheck it promises. It cannot build the
// image: there is no container daemon here.
package deploy_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/shoalmq/shoal/admin"
	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
)

// exported is what a broker's /metrics holds: metric name to label name to
// the values seen.
type exported map[string]map[string]map[string]bool

// scrape runs a broker with a store and its admin server, gives it a
// connection and a stored QoS 1 message (so that the per-loop and store
// series exist), and reads /metrics.
func scrape(t *testing.T) exported {
	t.Helper()
	b, addr := testutil.StartBroker(t, func(c *broker.Config) { c.DataDir = filepath.Join(t.TempDir(), "data") })
	base := testutil.StartAdmin(t, b, admin.Config{}, nil)
	sub, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("keeper")})
	sub.Subscribe(1, "t", 1)
	pub, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("p"), CleanStart: true})
	pub.SendPublish(codec.Publish{Topic: []byte("t"), QoS: 1, PacketID: 1, Payload: []byte("x")})
	pub.ExpectAck(codec.PUBACK, 1, testutil.Wait)

	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return parseExposition(t, string(body))
}

// sample is one line of the text exposition format: name{labels} value.
var sample = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? `)

// labelPair is one label="value" of a sample or a selector; the operator
// is captured for selectors.
var labelPair = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!=|!~|=)\s*"((?:[^"\\]|\\.)*)"`)

func parseExposition(t *testing.T, body string) exported {
	t.Helper()
	ex := exported{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		m := sample.FindStringSubmatch(sc.Text())
		if m == nil {
			continue // comments, blank lines
		}
		labels := ex[m[1]]
		if labels == nil {
			labels = map[string]map[string]bool{}
			ex[m[1]] = labels
		}
		for _, p := range labelPair.FindAllStringSubmatch(m[2], -1) {
			if labels[p[1]] == nil {
				labels[p[1]] = map[string]bool{}
			}
			labels[p[1]][p[3]] = true
		}
	}
	if len(ex) == 0 {
		t.Fatalf("no samples in /metrics:\n%s", body)
	}
	return ex
}

// metricName finds the names the files use: the broker's own (shoal_) and
// the Go and process collectors' it serves beside them.
var metricName = regexp.MustCompile(`\b(?:shoal|process|go)_[a-zA-Z0-9_]*[a-zA-Z0-9]`)

// selector finds name{matchers} in a PromQL expression.
var selector = regexp.MustCompile(`\b((?:shoal|process|go)_[a-zA-Z0-9_]*)\{([^}]*)\}`)

// strings walks a decoded JSON or YAML document and returns every string
// in it, keys included.
func allStrings(v any) []string {
	var out []string
	switch x := v.(type) {
	case string:
		out = append(out, x)
	case []any:
		for _, e := range x {
			out = append(out, allStrings(e)...)
		}
	case map[string]any:
		for k, e := range x {
			out = append(out, k)
			out = append(out, allStrings(e)...)
		}
	}
	return out
}

// checkNames fails for every metric named in texts that ex lacks, and for
// every label value a selector asks for that ex has never shown. Labels
// Prometheus adds at scrape time (job, instance) and Grafana variables
// ($instance) are not checked. It returns the names used.
func checkNames(t *testing.T, file string, texts []string, ex exported) map[string]bool {
	t.Helper()
	used := map[string]bool{}
	for _, s := range texts {
		for _, name := range metricName.FindAllString(s, -1) {
			used[name] = true
			if ex[name] == nil {
				t.Errorf("%s names %s, which the broker does not export", file, name)
			}
		}
		for _, sel := range selector.FindAllStringSubmatch(s, -1) {
			name := sel[1]
			for _, p := range labelPair.FindAllStringSubmatch(sel[2], -1) {
				label, op, value := p[1], p[2], p[3]
				if label == "job" || label == "instance" || strings.Contains(value, "$") || (op != "=" && op != "=~") {
					continue
				}
				values := []string{value}
				if op == "=~" {
					if strings.ContainsAny(value, `.*+?()[]{}^\`) {
						continue // a real regular expression: not checked
					}
					values = strings.Split(value, "|")
				}
				for _, v := range values {
					if !ex[name][label][v] {
						t.Errorf("%s selects %s{%s=%q}, which the broker does not export (it has %s values %v)",
							file, name, label, v, label, keys(ex[name][label]))
					}
				}
			}
		}
	}
	return used
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// The metrics the issue asks the dashboard and the alerts to cover.
var (
	dashboardMust = []string{
		"shoal_clients_connected", "shoal_max_connections", "shoal_messages_total", "shoal_dropped_messages_total",
		"shoal_queued_messages", "shoal_store_sync_duration_seconds_bucket", "shoal_disconnects_total",
	}
	alertsMust = []string{
		"shoal_clients_connected", "shoal_max_connections", "shoal_dropped_messages_total",
		"shoal_disconnects_total", "shoal_store_sync_duration_seconds_bucket",
	}
)

func TestGrafanaDashboard(t *testing.T) {
	raw, err := os.ReadFile("grafana/shoal-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID           string `json:"uid"`
		Title         string `json:"title"`
		SchemaVersion int    `json:"schemaVersion"`
		Panels        []struct {
			ID      int    `json:"id"`
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("grafana/shoal-dashboard.json: %v", err)
	}
	if dash.UID == "" || dash.Title == "" || dash.SchemaVersion == 0 || len(dash.Panels) == 0 {
		t.Fatalf("dashboard lacks uid, title, schemaVersion or panels: %+v", dash)
	}
	ids := map[int]bool{}
	exprs := 0
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q has a target without expr", p.Title)
			}
			exprs++
		}
	}
	if exprs == 0 {
		t.Fatal("no queries in the dashboard")
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	used := checkNames(t, "grafana/shoal-dashboard.json", allStrings(doc), scrape(t))
	for _, m := range dashboardMust {
		if !used[m] {
			t.Errorf("the dashboard does not show %s", m)
		}
	}
}

func TestAlertRules(t *testing.T) {
	raw, err := os.ReadFile("prometheus/shoal-alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("prometheus/shoal-alerts.yaml: %v", err)
	}
	var exprs []string
	names := map[string]bool{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %+v lacks alert, expr, a severity label or a summary", r)
			}
			if names[r.Alert] {
				t.Errorf("alert %s twice", r.Alert)
			}
			names[r.Alert] = true
			if _, err := time.ParseDuration(r.For); r.For != "" && err != nil {
				t.Errorf("alert %s: for %q: %v", r.Alert, r.For, err)
			}
			exprs = append(exprs, r.Expr)
			for _, a := range r.Annotations {
				exprs = append(exprs, a)
			}
		}
	}
	if len(names) == 0 {
		t.Fatal("no alerts")
	}
	used := checkNames(t, "prometheus/shoal-alerts.yaml", exprs, scrape(t))
	for _, m := range alertsMust {
		if !used[m] {
			t.Errorf("no alert watches %s", m)
		}
	}
	if !names["ShoalDown"] {
		t.Error("no alert for a broker that is down")
	}

	// promtool (Debian's prometheus package) parses the PromQL; CI puts
	// it on PATH.
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool not on PATH: the rules' PromQL is not parsed (apt-get download prometheus; dpkg-deb -x it)")
		return
	}
	if out, err := exec.Command(promtool, "check", "rules", "prometheus/shoal-alerts.yaml").CombinedOutput(); err != nil {
		t.Errorf("promtool check rules: %v\n%s", err, out)
	}
}
