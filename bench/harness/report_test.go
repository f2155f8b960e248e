package harness

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoalmq/shoal/bench/harness/brokers"
	"github.com/shoalmq/shoal/bench/harness/machine"
)

var update = flag.Bool("update", false, "rewrite the golden reports in testdata")

// fixtureVariants are the variants the testdata records belong to.
func fixtureVariants() []Variant {
	return []Variant{
		{Scenario: "idle", Name: "idle", Idle: true, Desc: "19000 connections"},
		{Scenario: "p2p", Name: "q0-sat", Fanout: 1, Desc: "10 to 10 at saturation", Pubs: []Gen{{Mode: "pub"}}},
		{Scenario: "p2p", Name: "q0-rate", Fanout: 1, Desc: "10 to 10 at 10,000 msg/s", Pubs: []Gen{{Mode: "pub"}}},
	}
}

func fixtureMeta() Meta {
	return Meta{
		Date: "2026-01-02", Command: "go run ./bench/cmd/harness -quick", Scale: Scale{Name: "quick", Rounds: 3, Duration: time.Second},
		Pinned: true, RawDir: "bench/results/raw/2026-01-02/x.jsonl", Chart: "2026-01-02-x.png",
		Machine: machine.Machine{CPUs: 2, Model: "AMD EPYC", MemBytes: 24 << 30, Kernel: "6.1.0", Go: "go1.26.0",
			Shoal: "v0.1.0", Mosquitto: "2.0.11", Mochi: "v2.7.9", Gnet: "v2.10.0"},
	}
}

func loadRecords(t *testing.T, name string) []Record {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	return recs
}

func TestSummarize(t *testing.T) {
	names := []string{brokers.Shoal, brokers.Mosquitto, brokers.Floor}
	s := Summarize("p2p", fixtureVariants(), names, loadRecords(t, "p2p.jsonl"))
	if len(s.Variants) != 2 {
		t.Fatalf("%d variants; want the 2 of p2p", len(s.Variants))
	}
	// Shoal q0-sat sent 100k, 120k, 110k msg/s: median 110k.
	if got := s.Median("q0-sat", brokers.Shoal, "sent_rate"); got != 110000 {
		t.Errorf("shoal q0-sat sent/s = %v; want 110000", got)
	}
	// Mosquitto's third round failed: the median is of the other two.
	if got := s.Median("q0-sat", brokers.Mosquitto, "lat_p99"); got != 2.25 {
		t.Errorf("mosquitto q0-sat p99 = %v; want 2.25", got)
	}
	if ok, total := s.Runs("q0-sat", brokers.Mosquitto); ok != 2 || total != 3 {
		t.Errorf("mosquitto q0-sat runs = %d/%d; want 2/3", ok, total)
	}
	if got := s.Ratio("q0-sat", brokers.Shoal, brokers.Mosquitto, "sent_rate"); math.Abs(got-110000.0/52500) > 1e-9 {
		t.Errorf("ratio = %v", got)
	}
	if got := s.Median("q0-sat", brokers.Floor, "sent_rate"); !math.IsNaN(got) {
		t.Errorf("skipped floor has a median: %v", got)
	}
	// delivered % = received / (sent × fanout): the fixture delivers all.
	if got := s.Median("q0-rate", brokers.Shoal, "delivered_pct"); got != 100 {
		t.Errorf("delivered %% = %v; want 100", got)
	}
	var failed, skipped int
	for _, n := range s.Notes {
		failed += strings.Count(n, "failed")
		skipped += strings.Count(n, "skipped")
	}
	if failed != 1 || skipped != 2 {
		t.Errorf("notes = %q; want 1 failure and 2 skips (one per variant)", s.Notes)
	}

	idle := Summarize("idle", fixtureVariants(), names, loadRecords(t, "idle.jsonl"))
	if got := idle.Median("idle", brokers.Shoal, "rss_per_conn"); got != 3000 {
		t.Errorf("idle RSS/conn = %v; want 3000", got)
	}
	if got := idle.Median("idle", brokers.Shoal, "connect_rate"); got != 20000 {
		t.Errorf("idle connects/s = %v; want the two generators' sum, 20000", got)
	}
	// The worse of the two generators' p99 per round: 2.5, 3.5, 4.5.
	if got := idle.Median("idle", brokers.Shoal, "connack_p99"); got != 3.5 {
		t.Errorf("idle CONNACK p99 = %v; want 3.5", got)
	}
}

