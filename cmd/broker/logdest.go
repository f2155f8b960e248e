package main

import (
	"fmt"
	"io"
	"log/syslog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/shoalmq/shoal/config"
)

// logSinks are the open destinations of the process's log (log_dest):
// the files it appends to, kept open between SIGHUPs, and a syslog
// connection. Safe for concurrent use: the logger writes from every
// goroutine while a reload reopens the files.
type logSinks struct {
	dests  []string
	files  []*logFile
	syslog *syslog.Writer
}

// logFile is a log file that a SIGHUP opens again, so that a log rotation
// (rename, then SIGHUP) moves the log to a new file.
type logFile struct {
	path string
	mu   sync.Mutex
	f    *os.File // nil once closed: writes are dropped
}

func openLogFile(path string) (*logFile, error) {
	l := &logFile{path: path}
	return l, l.reopen()
}

// Write appends p to the file.
func (l *logFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return len(p), nil // closed by a reload that moved the log elsewhere
	}
	return l.f.Write(p)
}

// reopen opens the file at path again (creating it, mode 0640, as a
// daemon's log), then closes the old one.
func (l *logFile) reopen() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("log_dest: %w", err)
	}
	l.mu.Lock()
	old := l.f
	l.f = f
	l.mu.Unlock()
	if old != nil {
		return old.Close()
	}
	return nil
}

func (l *logFile) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// openLogSinks opens the destinations dests names (File.LogDest).
func openLogSinks(dests []string) (*logSinks, error) {
	s := &logSinks{dests: slices.Clone(dests)}
	for _, d := range dests {
		if path, ok := strings.CutPrefix(d, "file "); ok {
			f, err := openLogFile(strings.TrimSpace(path))
			if err != nil {
				s.close()
				return nil, err
			}
			s.files = append(s.files, f)
		}
		if d == "syslog" && s.syslog == nil {
			w, err := syslog.New(syslog.LOG_DAEMON|syslog.LOG_INFO, "shoal")
			if err != nil {
				s.close()
				return nil, fmt.Errorf("log_dest: syslog: %w", err)
			}
			s.syslog = w
		}
	}
	return s, nil
}

// reopen opens the files again (SIGHUP, for log rotation).
func (s *logSinks) reopen() error {
	for _, f := range s.files {
		if err := f.reopen(); err != nil {
			return err
		}
	}
	return nil
}

// close closes what s opened; later writes to it are dropped.
func (s *logSinks) close() {
	for _, f := range s.files {
		f.close()
	}
	if s.syslog != nil {
		s.syslog.Close()
	}
}

// logger builds the process logger writing to s's destinations, stdout
// and stderr standing for the process's own.
func (s *logSinks) logger(stdout, stderr io.Writer, level zerolog.Level, format config.LogFormat) zerolog.Logger {
	var ws []io.Writer
	files := 0
	for _, d := range s.dests {
		switch {
		case d == "stderr":
			ws = append(ws, formatted(stderr, format))
		case d == "stdout":
			ws = append(ws, formatted(stdout, format))
		case d == "syslog":
			if format == config.LogFormatConsole {
				ws = append(ws, zerolog.ConsoleWriter{Out: s.syslog, NoColor: true, PartsExclude: []string{zerolog.TimestampFieldName}})
			} else {
				ws = append(ws, zerolog.SyslogLevelWriter(s.syslog))
			}
		case strings.HasPrefix(d, "file "):
			ws = append(ws, formatted(s.files[files], format))
			files++
		}
	}
	switch len(ws) {
	case 0: // none
		return zerolog.Nop()
	case 1:
		return zerolog.New(ws[0]).Level(level).With().Timestamp().Logger()
	}
	return zerolog.New(zerolog.MultiLevelWriter(ws...)).Level(level).With().Timestamp().Logger()
}

// formatted writes console lines to w when format says so for it (auto:
// when w is a terminal), JSON otherwise.
func formatted(w io.Writer, format config.LogFormat) io.Writer {
	terminal := isTerminal(w)
	if format.Console(terminal) {
		return zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339, NoColor: !terminal}
	}
	return w
}
