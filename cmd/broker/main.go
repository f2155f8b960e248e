package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/term"

	"github.com/shoalmq/shoal/admin"
	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/config"
	"github.com/shoalmq/shoal/internal/mosqconf"
	"github.com/shoalmq/shoal/internal/sdnotify"
)

// version is set at link time (make build: -ldflags "-X main.version=...").
// It is the one package-level variable: nothing writes it at run time.
var version = "dev"

// shutdownTimeout bounds a graceful shutdown: long enough for clients to
// receive their DISCONNECT and for the router to drain, short enough for a
// service manager waiting to restart us.
const shutdownTimeout = 10 * time.Second

// embeddedName is how errors name the embedded default configuration.
const embeddedName = "(embedded default config)"

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "passwd":
			os.Exit(runPasswd(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
		case "healthcheck":
			os.Exit(runHealthcheck(os.Args[2:], os.Stdout, os.Stderr))
		}
	}
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	var stderr io.Writer = os.Stderr
	child := daemonChild()
	if child != nil {
		stderr = child // start-up output goes to the parent of -d
	}
	code := run(os.Args[1:], os.Stdout, stderr, signals)
	if child != nil {
		child.close() // if run failed before ready: the parent learns it now
	}
	os.Exit(code)
}

// options are the command-line flags after parsing.
type options struct {
	configPath  string // "" means the embedded default
	listen      string // "" means the file's
	port        string // -p: "" means none
	dataDir     string // "" means the file's
	adminListen *string
	logLevel    string // "" means the file's
	verbose     bool   // -v: log_level debug
	daemon      bool   // -d: detach once listening
	format      config.Format
	unsupported mosqconf.Unsupported
	showVersion bool
	cpuProfile  string // write a CPU profile of the whole run here
	memProfile  string // write a heap profile here at shutdown
}

