package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// config is the command line after parsing.
type config struct {
	mode string // conn, sub or pub

	host, port string
	count      int
	interval   time.Duration // between connection starts
	rate       float64       // connections per second; overrides interval
	parallel   int           // connections being set up at once
	version    int
	keepAlive  int
	clean      bool
	start      int // first %i
	prefix     string
	username   string
	password   string
	src        []string
	loops      int
	inflight   int

	topic       string
	qos         int
	size        int
	pubInterval time.Duration // 0: saturation
	limit       int
	retain      bool
	expect      int
	expectPubs  int

	duration time.Duration // 0: until done or signalled
	json     bool
	ready    string
	startAt  string
	cpuProf  string
}

const usageText = `Usage: shoalbench conn|sub|pub|stall [flags]

Opens -c MQTT connections to one broker from one process and, for sub and
pub, subscribes or publishes, printing a progress line every second on
stderr and a summary at the end (with --json, also one JSON line on
stdout). Flags follow emqtt-bench.

  conn  connect and hold the connections until --duration or a signal
  sub   connect, subscribe each client to -t, and count what arrives: latency
        from the stamp publishers put in each payload, lost and duplicate
        messages per publisher
  pub   connect, wait for --start-at, then publish -L messages per client
        (0: until --duration) every -I ms (0: as fast as the in-flight window
        and the socket allow)
  stall connect, subscribe each client to -t, then never read again: slow
        consumers, whose receive buffer is the kernel's smallest

Exit status: 0 ok; 1 error or nothing connected; 2 bad usage; 3 messages
lost at QoS 1 or 2.

JSON summary fields: mode clients connected connect_failed connect_rate
connack_p50_ms connack_p99_ms sent received sent_rate recv_rate lat_p50_ms
lat_p99_ms lat_p999_ms lost dup duration_s cpu_s. duration_s is the
measured phase: first to last message received (sub), first publish to the
last acknowledgement (pub), the whole run (conn); the rates divide by it.
cpu_s is this process's user+system CPU time.

Flags:
`

