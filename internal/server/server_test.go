package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/internal/server"
)

const tutorialPolicy = `path "aks/*" {
  capabilities = ["read", "list"]
}
`

// tutorialConfig is the tutorial's server configuration with the data
// path and listen address replaced for a test.
func tutorialConfig(dataDir, addr string) string {
	return fmt.Sprintf(`ui = true
listener "tcp" {
  tls_disable = 1
  address = %q
  cluster_address = "[::]:8201"
}
storage "file" {
  path = %q
}
`, addr, dataDir)
}

func apiClient(t *testing.T, addr, token string) *api.Client {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address = addr
	cfg.MaxRetries = 0
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(token)
	return c
}

func statusOf(err error) int {
	var re *api.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// setupTutorial runs the tutorial's server-side steps through the real
// vault/api client and returns the root token, unseal key and a token
// holding the aks policy.
func setupTutorial(t *testing.T, addr string) (root, unsealKey, aksToken string) {
	t.Helper()
	c := apiClient(t, addr, "")
	init, err := c.Sys().Init(&api.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	if len(init.KeysB64) != 1 || !strings.HasPrefix(init.RootToken, "hvs.") {
		t.Fatalf("init response: %d keys, root token %q", len(init.KeysB64), init.RootToken)
	}
	st, err := c.Sys().Unseal(init.KeysB64[0])
	if err != nil || st.Sealed {
		t.Fatalf("unseal: sealed=%v err=%v", st != nil && st.Sealed, err)
	}
	c.SetToken(init.RootToken)
	if _, err = c.Auth().Token().LookupSelf(); err != nil {
		t.Fatalf("login (lookup-self): %v", err)
	}
	if err = c.Sys().PutPolicy("aks", tutorialPolicy); err != nil {
		t.Fatalf("policy write: %v", err)
	}
	if err = c.Sys().Mount("aks", &api.MountInput{Type: "kv"}); err != nil {
		t.Fatalf("secrets enable: %v", err)
	}
	if _, err = c.Logical().Write("aks/mysecret", map[string]any{"foo": "bar"}); err != nil {
		t.Fatalf("kv put: %v", err)
	}
	sec, err := c.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"aks"}})
	if err != nil {
		t.Fatalf("token create: %v", err)
	}
	return init.RootToken, init.KeysB64[0], sec.Auth.ClientToken
}

// checkTutorialAccess verifies what the aks policy allows and refuses.
func checkTutorialAccess(t *testing.T, addr, aksToken string) {
	t.Helper()
	c := apiClient(t, addr, aksToken)
	sec, err := c.Logical().Read("aks/mysecret")
	if err != nil {
		t.Fatalf("read aks/mysecret with the aks token: %v", err)
	}
	if sec == nil || sec.Data["foo"] != "bar" {
		t.Fatalf("aks/mysecret = %#v, want foo=bar", sec)
	}
	if sec.LeaseDuration != 2764800 {
		t.Errorf("lease_duration = %d, want 2764800 (768h)", sec.LeaseDuration)
	}
	list, err := c.Logical().List("aks/")
	if err != nil || list == nil {
		t.Fatalf("list aks/: %v", err)
	}
	for _, tc := range []struct {
		name string
		do   func() error
	}{
		{"write aks/x", func() error { _, err := c.Logical().Write("aks/x", map[string]any{"a": "b"}); return err }},
		{"read sys/policy/aks", func() error { _, err := c.Logical().Read("sys/policy/aks"); return err }},
		{"enable a mount", func() error { return c.Sys().Mount("other", &api.MountInput{Type: "kv"}) }},
		{"delete aks/mysecret", func() error { _, err := c.Logical().Delete("aks/mysecret"); return err }},
	} {
		if got := statusOf(tc.do()); got != http.StatusForbidden {
			t.Errorf("%s with the aks token: status %d, want 403", tc.name, got)
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// TestTutorialInProcess runs the tutorial's server steps against the
// tutorial's configuration (file storage) through vault/api.
func TestTutorialInProcess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg, err := config.Parse("tutorial.hcl", []byte(tutorialConfig(filepath.Join(dir, "data"), "127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.Start(context.Background(), server.Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	addr := "http://" + srv.Addrs()[0].String()
	_, _, aksToken := setupTutorial(t, addr)
	checkTutorialAccess(t, addr, aksToken)
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// keywardBinary builds cmd/keyward once per test binary.
func keywardBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "keyward-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "keyward")
		cmd := exec.Command("go", "build", "-o", binPath, "github.com/keyward/keyward/cmd/keyward")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

type proc struct {
	cmd *exec.Cmd
	out *bytes.Buffer
}

func startServer(t *testing.T, configPath, addr string) *proc {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(keywardBinary(t), "server", "-config", configPath)
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, out: &out}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v1/sys/seal-status")
		if err == nil {
			resp.Body.Close()
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not start: %v\n%s", err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestKillRestart: after kill -9 the server restarts sealed (503 on every
// other request); after unseal every token, policy, mount and entry is
// intact; and the data directory holds no secret, token or key in clear.
func TestKillRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	addr := freeAddr(t)
	configPath := filepath.Join(dir, "config.hcl")
	if err := os.WriteFile(configPath, []byte(tutorialConfig(dataDir, addr)), 0o600); err != nil {
		t.Fatal(err)
	}
	base := "http://" + addr
	p := startServer(t, configPath, addr)
	root, unsealKey, aksToken := setupTutorial(t, base)
	const secretValue = "s3cr3t-value-that-must-not-leak"
	rc := apiClient(t, base, root)
	if _, err := rc.Logical().Write("aks/crash", map[string]any{"password": secretValue}); err != nil {
		t.Fatal(err)
	}

	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()

	startServer(t, configPath, addr)
	c := apiClient(t, base, root)
	st, err := c.Sys().SealStatus()
	if err != nil || !st.Sealed || !st.Initialized {
		t.Fatalf("after restart: status %+v, err %v; want initialized and sealed", st, err)
	}
	_, err = c.Logical().Read("aks/mysecret")
	var re *api.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusServiceUnavailable || len(re.Errors) != 1 || re.Errors[0] != "Vault is sealed" {
		t.Fatalf("read while sealed: %v; want 503 Vault is sealed", err)
	}
	if _, err = c.Sys().Unseal(unsealKey); err != nil {
		t.Fatalf("unseal after restart: %v", err)
	}
	checkTutorialAccess(t, base, aksToken)
	sec, err := c.Logical().Read("aks/crash")
	if err != nil || sec == nil || sec.Data["password"] != secretValue {
		t.Fatalf("aks/crash after restart = %v, %v", sec, err)
	}
	pol, err := c.Sys().GetPolicy("aks")
	if err != nil || !strings.Contains(pol, `"aks/*"`) {
		t.Fatalf("policy aks after restart = %q, %v", pol, err)
	}

	// Scan every file under the data directory for things that must never
	// be stored in clear.
	needles := map[string]string{
		"secret value": secretValue,
		"root token":   root,
		"aks token":    aksToken,
		"unseal key":   unsealKey,
	}
	err = filepath.WalkDir(dataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for what, needle := range needles {
			if bytes.Contains(raw, []byte(needle)) {
				t.Errorf("%s found in clear in %s", what, path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