// parseFlags reads args. Its error has already been reported on stderr by
// the flag package, naming the flag; flag.ErrHelp means -h was asked for.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("shoal", flag.ContinueOnError)
	fs.SetOutput(stderr)
	setConfig := func(s string) error {
		if s == "" {
			return errors.New("must name a file")
		}
		o.configPath = s
		return nil
	}
	fs.Func("c", "read the configuration from `FILE` (same as --config)", setConfig)
	fs.Func("config", "read the configuration from `FILE`: Shoal's YAML or Mosquitto's mosquitto.conf (default: the embedded config.example.yaml)", setConfig)
	fs.Func("config-file", "the same as --config (Mosquitto's spelling)", setConfig)
	fs.Func("config-format", "the configuration file's `FORMAT`: yaml, mosquitto, or auto (by its name, then its contents)", func(s string) (err error) {
		o.format, err = config.ParseFormat(s)
		return err
	})
	fs.Func("mosquitto-unsupported", "a Mosquitto directive Shoal has no equivalent for: refuse (the broker does not start) or warn (`POLICY`)", func(s string) (err error) {
		o.unsupported, err = mosqconf.ParseUnsupported(s)
		return err
	})
	setPort := func(s string) error {
		if o.port != "" {
			return errors.New("given twice: Shoal has one plain MQTT listener (a second port is a listener line in a mosquitto.conf, or tls_listen, ws_listen, wss_listen)")
		}
		if n, err := strconv.Atoi(s); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q is not a port (1..65535)", s)
		}
		o.port = s
		return nil
	}
	fs.Func("p", "listen on 127.0.0.1:`PORT` when the configuration names no listener, as Mosquitto's -p (ignored, with a warning, when it does)", setPort)
	fs.Func("port", "the same as -p", setPort)
	fs.BoolVar(&o.verbose, "v", false, "log everything (log level debug), as Mosquitto's -v")
	fs.BoolVar(&o.verbose, "verbose", false, "the same as -v")
	fs.BoolVar(&o.daemon, "d", false, "run in the background once listening, as Mosquitto's -d (under systemd, run in the foreground instead)")
	fs.BoolVar(&o.daemon, "daemon", false, "the same as -d")
	// Flag values are checked with the file they override (loadConfig),
	// errors naming the flag.
	fs.Func("listen", "listen on `ADDR` (host:port), overriding the file's listen", func(s string) error {
		o.listen = s
		return nil
	})
	fs.Func("data-dir", "keep the persistent store in `DIR`, overriding the file's data_dir (ignored with persistence: false)", func(s string) error {
		if s == "" {
			return errors.New("must name a directory")
		}
		o.dataDir = s
		return nil
	})
	fs.Func("admin-listen", "serve the admin API on `ADDR` (host:port; \"\" turns it off), overriding the file's admin_listen", func(s string) error {
		o.adminListen = &s
		return nil
	})
	fs.Func("log-level", "log at `LEVEL` and above: trace, debug, info, warn or error (overrides the file's log_level)", func(s string) error {
		o.logLevel = s
		return nil
	})
	fs.BoolVar(&o.showVersion, "version", false, "print the version and exit")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to `FILE` (for go tool pprof)")
	fs.StringVar(&o.memProfile, "memprofile", "", "write a heap profile to `FILE` at shutdown (allocations included)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: shoal [-c FILE] [--listen ADDR] [--data-dir DIR] [--admin-listen ADDR] [--log-level LEVEL]\n       shoal [-c mosquitto.conf] [-d] [-p PORT] [-v]   (as Mosquitto; see README, Coming from Mosquitto)\n       shoal --version\n       shoal passwd [-c] [-D] [-b] [--cost N] FILE USER [PASSWORD]   (edit a password file; shoal passwd -h)\n       shoal healthcheck [-c FILE | --url URL]   (ask the admin API's /healthz; exit 0 on 200)\n\nRuns the Shoal MQTT broker until SIGINT or SIGTERM.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var err error
	switch {
	case fs.NArg() > 0:
		err = fmt.Errorf("unexpected argument %q (flags start with -)", fs.Arg(0))
	case o.port != "" && o.listen != "":
		err = errors.New("-p and --listen: give one (--listen replaces the file's listener, -p is used when the file has none)")
	case o.verbose && o.logLevel != "":
		err = errors.New("-v and --log-level: give one (-v is --log-level debug)")
	}
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		fs.Usage()
		return o, err
	}
	return o, nil
}