// parseArgs parses the mode and flags. Errors have been written to
// stderr; flag.ErrHelp means help was asked for.
func parseArgs(args []string, stderr io.Writer) (config, error) {
	var c config
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprint(stderr, usageText)
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-help") {
			return c, flag.ErrHelp
		}
		return c, errors.New("missing mode: conn, sub, pub or stall")
	}
	c.mode = args[0]
	switch c.mode {
	case "conn", "sub", "pub", "stall":
	default:
		fmt.Fprint(stderr, usageText)
		return c, fmt.Errorf("unknown mode %q: want conn, sub, pub or stall", c.mode)
	}
	fs := flag.NewFlagSet("shoalbench "+c.mode, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageText)
		fs.PrintDefaults()
	}
	var intervalMs, pubIntervalMs int
	var src, duration string
	port := 1883
	fs.StringVar(&c.host, "h", "localhost", "broker `host`")
	fs.IntVar(&port, "p", port, "broker `port`")
	fs.IntVar(&c.count, "c", 200, "number of clients")
	fs.IntVar(&intervalMs, "i", 10, "`ms` between connection starts")
	fs.Float64Var(&c.rate, "R", 0, "connection `rate` per second (overrides -i)")
	fs.IntVar(&c.parallel, "parallel", 256, "connections being set up at once")
	fs.IntVar(&c.version, "V", 5, "MQTT `version`: 3 (3.1), 4 (3.1.1) or 5")
	fs.IntVar(&c.keepAlive, "k", 300, "keep-alive in `seconds`")
	fs.BoolVar(&c.clean, "C", true, "clean start (clean session)")
	fs.IntVar(&c.start, "S", 0, "start `number` for %i (emqtt-bench's -n)")
	fs.IntVar(&c.start, "n", 0, "same as -S")
	fs.StringVar(&c.prefix, "prefix", "", "client identifier `prefix` (default shoalbench-<pid>); ids are <prefix>-<mode>-<%i>")
	fs.StringVar(&c.username, "u", "", "user `name`")
	fs.StringVar(&c.password, "P", "", "`password`")
	fs.StringVar(&src, "src", "", "comma-separated local source `IPs`, used in turn")
	fs.IntVar(&c.loops, "loops", 0, "client event loops (0: one per CPU)")
	fs.IntVar(&c.inflight, "inflight", 64, "QoS 1/2 messages in flight per publisher (at most the broker's Receive Maximum)")
	fs.StringVar(&c.topic, "t", "", "`topic` (pub: to publish to; sub: filter); %i = sequence number, %c = client id, %u = user name")
	fs.IntVar(&c.qos, "q", 0, "QoS (pub: of messages; sub: of the subscription)")
	fs.IntVar(&c.size, "s", 256, "payload `bytes` (at least 20, the stamp)")
	fs.IntVar(&pubIntervalMs, "I", 1000, "`ms` between messages of one publisher (0: saturation)")
	fs.IntVar(&c.limit, "L", 0, "messages per publisher (0: unbounded)")
	fs.BoolVar(&c.retain, "r", false, "publish retained")
	fs.IntVar(&c.expect, "expect", 0, "sub: messages each subscriber should receive from each publisher (0: count gaps only)")
	fs.IntVar(&c.expectPubs, "pubs", 0, "sub: publishers each subscriber should hear from; with --expect the run ends once all arrived")
	fs.StringVar(&duration, "duration", "", "stop after this `time` (Go duration, or seconds)")
	fs.BoolVar(&c.json, "json", false, "print a one-line JSON summary on stdout")
	fs.StringVar(&c.ready, "ready", "", "write `FILE` once every client is connected (and subscribed)")
	fs.StringVar(&c.startAt, "start-at", "", "pub: wait until `FILE` exists before publishing")
	fs.StringVar(&c.cpuProf, "cpuprofile", "", "write a CPU profile of the generator to `FILE`")
	if err := fs.Parse(args[1:]); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, usageErr(stderr, "unexpected argument %q", fs.Arg(0))
	}
	c.port = strconv.Itoa(port)
	c.interval = time.Duration(intervalMs) * time.Millisecond
	c.pubInterval = time.Duration(pubIntervalMs) * time.Millisecond
	if src != "" {
		for _, s := range strings.Split(src, ",") {
			s = strings.TrimSpace(s)
			if net.ParseIP(s) == nil {
				return c, usageErr(stderr, "--src: %q is not an IP address", s)
			}
			c.src = append(c.src, s)
		}
	}
	if duration != "" {
		d, err := parseDuration(duration)
		if err != nil {
			return c, usageErr(stderr, "--duration: %v", err)
		}
		c.duration = d
	}
	if c.prefix == "" {
		c.prefix = "shoalbench-" + strconv.Itoa(os.Getpid())
	}
	switch {
	case c.count < 1:
		return c, usageErr(stderr, "-c must be at least 1")
	case c.version < 3 || c.version > 5:
		return c, usageErr(stderr, "-V must be 3, 4 or 5")
	case c.qos < 0 || c.qos > 2:
		return c, usageErr(stderr, "-q must be 0, 1 or 2")
	case c.keepAlive < 0 || c.keepAlive > 65535:
		return c, usageErr(stderr, "-k must be 0..65535")
	case intervalMs < 0 || pubIntervalMs < 0 || c.limit < 0 || c.rate < 0 || c.expect < 0 || c.expectPubs < 0:
		return c, usageErr(stderr, "-i, -I, -L, -R, --expect and --pubs must not be negative")
	case c.parallel < 1:
		return c, usageErr(stderr, "--parallel must be at least 1")
	case c.inflight < 1 || c.inflight > 65535:
		return c, usageErr(stderr, "--inflight must be 1..65535")
	case c.mode != "conn" && c.topic == "":
		return c, usageErr(stderr, "%s needs -t", c.mode)
	case c.mode == "pub" && c.size < stampSize:
		return c, usageErr(stderr, "-s must be at least %d: the payload carries a timestamp, a sequence number and the publisher's index", stampSize)
	}
	return c, nil
}

func usageErr(w io.Writer, f string, a ...any) error {
	err := fmt.Errorf(f, a...)
	fmt.Fprintln(w, "shoalbench:", err)
	return err
}

// parseDuration accepts Go durations ("90s", "2m") and plain seconds.
func parseDuration(s string) (time.Duration, error) {
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		if n < 0 {
			return 0, errors.New("negative")
		}
		return time.Duration(n * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err == nil && d < 0 {
		return 0, errors.New("negative")
	}
	return d, err
}

// clientID is the identifier of the client with sequence number seq.
func (c *config) clientID(seq int) string {
	return c.prefix + "-" + c.mode + "-" + strconv.Itoa(seq)
}

// addr is the broker's "host:port".
func (c *config) addr() string { return net.JoinHostPort(c.host, c.port) }
