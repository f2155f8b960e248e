package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoalmq/shoal/auth"
)

// passwdRun runs "shoal passwd args" with stdin and returns its exit code
// and stderr.
func passwdRun(t *testing.T, stdin string, args ...string) (int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := runPasswd(args, strings.NewReader(stdin), &stdout, &stderr)
	if stdout.Len() > 0 {
		t.Errorf("passwd %q wrote to stdout: %q", args, stdout.String())
	}
	return code, stderr.String()
}

// passwdCheck loads file and checks each user's password; "" means the user
// must be absent.
func passwdCheck(t *testing.T, file string, want map[string]string) {
	t.Helper()
	p, err := auth.LoadPasswordFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for user, pw := range want {
		l := &auth.Login{Username: user, HasUsername: true, Password: []byte(pw), HasPassword: true}
		err := p.Authenticate(context.Background(), l)
		switch {
		case pw == "" && err != auth.ErrUnknownUser:
			t.Errorf("%s: %v, want the user gone", user, err)
		case pw != "" && err != nil:
			t.Errorf("%s/%q: %v", user, pw, err)
		}
	}
}

func TestPasswdCommand(t *testing.T) {
	file := filepath.Join(t.TempDir(), "users.pw")
	steps := []struct {
		name   string
		stdin  string
		args   []string
		code   int
		stderr string // a substring; "" means stderr must be empty
		users  map[string]string
	}{
		{name: "create", args: []string{"-c", "-b", "--cost", "4", file, "alice", "a1"}, code: 0,
			stderr: "visible to other users", users: map[string]string{"alice": "a1"}},
		{name: "add from stdin", stdin: "b1\n", args: []string{"--cost", "4", file, "bob"}, code: 0,
			users: map[string]string{"alice": "a1", "bob": "b1"}},
		{name: "change, CRLF, no newline at EOF", stdin: "a2\r\n", args: []string{"-cost=4", file, "alice"}, code: 0,
			users: map[string]string{"alice": "a2", "bob": "b1"}},
		{name: "last line without newline", stdin: "c1", args: []string{"--cost", "4", file, "carol"}, code: 0,
			users: map[string]string{"alice": "a2", "bob": "b1", "carol": "c1"}},
		{name: "delete", args: []string{"-D", file, "bob"}, code: 0,
			users: map[string]string{"alice": "a2", "bob": "", "carol": "c1"}},
		{name: "delete missing user", args: []string{"-D", file, "bob"}, code: 1,
			stderr: "shoal passwd: " + file + ": no such user in the password file: \"bob\""},
		{name: "empty stdin", stdin: "", args: []string{"--cost", "4", file, "dave"}, code: 1,
			stderr: "shoal passwd: " + file + ": no password on standard input"},
		{name: "empty password", stdin: "\n", args: []string{"--cost", "4", file, "dave"}, code: 1,
			stderr: file + ": empty password"},
		{name: "bad user", args: []string{"-b", "--cost", "4", file, "da:ve", "d"}, code: 1,
			stderr: file + ": invalid user name"},
		{name: "create replaces", args: []string{"-c", "-b", "--cost", "4", file, "erin", "e1"}, code: 0,
			stderr: "visible", users: map[string]string{"alice": "", "carol": "", "erin": "e1"}},
	}
	for _, s := range steps {
		code, stderr := passwdRun(t, s.stdin, s.args...)
		if code != s.code {
			t.Fatalf("%s: exit %d, want %d; stderr:\n%s", s.name, code, s.code, stderr)
		}
		if (s.stderr == "" && stderr != "") || !strings.Contains(stderr, s.stderr) {
			t.Errorf("%s: stderr %q, want %q", s.name, stderr, s.stderr)
		}
		if s.users != nil {
			passwdCheck(t, file, s.users)
		}
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestPasswdCommandDefaultCost(t *testing.T) {
	file := filepath.Join(t.TempDir(), "users.pw")
	if code, stderr := passwdRun(t, "pw\n", file, "alice"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "alice:$2a$10$") {
		t.Errorf("file %q: want a bcrypt hash at cost 10", data)
	}
}

func TestPasswdCommandErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "users.pw")
	missingDir := filepath.Join(t.TempDir(), "no", "such", "dir", "users.pw")
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{name: "no arguments", args: nil, code: 2, stderr: "want 2 arguments, got 0"},
		{name: "one argument", args: []string{file}, code: 2, stderr: "want 2 arguments, got 1"},
		{name: "password without -b", args: []string{file, "alice", "pw"}, code: 2, stderr: "want 2 arguments, got 3"},
		{name: "-b without password", args: []string{"-b", file, "alice"}, code: 2, stderr: "want 3 arguments, got 2"},
		{name: "-c with -D", args: []string{"-c", "-D", file, "alice"}, code: 2, stderr: "-c and -D cannot go together"},
		{name: "-D with -b", args: []string{"-D", "-b", file, "alice", "pw"}, code: 2, stderr: "-D takes no password"},
		{name: "low cost", args: []string{"--cost", "3", file, "alice"}, code: 2, stderr: "--cost 3 is outside 4 to 31"},
		{name: "high cost", args: []string{"--cost", "32", file, "alice"}, code: 2, stderr: "outside 4 to 31"},
		{name: "cost not a number", args: []string{"--cost", "ten", file, "alice"}, code: 2, stderr: "invalid value"},
		{name: "unknown flag", args: []string{"-x", file, "alice"}, code: 2, stderr: "flag provided but not defined: -x"},
		{name: "help", args: []string{"-h"}, code: 0, stderr: "Usage: shoal passwd"},
		{name: "delete from missing file", args: []string{"-D", file, "alice"}, code: 1, stderr: "shoal passwd: " + file + ": "},
		{name: "missing directory", args: []string{"-b", "--cost", "4", missingDir, "alice", "pw"}, code: 1, stderr: "shoal passwd: " + missingDir + ": "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stderr := passwdRun(t, "pw\n", tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit %d and %q", code, stderr, tc.code, tc.stderr)
			}
			if code == 2 && !strings.Contains(stderr, "Usage: shoal passwd") {
				t.Errorf("a usage error without the usage:\n%s", stderr)
			}
		})
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("a failed command created the file (%v)", err)
	}
}

func TestHelpMentionsPasswd(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-h"}, &stdout, &stderr, nil); code != 0 {
		t.Fatalf("-h exited %d", code)
	}
	if !strings.Contains(stderr.String(), "shoal passwd") {
		t.Errorf("usage does not mention the passwd subcommand:\n%s", stderr.String())
	}
}
