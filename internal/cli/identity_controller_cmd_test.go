package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func controllerEnv(vars map[string]string) *Env {
	return &Env{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, Getenv: func(k string) string { return vars[k] }}
}

func TestIdentityControllerFlags(t *testing.T) {
	t.Parallel()
	creds := map[string]string{"TENANT_ID": "t", "CLIENT_ID": "c", "CLIENT_SECRET": "s"}
	dir := t.TempDir()
	azureJSONPath := filepath.Join(dir, "azure.json")
	if err := os.WriteFile(azureJSONPath, []byte(`{"tenantId":"jt","aadClientId":"jc","aadClientSecret":"js","userAssignedIdentityID":"kubelet"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	badJSON := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(badJSON, []byte(`{`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr bool
		check   func(t *testing.T, f *controllerFlags)
	}{
		{name: "env credentials", env: creds, check: func(t *testing.T, f *controllerFlags) {
			if diff := cmp.Diff([]string{"t", "c", "s"}, []string{f.tenantID, f.clientID, f.clientSecret}); diff != "" {
				t.Error(diff)
			}
		}},
		{name: "managed identity", env: map[string]string{"USE_MSI": "true"}},
		{name: "azure.json", args: []string{"--cloudconfig", azureJSONPath}, check: func(t *testing.T, f *controllerFlags) {
			if diff := cmp.Diff([]string{"jt", "jc", "js", "kubelet"}, []string{f.tenantID, f.clientID, f.clientSecret, f.userAssignedMSIID}); diff != "" {
				t.Error(diff)
			}
		}},
		{name: "forceNamespaced from env", env: map[string]string{"USE_MSI": "true", "FORCENAMESPACED": "true"}, check: func(t *testing.T, f *controllerFlags) {
			if !f.forceNamespaced {
				t.Error("FORCENAMESPACED=true not honoured")
			}
		}},
		{name: "no credentials", wantErr: true},
		{name: "unreadable azure.json", args: []string{"--cloudconfig", filepath.Join(dir, "missing.json")}, wantErr: true},
		{name: "malformed azure.json", args: []string{"--cloudconfig", badJSON}, wantErr: true},
		{name: "http ARM endpoint", env: creds, args: []string{"--arm-endpoint", "http://127.0.0.1:1", "--authority-host", "https://127.0.0.1:2"}, wantErr: true},
		{name: "ARM endpoint without authority", env: creds, args: []string{"--arm-endpoint", "https://127.0.0.1:1"}, wantErr: true},
		{name: "bad metrics address", env: creds, args: []string{"--prometheus-address", "nonsense"}, wantErr: true},
		{name: "short lease", env: creds, args: []string{"--leader-election-duration", "1s"}, wantErr: true},
		{name: "stray argument", env: creds, args: []string{"extra"}, wantErr: true},
		{name: "unknown flag", env: creds, args: []string{"--nope"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, err := parseControllerFlags(controllerEnv(tc.env), tc.args)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if tc.check != nil && err == nil {
				tc.check(t, f)
			}
		})
	}
}

func TestIdentityControllerUsageExitCode(t *testing.T) {
	t.Parallel()
	env := controllerEnv(nil)
	if code := Main(context.Background(), env, []string{"identity", "controller"}); code != 2 {
		t.Fatalf("exit code without credentials = %d, want 2", code)
	}
	if code := Main(context.Background(), env, []string{"identity", "controller", "-h"}); code != 0 {
		t.Fatalf("exit code of -h = %d, want 0", code)
	}
}
