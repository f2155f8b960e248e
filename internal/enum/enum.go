package enum

import (
	"fmt"
	"strings"
)

// Names spells the values 0, 1, 2, ... of an enumeration type T.
type Names[T ~uint8] struct {
	typ   string   // the Go type's name, for values out of the table: "QueuePolicy(7)"
	what  string   // what a value is, for errors: "queue policy"
	names []string // names[v] spells value v
}

// New returns the spellings of T's values, in order from 0; typ is T's Go
// name and what says in words what a value is.
func New[T ~uint8](typ, what string, names ...string) Names[T] {
	return Names[T]{typ: typ, what: what, names: names}
}

// String spells v, or typ(v) for a value without a name.
func (n Names[T]) String(v T) string {
	if int(v) < len(n.names) {
		return n.names[v]
	}
	return fmt.Sprintf("%s(%d)", n.typ, uint8(v))
}

// Parse reads a spelling; an unknown one is an error listing the known.
func (n Names[T]) Parse(s string) (T, error) {
	for i, name := range n.names {
		if name == s {
			return T(i), nil
		}
	}
	return 0, fmt.Errorf("unknown %s %q (want %s)", n.what, s, n.list())
}

// Valid reports whether v has a name.
func (n Names[T]) Valid(v T) bool { return int(v) < len(n.names) }

// list is the names as a sentence: "a, b or c".
func (n Names[T]) list() string {
	switch len(n.names) {
	case 0:
		return "nothing"
	case 1:
		return n.names[0]
	}
	return strings.Join(n.names[:len(n.names)-1], ", ") + " or " + n.names[len(n.names)-1]
}
