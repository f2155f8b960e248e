package harness

import (
	"reflect"
	"strings"
	"testing"

	"github.com/shoalmq/shoal/bench/harness/brokers"
)

func TestVariants(t *testing.T) {
	for _, s := range []Scale{Full(), Quick()} {
		vs, err := Variants(s, Scenarios())
		if err != nil {
			t.Fatal(err)
		}
		seen := make(map[string]bool)
		for _, v := range vs {
			key := v.Scenario + "/" + v.Name
			if seen[key] {
				t.Errorf("%s: variant %s twice", s.Name, key)
			}
			seen[key] = true
			if v.Idle != (len(v.Pubs) == 0) {
				t.Errorf("%s: %s: idle %v with %d publisher processes", s.Name, key, v.Idle, len(v.Pubs))
			}
			if v.Baseline != "" && !seen[v.Scenario+"/"+v.Baseline] {
				t.Errorf("%s: %s: baseline %q is not an earlier variant of its scenario", s.Name, key, v.Baseline)
			}
			for _, g := range append(append(append([]Gen{}, v.Subs...), v.Pubs...), v.Stalled...) {
				// One generator process holds at most ~19,000 sockets here.
				if g.Count < 1 || g.Count > 9500 {
					t.Errorf("%s: %s: a generator of %d clients", s.Name, key, g.Count)
				}
				if g.Mode == "pub" && g.Size < 20 {
					t.Errorf("%s: %s: payload %d < 20", s.Name, key, g.Size)
				}
			}
			if strings.HasSuffix(v.Name, "-rate") && v.Pubs[0].Interval == 0 {
				t.Errorf("%s: %s: a fixed-rate variant saturates", s.Name, key)
			}
			if strings.HasSuffix(v.Name, "-sat") && v.Pubs[0].Interval != 0 {
				t.Errorf("%s: %s: a saturation variant has -I %d", s.Name, key, v.Pubs[0].Interval)
			}
		}
		// The quick scale runs one cluster variant of six.
		want := map[string]int{"full": 27, "quick": 22}[s.Name]
		if len(vs) != want {
			t.Errorf("%s: %d variants; want %d", s.Name, len(vs), want)
		}
	}
	if _, err := Variants(Quick(), []string{"nope"}); err == nil {
		t.Error("an unknown scenario: no error")
	}
}

func TestInterval(t *testing.T) {
	for _, c := range [][3]int{{100, 10000, 10}, {1000, 10000, 100}, {1, 20, 50}, {20, 1000, 20}, {1, 5000, 1}} {
		if got := interval(c[0], c[1]); got != c[2] {
			t.Errorf("interval(%d pubs, %d/s) = %d; want %d", c[0], c[1], got, c[2])
		}
	}
}

func TestFloorVariants(t *testing.T) {
	vs, _ := Variants(Quick(), []string{"fanin", "mesh"})
	for _, v := range vs {
		subs, pubs := v.For(brokers.Floor)
		switch {
		case v.Shared:
			if v.Skip(brokers.Floor) == "" {
				t.Errorf("%s/%s: the floor runs a shared subscription", v.Scenario, v.Name)
			}
		case v.Scenario == "mesh":
			if subs[0].Topic != "mesh/all" || pubs[0].Topic != "mesh/all" || v.Subs[0].Topic != "mesh/+" {
				t.Errorf("mesh for the floor: sub %q pub %q (others sub %q)", subs[0].Topic, pubs[0].Topic, v.Subs[0].Topic)
			}
		default:
			if strings.ContainsAny(subs[0].Topic, "+#") {
				t.Errorf("%s/%s: the floor gets wildcard filter %q", v.Scenario, v.Name, subs[0].Topic)
			}
		}
		if v.Skip(brokers.Shoal) != "" {
			t.Errorf("%s/%s: Shoal skipped", v.Scenario, v.Name)
		}
	}
}

func TestSlowsubVariants(t *testing.T) {
	vs, err := Variants(Full(), []string{"slowsub"})
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 {
		t.Fatalf("%d slowsub variants; want 2", len(vs))
	}
	base, stalled := vs[0], vs[1]
	if len(base.Stalled) != 0 || len(stalled.Stalled) != 1 || stalled.Stalled[0].Mode != "stall" || stalled.Stalled[0].Topic != "bench/#" {
		t.Errorf("stalled generators: base %+v, stalled %+v", base.Stalled, stalled.Stalled)
	}
	if stalled.Baseline != base.Name {
		t.Errorf("stalled variant's baseline %q; want %q", stalled.Baseline, base.Name)
	}
	if !reflect.DeepEqual(base.Pubs, stalled.Pubs) || !reflect.DeepEqual(base.Subs, stalled.Subs) {
		t.Error("the stalled variant's load differs from its baseline's")
	}
	for _, v := range vs {
		if v.Skip(brokers.Floor) == "" || v.Skip(brokers.Shoal) != "" || v.Skip(brokers.Mosquitto) != "" {
			t.Errorf("%s: skips floor %q shoal %q mosquitto %q", v.Name, v.Skip(brokers.Floor), v.Skip(brokers.Shoal), v.Skip(brokers.Mosquitto))
		}
	}
	args := strings.Join(stalled.Stalled[0].Args("127.0.0.1", 1883, "g9", "r", ""), " ")
	if !strings.HasPrefix(args, "stall ") || !strings.Contains(args, "-t bench/# -q 1") {
		t.Errorf("stall generator args: %s", args)
	}
}

// TestFanoutWide: the wide fan-outs deliver their rate to every
// subscriber, from one publisher.
func TestFanoutWide(t *testing.T) {
	vs, err := Variants(Full(), []string{"fanout"})
	if err != nil {
		t.Fatal(err)
	}
	got := make(map[string]int) // name -> deliveries/s
	for _, v := range vs {
		if iv := v.Pubs[0].Interval; iv > 0 {
			got[v.Name] = v.Fanout * v.Pubs[0].Count * 1000 / iv
			if v.Subs[0].Count != v.Fanout {
				t.Errorf("%s: %d subscribers, fan-out %d", v.Name, v.Subs[0].Count, v.Fanout)
			}
		}
	}
	want := map[string]int{"q0-rate": 10000, "q0-500-rate": 100000, "q0-5000-rate": 100000}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("fixed-rate fan-outs (deliveries/s) = %v; want %v", got, want)
	}
}
