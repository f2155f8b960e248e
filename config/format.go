package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Format is the syntax of a configuration file.
type Format uint8

const (
	// FormatAuto tells the format from the file (DetectFormat).
	FormatAuto Format = iota
	// FormatYAML is Shoal's own format.
	FormatYAML
	// FormatMosquitto is Mosquitto's mosquitto.conf, translated into
	// Shoal's settings (mosquitto.go).
	FormatMosquitto
)

// String returns the format's flag spelling.
func (f Format) String() string {
	switch f {
	case FormatAuto:
		return "auto"
	case FormatYAML:
		return "yaml"
	case FormatMosquitto:
		return "mosquitto"
	}
	return fmt.Sprintf("Format(%d)", uint8(f))
}

// ParseFormat reads the flag spelling of a Format.
func ParseFormat(s string) (Format, error) {
	switch s {
	case "auto":
		return FormatAuto, nil
	case "yaml":
		return FormatYAML, nil
	case "mosquitto":
		return FormatMosquitto, nil
	}
	return 0, fmt.Errorf("unknown configuration format %q (want auto, yaml or mosquitto)", s)
}

// DetectFormat tells the format of a configuration file from its name,
// then its contents: a name ending in .yaml or .yml is YAML, one ending
// in .conf or with "mosquitto" in its path is Mosquitto's; otherwise the first line
// that is neither blank nor a comment decides — "key: value" is YAML, a
// Mosquitto directive followed by a space or nothing ("listener 1883") is
// Mosquitto's. A file of comments alone, under another name, is YAML.
func DetectFormat(name string, data []byte) Format {
	lower := strings.ToLower(name)
	switch ext := filepath.Ext(lower); {
	case ext == ".yaml" || ext == ".yml":
		return FormatYAML
	case ext == ".conf" || strings.Contains(lower, "mosquitto"):
		return FormatMosquitto
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		s := strings.TrimSpace(string(line))
		if s == "" || s[0] == '#' || s == "---" {
			continue
		}
		word, _, _ := strings.Cut(strings.ReplaceAll(s, "\t", " "), " ")
		if _, ok := mosquittoDirective(word); ok {
			return FormatMosquitto
		}
		return FormatYAML
	}
	return FormatYAML
}

// Unsupported says what a Mosquitto directive that Shoal has no
// equivalent for does.
type Unsupported uint8

const (
	// RefuseUnsupported: the file is refused, each such directive named
	// with its line and the reason (default): a broker that silently
	// ignored one would not do what its configuration says.
	RefuseUnsupported Unsupported = iota
	// WarnUnsupported: the directive is left out, with a warning naming
	// it (File.Warnings).
	WarnUnsupported
)

// String returns the flag spelling.
func (u Unsupported) String() string {
	if u == WarnUnsupported {
		return "warn"
	}
	return "refuse"
}

// ParseUnsupported reads the flag spelling of an Unsupported.
func ParseUnsupported(s string) (Unsupported, error) {
	switch s {
	case "refuse":
		return RefuseUnsupported, nil
	case "warn":
		return WarnUnsupported, nil
	}
	return 0, fmt.Errorf("unknown choice %q (want refuse or warn)", s)
}

// Options say how to read a configuration file.
type Options struct {
	// Format is the file's syntax; FormatAuto tells it (DetectFormat).
	Format Format
	// Overrides are the command line's settings (see Override).
	Overrides []Override
	// Unsupported says what Mosquitto directives Shoal has no equivalent
	// for do: refuse the file (default) or warn.
	Unsupported Unsupported
}

// ParseOptions reads a configuration file's contents in the format o
// says; name is used in errors and to tell the format. A Mosquitto file
// may name other files (include_dir), which are read from disk. Errors
// are *Error (several, joined, when a Mosquitto file has several
// directives Shoal refuses) or *FlagError. Safe for concurrent use.
func ParseOptions(data []byte, name string, o Options) (File, error) {
	format := o.Format
	if format == FormatAuto {
		format = DetectFormat(name, data)
	}
	if format == FormatMosquitto {
		return translateMosquitto(data, name, o.Unsupported, o.Overrides)
	}
	return ParseWith(data, name, o.Overrides)
}

// LoadOptions reads and parses the configuration file at path
// (ParseOptions); errors name path.
func LoadOptions(path string, o Options) (File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return File{}, fmt.Errorf("config: %w", err)
	}
	return ParseOptions(data, path, o)
}
