package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/shoalmq/shoal/admin"
	"github.com/shoalmq/shoal/internal/suggest"
)

// Parse reads a configuration file's contents; name is used in errors (a
// path, or a description such as "(embedded default)"). An empty file
// yields the defaults. The result has passed broker.Config.Validate. Every
// error is an *Error. Safe for concurrent use.
func Parse(data []byte, name string) (File, error) { return ParseWith(data, name, nil) }

// Override is a setting given on the command line (--listen and the
// like): it replaces the file's value before anything is validated, so
// that the file and the flags are judged together, and an error about it
// names the flag (a *FlagError) rather than the file.
type Override struct {
	Flag  string // as typed: "--listen"
	Key   string // the setting it overrides: "listen"
	Value string
	// IfUnset applies the value only when the file does not set the key
	// (Mosquitto's -p, which a file's listener overrides); otherwise the
	// flag is passed over with a line in File.Warnings.
	IfUnset bool
}

// place is where a setting's value came from, for errors about it: a
// line of a file, and the name the file gives it — the YAML key, or the
// Mosquitto directive it was translated from.
type place struct {
	file         string
	line, column int
	name         string
}

func (p place) error(err error) *Error {
	return &Error{File: p.file, Line: p.line, Column: p.column, Key: p.name, Err: err}
}

// nodeError is a setter's error about a node inside the setting's value
// (a key of one of the bridges), which the error is placed at rather than
// at the value. key, when set, is the key the error names instead of the
// setting's ("cluster.name").
type nodeError struct {
	n   *yaml.Node
	err error
	key string
}

func (e *nodeError) Error() string { return e.err.Error() }
func (e *nodeError) Unwrap() error { return e.err }

// ParseWith is Parse with overrides applied over the file's values.
// Errors are *Error, or *FlagError for a value an override gave.
func ParseWith(data []byte, name string, overrides []Override) (File, error) {
	f, places, err := parseYAML(data, name)
	if err != nil {
		return File{}, err
	}
	if err := f.finish(name, places, overrides); err != nil {
		return File{}, err
	}
	return f, nil
}

// parseYAML reads a YAML file's settings over the defaults, and where each
// was set.
func parseYAML(data []byte, name string) (File, map[string]place, error) {
	root, err := parseDocument(data, name)
	if err != nil {
		return File{}, nil, err
	}
	f := defaults()
	f.Format = FormatYAML
	places := make(map[string]place)
	if root == nil {
		return f, places, nil
	}
	table := settings()
	at := func(n *yaml.Node, key string, err error) error {
		return &Error{File: name, Line: n.Line, Column: n.Column, Key: key, Err: err}
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.ShortTag() == "!!merge" {
			return File{}, nil, at(k, "", errors.New("merge keys (<<) are not supported; write each setting out"))
		}
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
			return File{}, nil, at(k, "", fmt.Errorf("setting names must be strings, got %s", describe(k)))
		}
		if prev, ok := places[k.Value]; ok {
			return File{}, nil, at(k, k.Value, fmt.Errorf("set again (first set at line %d)", prev.line))
		}
		s, ok := lookup(table, k.Value)
		if !ok {
			return File{}, nil, at(k, "", unknownKey(k.Value, table))
		}
		if err := s.set(&f, resolveAlias(v)); err != nil {
			where, key := v, k.Value
			var ne *nodeError
			if errors.As(err, &ne) {
				where = ne.n // inside the value: a bridge's key
				if ne.key != "" {
					key, err = ne.key, ne.err
				}
			}
			return File{}, nil, at(where, key, err)
		}
		places[k.Value] = place{file: name, line: v.Line, column: v.Column, name: k.Value}
		// A section's keys too, as "cluster.name": Validate's errors
		// about them are placed there.
		if m := resolveAlias(v); m.Kind == yaml.MappingNode {
			for j := 0; j+1 < len(m.Content); j += 2 {
				sub, sv := k.Value+"."+m.Content[j].Value, m.Content[j+1]
				places[sub] = place{file: name, line: sv.Line, column: sv.Column, name: sub}
			}
		}
	}
	return f, places, nil
}

// finish applies the overrides to a file read from name, loads the files
// it names (password, ACL) and validates the whole. places says where
// each setting the file set came from.
func (f *File) finish(name string, places map[string]place, overrides []Override) error {
	flags := map[string]string{} // key -> the flag that set it
	table := settings()
	for _, o := range overrides {
		s, ok := lookup(table, o.Key)
		if !ok {
			return &FlagError{Flag: o.Flag, Err: fmt.Errorf("overrides an unknown key %q", o.Key)}
		}
		if p, set := places[o.Key]; set && o.IfUnset {
			f.Warnings = append(f.Warnings, fmt.Sprintf("%s %s ignored: %s", o.Flag, o.Value, p.where(name, "sets "+o.Key)))
			continue
		}
		if err := s.set(f, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: o.Value}); err != nil {
			return &FlagError{Flag: o.Flag, Err: err}
		}
		flags[o.Key] = o.Flag
		delete(places, o.Key) // not the file's value any more
	}
	if !f.Persistence {
		f.Broker.DataDir = ""
		if p, set := places["import_mosquitto_db"]; set && f.ImportMosquittoDB != "" {
			return p.error(errors.New("needs persistence: true: the import goes into data_dir's store"))
		}
		if p, set := places["cluster"]; set && f.Broker.Cluster != nil && f.Broker.Cluster.NATSURL == "" {
			return p.error(errors.New("an embedded node needs persistence: true: it keeps its JetStream state in data_dir"))
		}
	}
	if err := f.loadAuth(name, places); err != nil {
		return err
	}
	if err := admin.CheckConfig(f.AdminListen, f.AdminToken); err != nil {
		if fl, ok := flags["admin_listen"]; ok {
			return &FlagError{Flag: fl, Err: err}
		}
		p, ok := places["admin_listen"]
		if !ok {
			p = place{file: name, line: 1, column: 1}
		}
		p.name = "admin_token"
		return p.error(err)
	}
	if err := f.Broker.Validate(); err != nil {
		if key, problem, ok := strings.Cut(err.Error(), ": "); ok && flags[key] != "" {
			return &FlagError{Flag: flags[key], Err: errors.New(problem)}
		}
		return validateError(err, name, places)
	}
	return nil
}

