package testutil

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Python returns the path of a Python 3 interpreter that can import
// paho.mqtt 1.x (Debian's python3-paho-mqtt), for the MQTT 5 end-to-end
// scripts in broker/testdata/python. It fails the test with the install
// hint when there is none: a missing peer is a broken set-up, not a pass.
// Safe for concurrent use; each call probes again (about 0.1 s), so that
// nothing is cached between tests.
func Python(t testing.TB) string {
	t.Helper()
	var tried []string
	// Debian's python3-paho-mqtt installs into /usr/bin/python3's
	// dist-packages only, so that one comes first: a python3 earlier on
	// PATH (pyenv, a venv) usually lacks paho.
	for _, name := range []string{"/usr/bin/python3", "python3"} {
		path, err := exec.LookPath(name)
		if err != nil {
			tried = append(tried, name+": not found")
			continue
		}
		version, err := pahoVersion(path)
		if err != nil {
			tried = append(tried, path+": "+err.Error())
			continue
		}
		// The scripts use the 1.x callback signatures; paho 2.x changed
		// them (CallbackAPIVersion).
		if !strings.HasPrefix(version, "1.") {
			tried = append(tried, path+": paho-mqtt "+version+", want 1.x")
			continue
		}
		return path
	}
	t.Fatalf("no python3 with paho-mqtt 1.x (%s): run `make deps` (installs python3-paho-mqtt)", strings.Join(tried, "; "))
	return ""
}

// pahoVersion asks the interpreter at path for paho.mqtt's version.
func pahoVersion(path string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "-c", "import paho.mqtt; print(paho.mqtt.__version__)").CombinedOutput()
	msg := strings.TrimSpace(string(out))
	if err != nil {
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:] // the exception line, not the whole traceback
		}
		return "", fmt.Errorf("%w: %s", err, msg)
	}
	return msg, nil
}
