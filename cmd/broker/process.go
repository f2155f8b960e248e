package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

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
