package cli

import (
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestParseArgsData(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	valueFile := filepath.Join(dir, "v.txt")
	if err := os.WriteFile(valueFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	jsonFile := filepath.Join(dir, "d.json")
	if err := os.WriteFile(jsonFile, []byte(`{"a":"1","n":2}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		stdin string
		args  []string
		want  map[string]any
	}{
		{name: "plain", args: []string{"foo=bar", "x=y=z"}, want: map[string]any{"foo": "bar", "x": "y=z"}},
		{name: "empty value", args: []string{"resource="}, want: map[string]any{"resource": ""}},
		{name: "file value", args: []string{"k=@" + valueFile}, want: map[string]any{"k": "from-file\n"}},
		{name: "escaped at", args: []string{`k=\@x`}, want: map[string]any{"k": "@x"}},
		{name: "stdin value", stdin: "secret\n", args: []string{"k=-"}, want: map[string]any{"k": "secret\n"}},
		{name: "stdin json", stdin: `{"a":{"b":true},"n":1}`, args: []string{"-", "c=d"}, want: map[string]any{"a": map[string]any{"b": true}, "n": json.Number("1"), "c": "d"}},
		{name: "file json", args: []string{"@" + jsonFile}, want: map[string]any{"a": "1", "n": json.Number("2")}},
		{name: "repeated key", args: []string{"p=a", "p=b", "p=c"}, want: map[string]any{"p": []any{"a", "b", "c"}}},
		{name: "none", args: nil, want: map[string]any{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseArgsData(strings.NewReader(tt.stdin), tt.args)
			if err != nil {
				t.Fatalf("parseArgsData: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseArgsDataErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		stdin  io.Reader
		args   []string
		target error // nil: any error
	}{
		{name: "no equals", stdin: strings.NewReader(""), args: []string{"foo"}},
		{name: "stdin twice", stdin: strings.NewReader("x"), args: []string{"a=-", "b=-"}, target: errStdinConsumed},
		{name: "stdin json then value", stdin: strings.NewReader("{}"), args: []string{"-", "b=-"}, target: errStdinConsumed},
		{name: "no stdin", stdin: nil, args: []string{"a=-"}, target: errNoStdin},
		{name: "missing file", stdin: strings.NewReader(""), args: []string{"a=@/nonexistent/file"}, target: os.ErrNotExist},
		{name: "missing json file", stdin: strings.NewReader(""), args: []string{"@/nonexistent/file"}, target: os.ErrNotExist},
		{name: "bad json", stdin: strings.NewReader("[1]"), args: []string{"-"}},
		{name: "empty arg", stdin: strings.NewReader(""), args: []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseArgsData(tt.stdin, tt.args)
			if err == nil {
				t.Fatal("parseArgsData succeeded, want error")
			}
			if tt.target != nil && !errors.Is(err, tt.target) {
				t.Errorf("error %v is not %v", err, tt.target)
			}
		})
	}
	if _, err := parseArgsDataString(strings.NewReader(`{"a":1}`), []string{"-"}); err == nil {
		t.Error("parseArgsDataString accepted a non-string value")
	}
}

func TestFlagParsing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		interleaved bool
		args        []string
		wantShares  int
		wantMount   string
		wantRest    []string
		wantCode    int
		wantOK      bool
		wantStderr  string
	}{
		{name: "space value", args: []string{"-key-shares", "1", "x"}, wantShares: 1, wantRest: []string{"x"}, wantOK: true},
		{name: "equals value", args: []string{"-key-shares=3"}, wantShares: 3, wantOK: true},
		{name: "double dash flag", args: []string{"--key-shares=4"}, wantShares: 4, wantOK: true},
		{name: "flags after args ignored with warning", args: []string{"x", "-key-shares=2"}, wantShares: 5,
			wantRest: []string{"x", "-key-shares=2"}, wantOK: true, wantStderr: "Command flags must be provided before positional arguments"},
		{name: "interleaved", interleaved: true, args: []string{"aks/x", "-mount=aks", "foo=bar", "-key-shares", "2"},
			wantShares: 2, wantMount: "aks", wantRest: []string{"aks/x", "foo=bar"}, wantOK: true},
		{name: "interleaved stdin dash stays positional", interleaved: true, args: []string{"p", "-", "-key-shares=1"},
			wantShares: 1, wantRest: []string{"p", "-"}, wantOK: true},
		{name: "interleaved double dash ends flags", interleaved: true, args: []string{"p", "--", "-key-shares=1"},
			wantShares: 5, wantRest: []string{"p", "-key-shares=1"}, wantOK: true},
		{name: "unknown flag", args: []string{"-nope"}, wantCode: exitLocal, wantStderr: "flag provided but not defined: -nope"},
		{name: "bad int", args: []string{"-key-shares=x"}, wantCode: exitLocal, wantStderr: "invalid value"},
		{name: "bad format", args: []string{"-format=xml"}, wantCode: exitLocal, wantStderr: "Invalid output format: xml"},
		{name: "help", args: []string{"-h"}, wantCode: exitOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, _, errb := vaultTestMeta("")
			m.interleaved = tt.interleaved
			var shares int
			var mount string
			m.fs.IntVar(&shares, "key-shares", 5, "")
			m.fs.StringVar(&mount, "mount", "", "")
			rest, code, ok := m.parse(tt.args)
			if ok != tt.wantOK || code != tt.wantCode {
				t.Fatalf("parse = (%d, %v), want (%d, %v); stderr %q", code, ok, tt.wantCode, tt.wantOK, errb)
			}
			if !strings.Contains(errb.String(), tt.wantStderr) {
				t.Errorf("stderr %q does not contain %q", errb, tt.wantStderr)
			}
			if !ok {
				return
			}
			if shares != tt.wantShares || mount != tt.wantMount {
				t.Errorf("shares, mount = %d, %q; want %d, %q", shares, mount, tt.wantShares, tt.wantMount)
			}
			if diff := cmp.Diff(tt.wantRest, rest, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("rest (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFlagValues(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var ttl durationFlag
	var pol stringSliceFlag
	opts := mapFlag{}
	var b optionalBool
	var n optionalInt
	fs.Var(&ttl, "ttl", "")
	fs.Var(&pol, "policy", "")
	fs.Var(opts, "options", "")
	fs.Var(&b, "cas-required", "")
	fs.Var(&n, "max-versions", "")
	err := fs.Parse([]string{"-ttl=90", "-policy=a,b", "-policy", "c", "-options", "version=2", "-options=x=y=z", "-cas-required", "-max-versions=0"})
	if err != nil {
		t.Fatal(err)
	}
	if ttl.d != 90*time.Second || !ttl.set || durationString(ttl) != "1m30s" {
		t.Errorf("ttl = %v (set %v)", ttl.d, ttl.set)
	}
	if diff := cmp.Diff([]string{"a", "b", "c"}, []string(pol)); diff != "" {
		t.Errorf("policies (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"version": "2", "x": "y=z"}, map[string]string(opts)); diff != "" {
		t.Errorf("options (-want +got):\n%s", diff)
	}
	if !b.v || !b.set || !n.set || n.v != 0 {
		t.Errorf("bool %+v int %+v", b, n)
	}
	for _, bad := range [][]string{{"-ttl=abc"}, {"-options=novalue"}, {"-max-versions=x"}, {"-cas-required=maybe"}, {"-ttl=xd"}} {
		if err := fs.Parse(bad); err == nil {
			t.Errorf("Parse(%v) succeeded", bad)
		}
	}
	tests := map[string]time.Duration{"": 0, "30": 30 * time.Second, "2d": 48 * time.Hour, "1h30m": 90 * time.Minute}
	for in, want := range tests {
		got, err := parseDurationSecond(in)
		if err != nil || got != want {
			t.Errorf("parseDurationSecond(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}

func TestTokenHelper(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	env := &Env{Getenv: func(k string) string {
		if k == "HOME" {
			return home
		}
		return ""
	}}
	if _, err := readTokenHelper(env); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("readTokenHelper on empty home: %v", err)
	}
	if err := storeTokenHelper(env, "hvs.one"); err != nil {
		t.Fatal(err)
	}
	if err := storeTokenHelper(env, "hvs.two"); err != nil {
		t.Fatal(err)
	}
	got, err := readTokenHelper(env)
	if err != nil || got != "hvs.two" {
		t.Fatalf("readTokenHelper = %q, %v", got, err)
	}
	fi, err := os.Stat(filepath.Join(home, ".vault-token"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v, want 0600", fi.Mode().Perm())
	}
	entries, err := os.ReadDir(home)
	if err != nil || len(entries) != 1 {
		t.Errorf("home holds %d entries (%v), want only .vault-token", len(entries), err)
	}
	noHome := &Env{Getenv: func(string) string { return "" }}
	if err := storeTokenHelper(noHome, "x"); !errors.Is(err, errNoHome) {
		t.Errorf("storeTokenHelper without HOME: %v", err)
	}
}

func TestReadLine(t *testing.T) {
	t.Parallel()
	r := strings.NewReader("first\nsecond")
	for _, want := range []string{"first", "second"} {
		got, err := readLine(r)
		if err != nil || got != want {
			t.Fatalf("readLine = %q, %v; want %q", got, err, want)
		}
	}
	if _, err := readLine(r); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("readLine at EOF: %v", err)
	}
}