// where says where p is, for a warning: "the file sets listen (line 3)".
func (p place) where(name, what string) string {
	file := p.file
	if file == name {
		file = "the file"
	}
	if p.line == 0 {
		return file + " " + what
	}
	if p.name != "" && !strings.HasSuffix(what, " "+p.name) {
		return fmt.Sprintf("%s %s (%s, line %d)", file, what, p.name, p.line)
	}
	return fmt.Sprintf("%s %s (line %d)", file, what, p.line)
}

// parseDocument parses data as one YAML document and returns its top-level
// mapping, or nil for an empty document.
func parseDocument(data []byte, name string) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, syntaxError(err, name, data)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxError(err, name, data)
	default:
		return nil, &Error{File: name, Line: extra.Line, Column: extra.Column,
			Err: errors.New("a second YAML document; a configuration file holds one")}
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	root := resolveAlias(doc.Content[0])
	switch {
	case root.Kind == yaml.MappingNode:
		return root, nil
	case root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null":
		// A file holding only "---" or "~" sets nothing.
		return nil, nil
	}
	return nil, &Error{File: name, Line: root.Line, Column: root.Column,
		Err: fmt.Errorf("want a mapping of settings (key: value lines), got %s", describe(root))}
}

// syntaxError turns a yaml.v3 error, "yaml: line 3: problem", into an
// *Error at the line where the problem shows.
//
// yaml.v3 reports the line where the enclosing construct began, counted
// from 0 for parser errors and from 1 for scanner errors, and no line at
// all when that is the first line; so its number is often one or more
// lines early. The line is instead found as the first line that cannot be
// added to the longest prefix of the file that still parses, which is
// where a reader sees the problem. Files are short, so the quadratic
// search costs nothing; past maxSearchLines the library's line is kept.
func syntaxError(err error, name string, data []byte) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, problem, ok := strings.Cut(rest, ": "); ok {
			if n, convErr := strconv.Atoi(num); convErr == nil {
				line, msg = n, problem
			}
		}
	}
	if l, ok := firstBadLine(data); ok {
		line = l
	}
	return &Error{File: name, Line: line, Err: fmt.Errorf("YAML syntax error: %s", msg)}
}

// maxSearchLines bounds firstBadLine's work: a configuration file is a few
// dozen lines. The worst case, a quote left open on the first of 500 lines,
// takes about 50ms (measured: 180ms at 1,000 lines).
const maxSearchLines = 500

// firstBadLine returns the 1-based line after the longest prefix of whole
// lines that parses as YAML, for data that does not parse.
func firstBadLine(data []byte) (int, bool) {
	var ends []int // ends[i] is the offset just past line i+1
	for i, c := range data {
		if c == '\n' {
			ends = append(ends, i+1)
		}
	}
	if len(ends) > maxSearchLines {
		return 0, false
	}
	for k := len(ends); k > 0; k-- {
		if parses(data[:ends[k-1]]) {
			return k + 1, true
		}
	}
	return 1, true
}

// parses reports whether data is a well-formed YAML stream.
func parses(data []byte) bool {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return true
		}
		if err != nil {
			return false
		}
	}
}

// validateError places an error from broker.Config.Validate, which starts
// with the key it is about, at that key's value in the file.
func validateError(err error, name string, places map[string]place) error {
	key, problem, ok := strings.Cut(err.Error(), ": ")
	if !ok {
		return &Error{File: name, Err: err}
	}
	if p, ok := places[key]; ok {
		return p.error(errors.New(problem))
	}
	if section, _, ok := strings.Cut(key, "."); ok {
		if p, ok := places[section]; ok { // a key the section leaves out: at the section
			p.name = key
			return p.error(errors.New(problem))
		}
	}
	return &Error{File: name, Key: key, Err: errors.New(problem)}
}

func lookup(table []setting, key string) (setting, bool) {
	for _, s := range table {
		if s.key == key {
			return s, true
		}
	}
	return setting{}, false
}

func unknownKey(key string, table []setting) error {
	known := make([]string, len(table))
	for i, s := range table {
		known[i] = s.key
	}
	if s := suggest.Closest(key, known); s != "" {
		return fmt.Errorf("unknown key %q (did you mean %q?)", key, s)
	}
	return fmt.Errorf("unknown key %q (known keys: %s)", key, strings.Join(known, ", "))
}

// resolveAlias follows *alias references to the node they name.
func resolveAlias(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}
