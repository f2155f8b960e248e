package auth

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// stubMethod is a Method that accepts anything, for Registry tests.
type stubMethod struct{ name string }

func (s stubMethod) Name() string          { return s.name }
func (s stubMethod) Start(string) Exchange { return nil }

func TestRegistryLookup(t *testing.T) {
	scram := stubMethod{name: "SCRAM-SHA-256"}
	r := NewRegistry(scram, stubMethod{name: "TOKEN"})

	m, ok := r.Lookup("SCRAM-SHA-256")
	if !ok || m != scram {
		t.Fatalf("Lookup(SCRAM-SHA-256) = %v, %v", m, ok)
	}
	if m, ok := r.Lookup("TOKEN"); !ok || m.Name() != "TOKEN" {
		t.Fatalf("Lookup(TOKEN) = %v, %v", m, ok)
	}
	// MQTT strings compare exactly: no case folding, no trimming.
	for _, name := range []string{"", "scram-sha-256", "SCRAM-SHA-256 ", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1"} {
		if m, ok := r.Lookup(name); ok {
			t.Errorf("Lookup(%q) = %v, want not found", name, m)
		}
	}
}

func TestRegistryNames(t *testing.T) {
	r := NewRegistry(stubMethod{name: "B"}, stubMethod{name: "A"}, stubMethod{name: "C"})
	got := r.Names()
	if want := []string{"B", "A", "C"}; !slices.Equal(got, want) {
		t.Fatalf("Names() = %v, want %v (configuration order)", got, want)
	}
	got[0] = "changed"
	if r.Names()[0] != "B" {
		t.Fatal("Names() returned the registry's own slice")
	}
	if n := NewRegistry().Names(); len(n) != 0 {
		t.Fatalf("empty registry Names() = %v", n)
	}
	if _, ok := NewRegistry().Lookup("SCRAM-SHA-256"); ok {
		t.Fatal("empty registry found a method")
	}
}

func TestRegistryPanics(t *testing.T) {
	cases := []struct {
		name    string
		methods []Method
	}{
		{name: "duplicate", methods: []Method{stubMethod{name: "X"}, stubMethod{name: "X"}}},
		{name: "nil", methods: []Method{nil}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			NewRegistry(c.methods...)
		})
	}
}

// TestErrors: every error has the package prefix and the reason code the
// broker is meant to send.
func TestErrors(t *testing.T) {
	codes := map[*Error]byte{
		ErrUnknownMethod: 0x8C,
		ErrExchangeEnded: 0x82,
		ErrKeyDerivation: 0x80,
	}
	msgs := map[string]bool{}
	for e, code := range codes {
		if e.Code != code {
			t.Errorf("%v: code %#x, want %#x", e, e.Code, code)
		}
		if !strings.HasPrefix(e.Error(), "auth: ") {
			t.Errorf("%q lacks the package prefix", e.Error())
		}
		if msgs[e.Msg] {
			t.Errorf("two errors say %q: one cause each", e.Msg)
		}
		msgs[e.Msg] = true
		var target *Error
		if !errors.As(error(e), &target) || target != e {
			t.Errorf("errors.As(%v) failed", e)
		}
	}
}
