package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/cloud/cloudtest"
)

func TestIdentityAgentFlagErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"unknown flag", []string{"--nope"}, nil},
		{"no node without local registry", nil, nil},
		{"bad mode", []string{"--node", "n", "--operation-mode", "turbo"}, nil},
		{"bad metadata ip", []string{"--node", "n", "--metadata-ip", "metadata"}, nil},
		{"bad metadata port", []string{"--node", "n", "--metadata-port", "0"}, nil},
		{"bad upstream", []string{"--node", "n", "--upstream", "169.254.169.254"}, nil},
		{"bad listen address", []string{"--node", "n", "--listen-address", "2579"}, nil},
		{"extra argument", []string{"--node", "n", "extra"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var errb strings.Builder
			env := &Env{Stdout: io.Discard, Stderr: &errb, Getenv: func(k string) string { return tc.env[k] }}
			if code := runIdentityAgent(t.Context(), env, tc.args); code != 2 {
				t.Fatalf("exit %d, want 2; stderr:\n%s", code, errb.String())
			}
		})
	}
	// NODE_NAME supplies --node; a missing registry file is then a
	// runtime error (1), not a usage error.
	var errb strings.Builder
	env := &Env{Stdout: io.Discard, Stderr: &errb, Getenv: func(k string) string {
		return map[string]string{"NODE_NAME": "n"}[k]
	}}
	if code := runIdentityAgent(t.Context(), env, []string{"--local-registry", filepath.Join(t.TempDir(), "missing.yaml")}); code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, errb.String())
	}
}

// TestIdentityAgentLocalRegistry runs the command with a local registry
// against keyward cloud's IMDS and fetches a token from the pod's address.
func TestIdentityAgentLocalRegistry(t *testing.T) {
	t.Parallel()
	c := cloudtest.Start(t)
	c.CreateResourceGroup(t, "rg", "westeurope")
	ss := c.CreateScaleSet(t, "rg", "vmss", 1)
	id := c.CreateIdentity(t, "rg", "cli-agent")
	c.AssignIdentity(t, ss.ID, id.ID)
	imds := c.StartIMDS(t, ss.Instances[0].ID)
	podIP := "127.79.0.2"
	registry := fmt.Sprintf(`pods:
- {namespace: demo, name: app, ip: %s, labels: {aadpodidbinding: app}}
identities:
- metadata: {namespace: demo, name: app}
  spec: {type: 0, clientID: %s, resourceID: %s}
bindings:
- metadata: {namespace: demo, name: app}
  spec: {azureIdentity: app, selector: app}
`, podIP, id.ClientID, id.ID)
	path := filepath.Join(t.TempDir(), "registry.yaml")
	if err := os.WriteFile(path, []byte(registry), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errb := &syncBuffer{}, &syncBuffer{}
	env := &Env{Stdout: out, Stderr: errb, Getenv: func(string) string { return "" }}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	go func() {
		done <- runIdentityAgent(ctx, env, []string{"--local-registry", path, "--listen-address", "127.0.0.1:0", "--upstream", imds})
	}()
	re := regexp.MustCompile(`serving IMDS on (127\.0\.0\.1:\d+)`)
	var addr string
	deadline := time.Now().Add(30 * time.Second)
	for addr == "" {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			addr = m[1]
			break
		}
		select {
		case code := <-done:
			t.Fatalf("exited %d early; stderr:\n%s", code, errb.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent did not start; stderr:\n%s", errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(podIP)}}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet,
		"http://"+addr+"/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Metadata", "true")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token: %d %s", resp.StatusCode, body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err = json.Unmarshal(body, &tok); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok.AccessToken, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		AppID string `json:"appid"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	if claims.AppID != id.ClientID {
		t.Errorf("appid %q, want %q", claims.AppID, id.ClientID)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, errb.String())
	}
}
