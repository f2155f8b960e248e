// Package brokers owns the brokers under test: their names as the reports
// use them (names.go: Shoal, Mosquitto, mochi-mqtt, the floor and their
// variants, All, IsShoal), the configuration files each runs with
// (config.go: MosquittoConfig, ShoalConfig, and ShoalClusterConfigs for
// the nodes of a cluster, with the free ports they listen on), and the
// programs themselves (build.go: Builder builds the Go ones, at the
// working tree and at an earlier revision, and finds or installs
// Mosquitto; Bins.Command is the argv that runs one). It knows nothing of
// scenarios, runs or reports: package harness decides which broker runs
// what, and starts them through package proc.
//
// # Ownership
//
// Builder.Build runs on the caller's goroutine and writes only under its
// Out directory (and, when Mosquitto is missing and it may, installs the
// package). Bins, Builder and ClusterNode are values; the Config
// functions are pure; Bins.Command writes its configuration file into the
// directory it is given, which the caller owns.
package brokers
