package config

import "fmt"

// Format is the syntax of a configuration file.
type Format uint8

const (
	// FormatAuto tells the format from the file (mosqconf.DetectFormat).
	FormatAuto Format = iota
	// FormatYAML is Shoal's own format.
	FormatYAML
	// FormatMosquitto is Mosquitto's mosquitto.conf, translated into
	// Shoal's settings by package internal/mosqconf (through Translation).
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
