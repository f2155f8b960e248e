package harness

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/shoalmq/shoal/bench/internal/summary"
)

// Gen is one shoalbench process: its mode and the flags that shape its
// load. Host, port, client-id prefix and the signal files are added by the
// runner.
type Gen struct {
	Mode     string // "conn", "sub" or "pub"
	Count    int    // -c: clients
	Topic    string // -t: %i is the client's sequence number, %c its id
	QoS      int    // -q
	Size     int    // -s: payload bytes, at least 20
	Interval int    // -I: ms between one publisher's messages; 0 saturates
	Limit    int    // -L: messages per publisher; 0 for no limit
	Start    int    // -S: sequence number of the first client
	Src      []string
	// Duration bounds the process: publishers publish this long.
	Duration time.Duration
	// Expect is passed as --expect when not 0.
	Expect int
	// Persistent clients connect with clean session 0 (-C=false).
	Persistent bool
	// Node is the broker node the clients connect to, counted modulo the
	// run's nodes: on a single broker every generator connects to it.
	Node int
}

// Protocol settings every generator shares.
const (
	genVersion   = 4  // MQTT 3.1.1: what all four brokers speak best
	genKeepAlive = 60 // s; longer than any run
)

// Args returns shoalbench's arguments (without the program) for a broker
// on host:port. prefix keeps client ids apart between processes; ready and
// startAt are the signal files, "" to leave either out.
func (g Gen) Args(host string, port int, prefix, ready, startAt string) []string {
	a := []string{g.Mode,
		"-h", host, "-p", strconv.Itoa(port),
		"-c", strconv.Itoa(g.Count),
		"-i", "0", // no pause between connects: the connect rate is measured
		"-V", strconv.Itoa(genVersion),
		"-k", strconv.Itoa(genKeepAlive),
		"-S", strconv.Itoa(g.Start),
		"--prefix", prefix,
	}
	if g.Mode != "conn" {
		a = append(a, "-t", g.Topic, "-q", strconv.Itoa(g.QoS))
	}
	if g.Persistent {
		a = append(a, "-C=false")
	}
	if g.Mode == "pub" {
		a = append(a, "-s", strconv.Itoa(g.Size), "-I", strconv.Itoa(g.Interval))
		if g.Limit > 0 {
			a = append(a, "-L", strconv.Itoa(g.Limit))
		}
	}
	if len(g.Src) > 0 {
		a = append(a, "--src", strings.Join(g.Src, ","))
	}
	if g.Duration > 0 {
		a = append(a, "--duration", g.Duration.String())
	}
	if g.Expect > 0 {
		a = append(a, "--expect", strconv.Itoa(g.Expect))
	}
	if ready != "" {
		a = append(a, "--ready", ready)
	}
	if startAt != "" {
		a = append(a, "--start-at", startAt)
	}
	return append(a, "--json")
}

// GenResult is the line shoalbench prints with --json: the shared contract.
type GenResult = summary.Summary

// ExitLost is shoalbench's exit status when messages were lost at QoS 1
// or 2: the run still produced its figures.
const ExitLost = 3

// ParseResult finds the last JSON object line in shoalbench's stdout.
func ParseResult(stdout []byte) (GenResult, error) {
	lines := bytes.Split(bytes.TrimSpace(stdout), []byte("\n"))
	for i := len(lines) - 1; i >= 0; i-- {
		l := bytes.TrimSpace(lines[i])
		if len(l) == 0 || l[0] != '{' {
			continue
		}
		var r GenResult
		if err := json.Unmarshal(l, &r); err != nil {
			return r, fmt.Errorf("harness: shoalbench --json line: %w", err)
		}
		return r, nil
	}
	return GenResult{}, errors.New("harness: shoalbench printed no JSON line")
}
