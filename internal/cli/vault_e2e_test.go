package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/core/coretest"
)

// vaultCLIResult is the outcome of one in-process command.
type vaultCLIResult struct {
	stdout, stderr string
	code           int
}

// vaultCLI runs keyward client commands in-process with a fake environment:
// VAULT_ADDR pointing at a test server and HOME in a temp dir.
type vaultCLI struct {
	t    *testing.T
	vars map[string]string
}

func newVaultCLI(t *testing.T, addr string) *vaultCLI {
	t.Helper()
	return &vaultCLI{t: t, vars: map[string]string{
		"VAULT_ADDR":        addr,
		"HOME":              t.TempDir(),
		"VAULT_MAX_RETRIES": "0",
	}}
}

// with returns a copy of c with extra environment variables.
func (c *vaultCLI) with(kv ...string) *vaultCLI {
	vars := maps.Clone(c.vars)
	for i := 0; i+1 < len(kv); i += 2 {
		vars[kv[i]] = kv[i+1]
	}
	return &vaultCLI{t: c.t, vars: vars}
}

func (c *vaultCLI) run(stdin string, args ...string) vaultCLIResult {
	c.t.Helper()
	var out, errb bytes.Buffer
	env := &Env{
		Stdin:  strings.NewReader(stdin),
		Stdout: &out,
		Stderr: &errb,
		Getenv: func(k string) string { return c.vars[k] },
	}
	code := Main(c.t.Context(), env, args)
	return vaultCLIResult{stdout: out.String(), stderr: errb.String(), code: code}
}

