// Package suggest finds the known name an unknown one was probably meant
// to be, for "did you mean" hints in configuration errors: a YAML key in
// package config, a mosquitto.conf directive in internal/mosqconf.
//
// It holds no state; Closest is a pure function, safe for concurrent use.
package suggest
