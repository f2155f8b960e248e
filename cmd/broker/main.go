package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/term"

	"github.com/shoalmq/shoal/admin"
	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/config"
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
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, signals))
}

// options are the command-line flags after parsing.
type options struct {
	configPath  string // "" means the embedded default
	listen      string // "" means the file's
	dataDir     string // "" means the file's
	adminListen *string
	logLevel    *zerolog.Level
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
	fs.Func("config", "read the configuration from `FILE` (default: the embedded config.example.yaml)", setConfig)
	fs.Func("listen", "listen on `ADDR` (host:port), overriding the file's listen", func(s string) error {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return fmt.Errorf("want host:port: %w", err)
		}
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
		if s != "" {
			if _, _, err := net.SplitHostPort(s); err != nil {
				return fmt.Errorf("want host:port or \"\": %w", err)
			}
		}
		o.adminListen = &s
		return nil
	})
	fs.Func("log-level", "log at `LEVEL` and above: trace, debug, info, warn or error (overrides the file's log_level)", func(s string) error {
		l, err := config.ParseLogLevel(s)
		if err != nil {
			return err
		}
		o.logLevel = &l
		return nil
	})
	fs.BoolVar(&o.showVersion, "version", false, "print the version and exit")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to `FILE` (for go tool pprof)")
	fs.StringVar(&o.memProfile, "memprofile", "", "write a heap profile to `FILE` at shutdown (allocations included)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: shoal [-c FILE] [--listen ADDR] [--data-dir DIR] [--admin-listen ADDR] [--log-level LEVEL]\n       shoal --version\n       shoal passwd [-c] [-D] [-b] [--cost N] FILE USER [PASSWORD]   (edit a password file; shoal passwd -h)\n       shoal healthcheck [-c FILE | --url URL]   (ask the admin API's /healthz; exit 0 on 200)\n\nRuns the Shoal MQTT broker until SIGINT or SIGTERM.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		err := fmt.Errorf("unexpected argument %q (flags start with -)", fs.Arg(0))
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

	file, err := loadConfig(o)
	if err != nil {
		fmt.Fprintf(stderr, "shoal: %v\n", err)
		return 1
	}
	if o.adminListen != nil {
		if err := admin.CheckConfig(file.AdminListen, file.AdminToken); err != nil {
			fmt.Fprintf(stderr, "shoal: --admin-listen: %v\n", err)
			return 2
		}
	}

	priv, err := checkPrivileges(file, os.Geteuid(), lookupUser, unprivilegedPortStart())
	if err != nil {
		fmt.Fprintf(stderr, "shoal: %v\n", err)
		return 1
	}

	log := newLogger(stderr, file.LogLevel, file.LogFormat)
	file.Broker.Logger = log
	if priv.note != "" {
		log.Info().Msg(priv.note)
	}
	notify := newNotifier(log)

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
	if err := bind(b, adm, priv.switchTo, log); err != nil {
		return 1
	}
	if err := b.Start(); err != nil {
		log.Error().Err(err).Str("listen", file.Broker.Listen).Msg("cannot start the broker")
		if adm != nil {
			_ = adm.Close(context.Background()) // bound, not served
		}
		return 1
	}
	log.Info().Str("addr", b.Addr().String()).Str("version", version).Msg("listening")
	if adm != nil {
		if err := adm.Start(); err != nil {
			log.Error().Err(err).Str("admin_listen", file.AdminListen).Msg("cannot start the admin API")
			_ = shutdown(b, nil, nil, log)
			return 1
		}
	}
	notify(sdnotify.Ready + "\n" + sdnotify.Status("serving MQTT on "+b.Addr().String()))

	sig := <-signals
	for sig == syscall.SIGHUP {
		notify(sdnotify.Reloading())
		log = reload(b, file, o, stderr, log)
		notify(sdnotify.Ready)
		sig = <-signals
	}
	notify(sdnotify.Stopping)
	log.Info().Str("signal", sig.String()).Dur("timeout", shutdownTimeout).Msg("shutting down")
	if err := shutdown(b, adm, signals, log); err != nil {
		log.Error().Err(err).Msg("shutdown was not clean")
		return 1
	}
	log.Info().Msg("stopped")
	return 0
}

// loadConfig reads the configuration — the file named by -c, or the
// embedded default — with the flags' overrides applied.
func loadConfig(o options) (config.File, error) {
	var file config.File
	var err error
	if o.configPath == "" {
		file, err = config.Parse(config.Default(), embeddedName)
	} else {
		file, err = config.Load(o.configPath)
	}
	if err != nil {
		return file, err
	}
	if o.listen != "" {
		file.Broker.Listen = o.listen
	}
	if o.dataDir != "" && file.Persistence {
		file.Broker.DataDir = o.dataDir
	}
	if o.adminListen != nil {
		file.AdminListen = *o.adminListen
	}
	if o.logLevel != nil {
		file.LogLevel = *o.logLevel
	}
	file.Broker.Version = version
	return file, nil
}

// bind binds the broker's listeners and the admin listener (adm may be
// nil), then switches to user a (nil: stays), before Start opens the store
// (privileges.go). It logs what fails and lets go of what it bound.
func bind(b *broker.Broker, adm *admin.Server, a *account, log zerolog.Logger) error {
	if err := b.Bind(); err != nil {
		log.Error().Err(err).Msg("cannot start the broker")
		return err
	}
	if adm != nil {
		if err := adm.Listen(); err != nil {
			log.Error().Err(err).Msg("cannot start the admin API")
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

// restartFields names the changed settings of the program itself,
// outside broker.Config, that a reload cannot apply: File fields, named
// as broker.Reload names the Config fields it cannot apply.
func restartFields(running, next config.File) []string {
	var names []string
	for _, f := range []struct {
		name    string
		changed bool
	}{
		{"AdminListen", running.AdminListen != next.AdminListen},
		{"AdminToken", running.AdminToken != next.AdminToken},
		{"User", running.User != next.User},
		{"AllowRoot", running.AllowRoot != next.AllowRoot},
	} {
		if f.changed {
			names = append(names, f.name)
		}
	}
	return names
}

// reload is SIGHUP: it reads the configuration file again and applies what
// a running broker can change — the log level and format, and the limits
// (broker.Limits) — without dropping a connection. A file that does not
// load is refused with a log line naming the file, line and key, and the
// running configuration stays. running is the configuration the broker
// started with. It returns the logger to go on with.
func reload(b *broker.Broker, running config.File, o options, stderr io.Writer, log zerolog.Logger) zerolog.Logger {
	if o.configPath == "" {
		log.Warn().Msg("SIGHUP: running on the embedded default configuration, nothing to reload")
		return log
	}
	file, err := loadConfig(o)
	if err != nil {
		log.Error().Err(err).Msg("configuration reload refused: the running configuration stays")
		return log
	}
	next := newLogger(stderr, file.LogLevel, file.LogFormat)
	file.Broker.Logger = next
	needRestart, err := b.Reload(file.Broker)
	if err != nil {
		log.Error().Err(err).Msg("configuration reload refused: the running configuration stays")
		return log
	}
	needRestart = append(needRestart, restartFields(running, file)...)
	ev := next.Info()
	if len(needRestart) > 0 {
		ev = next.Warn().Strs("restart_to_apply", needRestart)
	}
	ev.Str("file", o.configPath).Msg("configuration reloaded")
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

// newLogger builds the process logger on w.
func newLogger(w io.Writer, level zerolog.Level, format config.LogFormat) zerolog.Logger {
	terminal := isTerminal(w)
	if format.Console(terminal) {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339, NoColor: !terminal}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
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
