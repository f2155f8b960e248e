package brokers

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Bins are the programs a benchmark runs.
type Bins struct {
	Shoal, Mosquitto, Mochi, Floor string // the brokers
	ShoalBefore                    string // Shoal at the -before revision; "" for none
	Shoalbench                     string // the load generator
	Chart                          string // the PNG renderer; "" to skip charts
}

// Command returns the argv that runs broker name on 127.0.0.1:port,
// writing any configuration file it needs into dir; with persist, the
// broker keeps its state in dir/data.
func (b Bins) Command(name string, port int, dir string, persist bool) ([]string, error) {
	addr := "127.0.0.1:" + strconv.Itoa(port)
	var dataDir string
	if persist {
		dataDir = filepath.Join(dir, "data")
		if err := os.MkdirAll(dataDir, 0o755); err != nil {
			return nil, err
		}
	}
	switch name {
	case Shoal, ShoalBefore, ShoalNoCoalesce, ShoalNagle:
		bin := b.Shoal
		if name == ShoalBefore {
			if bin = b.ShoalBefore; bin == "" {
				return nil, fmt.Errorf("brokers: %s needs -before REV", name)
			}
		}
		conf := ShoalConfig(port, dataDir)
		switch name {
		case ShoalNoCoalesce:
			conf += "coalesce: 0s\n"
		case ShoalNagle:
			conf += "tcp_nodelay: false\n"
		}
		cfg := filepath.Join(dir, "shoal.yaml")
		if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
			return nil, err
		}
		return []string{bin, "-c", cfg, "--listen", addr, "--log-level", "warn"}, nil
	case Mosquitto, MosquittoNoDelay:
		cfg := filepath.Join(dir, "mosquitto.conf")
		if err := os.WriteFile(cfg, []byte(MosquittoConfig(port, dataDir, name == MosquittoNoDelay)), 0o644); err != nil {
			return nil, err
		}
		return []string{b.Mosquitto, "-c", cfg}, nil
	case Mochi:
		return []string{b.Mochi, "-addr", addr}, nil
	case Floor:
		return []string{b.Floor, "-addr", addr}, nil
	}
	return nil, fmt.Errorf("brokers: unknown broker %q", name)
}

// Builder builds the Go programs a benchmark runs and finds Mosquitto.
type Builder struct {
	Root string // the Shoal repository
	Out  string // where binaries go
	// Shoalbench, when set, is a prebuilt load generator to use instead of
	// building bench/cmd/shoalbench.
	Shoalbench string
	// Before, when set, is a git revision of Root to build Shoal at too,
	// as ShoalBefore: its tree is exported (git archive, which leaves the
	// repository alone) into Out/src-before and built there.
	Before string
	// Log receives progress lines.
	Log func(format string, args ...any)
}

// Build builds every program and returns their paths. Mosquitto is
// installed with apt-get when it is missing and the harness is root.
func (b Builder) Build(ctx context.Context) (Bins, error) {
	type step struct {
		dst       *string
		dir       string // module directory to build in
		pkg, name string
	}
	var bins Bins
	steps := []step{
		{&bins.Shoal, b.Root, "./cmd/broker", "shoal"},
		{&bins.Floor, b.Root, "./bench/peers/floor", "floor"},
		{&bins.Mochi, filepath.Join(b.Root, "bench/peers/mochi"), ".", "mochi"},
		{&bins.Chart, filepath.Join(b.Root, "bench/harness/chart"), ".", "chart"},
	}
	if b.Shoalbench == "" {
		steps = append(steps, step{&bins.Shoalbench, b.Root, "./bench/cmd/shoalbench", "shoalbench"})
	} else {
		bins.Shoalbench = b.Shoalbench
	}
	if b.Before != "" {
		src := filepath.Join(b.Out, "src-before")
		if err := exportRevision(ctx, b.Root, b.Before, src); err != nil {
			return bins, err
		}
		steps = append(steps, step{&bins.ShoalBefore, src, "./cmd/broker", "shoal-before"})
	}
	for _, s := range steps {
		out := filepath.Join(b.Out, s.name)
		b.Log("build %s", s.name)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", out, s.pkg)
		cmd.Dir = s.dir
		if msg, err := cmd.CombinedOutput(); err != nil {
			return bins, fmt.Errorf("brokers: go build %s in %s: %w\n%s", s.pkg, s.dir, err, msg)
		}
		*s.dst = out
	}
	m, err := FindMosquitto(ctx, b.Log)
	if err != nil {
		return bins, err
	}
	bins.Mosquitto = m
	return bins, nil
}

// exportRevision writes the tree of revision rev of the repository at root
// into dir.
func exportRevision(ctx context.Context, root, rev, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	archive := exec.CommandContext(ctx, "git", "-C", root, "archive", "--format=tar", rev)
	untar := exec.CommandContext(ctx, "tar", "-x", "-C", dir)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return err
	}
	untar.Stdin = pipe
	var stderr strings.Builder
	archive.Stderr = &stderr
	if err := archive.Start(); err != nil {
		return err
	}
	if out, err := untar.CombinedOutput(); err != nil {
		_ = archive.Wait()
		return fmt.Errorf("brokers: tar -x of %s: %w\n%s", rev, err, out)
	}
	if err := archive.Wait(); err != nil {
		return fmt.Errorf("brokers: git archive %s: %w\n%s", rev, err, stderr.String())
	}
	return nil
}

// FindMosquitto returns the path of the mosquitto broker, installing the
// Debian package first when it is missing and the harness runs as root
// (or has password-less sudo).
func FindMosquitto(ctx context.Context, log func(string, ...any)) (string, error) {
	find := func() string {
		if p, err := exec.LookPath("mosquitto"); err == nil {
			return p
		}
		if _, err := os.Stat("/usr/sbin/mosquitto"); err == nil {
			return "/usr/sbin/mosquitto"
		}
		return ""
	}
	if p := find(); p != "" {
		return p, nil
	}
	var sudo []string
	if os.Geteuid() != 0 {
		sudo = []string{"sudo", "-n"}
	}
	run := func(args ...string) error {
		argv := append(append(append([]string{}, sudo...), "env", "DEBIAN_FRONTEND=noninteractive"), args...)
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, out)
		}
		return nil
	}
	log("mosquitto is missing: apt-get install -y mosquitto")
	if err := run("apt-get", "install", "-y", "mosquitto"); err != nil {
		if err := run("apt-get", "update"); err != nil {
			return "", fmt.Errorf("brokers: cannot install mosquitto: %w", err)
		}
		if err := run("apt-get", "install", "-y", "mosquitto"); err != nil {
			return "", fmt.Errorf("brokers: cannot install mosquitto: %w", err)
		}
	}
	// The package may start a system service on port 1883; it would only
	// take CPU from the runs, so stop it like `make deps` does.
	if exec.CommandContext(ctx, "systemctl", "is-active", "--quiet", "mosquitto").Run() == nil {
		_ = run("systemctl", "disable", "--now", "mosquitto")
	}
	if p := find(); p != "" {
		return p, nil
	}
	return "", fmt.Errorf("brokers: mosquitto still missing after apt-get install")
}
