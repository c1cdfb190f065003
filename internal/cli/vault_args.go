package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Errors of K=V argument parsing.
var (
	errStdinConsumed = errors.New("stdin already consumed")
	errNoStdin       = errors.New("stdin is not supported")
)

// argsData builds request data from vault-style arguments:
//
//	key=value   a string value; a repeated key collects a list
//	key=@file   the contents of file
//	key=-       all of stdin
//	key=\@x     the literal "@x"
//	@file       a JSON object read from file, merged in
//	-           a JSON object read from stdin, merged in
//
// stdin can be consumed once.
type argsData struct {
	stdin    io.Reader
	consumed bool
	result   map[string]any
}

// parseArgsData parses args into a request body.
func parseArgsData(stdin io.Reader, args []string) (map[string]any, error) {
	b := &argsData{stdin: stdin, result: map[string]any{}}
	for _, a := range args {
		if err := b.add(a); err != nil {
			return nil, err
		}
	}
	return b.result, nil
}

// parseArgsDataString is parseArgsData for string-only values (login).
func parseArgsDataString(stdin io.Reader, args []string) (map[string]string, error) {
	raw, err := parseArgsData(stdin, args)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("expected %q to be a string, but got %T", k, v)
		}
		out[k] = s
	}
	return out, nil
}

func (b *argsData) readStdin() ([]byte, error) {
	if b.stdin == nil {
		return nil, errNoStdin
	}
	if b.consumed {
		return nil, errStdinConsumed
	}
	b.consumed = true
	return io.ReadAll(b.stdin)
}

func (b *argsData) add(arg string) error {
	if arg == "" {
		return errors.New("empty argument")
	}
	if arg == "-" {
		raw, err := b.readStdin()
		if err != nil {
			return err
		}
		return b.merge(raw)
	}
	if arg[0] == '@' {
		raw, err := os.ReadFile(arg[1:])
		if err != nil {
			return fmt.Errorf("error reading file %q: %w", arg[1:], err)
		}
		return b.merge(raw)
	}
	key, value, ok := strings.Cut(arg, "=")
	if !ok {
		return fmt.Errorf("format 'key=value' expected, got %q", arg)
	}
	switch {
	case strings.HasPrefix(value, "@"):
		raw, err := os.ReadFile(value[1:])
		if err != nil {
			return fmt.Errorf("error reading file %q: %w", value[1:], err)
		}
		value = string(raw)
	case strings.HasPrefix(value, `\@`):
		value = value[1:]
	case value == "-":
		raw, err := b.readStdin()
		if err != nil {
			return err
		}
		value = string(raw)
	}
	b.set(key, value)
	return nil
}

// set stores value under key; a repeated key turns the value into a list.
func (b *argsData) set(key string, value any) {
	old, ok := b.result[key]
	if !ok {
		b.result[key] = value
		return
	}
	if l, isList := old.([]any); isList {
		b.result[key] = append(l, value)
		return
	}
	b.result[key] = []any{old, value}
}

// merge decodes a JSON object and adds its keys.
func (b *argsData) merge(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return fmt.Errorf("error parsing JSON object: %w", err)
	}
	for k, v := range obj {
		b.result[k] = v
	}
	return nil
}