// run is the whole program: it returns the exit code. It blocks until a
// value arrives on signals (a nil channel blocks forever).
func run(args []string, stdout, stderr io.Writer, signals <-chan os.Signal) int {
	o, err := parseFlags(args, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		return 2
	}
	if o.showVersion {
		fmt.Fprintf(stdout, "shoal %s (%s %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return 0
	}
	if o.daemon {
		return daemonize(args, stderr)
	}

	file, err := loadConfig(o)
	if err != nil {
		fmt.Fprintf(stderr, "shoal: %v\n", strings.ReplaceAll(err.Error(), "\n", "\nshoal: "))
		var fe *config.FlagError
		if errors.As(err, &fe) {
			return 2
		}
		return 1
	}

	priv, err := checkPrivileges(file, os.Geteuid(), lookupUser, unprivilegedPortStart())
	if err != nil {
		fmt.Fprintf(stderr, "shoal: %s: %v\n", o.configName(), err)
		return 1
	}
	sinks, err := openLogSinks(file.LogDest)
	if err != nil {
		fmt.Fprintf(stderr, "shoal: %s: %v\n", o.configName(), err)
		return 1
	}
	defer func() { sinks.close() }() // the sinks in use at exit
	log := sinks.logger(stdout, stderr, file.LogLevel, file.LogFormat)
	file.Broker.Logger = log
	if priv.note != "" {
		log.Info().Msg(priv.note)
	}
	logWarnings(log, file)
	notify := newNotifier(log)
	if procs, set := setProcs(file.Broker.EventLoops(), os.Getenv); set {
		log.Debug().Int("gomaxprocs", procs).Msg("one scheduler processor more than the event loops")
	}
	if file.PIDFile != "" {
		if err := writePIDFile(file.PIDFile); err != nil {
			log.Error().Err(err).Msg("cannot write the pid file")
			return 1
		}
		defer removePIDFile(file.PIDFile)
	}

	if file.ImportMosquittoDB != "" {
		file.Broker.Import = mosquittoImport(file.ImportMosquittoDB, file.Broker.MaxSessionExpiry)
	}
	b, err := broker.New(file.Broker)
	if err != nil {
		log.Error().Err(err).Msg("cannot build the broker")
		return 1
	}
	var adm *admin.Server
	if file.AdminListen != "" {
		if adm, err = admin.New(b, admin.Config{Listen: file.AdminListen, Token: file.AdminToken, Logger: log}); err != nil {
			log.Error().Err(err).Str("admin_listen", file.AdminListen).Msg("cannot start the admin API")
			return 1
		}
	}
	stopProfiles, err := startProfiles(o.cpuProfile, o.memProfile)
	if err != nil {
		fmt.Fprintf(stderr, "shoal: %v\n", err)
		return 1
	}
	defer stopProfiles()
	// Every listener is bound before any is reported as listening, and
	// before root is given up (bind); the broker opens its store in Start,
	// as the user it runs as.
	if err := bind(b, adm, priv.switchTo, o, file, log); err != nil {
		return 1
	}
	if err := b.Start(); err != nil {
		log.Error().Err(o.nameKey(err)).Msg("cannot start the broker")
		if adm != nil {
			_ = adm.Close(context.Background()) // bound, not served
		}
		return 1
	}
	if adm != nil {
		adm.Serve()
	}
	log.Info().Str("addr", b.Addr().String()).Str("version", version).Str("config_format", file.Format.String()).Msg("listening")
	if n, ok := stderr.(interface{ ready(dests []string) }); ok {
		n.ready(file.LogDest) // -d: the parent may go
	}
	notify(sdnotify.Ready + "\n" + sdnotify.Status("serving MQTT on "+b.Addr().String()))

	relCtx, stopReleaser := context.WithCancel(context.Background())
	relDone := make(chan struct{})
	go func() {
		defer close(relDone)
		(&releaser{churn: b.Churn, free: freeOSMemory, log: log}).run(relCtx)
	}()
	defer func() { stopReleaser(); <-relDone }()

	loaded, started := file, file
	sig := <-signals
	for sig == syscall.SIGHUP {
		notify(sdnotify.Reloading())
		log = reload(b, adm, o, &loaded, started, &sinks, stdout, stderr, log)
		notify(sdnotify.Ready)
		sig = <-signals
	}
	notify(sdnotify.Stopping)
	log.Info().Str("signal", sig.String()).Int64("timeout_ms", shutdownTimeout.Milliseconds()).Msg("shutting down")
	if err := shutdown(b, adm, signals, log); err != nil {
		log.Error().Err(err).Msg("shutdown was not clean")
		return 1
	}
	log.Info().Msg("stopped")
	return 0
}

// overrides are the flags that replace settings of the file.
func (o options) overrides() []config.Override {
	var out []config.Override
	if o.listen != "" {
		out = append(out, config.Override{Flag: "--listen", Key: "listen", Value: o.listen})
	}
	if o.port != "" {
		// Mosquitto 2 binds -p's listener to loopback, and ignores it
		// when the file has a listener (mosquitto(8), -p).
		out = append(out, config.Override{Flag: "-p", Key: "listen", Value: "127.0.0.1:" + o.port, IfUnset: true})
	}
	if o.verbose {
		out = append(out, config.Override{Flag: "-v", Key: "log_level", Value: "debug"})
	}
	if o.dataDir != "" {
		out = append(out, config.Override{Flag: "--data-dir", Key: "data_dir", Value: o.dataDir})
	}
	if o.adminListen != nil {
		out = append(out, config.Override{Flag: "--admin-listen", Key: "admin_listen", Value: *o.adminListen})
	}
	if o.logLevel != "" {
		out = append(out, config.Override{Flag: "--log-level", Key: "log_level", Value: o.logLevel})
	}
	return out
}

// name is how messages name setting key: its flag when a flag set it.
func (o options) name(key string) string {
	for _, ov := range o.overrides() {
		if ov.Key == key {
			return ov.Flag
		}
	}
	return key
}

// nameKey rewrites an error that starts with a setting's key ("listen:
// ...", as the broker's are) to start with the flag that set it, if one
// did.
func (o options) nameKey(err error) error {
	key, rest, ok := strings.Cut(err.Error(), ": ")
	if !ok || o.name(key) == key {
		return err
	}
	return fmt.Errorf("%s: %s", o.name(key), rest)
}

// configName names the configuration in messages.
func (o options) configName() string {
	if o.configPath == "" {
		return embeddedName
	}
	return o.configPath
}

// loadConfig reads the configuration — the file named by -c, in its
// format, or the embedded default — with the flags' overrides applied
// before it is validated. A problem with a flag's value is a
// *config.FlagError.
func loadConfig(o options) (config.File, error) {
	var file config.File
	var err error
	if o.configPath == "" {
		file, err = config.ParseWith(config.Default(), embeddedName, o.overrides())
	} else {
		file, err = mosqconf.Load(o.configPath, mosqconf.Options{Format: o.format, Overrides: o.overrides(), Unsupported: o.unsupported})
	}
	if err != nil {
		return file, err
	}
	file.Broker.Version = version
	return file, nil
}

// bind binds the broker's listeners and the admin listener (adm may be
// nil), then switches to user a (nil: stays), before Start opens the store
// (privileges.go). It logs what fails and lets go of what it bound.
func bind(b *broker.Broker, adm *admin.Server, a *account, o options, file config.File, log zerolog.Logger) error {
	if err := b.Bind(); err != nil {
		log.Error().Err(o.nameKey(err)).Msg("cannot start the broker")
		return err
	}
	if adm != nil {
		if err := adm.Listen(); err != nil {
			log.Error().Err(fmt.Errorf("%s: %s: %w", o.name("admin_listen"), file.AdminListen, err)).Msg("cannot start the admin API")
			_ = b.Close(context.Background())
			return err
		}
	}
	if a == nil {
		return nil
	}
	if err := switchUser(a); err != nil {
		log.Error().Err(err).Msg("cannot give up root")
		_ = shutdown(b, adm, nil, log)
		return err
	}
	log.Info().Str("user", a.name).Int("uid", a.uid).Int("gid", a.gid).Msg("listeners bound; running as user")
	return nil
}

// newNotifier returns the function that tells the service manager about
// start-up, reloads and shutdown (sd_notify: Type=notify units), or does
// nothing when $NOTIFY_SOCKET is unset. A failure is logged, never fatal.
func newNotifier(log zerolog.Logger) func(state string) {
	n := sdnotify.New(os.Getenv("NOTIFY_SOCKET"))
	return func(state string) {
		if err := n.Notify(state); err != nil {
			log.Warn().Err(err).Msg("cannot notify the service manager")
		}
	}
}

// reload is SIGHUP: it reads the configuration file again and applies what
// a running broker can change — the settings marked as reloading in the
// settings list (config.Changed): the log level and format, the limits,
// the password and ACL files, certificates, the admin token — without
// dropping a connection. It logs which keys changed and which of the keys
// that differ from the started configuration wait for a restart. A file
// that does not load is refused with a log line naming the file, line and
// key, and the running configuration stays. loaded is the file last
// applied; it returns the logger to go on with.
//
// The log files are opened again (for log rotation); *sinks is replaced
// when log_dest changed.
func reload(b *broker.Broker, adm *admin.Server, o options, loaded *config.File, started config.File, sinks **logSinks, stdout, stderr io.Writer, log zerolog.Logger) zerolog.Logger {
	if o.configPath == "" {
		log.Warn().Msg("SIGHUP: running on the embedded default configuration, nothing to reload")
		return log
	}
	file, err := loadConfig(o)
	if err != nil {
		log.Error().Err(err).Msg("configuration reload refused: the running configuration stays")
		return log
	}
	old, cur := *sinks, *sinks
	if slices.Equal(file.LogDest, cur.dests) {
		err = cur.reopen()
	} else {
		cur, err = openLogSinks(file.LogDest)
	}
	if err != nil {
		log.Error().Err(err).Msg("configuration reload refused: the running configuration stays")
		return log
	}
	next := cur.logger(stdout, stderr, file.LogLevel, file.LogFormat)
	file.Broker.Logger = next
	if _, err := b.Reload(file.Broker); err != nil {
		if cur != old {
			cur.close()
		}
		log.Error().Err(err).Msg("configuration reload refused: the running configuration stays")
		return log
	}
	if cur != old {
		*sinks = cur
		old.close()
	}
	logWarnings(next, file)
	if adm != nil && file.AdminToken != loaded.AdminToken {
		if err := adm.SetToken(file.AdminToken); err != nil { // the file's check already passed: cannot happen
			log.Error().Err(err).Msg("admin_token not changed")
		}
	}
	changed, _ := config.Changed(*loaded, file)
	_, restart := config.Changed(started, file)
	*loaded = file
	ev := next.Info()
	if len(restart) > 0 {
		ev = next.Warn().Strs("restart_to_apply", restart)
	}
	ev.Str("file", o.configPath).Strs("changed", changed).Msg("configuration reloaded")
	return next
}

// shutdown closes the admin server (may be nil), then b, within
// shutdownTimeout, or at once when another signal arrives.
func shutdown(b *broker.Broker, adm *admin.Server, signals <-chan os.Signal, log zerolog.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		var err error
		if adm != nil {
			err = adm.Close(ctx)
		}
		done <- errors.Join(err, b.Close(ctx))
	}()
	select {
	case err := <-done:
		return err
	case sig := <-signals:
		log.Warn().Str("signal", sig.String()).Msg("second signal: closing now")
		cancel()
		return <-done
	}
}

