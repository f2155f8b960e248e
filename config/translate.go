package config

import "gopkg.in/yaml.v3"

// Kind is how a translated value is read: as a YAML scalar of that kind
// written in a Shoal file would be, so that "1.3" can be a string and "20"
// a count.
type Kind uint8

const (
	// KindString is a string (a quoted YAML scalar).
	KindString Kind = iota
	// KindInt is an integer.
	KindInt
	// KindBool is true or false.
	KindBool
)

// tag returns the YAML tag a value of kind k carries.
func (k Kind) tag() string {
	switch k {
	case KindInt:
		return "!!int"
	case KindBool:
		return "!!bool"
	}
	return "!!str"
}

// Source is where a translated setting came from: a line of a file and the
// name that file gives the setting (a Mosquitto directive), so that an
// error found when the File is finished names that line. The zero Source
// is a value the translator supplies itself (another format's default),
// which no line set.
type Source struct {
	File string
	Line int
	Name string
}

// Translation builds a File from a file in another format
// (internal/mosqconf reads mosquitto.conf into one): it starts from the
// defaults, takes each setting with the line it came from, and Finish then
// does what Parse does after reading a YAML file — overrides, the files
// the settings name, Validate — placing each error at the line the
// setting came from.
//
// A Translation is used by one goroutine, and only until Finish.
type Translation struct {
	name   string
	file   File
	places map[string]place
	table  []setting
}

// NewTranslation starts a File read from name in format.
func NewTranslation(name string, format Format) *Translation {
	t := &Translation{name: name, file: defaults(), places: map[string]place{}, table: settings()}
	t.file.Format = format
	return t
}

// Set sets key to values, read as scalars of kind (several make a list),
// through the setting's own checks, as from at; an error is the check's,
// not yet placed (the caller knows the line). A later Set of the same key
// replaces the value, and with a zero at makes it no line's any more. A
// key that is not a setting is a bug in the translator: Set panics.
func (t *Translation) Set(key string, kind Kind, at Source, values ...string) error {
	s, ok := lookup(t.table, key)
	if !ok {
		panic("config: translation to unknown key " + key)
	}
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: kind.tag(), Value: values[0]}
	if len(values) > 1 {
		n = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for _, v := range values {
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: kind.tag(), Value: v})
		}
	}
	if err := s.set(&t.file, n); err != nil {
		return err
	}
	if at.Line > 0 {
		t.places[key] = place{file: at.File, line: at.Line, name: at.Name}
	} else {
		delete(t.places, key)
	}
	return nil
}

// File returns the File being built, for what has no setting of its own
// (Warnings, the bridges read whole, User); it is valid until Finish.
func (t *Translation) File() *File { return &t.file }

// Finish applies overrides, loads the files the settings name (password,
// ACL) and validates the whole, as Parse does; errors are *Error, placed
// at the Source of the setting they are about, or *FlagError.
func (t *Translation) Finish(overrides []Override) (File, error) {
	if err := t.file.finish(t.name, t.places, overrides); err != nil {
		return File{}, err
	}
	return t.file, nil
}
