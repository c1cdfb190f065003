package cli

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// TestDemo runs `keyward demo` in-process: the tutorial end to end on
// loopback, with the real server, keyward cloud and node agent. It fails
// unless the demo pod read the secret and the intruder was refused.
func TestDemo(t *testing.T) {
	var out, errOut bytes.Buffer
	env := &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }}
	if code := Main(t.Context(), env, []string{"demo"}); code != 0 {
		t.Fatalf("keyward demo exited %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{
		"vault operator init -key-shares 1 -key-threshold 1",
		"data: map[foo:bar]",
		`403 {"error":"forbidden"`,
		"OK: the demo pod read aks/mysecret (foo=bar) and the unlabelled pod was refused",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q\n%s", want, out.String())
		}
	}
	// Tokens are shown shortened, never whole.
	if m := regexp.MustCompile(`hvs\.[A-Za-z0-9]{20,}`).FindString(out.String()); m != "" {
		t.Errorf("demo output shows a whole token: %s", m)
	}
}