// newLogger builds a logger on w alone.
func newLogger(w io.Writer, level zerolog.Level, format config.LogFormat) zerolog.Logger {
	return zerolog.New(formatted(w, format)).Level(level).With().Timestamp().Logger()
}

// logWarnings logs what the configuration warns about (File.Warnings).
func logWarnings(log zerolog.Logger, file config.File) {
	for _, w := range file.Warnings {
		log.Warn().Msg(w)
	}
}

// isTerminal reports whether w is a terminal, for the console-or-JSON
// choice.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// startProfiles starts a CPU profile into cpu (if not "") and returns the
// function that ends it and writes a heap profile into mem (if not "").
func startProfiles(cpu, mem string) (stop func(), err error) {
	var cpuFile *os.File
	if cpu != "" {
		if cpuFile, err = os.Create(cpu); err != nil {
			return nil, fmt.Errorf("cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(cpuFile); err != nil {
			cpuFile.Close()
			return nil, fmt.Errorf("cpuprofile: %w", err)
		}
	}
	return func() {
		if cpuFile != nil {
			pprof.StopCPUProfile()
			cpuFile.Close()
		}
		if mem != "" {
			if f, err := os.Create(mem); err == nil {
				runtime.GC() // the heap profile shows live data as of the last GC
				_ = pprof.Lookup("heap").WriteTo(f, 0)
				f.Close()
			}
		}
	}, nil
}
