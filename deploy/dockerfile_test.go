package deploy_test

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	line int
	cmd  string // upper case: FROM, RUN, ...
	args string
}

// stage is a build stage: its FROM and what follows.
type stage struct {
	image, name string
	body        []instruction
}

// parseDockerfile splits a Dockerfile into stages. It knows comments,
// backslash continuations and FROM image AS name: enough to check the
// file's shape, not a builder.
func parseDockerfile(t *testing.T, text string) []stage {
	t.Helper()
	var stages []stage
	var cur strings.Builder
	start := 0
	flush := func() {
		s := strings.TrimSpace(cur.String())
		cur.Reset()
		if s == "" {
			return
		}
		cmd, args, _ := strings.Cut(s, " ")
		in := instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			st := stage{image: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			stages = append(stages, st)
			return
		}
		if len(stages) == 0 {
			if in.cmd != "ARG" {
				t.Fatalf("Dockerfile line %d: %s before the first FROM", in.line, in.cmd)
			}
			return
		}
		stages[len(stages)-1].body = append(stages[len(stages)-1].body, in)
	}
	for i, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 {
			if trimmed == "" || strings.HasPrefix(trimmed, "#") {
				continue
			}
			start = i + 1
		} else if strings.HasPrefix(trimmed, "#") {
			continue // a comment inside a continued instruction
		}
		if strings.HasSuffix(line, `\`) {
			cur.WriteString(strings.TrimSuffix(line, `\`) + " ")
			continue
		}
		cur.WriteString(line)
		flush()
	}
	flush()
	return stages
}

// find returns the stage's instructions of kind cmd.
func (s stage) find(cmd string) []instruction {
	var out []instruction
	for _, in := range s.body {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// execForm reads a JSON-array instruction argument (["a", "b"]).
func execForm(t *testing.T, in instruction) []string {
	t.Helper()
	var out []string
	if err := json.Unmarshal([]byte(in.args), &out); err != nil {
		t.Errorf("line %d: %s %s is not in exec form (a JSON array): %v", in.line, in.cmd, in.args, err)
	}
	return out
}

// TestDockerfile checks deploy/Dockerfile: a Go build stage on go.mod's
// Go version making a static binary and the container configuration, then
// a minimal runtime stage that copies from it, runs as a non-root user,
// keeps /var/lib/shoal in a volume, exposes MQTT and the admin API, and
// checks health with the broker's own healthcheck subcommand.
func TestDockerfile(t *testing.T) {
	raw, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	stages := parseDockerfile(t, string(raw))
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a build stage and a runtime stage", len(stages))
	}
	build, run := stages[0], stages[len(stages)-1]

	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if goVersion == nil {
		t.Fatal("no go directive in go.mod")
	}
	if want := "golang:" + string(goVersion[1]); !strings.HasPrefix(build.image, want) {
		t.Errorf("build stage FROM %s, want %s (go.mod's Go)", build.image, want)
	}
	if build.name == "" {
		t.Error("the build stage has no name (FROM ... AS build)")
	}
	var runs strings.Builder
	for _, in := range build.find("RUN") {
		runs.WriteString(in.args + "\n")
	}
	for _, want := range []string{"CGO_ENABLED=0", "go build", "./cmd/broker", "./packaging/sysconfig -target container"} {
		if !strings.Contains(runs.String(), want) {
			t.Errorf("the build stage's RUN lines lack %q", want)
		}
	}

	if !strings.Contains(run.image, "distroless/static") && !strings.Contains(run.image, "-slim") && run.image != "scratch" {
		t.Errorf("runtime stage FROM %s: want a minimal image", run.image)
	}
	copied := false
	for _, in := range run.find("COPY") {
		if strings.Contains(in.args, "--from="+build.name) && strings.Contains(in.args, "/usr/bin/shoal") {
			copied = true
		}
	}
	if !copied {
		t.Errorf("the runtime stage does not COPY --from=%s the binary to /usr/bin/shoal", build.name)
	}

	users := run.find("USER")
	if len(users) == 0 {
		t.Fatal("the runtime stage has no USER: it would run as root")
	}
	user := strings.Fields(users[len(users)-1].args)[0]
	if name, _, _ := strings.Cut(user, ":"); name == "root" || name == "0" {
		t.Errorf("USER %s: want a non-root user", user)
	}
	owned := false
	for _, in := range run.find("COPY") {
		if strings.Contains(in.args, "--chown="+user) && strings.HasSuffix(in.args, " /var/lib/shoal") {
			owned = true
		}
	}
	if !owned {
		t.Errorf("/var/lib/shoal is not copied --chown=%s: the volume would not be writable by USER", user)
	}

	volumes := run.find("VOLUME")
	if len(volumes) != 1 || !strings.Contains(strings.Join(execForm(t, volumes[0]), " "), "/var/lib/shoal") {
		t.Errorf("VOLUME %v, want [\"/var/lib/shoal\"]", volumes)
	}
	exposed := map[string]bool{}
	for _, in := range run.find("EXPOSE") {
		for _, p := range strings.Fields(in.args) {
			exposed[p] = true
		}
	}
	if !exposed["1883"] || !exposed["8083"] {
		t.Errorf("EXPOSE %v, want 1883 and 8083", exposed)
	}

	health := run.find("HEALTHCHECK")
	if len(health) != 1 {
		t.Fatalf("%d HEALTHCHECK instructions in the runtime stage, want 1", len(health))
	}
	_, cmd, ok := strings.Cut(health[0].args, "CMD ")
	if !ok {
		t.Fatalf("HEALTHCHECK %s has no CMD", health[0].args)
	}
	hc := execForm(t, instruction{line: health[0].line, cmd: "HEALTHCHECK CMD", args: strings.TrimSpace(cmd)})
	if len(hc) < 2 || hc[0] != "/usr/bin/shoal" || hc[1] != "healthcheck" {
		t.Errorf("HEALTHCHECK CMD %v, want /usr/bin/shoal healthcheck (the image has no curl)", hc)
	}

	entry := run.find("ENTRYPOINT")
	if len(entry) != 1 || strings.Join(execForm(t, entry[0]), " ") != "/usr/bin/shoal" {
		t.Errorf("ENTRYPOINT %v, want [\"/usr/bin/shoal\"]", entry)
	}
	if _, err := os.Stat("../.dockerignore"); err != nil {
		t.Errorf(".dockerignore: %v", err)
	}
}
