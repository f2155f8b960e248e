package suggest

import "testing"

func TestClosest(t *testing.T) {
	known := []string{"listen", "loops", "workers", "max_inflight", "max_queued"}
	tests := []struct{ in, want string }{
		{in: "listne", want: "listen"},
		{in: "lisen", want: "listen"},
		{in: "Listen", want: "listen"},
		{in: "loop", want: "loops"},
		{in: "worker", want: "workers"},
		{in: "max_inflite", want: "max_inflight"},
		{in: "MAX_QUEUED", want: "max_queued"},
		{in: "port", want: ""},
		{in: "x", want: ""},
	}
	for _, tt := range tests {
		if got := Closest(tt.in, known); got != tt.want {
			t.Errorf("Closest(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
