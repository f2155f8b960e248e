package config

import (
	"strconv"
	"strings"
)

// Error is a problem in a configuration file. Every error Parse returns is
// an *Error; Load also returns the error from reading the file.
type Error struct {
	// File is the name given to Parse, or the path given to Load.
	File string
	// Line and Column are 1-based; 0 when not known. yaml.v3 reports no
	// column for syntax errors, and a setting that Validate rejects but that
	// the file does not mention has neither.
	Line, Column int
	// Key is the setting involved, "" when the problem is not about a
	// known key (syntax errors, unknown keys).
	Key string
	// Err says what is wrong, without the position or the key.
	Err error
}

// Error formats the error as "file:line:col: key: problem", leaving out
// the parts that are not known.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
		if e.Column > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Column))
		}
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the underlying problem.
func (e *Error) Unwrap() error { return e.Err }

// FlagError is a problem with a value given on the command line (an
// Override): "--listen: ...". The program exits with status 2 for it, 1
// for a problem in the file.
type FlagError struct {
	Flag string
	Err  error
}

func (e *FlagError) Error() string { return e.Flag + ": " + e.Err.Error() }

// Unwrap returns the underlying problem.
func (e *FlagError) Unwrap() error { return e.Err }