// must runs a command that must succeed and returns its stdout.
func (c *vaultCLI) must(stdin string, args ...string) string {
	c.t.Helper()
	r := c.run(stdin, args...)
	if r.code != exitOK {
		c.t.Fatalf("keyward %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// fails runs a command that must exit with code and print every want
// fragment on stderr.
func (c *vaultCLI) fails(code int, stdin string, args []string, want ...string) vaultCLIResult {
	c.t.Helper()
	r := c.run(stdin, args...)
	if r.code != code {
		c.t.Errorf("keyward %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, code, r.stdout, r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			c.t.Errorf("keyward %s: stderr %q lacks %q", strings.Join(args, " "), r.stderr, w)
		}
	}
	return r
}

// vaultSyncBuffer is a goroutine-safe bytes.Buffer.
type vaultSyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer // guarded by mu
}

func (b *vaultSyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *vaultSyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// vaultTutorialConfig is the tutorial's server configuration with the listener
// on a free loopback port and storage in dir.
func vaultTutorialConfig(dir string) string {
	return fmt.Sprintf(`ui = true
listener "tcp" {
  tls_disable = 1
  address = "127.0.0.1:0"
  cluster_address = "127.0.0.1:0"
}
storage "file" {
  path = %q
}
`, dir)
}

var vaultListenerRE = regexp.MustCompile(`Listener 1: tcp \(addr: "([^"]+)"`)

// startVaultConfigServer runs `keyward server -config FILE` in-process with
// the given configuration and returns its listener address (host:port).
func startVaultConfigServer(t *testing.T, config string) string {
	t.Helper()
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "config.hcl")
	if err := os.WriteFile(cfgFile, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	var out, errb vaultSyncBuffer
	env := &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	done := make(chan int, 1)
	go func() { done <- Main(ctx, env, []string{"server", "-config", cfgFile}) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Errorf("server did not stop; stderr: %s", errb.String())
		}
	})
	deadline := time.After(30 * time.Second)
	for {
		if m := vaultListenerRE.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		}
		select {
		case code := <-done:
			t.Fatalf("server exited with %d: %s", code, errb.String())
		case <-deadline:
			t.Fatalf("server did not start; stdout %q stderr %q", out.String(), errb.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

const vaultTutorialPolicy = `path "aks/*" {
  capabilities = ["read", "list"]
}
`

var (
	vaultUnsealKeyRE = regexp.MustCompile(`(?m)^Unseal Key 1: (\S+)$`)
	vaultRootTokenRE = regexp.MustCompile(`(?m)^Initial Root Token: (\S+)$`)
)

// TestTutorialCLI runs the tutorial's vault commands verbatim, with keyward
// in place of vault, against `keyward server -config` with the tutorial's
// configuration (issue 2 done-when, through the CLI).
func TestTutorialCLI(t *testing.T) {
	addr := "http://" + startVaultConfigServer(t, vaultTutorialConfig(filepath.Join(t.TempDir(), "data")))
	// As the tutorial exports them.
	c := newVaultCLI(t, addr).with("VAULT_SKIP_VERIFY", "true")

	r := c.fails(exitRemote, "", []string{"status"})
	for _, want := range []string{"Initialized        false", "Sealed             true"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status before init lacks %q:\n%s", want, r.stdout)
		}
	}

	out := c.must("", "operator", "init", "-key-shares", "1", "-key-threshold", "1")
	keyM, rootM := vaultUnsealKeyRE.FindStringSubmatch(out), vaultRootTokenRE.FindStringSubmatch(out)
	if keyM == nil || rootM == nil {
		t.Fatalf("operator init output lacks the key or token:\n%s", out)
	}
	unsealKey, rootToken := keyM[1], rootM[1]
	if !strings.HasPrefix(rootToken, "hvs.") {
		t.Errorf("root token %q lacks the hvs. prefix", rootToken)
	}
	if raw, err := base64.StdEncoding.DecodeString(unsealKey); err != nil || len(raw) != 32 {
		t.Errorf("unseal key %q: %d bytes, %v; want 32 base64 bytes", unsealKey, len(raw), err)
	}
	wantTail := "\nInitial Root Token: " + rootToken + "\n\n" +
		"Vault initialized with 1 key shares and a key threshold of 1. Please securely\n" +
		"distribute the key shares printed above. When the Vault is re-sealed,\n" +
		"restarted, or stopped, you must supply at least 1 of these keys to unseal it\n" +
		"before it can start servicing requests.\n\n" +
		"Vault does not store the generated root key. Without at least 1 keys to\n" +
		"reconstruct the root key, Vault will remain permanently sealed!\n\n" +
		"It is possible to generate new unseal keys, provided you have a quorum of\n" +
		"existing unseal keys shares. See \"vault operator rekey\" for more information.\n"
	if diff := cmp.Diff("Unseal Key 1: "+unsealKey+"\n"+wantTail, out); diff != "" {
		t.Errorf("operator init output (-want +got):\n%s", diff)
	}

	// Bad input: init twice, wrong unseal key; the server stays sealed.
	c.fails(exitRemote, "", []string{"operator", "init", "-key-shares", "1", "-key-threshold", "1"},
		"Error initializing: Error making API request.", "Code: 400", "Vault is already initialized")
	wrong := make([]byte, 32)
	if _, err := rand.Read(wrong); err != nil {
		t.Fatal(err)
	}
	c.fails(exitRemote, "", []string{"operator", "unseal", base64.StdEncoding.EncodeToString(wrong)},
		"Error unsealing: Error making API request.", "PUT "+addr+"/v1/sys/unseal")
	c.fails(exitRemote, "", []string{"operator", "unseal", "not-a-key!"}, "Error unsealing:", "Code: 400")
	r = c.fails(exitRemote, "", []string{"status"})
	if !strings.Contains(r.stdout, "Sealed             true") || !strings.Contains(r.stdout, "Unseal Progress    0/1") {
		t.Errorf("status after a wrong key:\n%s", r.stdout)
	}
	c.fails(exitRemote, "", []string{"read", "sys/mounts"}, "Code: 503", "Vault is sealed")
	if reset := c.must("", "operator", "unseal", "-reset"); !strings.Contains(reset, "Unseal Progress    0/1") {
		t.Errorf("operator unseal -reset:\n%s", reset)
	}

	// `vault operator unseal` prompts; without a terminal it reads a line.
	out = c.must(unsealKey+"\n", "operator", "unseal")
	for _, want := range []string{"Sealed          false", "Total Shares    1", "Storage Type    file"} {
		if !strings.Contains(out, want) {
			t.Errorf("operator unseal output lacks %q:\n%s", want, out)
		}
	}
	c.must("", "status")

	// `vault login` prompts for the token too.
	out = c.must(rootToken+"\n", "login")
	if !strings.Contains(out, "Success! You are now authenticated. The token information displayed below\n") ||
		!strings.Contains(out, "token                "+rootToken) || !strings.Contains(out, `policies             ["root"]`) {
		t.Errorf("login output:\n%s", out)
	}
	helper := filepath.Join(c.vars["HOME"], ".vault-token")
	if b, err := os.ReadFile(helper); err != nil || string(b) != rootToken {
		t.Fatalf("token helper holds %q, %v", b, err)
	}
	if fi, err := os.Stat(helper); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("token helper mode: %v %v", fi, err)
	}

	if got := c.must("", "auth", "enable", "azure"); got != "Success! Enabled azure auth method at: azure/\n" {
		t.Errorf("auth enable azure: %q", got)
	}
	if got := c.must("", "write", "auth/azure/config", "tenant_id=00000000-0000-0000-0000-000000000001", "resource=https://management.azure.com/"); got != "Success! Data written to: auth/azure/config\n" {
		t.Errorf("write auth/azure/config: %q", got)
	}
	c.must("", "write", "auth/azure/role/aks-role", "policies=aks", "bound_subscription_ids=sub", "bound_resource_groups=rg")

	if got := c.must("", "secrets", "enable", "-path=aks", "kv"); got != "Success! Enabled the kv secrets engine at: aks/\n" {
		t.Errorf("secrets enable: %q", got)
	}
	if got := c.must("", "kv", "put", "aks/mysecret", "foo=bar"); got != "Success! Data written to: aks/mysecret\n" {
		t.Errorf("kv put: %q", got)
	}
	// The tutorial writes the policy from a heredoc without "-".
	if got := c.must(vaultTutorialPolicy, "policy", "write", "aks"); got != "Success! Uploaded policy: aks\n" {
		t.Errorf("policy write: %q", got)
	}
	c.must(vaultTutorialPolicy, "policy", "write", "aks", "-")
	if got := c.must("", "policy", "read", "aks"); got != strings.TrimSpace(vaultTutorialPolicy)+"\n" {
		t.Errorf("policy read: %q", got)
	}

	tok := c.must("", "token", "create", "-policy=aks", "-field=token")
	if !strings.HasPrefix(tok, "hvs.") || strings.Contains(tok, "\n") {
		t.Fatalf("token create -field=token printed %q", tok)
	}
	app := c.with("VAULT_TOKEN", tok)
	wantRead := "Key                 Value\n" +
		"---                 -----\n" +
		"refresh_interval    768h\n" +
		"foo                 bar\n"
	if diff := cmp.Diff(wantRead, app.must("", "read", "aks/mysecret")); diff != "" {
		t.Errorf("read aks/mysecret (-want +got):\n%s", diff)
	}
	if got := app.must("", "read", "-field=foo", "aks/mysecret"); got != "bar" {
		t.Errorf("read -field=foo: %q", got)
	}
	if diff := cmp.Diff("=== Data ===\nKey    Value\n---    -----\nfoo    bar\n", app.must("", "kv", "get", "aks/mysecret")); diff != "" {
		t.Errorf("kv get (-want +got):\n%s", diff)
	}
	var js struct {
		Data          map[string]string `json:"data"`
		LeaseDuration int               `json:"lease_duration"`
	}
	if err := json.Unmarshal([]byte(app.must("", "kv", "get", "-format=json", "aks/mysecret")), &js); err != nil {
		t.Fatal(err)
	}
	if js.Data["foo"] != "bar" || js.LeaseDuration != 2764800 {
		t.Errorf("kv get -format=json: %+v", js)
	}
	if got := app.must("", "list", "aks"); got != "Keys\n----\nmysecret\n" {
		t.Errorf("list aks: %q", got)
	}
	app.fails(exitRemote, "", []string{"write", "aks/x", "a=b"},
		"Error writing data to aks/x: Error making API request.\n\nURL: PUT "+addr+"/v1/aks/x\nCode: 403. Errors:\n\n* ", "permission denied")
	app.fails(exitRemote, "", []string{"kv", "put", "aks/x", "a=b"}, "Error writing data to aks/x:", "Code: 403", "permission denied")
	app.fails(exitRemote, "", []string{"read", "sys/policy/aks"}, "Error reading sys/policy/aks:", "Code: 403", "permission denied")
	app.fails(exitRemote, "", []string{"policy", "write", "evil", "-"}, "Error uploading policy:", "Code: 403")

	// The stored token (root) is used when VAULT_TOKEN is unset.
	c.fails(exitRemote, "", []string{"read", "aks/missing"}, "No value found at aks/missing")
	// As vault, a 404 read is "no value"; a write names the missing route.
	c.fails(exitRemote, "", []string{"read", "nomount/x"}, "No value found at nomount/x")
	c.fails(exitRemote, "", []string{"write", "nomount/x", "a=b"}, "Error writing data to nomount/x:", "Code: 404")
	c.fails(exitRemote, "path \"aks/*\" {\n  capabilities = [\"read\"\n", []string{"policy", "write", "bad", "-"},
		"Error uploading policy:", "Code: 400")
	c.fails(exitRemote, `path "aks/*" { capabilities = ["fly"] }`, []string{"policy", "write", "bad", "-"},
		"Error uploading policy:", "Code: 400")
	c.fails(exitRemote, "", []string{"policy", "read", "bad"}, "bad")
	if got := c.must("", "policy", "list"); got != "aks\ndefault\nroot\n" {
		t.Errorf("policy list after rejected writes: %q", got)
	}

	if got := c.must("", "operator", "seal"); got != "Success! Vault is sealed.\n" {
		t.Errorf("operator seal: %q", got)
	}
	c.fails(exitRemote, "", []string{"status"})
	c.fails(exitRemote, "", []string{"read", "aks/mysecret"}, "Error reading aks/mysecret:", "Code: 503", "Vault is sealed")
	c.must("", "operator", "unseal", unsealKey)
	if got := app.must("", "read", "-field=foo", "aks/mysecret"); got != "bar" {
		t.Errorf("read after re-unseal: %q", got)
	}
}

// TestKVv2CLI exercises the kv commands on a v2 mount and the v1→v2
// upgrade.
func TestKVv2CLI(t *testing.T) {
	ts := coretest.NewTestServer(t)
	c := newVaultCLI(t, ts.Addr).with("VAULT_TOKEN", ts.RootToken)

	c.must("", "secrets", "enable", "-version=2", "-path=kv2", "kv")
	out := c.must("", "kv", "put", "kv2/app", "user=alice", "pass=one")
	for _, want := range []string{"== Secret Path ==\nkv2/data/app\n\n", "======= Metadata =======\nKey                Value\n---                -----\n",
		"custom_metadata    <nil>\n", "deletion_time      n/a\n", "destroyed          false\n", "version            1\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("kv put v2 output lacks %q:\n%s", want, out)
		}
	}
	c.must("", "kv", "put", "-cas=1", "kv2/app", "user=alice", "pass=two")
	c.fails(exitRemote, "", []string{"kv", "put", "-cas=1", "kv2/app", "user=x"}, "Error writing data to kv2/data/app:", "Code: 400", "check-and-set")
	// Flags after the path, as vault's kv commands accept.
	c.must("", "kv", "patch", "kv2/app", "extra=3", "-cas=2")

	out = c.must("", "kv", "get", "kv2/app")
	for _, want := range []string{"== Secret Path ==\nkv2/data/app\n\n", "version            3\n", "==== Data ====\nKey      Value\n---      -----\nextra    3\npass     two\nuser     alice\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("kv get v2 output lacks %q:\n%s", want, out)
		}
	}
	if got := c.must("", "kv", "get", "-version=1", "-field=pass", "kv2/app"); got != "one" {
		t.Errorf("kv get -version=1 -field=pass: %q", got)
	}
	if got := c.must("", "kv", "get", "-mount=kv2", "-field=user", "app"); got != "alice" {
		t.Errorf("kv get -mount: %q", got)
	}
	c.must("", "kv", "put", "-mount=kv2", "dir/nested", "a=b")
	if got := c.must("", "kv", "list", "kv2"); got != "Keys\n----\napp\ndir/\n" {
		t.Errorf("kv list: %q", got)
	}

	if got := c.must("", "kv", "delete", "kv2/app"); got != "Success! Data deleted (if it existed) at: kv2/data/app\n" {
		t.Errorf("kv delete: %q", got)
	}
	out = c.must("", "kv", "get", "kv2/app")
	if strings.Contains(out, "=== Data ===") || !strings.Contains(out, "deletion_time") {
		t.Errorf("kv get of a deleted version:\n%s", out)
	}
	c.must("", "kv", "undelete", "-versions=3", "kv2/app")
	if got := c.must("", "kv", "get", "-field=extra", "kv2/app"); got != "3" {
		t.Errorf("after undelete: %q", got)
	}
	c.must("", "kv", "destroy", "-versions=2", "kv2/app")
	c.fails(exitLocal, "", []string{"kv", "rollback", "-version=2", "kv2/app"}, "destroyed")
	out = c.must("", "kv", "rollback", "-version=1", "kv2/app")
	if !strings.Contains(out, "version            4") {
		t.Errorf("kv rollback output:\n%s", out)
	}
	if got := c.must("", "kv", "get", "-field=pass", "kv2/app"); got != "one" {
		t.Errorf("after rollback: %q", got)
	}

	c.must("", "kv", "metadata", "put", "-max-versions=5", "-custom-metadata=owner=team", "kv2/app")
	out = c.must("", "kv", "metadata", "get", "kv2/app")
	for _, want := range []string{"= Metadata Path =\nkv2/metadata/app\n\n========== Metadata ==========\n", "max_versions            5\n", "current_version         4\n", "map[owner:team]", "====== Version 1 ======"} {
		if !strings.Contains(out, want) {
			t.Errorf("kv metadata get lacks %q:\n%s", want, out)
		}
	}
	c.must("", "kv", "metadata", "delete", "kv2/app")
	c.fails(exitRemote, "", []string{"kv", "get", "kv2/app"}, "No value found at kv2/data/app")

	// Usage errors exit 1.
	c.fails(exitLocal, "", []string{"kv", "put", "kv2/app"}, "Must supply data")
	c.fails(exitLocal, "", []string{"kv", "undelete", "kv2/app"}, "No versions provided")
	c.fails(exitLocal, "", []string{"kv", "get"}, "Not enough arguments")

	// A v1 mount upgraded in place keeps its data.
	c.must("", "secrets", "enable", "-path=up", "kv")
	c.must("", "kv", "put", "up/s", "a=b")
	c.fails(exitLocal, "", []string{"kv", "metadata", "get", "up/s"}, "Metadata not supported on KV Version 1")
	c.fails(exitRemote, "", []string{"kv", "patch", "up/s", "c=d"}, "must be version 2")
	if got := c.must("", "kv", "enable-versioning", "up"); got != "Success! Tuned the secrets engine at: up\n" {
		t.Errorf("kv enable-versioning: %q", got)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := c.run("", "kv", "get", "-field=a", "up/s")
		if r.code == exitOK && r.stdout == "b" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kv get after upgrade: %+v", r)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTokenAndMountCLI covers token, policy, auth and secrets management.
func TestTokenAndMountCLI(t *testing.T) {
	ts := coretest.NewTestServer(t)
	c := newVaultCLI(t, ts.Addr).with("VAULT_TOKEN", ts.RootToken)

	out := c.must("", "token", "create", "-policy=default", "-ttl=1h", "-display-name=app", "-metadata=team=a")
	for _, want := range []string{"token_duration       1h\n", "token_renewable      true\n", "token_meta_team      a\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("token create lacks %q:\n%s", want, out)
		}
	}
	var created struct {
		Auth struct {
			ClientToken string `json:"client_token"`
			Accessor    string `json:"accessor"`
		} `json:"auth"`
	}
	if err := json.Unmarshal([]byte(c.must("", "token", "create", "-format=json", "-ttl=30m")), &created); err != nil {
		t.Fatal(err)
	}
	tok, acc := created.Auth.ClientToken, created.Auth.Accessor
	if tok == "" || acc == "" {
		t.Fatalf("token create -format=json: %+v", created)
	}
	out = c.must("", "token", "lookup", tok)
	if !strings.Contains(out, "accessor            "+acc) && !strings.Contains(out, acc) {
		t.Errorf("token lookup:\n%s", out)
	}
	if got := c.must("", "token", "lookup", "-format=json", "-accessor", acc); !strings.Contains(got, `"accessor": "`+acc+`"`) {
		t.Errorf("token lookup -accessor: %s", got)
	}
	self := c.with("VAULT_TOKEN", tok)
	if got := self.must("", "token", "lookup"); !strings.Contains(got, tok) {
		t.Errorf("token lookup (self):\n%s", got)
	}
	if got := c.must("", "token", "renew", "-increment=20m", tok); !strings.Contains(got, "token_duration       20m") {
		t.Errorf("token renew:\n%s", got)
	}
	if got := c.must("", "token", "revoke", tok); got != "Success! Revoked token (if it existed)\n" {
		t.Errorf("token revoke: %q", got)
	}
	self.fails(exitRemote, "", []string{"token", "lookup"}, "Error looking up token:", "Code: 403")
	c.fails(exitLocal, "", []string{"token", "revoke"}, "Not enough arguments")
	c.fails(exitLocal, "", []string{"token", "revoke", "-self", "x"}, "Too many arguments with -self")
	out = c.must("", "token", "create", "-orphan", "-format=json", "-use-limit=5", "-no-default-policy", "-policy=p0")
	if !strings.Contains(out, `"orphan": true`) || strings.Contains(out, `"default"`) {
		t.Errorf("token create -orphan -no-default-policy:\n%s", out)
	}
	selfTok := c.must("", "token", "create", "-field=token")
	c.with("VAULT_TOKEN", selfTok).must("", "token", "revoke", "-self")
	c.with("VAULT_TOKEN", selfTok).fails(exitRemote, "", []string{"token", "lookup"}, "Code: 403")

	// Login with "-" reads the token from stdin; a bad token is refused.
	h := newVaultCLI(t, ts.Addr)
	if got := h.must(ts.RootToken+"\n", "login", "-"); !strings.Contains(got, "Success!") {
		t.Errorf("login -: %q", got)
	}
	if got := h.must("", "token", "lookup", "-format=json"); !strings.Contains(got, `"root"`) {
		t.Errorf("token lookup with the stored token: %s", got)
	}
	h.fails(exitRemote, "", []string{"login", "hvs.bogus"}, "Error authenticating: error looking up token:", "Code: 403")
	if b, _ := os.ReadFile(filepath.Join(h.vars["HOME"], ".vault-token")); string(b) != ts.RootToken {
		t.Errorf("a failed login replaced the stored token with %q", b)
	}
	if got := h.must("", "login", "-token-only", ts.RootToken); got != ts.RootToken {
		t.Errorf("login -token-only: %q", got)
	}

	c.must(vaultTutorialPolicy, "policy", "write", "p1", "-")
	pf := filepath.Join(t.TempDir(), "p2.hcl")
	if err := os.WriteFile(pf, []byte(vaultTutorialPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	c.must("", "policy", "write", "P2", pf)
	if got := c.must("", "policy", "list"); !strings.Contains(got, "default\n") || !strings.Contains(got, "p2\n") {
		t.Errorf("policy list: %q", got)
	}
	c.fails(exitLocal, "", []string{"policy", "write", "p3", "/nonexistent/policy.hcl"}, "Error opening policy file")
	if got := c.must("", "policy", "delete", "p2"); got != "Success! Deleted policy: p2\n" {
		t.Errorf("policy delete: %q", got)
	}

	c.must("", "secrets", "enable", "-path=team", "-description=team secrets", "-default-lease-ttl=1h", "kv")
	out = c.must("", "secrets", "list")
	if !regexp.MustCompile(`(?m)^team/\s+kv\s+\S+\s+team secrets$`).MatchString(out) || !strings.HasPrefix(out, "Path ") {
		t.Errorf("secrets list:\n%s", out)
	}
	var mounts map[string]struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal([]byte(c.must("", "secrets", "list", "-format=json")), &mounts); err != nil {
		t.Fatal(err)
	}
	if mounts["team/"].Type != "kv" {
		t.Errorf("secrets list -format=json: %+v", mounts)
	}
	c.must("", "secrets", "tune", "-max-lease-ttl=2h", "team")
	c.fails(exitRemote, "", []string{"secrets", "enable", "-path=team", "kv"}, "Error enabling:", "Code: 400")
	if got := c.must("", "secrets", "disable", "team"); got != "Success! Disabled the secrets engine (if it existed) at: team/\n" {
		t.Errorf("secrets disable: %q", got)
	}
	c.must("", "auth", "enable", "-path=az2", "azure")
	if got := c.must("", "auth", "list"); !regexp.MustCompile(`(?m)^az2/\s+azure\s`).MatchString(got) {
		t.Errorf("auth list:\n%s", got)
	}
	if got := c.must("", "auth", "disable", "az2"); got != "Success! Disabled the auth method (if it existed) at: az2/\n" {
		t.Errorf("auth disable: %q", got)
	}
	c.fails(exitRemote, "", []string{"auth", "enable", "nosuchmethod"}, "Error enabling nosuchmethod auth:")

	// Generic write/read/delete with @file and stdin values.
	c.must("", "secrets", "enable", "-path=gen", "kv")
	vf := filepath.Join(t.TempDir(), "v")
	if err := os.WriteFile(vf, []byte("filevalue"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.must("stdinvalue", "write", "gen/x", "a=@"+vf, "b=-")
	var read struct {
		Data map[string]string `json:"data"`
	}
	if err := json.Unmarshal([]byte(c.must("", "read", "-format=json", "gen/x")), &read); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"a": "filevalue", "b": "stdinvalue"}, read.Data); diff != "" {
		t.Errorf("read after write (-want +got):\n%s", diff)
	}
	if got := c.must("", "delete", "gen/x"); got != "Success! Data deleted (if it existed) at: gen/x\n" {
		t.Errorf("delete: %q", got)
	}
	c.fails(exitRemote, "", []string{"read", "gen/x"}, "No value found at gen/x")
	c.fails(exitLocal, "", []string{"write", "gen/x"}, "Must supply data or use -force")
	c.fails(exitLocal, "", []string{"write", "gen/x", "novalue"}, "Failed to parse K=V data")
	c.fails(exitLocal, "", []string{"read"}, "Not enough arguments (expected at least 1, got 0)")
	c.fails(exitLocal, "", []string{"read", "-nope", "gen/x"}, "flag provided but not defined: -nope")
	c.fails(exitLocal, "", []string{"read", "-format=xml", "gen/x"}, "Invalid output format: xml")
	c.fails(exitRemote, "", []string{"list", "gen"}, "No value found at gen/")
}

// TestUnreachableServer checks the errors when nothing listens.
func TestUnreachableServer(t *testing.T) {
	t.Parallel()
	c := newVaultCLI(t, "http://127.0.0.1:1").with("VAULT_TOKEN", "x", "VAULT_CLIENT_TIMEOUT", "5")
	c.fails(exitLocal, "", []string{"status"}, "Error checking seal status:")
	c.fails(exitRemote, "", []string{"read", "secret/x"}, "Error reading secret/x:")
	c.fails(exitRemote, "", []string{"kv", "get", "secret/x"}, "sys/internal/ui/mounts/secret/x")
	c.with("VAULT_ADDR", "://bad").fails(exitRemote, "", []string{"read", "secret/x"})
	c.with("VAULT_MAX_RETRIES", "many").fails(exitRemote, "", []string{"read", "secret/x"}, "VAULT_MAX_RETRIES")
}

// TestTLSServerCLI checks VAULT_CACERT, -ca-cert and VAULT_SKIP_VERIFY
// against a TLS listener with a self-signed certificate.
func TestTLSServerCLI(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeSelfSigned(t, certFile, keyFile)
	hostPort := startVaultConfigServer(t, fmt.Sprintf(`listener "tcp" {
  address = "127.0.0.1:0"
  tls_cert_file = %q
  tls_key_file = %q
}
storage "inmem" {}
`, certFile, keyFile))
	c := newVaultCLI(t, "https://"+hostPort)

	r := c.fails(exitLocal, "", []string{"status"}, "Error checking seal status:", "certificate")
	if r.stdout != "" {
		t.Errorf("status printed %q on a TLS failure", r.stdout)
	}
	c.with("VAULT_CACERT", certFile).fails(exitRemote, "", []string{"status"}) // trusted; uninitialized, sealed
	c.fails(exitRemote, "", []string{"status", "-ca-cert=" + certFile})
	out := c.with("VAULT_SKIP_VERIFY", "true").must("", "operator", "init", "-format=json", "-key-shares=3", "-key-threshold=2")
	var init struct {
		Keys      []string `json:"unseal_keys_b64"`
		Hex       []string `json:"unseal_keys_hex"`
		Shares    int      `json:"unseal_shares"`
		Threshold int      `json:"unseal_threshold"`
		Recovery  []string `json:"recovery_keys_b64"`
		Root      string   `json:"root_token"`
	}
	if err := json.Unmarshal([]byte(out), &init); err != nil {
		t.Fatalf("operator init -format=json: %v\n%s", err, out)
	}
	if len(init.Keys) != 3 || len(init.Hex) != 3 || init.Shares != 3 || init.Threshold != 2 || init.Recovery == nil || init.Root == "" {
		t.Errorf("operator init -format=json: %s", out)
	}
	tc := c.with("VAULT_CACERT", certFile)
	out = tc.must("", "operator", "unseal", init.Keys[0])
	if !strings.Contains(out, "Unseal Progress    1/2") {
		t.Errorf("first of two keys:\n%s", out)
	}
	tc.must("", "operator", "unseal", init.Hex[1])
	tc.must("", "status")
	tc.with("VAULT_CACERT", filepath.Join(dir, "missing.pem")).fails(exitLocal, "", []string{"status"}, "missing.pem")
}

// writeSelfSigned writes a self-signed ECDSA certificate for 127.0.0.1.
func writeSelfSigned(t *testing.T, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "keyward-test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
}
