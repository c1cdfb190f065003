package httpapi_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/keyward/keyward/internal/core/coretest"
)

// TestAuditThroughAPI enables a file audit device with vault/api and checks
// that requests and responses are logged with secrets and tokens HMAC'd,
// matching sys/audit-hash.
func TestAuditThroughAPI(t *testing.T) {
	t.Parallel()
	ts := coretest.NewTestServer(t)
	c := ts.Client
	logPath := filepath.Join(t.TempDir(), "audit.log")
	if err := c.Sys().EnableAuditWithOptions("file", &api.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": logPath}}); err != nil {
		t.Fatalf("enable audit: %v", err)
	}
	const secret = "audit-must-not-see-this"
	if _, err := c.Logical().Write("secret/data/app", map[string]any{"data": map[string]any{"password": secret}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Read("secret/data/app"); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), secret) || strings.Contains(string(raw), ts.RootToken) {
		t.Fatalf("audit log holds a secret or the root token in clear:\n%s", raw)
	}
	hash, err := c.Sys().AuditHash("file", secret)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hash, "hmac-sha256:") || !strings.Contains(string(raw), hash) {
		t.Errorf("audit log lacks the secret's HMAC %q", hash)
	}
	var requests, responses int
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line struct {
			Type    string `json:"type"`
			Request struct {
				Path string `json:"path"`
			} `json:"request"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("audit line is not JSON: %v\n%s", err, sc.Text())
		}
		if line.Request.Path == "secret/data/app" {
			switch line.Type {
			case "request":
				requests++
			case "response":
				responses++
			}
		}
	}
	if requests != 2 || responses != 2 {
		t.Errorf("audit log has %d requests and %d responses for secret/data/app, want 2 and 2", requests, responses)
	}
}

// TestAuditFailureFailsRequests: when the only audit device cannot write,
// requests fail instead of going unaudited.
func TestAuditFailureFailsRequests(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("/dev/full is not available")
	}
	ts := coretest.NewTestServer(t)
	c := ts.Client
	// The device is enabled, then the response to the enable request is
	// already refused because it cannot be logged.
	err := c.Sys().EnableAuditWithOptions("full", &api.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": "/dev/full", "mode": "0000"}})
	if got := statusCode(err); got != http.StatusInternalServerError {
		t.Fatalf("enable audit on /dev/full: %v (status %d), want 500", err, got)
	}
	_, err = c.Logical().Read("secret/config")
	if got := statusCode(err); got != http.StatusInternalServerError {
		t.Fatalf("read with a failing audit device: %v (status %d), want 500", err, got)
	}
}