func TestRenderMarkdown(t *testing.T) {
	names := []string{brokers.Shoal, brokers.Mosquitto, brokers.Floor}
	for _, sc := range []string{"p2p", "idle"} {
		s := Summarize(sc, fixtureVariants(), names, loadRecords(t, sc+".jsonl"))
		got := RenderMarkdown(s, fixtureMeta())
		golden := filepath.Join("testdata", sc+".golden.md")
		if *update {
			if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test -update to create it)", err)
		}
		if got != string(want) {
			t.Errorf("%s report differs from %s (go test -update rewrites it):\n%s", sc, golden, got)
		}
	}
}

func TestPrintComparison(t *testing.T) {
	names := []string{brokers.Shoal, brokers.Mosquitto, brokers.Floor}
	s := Summarize("p2p", fixtureVariants(), names, loadRecords(t, "p2p.jsonl"))
	var b bytes.Buffer
	PrintComparison(&b, []*Summary{s})
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	// A header, then delivered/s, p99 and CPU per delivery for each of 2
	// variants.
	if len(lines) != 7 {
		t.Fatalf("%d lines; want 7:\n%s", len(lines), b.String())
	}
	if !strings.Contains(lines[0], "shoal/mosquitto") || !strings.Contains(lines[1], "110,000") {
		t.Errorf("unexpected table:\n%s", b.String())
	}
}

func TestChart(t *testing.T) {
	names := []string{brokers.Shoal, brokers.Mosquitto, brokers.Floor}
	s := Summarize("p2p", fixtureVariants(), names, loadRecords(t, "p2p.jsonl"))
	c := Chart(s, fixtureMeta())
	// Saturation and fixed rate each get a row: throughput, p99, CPU.
	if len(c.Panels) != 6 || len(c.Series) != 3 || c.Columns != 3 {
		t.Fatalf("chart: %d panels, %d series, %d columns; want 6, 3 and 3", len(c.Panels), len(c.Series), c.Columns)
	}
	p := c.Panels[0]
	if len(p.Groups) != 1 || p.Groups[0] != "q0-sat" || p.Values[0][0] == nil || *p.Values[0][0] != 110000 || p.Values[0][2] != nil {
		t.Errorf("saturation throughput panel = %+v", p)
	}
	if p := c.Panels[4]; len(p.Groups) != 1 || p.Groups[0] != "q0-rate" || *p.Values[0][1] != 0.55 {
		t.Errorf("fixed-rate p99 panel = %+v", p)
	}
	if _, err := c.JSON(); err != nil {
		t.Error(err)
	}
}

// TestRecordHidesScratch: commands kept in reports name the scratch
// directory as $SCRATCH, never as this machine's temporary path.
func TestRecordHidesScratch(t *testing.T) {
	r := &Runner{Work: "/scratch-dir-x"}
	got := r.record([]string{"/scratch-dir-x/bin/shoal", "-c", "/scratch-dir-x/a/shoal.yaml"})
	if want := "$SCRATCH/bin/shoal -c $SCRATCH/a/shoal.yaml"; got != want {
		t.Fatalf("record = %q, want %q", got, want)
	}
}

