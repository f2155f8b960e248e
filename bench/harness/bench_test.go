package harness

import (
	"slices"
	"testing"

	"github.com/shoalmq/shoal/bench/harness/brokers"
)

func TestWithBefore(t *testing.T) {
	tests := []struct {
		brokers []string
		before  string
		want    []string
	}{
		{[]string{brokers.Shoal, brokers.Mosquitto}, "", []string{brokers.Shoal, brokers.Mosquitto}},
		{[]string{brokers.Shoal, brokers.Mosquitto}, "abc", []string{brokers.Shoal, brokers.ShoalBefore, brokers.Mosquitto}},
		{[]string{brokers.Mosquitto, brokers.Shoal}, "abc", []string{brokers.Mosquitto, brokers.Shoal, brokers.ShoalBefore}},
		{[]string{brokers.Mosquitto}, "abc", []string{brokers.ShoalBefore, brokers.Mosquitto}},
		{[]string{brokers.ShoalBefore, brokers.Shoal}, "abc", []string{brokers.ShoalBefore, brokers.Shoal}},
	}
	for _, tt := range tests {
		if got := withBefore(tt.brokers, tt.before); !slices.Equal(got, tt.want) {
			t.Errorf("withBefore(%q, %q) = %q; want %q", tt.brokers, tt.before, got, tt.want)
		}
	}
}

// TestRanIn: a broker that skipped every variant of a scenario has no
// column, only a note.
func TestRanIn(t *testing.T) {
	recs := []Record{
		{Scenario: "cluster", Variant: "a", Broker: brokers.Shoal},
		{Scenario: "cluster", Variant: "a", Broker: brokers.Mosquitto, Skipped: "no cluster"},
		{Scenario: "cluster", Variant: "a", Broker: brokers.ShoalCluster, Error: "boom"},
		{Scenario: "p2p", Variant: "a", Broker: brokers.Mosquitto},
	}
	ran, notes := ranIn("cluster", []string{brokers.Shoal, brokers.ShoalCluster, brokers.Mosquitto, brokers.Mochi}, recs)
	if !slices.Equal(ran, []string{brokers.Shoal, brokers.ShoalCluster}) || !slices.Equal(notes, []string{"mosquitto skipped every variant: no cluster."}) {
		t.Errorf("ranIn = %q, %q", ran, notes)
	}
}
