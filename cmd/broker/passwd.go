package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/shoalmq/shoal/auth"
)

// bcrypt's cost range; auth.SetPassword refuses anything outside it.
const (
	minBcryptCost = 4
	maxBcryptCost = 31
)

// runPasswd is "shoal passwd": it adds, changes or deletes a user of a
// password file (auth.PasswordFile), like mosquitto_passwd. It returns the
// exit code: 0 done, 2 a usage error, 1 anything else, with the reason on
// stderr naming the file. Prompts go to stderr too; nothing is written to
// stdout, which is there for symmetry with run.
func runPasswd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("shoal passwd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	create := fs.Bool("c", false, "create FILE with USER alone, replacing any file there")
	del := fs.Bool("D", false, "delete USER from FILE")
	batch := fs.Bool("b", false, "take PASSWORD from the command line, for scripts (other users can see it in ps)")
	cost := fs.Int("cost", auth.DefaultBcryptCost, "bcrypt cost `N`, 4 to 31: each step doubles the time of a hash")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: shoal passwd [-c] [--cost N] FILE USER
       shoal passwd -b [-c] [--cost N] FILE USER PASSWORD
       shoal passwd -D FILE USER

Adds USER to the password file FILE or changes their password, hashed with
bcrypt; FILE is created (mode 0600) when missing, and its other lines and
comments are kept. The password is asked twice on a terminal, otherwise read
as one line from standard input. Files written by mosquitto_passwd work too.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return 0
	} else if err != nil {
		return 2
	}
	usage := func(msg string) int {
		fmt.Fprintf(stderr, "shoal passwd: %s\n", msg)
		fs.Usage()
		return 2
	}
	wantArgs := 2
	if *batch {
		wantArgs = 3
	}
	switch {
	case *create && *del:
		return usage("-c and -D cannot go together")
	case *del && *batch:
		return usage("-D takes no password")
	case *cost < minBcryptCost || *cost > maxBcryptCost:
		return usage(fmt.Sprintf("--cost %d is outside 4 to 31", *cost))
	case fs.NArg() != wantArgs:
		return usage(fmt.Sprintf("want %d arguments, got %d", wantArgs, fs.NArg()))
	}
	file, user := fs.Arg(0), fs.Arg(1)
	fail := func(err error) int {
		// auth's errors name the file already; "auth: " adds nothing here.
		var fe *auth.FileError
		if errors.As(err, &fe) {
			fmt.Fprintf(stderr, "shoal passwd: %s\n", strings.TrimPrefix(err.Error(), "auth: "))
		} else {
			fmt.Fprintf(stderr, "shoal passwd: %s: %v\n", file, err)
		}
		return 1
	}

	if *del {
		if err := auth.DeletePassword(file, user); err != nil {
			return fail(err)
		}
		return 0
	}
	var password string
	if *batch {
		fmt.Fprintln(stderr, "shoal passwd: warning: a password on the command line is visible to other users (ps) and may stay in shell history")
		password = fs.Arg(2)
	} else {
		var err error
		if password, err = readPassword(stdin, stderr); err != nil {
			return fail(err)
		}
	}
	var err error
	if *create {
		err = auth.CreatePasswordFile(file, user, password, *cost)
	} else {
		err = auth.SetPassword(file, user, password, *cost)
	}
	if err != nil {
		return fail(err)
	}
	return 0
}

// readPassword asks for the password twice, without echo, when stdin is a
// terminal; otherwise it reads one line (without its "\n" or "\r\n").
func readPassword(stdin io.Reader, prompts io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fd := int(f.Fd())
		fmt.Fprint(prompts, "Password: ")
		first, err := term.ReadPassword(fd)
		fmt.Fprintln(prompts)
		if err != nil {
			return "", fmt.Errorf("reading the password: %w", err)
		}
		fmt.Fprint(prompts, "Reenter password: ")
		again, err := term.ReadPassword(fd)
		fmt.Fprintln(prompts)
		if err != nil {
			return "", fmt.Errorf("reading the password: %w", err)
		}
		if !bytes.Equal(first, again) {
			return "", errors.New("the passwords do not match")
		}
		return string(first), nil
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	switch {
	case errors.Is(err, io.EOF) && line == "":
		return "", errors.New("no password on standard input")
	case err != nil && !errors.Is(err, io.EOF):
		return "", fmt.Errorf("reading the password: %w", err)
	}
	line = strings.TrimSuffix(line, "\n")
	return strings.TrimSuffix(line, "\r"), nil
}
