package httpapi_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/core/coretest"
)

// TestUI checks the web UI is served with its security headers and that /
// redirects to it, as `ui = true` does in Vault.
func TestUI(t *testing.T) {
	t.Parallel()
	ts := coretest.NewTestServer(t)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(ts.Addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != "/ui/" {
		t.Errorf("GET / = %d Location %q, want 307 to /ui/", resp.StatusCode, resp.Header.Get("Location"))
	}
	for path, want := range map[string]string{"/ui/": "<title>Keyward</title>", "/ui/app.js": "X-Vault-Token"} {
		resp, err := http.Get(ts.Addr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("GET %s = %d, body lacks %q", path, resp.StatusCode, want)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q", path, csp)
		}
	}
}
