package mosqconf

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/shoalmq/shoal/config"
)

// DetectFormat tells the format of a configuration file from its name,
// then its contents: a name ending in .yaml or .yml is YAML, one ending
// in .conf or with "mosquitto" in its path is Mosquitto's; otherwise the first line
// that is neither blank nor a comment decides — "key: value" is YAML, a
// Mosquitto directive followed by a space or nothing ("listener 1883") is
// Mosquitto's. A file of comments alone, under another name, is YAML.
func DetectFormat(name string, data []byte) config.Format {
	lower := strings.ToLower(name)
	switch ext := filepath.Ext(lower); {
	case ext == ".yaml" || ext == ".yml":
		return config.FormatYAML
	case ext == ".conf" || strings.Contains(lower, "mosquitto"):
		return config.FormatMosquitto
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		s := strings.TrimSpace(string(line))
		if s == "" || s[0] == '#' || s == "---" {
			continue
		}
		word, _, _ := strings.Cut(strings.ReplaceAll(s, "\t", " "), " ")
		if _, ok := mosquittoDirective(word); ok {
			return config.FormatMosquitto
		}
		return config.FormatYAML
	}
	return config.FormatYAML
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
	// it (config.File.Warnings).
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
	// Format is the file's syntax; config.FormatAuto tells it (DetectFormat).
	Format config.Format
	// Overrides are the command line's settings (see config.Override).
	Overrides []config.Override
	// Unsupported says what Mosquitto directives Shoal has no equivalent
	// for do: refuse the file (default) or warn.
	Unsupported Unsupported
}

// Parse reads a configuration file's contents in the format o says;
// name is used in errors and to tell the format. A mosquitto.conf is
// translated here, and may name other files (include_dir), which are read
// from disk; Shoal's YAML is config.ParseWith's. Errors are
// *config.Error (several, joined, when a mosquitto.conf has several
// directives Shoal refuses) or *config.FlagError. Safe for concurrent use.
func Parse(data []byte, name string, o Options) (config.File, error) {
	format := o.Format
	if format == config.FormatAuto {
		format = DetectFormat(name, data)
	}
	if format == config.FormatMosquitto {
		return translate(data, name, o.Unsupported, o.Overrides)
	}
	return config.ParseWith(data, name, o.Overrides)
}

// Load reads and parses the configuration file at path (Parse); errors
// name path. Safe for concurrent use.
func Load(path string, o Options) (config.File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return config.File{}, fmt.Errorf("config: %w", err)
	}
	return Parse(data, path, o)
}
