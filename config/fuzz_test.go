package config

import (
	"errors"
	"testing"
)

// FuzzParse checks that no input panics, that every failure is an *Error
// naming the file, and that every success passes Validate.
func FuzzParse(f *testing.F) {
	f.Add(Default())
	for _, s := range []string{
		"", "listen: x\n", "loops: [1\n", "{listen: x, loops: -1}", "a: &a [*a]\n",
		"max_packet_size: 1MiB\nmax_keepalive: 5m\n", "---\n---\n", "\tx: 1\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := Parse(data, "fuzz.yaml")
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.File != "fuzz.yaml" {
				t.Fatalf("error %T %q is not an *Error naming the file", err, err)
			}
			return
		}
		if err := got.Broker.Validate(); err != nil {
			t.Fatalf("Parse accepted a config Validate rejects: %v", err)
		}
	})
}
