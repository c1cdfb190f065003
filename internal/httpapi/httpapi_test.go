package httpapi_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/core/coretest"
)

// digest hashes every file under dir, so a test can prove a refused
// request changed nothing on disk.
func digest(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(raw)
		lines = append(lines, path+" "+hex.EncodeToString(sum[:]))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	sum := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return hex.EncodeToString(sum[:])
}

type result struct {
	Status int
	Errors []string
}

func do(t *testing.T, method, url, token, body string, header ...string) result {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var env struct {
		Errors []string `json:"errors"`
	}
	_ = json.Unmarshal(raw, &env)
	return result{Status: resp.StatusCode, Errors: env.Errors}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clock := &coretest.Clock{}
	ts := coretest.NewTestServer(t, coretest.WithFileStorage(dir), coretest.WithClock(clock), coretest.WithMaxRequestSize(4096))
	root := ts.RootToken
	// A token to revoke and one to expire.
	mk := func(ttl string) string {
		sec, err := ts.Client.Logical().Write("auth/token/create", map[string]any{"policies": []string{"default"}, "ttl": ttl})
		if err != nil {
			t.Fatal(err)
		}
		return sec.Auth.ClientToken
	}
	revoked := mk("1h")
	expiring := mk("1h")
	valid := mk("768h")
	if _, err := ts.Client.Logical().Write("auth/token/revoke", map[string]any{"token": revoked}); err != nil {
		t.Fatal(err)
	}
	if err := ts.Client.Sys().PutPolicy("keep", `path "keep/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Hour)

	invalidToken := []string{"2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n"}
	tests := []struct {
		name       string
		method     string
		path       string
		token      string
		body       string
		header     []string
		wantStatus int
		wantErrors []string
	}{
		{"malformed JSON", "PUT", "/v1/secret/data/x", root, `{"data": {`, nil, 400, nil},
		{"body is not an object", "PUT", "/v1/sys/policies/acl/x", root, `["a"]`, nil, 400, nil},
		{"wrong unseal key", "PUT", "/v1/sys/unseal", "", `{"key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}`, nil, 200, nil},
		{"unseal key not hex or base64", "PUT", "/v1/sys/unseal", "", `{"key":"!!"}`, nil, 400, []string{"'key' must be a valid hex or base64 string"}},
		{"init twice", "PUT", "/v1/sys/init", "", `{"secret_shares":1,"secret_threshold":1}`, nil, 400, []string{"Vault is already initialized"}},
		{"unknown path", "GET", "/v1/nowhere/at/all", root, "", nil, 404, []string{`no handler for route "nowhere/at/all". route entry not found.`}},
		{"unknown path, non-root token", "GET", "/v1/nowhere/at/all", valid, "", nil, 403, []string{"permission denied"}},
		{"policy syntax error", "PUT", "/v1/sys/policies/acl/keep", root, `{"policy":"path \"a/*\" { capabilities = [\"read\" "}`, nil, 400, nil},
		{"policy unknown capability", "PUT", "/v1/sys/policies/acl/keep", root, `{"policy":"path \"a/*\" { capabilities = [\"fly\"] }"}`, nil, 400, nil},
		{"oversized body", "PUT", "/v1/secret/data/big", root, `{"data":{"v":"` + strings.Repeat("x", 8192) + `"}}`, nil, 413, nil},
		{"revoked token", "GET", "/v1/auth/token/lookup-self", revoked, "", nil, 403, invalidToken},
		{"expired token", "GET", "/v1/auth/token/lookup-self", expiring, "", nil, 403, invalidToken},
		{"no token", "GET", "/v1/secret/data/x", "", "", nil, 403, []string{"permission denied"}},
		{"unsupported method", "TRACE", "/v1/secret/data/x", root, "", nil, 405, []string{}},
		{"patch without merge-patch content type", "PATCH", "/v1/secret/data/x", root, `{"data":{}}`, nil, 415, []string{}},
		{"mount with unknown type", "POST", "/v1/sys/mounts/foo", root, `{"type":"nosuch"}`, nil, 400, []string{`unknown backend type: "nosuch"`}},
		{"mount over existing", "POST", "/v1/sys/mounts/secret", root, `{"type":"kv"}`, nil, 400, []string{"path is already in use at secret/"}},
		{"path with parent reference", "GET", "/v1/secret/../sys/mounts", root, "", nil, 400, nil},
	}
	for _, tc := range tests {
		before := digest(t, dir)
		got := do(t, tc.method, ts.Addr+tc.path, tc.token, tc.body, tc.header...)
		if got.Status != tc.wantStatus {
			t.Errorf("%s: status %d (errors %q), want %d", tc.name, got.Status, got.Errors, tc.wantStatus)
		}
		if tc.wantErrors != nil {
			if diff := cmp.Diff(tc.wantErrors, got.Errors); diff != "" {
				t.Errorf("%s: errors mismatch (-want +got):\n%s", tc.name, diff)
			}
		} else if got.Status >= 400 && (len(got.Errors) != 1 || got.Errors[0] == "") {
			t.Errorf("%s: want exactly one clear error message, got %q", tc.name, got.Errors)
		}
		// An expired token is deleted when it is presented: the only write.
		if after := digest(t, dir); after != before && tc.name != "expired token" {
			t.Errorf("%s: stored data changed", tc.name)
		}
	}
	// The policy that failed to update is unchanged.
	pol, err := ts.Client.Sys().GetPolicy("keep")
	if err != nil || !strings.Contains(pol, `"keep/*"`) {
		t.Errorf("policy keep = %q, %v; want the original", pol, err)
	}
}

func TestWrongUnsealKeyResetsProgress(t *testing.T) {
	t.Parallel()
	ts := coretest.NewTestServer(t, coretest.Uninitialized())
	c := ts.Client
	init, err := c.Sys().Init(&apiInit)
	if err != nil {
		t.Fatal(err)
	}
	if _, err = c.Sys().Unseal(init.KeysB64[0]); err != nil {
		t.Fatal(err)
	}
	// A share of another server combines into a wrong key.
	other := coretest.NewTestServer(t, coretest.Uninitialized())
	oinit, err := other.Client.Sys().Init(&apiInit)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Sys().Unseal(oinit.KeysB64[1])
	if err == nil {
		t.Fatal("unseal with a foreign share succeeded")
	}
	st, err := c.Sys().SealStatus()
	if err != nil {
		t.Fatal(err)
	}
	if !st.Sealed || st.Progress != 0 {
		t.Errorf("after a wrong share: sealed=%v progress=%d, want sealed with progress reset", st.Sealed, st.Progress)
	}
	for _, k := range init.KeysB64[:2] {
		if _, err = c.Sys().Unseal(k); err != nil {
			t.Fatal(err)
		}
	}
	st, err = c.Sys().SealStatus()
	if err != nil || st.Sealed {
		t.Fatalf("after the right shares: %+v, %v", st, err)
	}
}