// TestRenderBaselines: a variant with a baseline gets each broker's
// median over its own baseline median, and only for brokers that ran it.
func TestRenderBaselines(t *testing.T) {
	base := Variant{Scenario: "slowsub", Name: "q1-rate", Fanout: 1, Pubs: []Gen{{Mode: "pub"}}}
	stalled := base
	stalled.Name, stalled.Baseline = "q1-stalled-rate", base.Name
	rec := func(variant, broker string, p99 float64) Record {
		return Record{Scenario: "slowsub", Variant: variant, Broker: broker, Round: 1,
			Subs: []GenResult{{Received: 1000, LatP50: 1, LatP99: p99, LatP999: p99, DurationS: 1}},
			Pubs: []GenResult{{Sent: 1000, DurationS: 1}}}
	}
	recs := []Record{
		rec(base.Name, brokers.Shoal, 2), rec(stalled.Name, brokers.Shoal, 3),
		rec(base.Name, brokers.Mosquitto, 4), rec(stalled.Name, brokers.Mosquitto, 40),
		{Scenario: "slowsub", Variant: stalled.Name, Broker: brokers.Floor, Skipped: "no"},
	}
	s := Summarize("slowsub", []Variant{base, stalled}, []string{brokers.Shoal, brokers.Mosquitto, brokers.Floor}, recs)
	out := RenderMarkdown(s, fixtureMeta())
	_, sec, ok := strings.Cut(out, "## Against the baseline")
	if !ok {
		t.Fatalf("no baseline section:\n%s", out)
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	for _, want := range []string{
		"| q1-stalled-rate | q1-rate | shoal | 1.00× | 1.00× | 1.50× | 1.50× |",
		"| q1-stalled-rate | q1-rate | mosquitto | 1.00× | 1.00× | 10.00× | 10.00× |",
	} {
		if !strings.Contains(sec, want) {
			t.Errorf("baseline section lacks %q:\n%s", want, sec)
		}
	}
	if strings.Contains(sec, "floor") {
		t.Errorf("baseline section has a row for the skipped floor:\n%s", sec)
	}
}

// TestRenderRates: the fixed-rate report lists each broker's figures per
// delivery and Shoal's ratios against Mosquitto with the verdict.
func TestRenderRates(t *testing.T) {
	names := []string{brokers.Shoal, brokers.Mosquitto, brokers.Floor}
	s := Summarize("p2p", fixtureVariants(), names, loadRecords(t, "p2p.jsonl"))
	out := RenderRates([]*Summary{s}, fixtureMeta())
	for _, want := range []string{
		// Shoal: 0.1, 0.1, 0.125 s over 50,000 deliveries; segments and
		// calls per delivery from the counters, syscalls from perf.
		"| p2p | q0-rate | shoal | 100.0 | 0.09 | 0.35 | 2.00 | 1.00 | 2.00 | 0.100 | 2.50 |",
		"| p2p | q0-rate | mosquitto | 100.0 |",
		// 2.00 / 3.00 s/M, p99 0.35 / 0.55.
		"| p2p | q0-rate | mosquitto | 0.67× | 0.64× | 1.33× | met |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("rates report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "q0-sat") {
		t.Errorf("rates report has a saturation row:\n%s", out)
	}

	// Shoal's own variants get a ratio but no verdict: the target is
	// against Mosquitto. Here shoal-nagle ran as Mosquitto did.
	recs := loadRecords(t, "p2p.jsonl")
	for _, r := range recs {
		if r.Broker == brokers.Mosquitto {
			r.Broker = brokers.ShoalNagle
			recs = append(recs, r)
		}
	}
	names = []string{brokers.Shoal, brokers.ShoalNagle, brokers.Mosquitto}
	out = RenderRates([]*Summary{Summarize("p2p", fixtureVariants(), names, recs)}, fixtureMeta())
	for _, want := range []string{
		"| p2p | q0-rate | shoal-nagle | 0.67× | 0.64× | 1.33× | — |",
		"| p2p | q0-rate | mosquitto | 0.67× | 0.64× | 1.33× | met |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("rates report with shoal-nagle lacks %q:\n%s", want, out)
		}
	}
	if RenderRates(nil, fixtureMeta()) != "" {
		t.Error("rates report of nothing is not empty")
	}
}

func TestFilterVariants(t *testing.T) {
	vs, _ := Variants(Full(), []string{"p2p", "fanout"})
	got, err := FilterVariants(vs, []string{"*-rate"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range got {
		names = append(names, v.Scenario+"/"+v.Name)
	}
	want := "p2p/q0-rate p2p/q1-rate fanout/q0-rate fanout/q0-500-rate fanout/q0-5000-rate"
	if strings.Join(names, " ") != want {
		t.Errorf("FilterVariants(*-rate) = %v; want %s", names, want)
	}
	if all, _ := FilterVariants(vs, nil); len(all) != len(vs) {
		t.Errorf("no patterns kept %d of %d", len(all), len(vs))
	}
	if _, err := FilterVariants(vs, []string{"q9-*"}); err == nil {
		t.Error("a pattern that matches nothing: no error")
	}
}
