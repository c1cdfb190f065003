package audit

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
)

// sink is where a device's lines go. write receives one complete line
// (including the trailing newline) and must write it atomically with
// respect to other writes of the same sink.
type sink interface {
	write(line []byte) error
	reopen() error
	close() error
}

// fileSink appends to a file opened with O_APPEND. It is safe for
// concurrent use.
type fileSink struct {
	path string
	mode fs.FileMode // 0 means "leave the mode alone"

	mu sync.Mutex
	f  *os.File // guarded by mu; nil until opened or after close
}

func newFileSink(path string, mode fs.FileMode) (*fileSink, error) {
	s := &fileSink{path: path, mode: mode}
	if err := s.open(); err != nil {
		return nil, err
	}
	return s, nil
}

// open opens the file. Caller holds mu or has exclusive access.
func (s *fileSink) open() error {
	perm := s.mode
	if perm == 0 {
		perm = 0o600
	}
	f, err := os.OpenFile(s.path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, perm)
	if err != nil {
		return err
	}
	if s.mode != 0 {
		// Only regular files get their mode enforced (never devices such as
		// /dev/stdout).
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Mode().Perm() != s.mode {
			if err := f.Chmod(s.mode); err != nil {
				_ = f.Close()
				return err
			}
		}
	}
	s.f = f
	return nil
}

func (s *fileSink) write(line []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		if err := s.open(); err != nil {
			return err
		}
	}
	_, err := s.f.Write(line)
	return err
}

func (s *fileSink) reopen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f != nil {
		_ = s.f.Close()
		s.f = nil
	}
	return s.open()
}

func (s *fileSink) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

// writerSink writes to an io.Writer (stdout), serialised by a mutex.
type writerSink struct {
	mu sync.Mutex
	w  io.Writer // guarded by mu
}

func (s *writerSink) write(line []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.w.Write(line)
	return err
}

func (s *writerSink) reopen() error { return nil }
func (s *writerSink) close() error  { return nil }

// discardSink drops everything.
type discardSink struct{}

func (discardSink) write([]byte) error { return nil }
func (discardSink) reopen() error      { return nil }
func (discardSink) close() error       { return nil }

// brokenSink stands for a device that could not be opened at Setup: every
// write fails with the open error until the next Setup.
type brokenSink struct{ err error }

func (s brokenSink) write([]byte) error { return s.err }
func (s brokenSink) reopen() error      { return s.err }
func (s brokenSink) close() error       { return nil }

// parseMode parses the "mode" option (octal, default 0600). "0000" means
// the mode is left alone. Executable bits are refused, as Vault does.
func parseMode(v string) (fs.FileMode, error) {
	if v == "" {
		return 0o600, nil
	}
	m, err := strconv.ParseUint(v, 8, 32)
	if err != nil {
		return 0, fmt.Errorf("unable to parse 'mode': %w", err)
	}
	mode := fs.FileMode(m)
	if mode&^fs.ModePerm != 0 {
		return 0, errors.New("invalid 'mode'")
	}
	if mode&0o111 != 0 {
		return 0, errors.New("file audit devices cannot use file modes with executable permissions")
	}
	return mode, nil
}

// parseBoolOption parses a boolean option with a default.
func parseBoolOption(opts map[string]string, key string, def bool) (bool, error) {
	v, ok := opts[key]
	if !ok || strings.TrimSpace(v) == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		return false, fmt.Errorf("unable to parse '%s': %w", key, err)
	}
	return b, nil
}
