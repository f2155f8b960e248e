package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"

	"github.com/shoalmq/shoal/config"
)

// checkUser refuses to run as root a Mosquitto configuration that asks for
// another user (Mosquitto's user directive, "mosquitto" when it is left
// out). Mosquitto started as root binds its ports, then drops to that
// user; Shoal does not change users — its store is opened and its files
// written by whoever starts it — so the honest answer is to be started as
// that user. Not root, the directive has no effect, as in Mosquitto.
// policy warn lets it run as root after all, with the warning returned.
func checkUser(file config.File, policy config.Unsupported) (warning string, err error) {
	if os.Geteuid() != 0 || file.RunAs == "" || file.RunAs == "root" {
		return "", nil
	}
	err = fmt.Errorf("the configuration asks to run as user %q (Mosquitto's user directive, or its default, mosquitto): "+
		"Mosquitto started as root drops to it, Shoal does not change users. Start shoal as that user — "+
		"sudo -u %[1]s shoal -c FILE, or User=%[1]s in its systemd unit (with AmbientCapabilities=CAP_NET_BIND_SERVICE "+
		"for ports under 1024) — or write \"user root\" to stay root, or give --mosquitto-unsupported warn", file.RunAs)
	if policy == config.WarnUnsupported {
		return err.Error() + ": running as root", nil
	}
	return "", err
}

// writePIDFile writes this process's id to path (pid_file), replacing
// what is there, as Mosquitto does.
func writePIDFile(path string) error {
	if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return fmt.Errorf("pid_file: %w", err)
	}
	return nil
}

// removePIDFile removes path if it still holds this process's id: another
// process started since may have written its own.
func removePIDFile(path string) {
	data, err := os.ReadFile(path)
	if err == nil && string(bytes.TrimSpace(data)) == strconv.Itoa(os.Getpid()) {
		_ = os.Remove(path)
	}
}
