package kv_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/vault/api"

	"github.com/keyward/keyward/internal/core/coretest"
)

// rawResult is a decoded HTTP answer.
type rawResult struct {
	status int
	body   map[string]any
}

// raw sends one HTTP request to the test server with the root token.
func raw(t *testing.T, ts *coretest.TestServer, method, path, body string, header map[string]string) rawResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, ts.Addr+"/v1/"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Vault-Token", ts.RootToken)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	buf, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := rawResult{status: resp.StatusCode}
	if len(bytes.TrimSpace(buf)) > 0 {
		if err := json.Unmarshal(buf, &out.body); err != nil {
			t.Fatalf("%s %s: body %q is not JSON: %v", method, path, buf, err)
		}
	}
	return out
}

func errorsOf(r rawResult) []any {
	e, _ := r.body["errors"].([]any)
	return e
}

func responseError(t *testing.T, err error) *api.ResponseError {
	t.Helper()
	var re *api.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("error %v is not an *api.ResponseError", err)
	}
	return re
}

// Mounts pass a non-nil Options map: vault/api sends "options": null for a
// nil map, which core's sys/mounts currently rejects (reported to the lead).

func TestHTTPKVv1(t *testing.T) {
	t.Parallel()
	ts := coretest.NewTestServer(t)
	ctx := context.Background()
	c := ts.Client
	if err := c.Sys().MountWithContext(ctx, "aks", &api.MountInput{Type: "kv", Options: map[string]string{}}); err != nil {
		t.Fatalf("mount aks: %v", err)
	}
	kv1 := c.KVv1("aks")

	if err := kv1.Put(ctx, "mysecret", map[string]any{"foo": "bar"}); err != nil {
		t.Fatalf("Put: %v", err)
	}
	got, err := kv1.Get(ctx, "mysecret")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if diff := cmp.Diff(map[string]any{"foo": "bar"}, got.Data); diff != "" {
		t.Errorf("Get data (-want +got):\n%s", diff)
	}
	if got.Raw.LeaseDuration != 2764800 || got.Raw.LeaseID != "" || got.Raw.Renewable {
		t.Errorf("lease = %q %d %v, want \"\" 2764800 false", got.Raw.LeaseID, got.Raw.LeaseDuration, got.Raw.Renewable)
	}

	// The tutorial's curl: the raw envelope.
	r := raw(t, ts, "GET", "aks/mysecret", "", nil)
	if r.status != 200 || r.body["lease_duration"] != float64(2764800) || r.body["lease_id"] != "" || r.body["renewable"] != false {
		t.Errorf("GET aks/mysecret = %d %v", r.status, r.body)
	}
	if diff := cmp.Diff(map[string]any{"foo": "bar"}, r.body["data"]); diff != "" {
		t.Errorf("raw data (-want +got):\n%s", diff)
	}
	if r := raw(t, ts, "PUT", "aks/other", `{"foo":"bar"}`, nil); r.status != 204 || r.body != nil {
		t.Errorf("PUT = %d %v, want 204 without body", r.status, r.body)
	}
	if err = kv1.Put(ctx, "ttl", map[string]any{"a": "b", "ttl": "1h"}); err != nil {
		t.Fatal(err)
	}
	if got, err = kv1.Get(ctx, "ttl"); err != nil || got.Raw.LeaseDuration != 3600 {
		t.Errorf("ttl secret = %+v, %v; want lease_duration 3600", got, err)
	}

	list, err := c.Logical().ListWithContext(ctx, "aks/")
	if err != nil || list == nil {
		t.Fatalf("LIST aks/ = %v, %v", list, err)
	}
	if diff := cmp.Diff([]any{"mysecret", "other", "ttl"}, list.Data["keys"]); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}

	for _, tc := range []struct {
		name, method, path, body string
		wantStatus               int
		wantErrors               []any
	}{
		{"missing secret", "GET", "aks/nope", "", 404, []any{}},
		{"empty body", "PUT", "aks/x", "", 400, []any{"missing data fields"}},
		{"empty object", "PUT", "aks/x", "{}", 400, []any{"missing data fields"}},
		{"not JSON", "PUT", "aks/x", "{nope", 400, nil},
		{"not an object", "PUT", "aks/x", `"hello"`, 400, nil},
		{"empty list", "LIST", "aks/nothing/", "", 404, []any{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := raw(t, ts, tc.method, tc.path, tc.body, nil)
			if r.status != tc.wantStatus {
				t.Fatalf("status = %d (%v), want %d", r.status, r.body, tc.wantStatus)
			}
			if tc.wantErrors != nil {
				if diff := cmp.Diff(tc.wantErrors, errorsOf(r)); diff != "" {
					t.Errorf("errors (-want +got):\n%s", diff)
				}
			}
		})
	}

	if err := kv1.Delete(ctx, "mysecret"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := kv1.Get(ctx, "mysecret"); !errors.Is(err, api.ErrSecretNotFound) {
		t.Errorf("Get after delete = %v, want ErrSecretNotFound", err)
	}
}

func TestHTTPKVv2(t *testing.T) {
	t.Parallel()
	ts := coretest.NewTestServer(t)
	ctx := context.Background()
	c := ts.Client
	kv2 := c.KVv2("secret")

	s1, err := kv2.Put(ctx, "app", map[string]any{"user": "u1", "pass": "p1"})
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if s1.VersionMetadata.Version != 1 || s1.VersionMetadata.CreatedTime.IsZero() {
		t.Errorf("Put metadata = %+v", s1.VersionMetadata)
	}
	if _, err = kv2.Put(ctx, "app", map[string]any{"user": "u2", "pass": "p2"}, api.WithCheckAndSet(1)); err != nil {
		t.Fatalf("Put cas 1: %v", err)
	}
	_, err = kv2.Put(ctx, "app", map[string]any{"user": "x"}, api.WithCheckAndSet(1))
	if re := responseError(t, err); re.StatusCode != 400 || !cmp.Equal(re.Errors, []string{"check-and-set parameter did not match the current version"}) {
		t.Errorf("stale cas = %d %v", re.StatusCode, re.Errors)
	}

	cur, err := kv2.Get(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"user": "u2", "pass": "p2"}, cur.Data); diff != "" || cur.VersionMetadata.Version != 2 {
		t.Errorf("Get = v%d (-want +got):\n%s", cur.VersionMetadata.Version, diff)
	}
	v1, err := kv2.GetVersion(ctx, "app", 1)
	if err != nil || v1.Data["user"] != "u1" {
		t.Errorf("GetVersion 1 = %+v, %v", v1, err)
	}

	p, err := kv2.Patch(ctx, "app", map[string]any{"pass": nil, "extra": "e"})
	if err != nil {
		t.Fatalf("Patch: %v", err)
	}
	if p.VersionMetadata.Version != 3 {
		t.Errorf("Patch version = %d, want 3", p.VersionMetadata.Version)
	}
	cur, err = kv2.Get(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"user": "u2", "extra": "e"}, cur.Data); diff != "" {
		t.Errorf("after Patch (-want +got):\n%s", diff)
	}
	if _, err = kv2.Patch(ctx, "missing", map[string]any{"a": "b"}); !errors.Is(err, api.ErrSecretNotFound) {
		t.Errorf("Patch of missing secret = %v, want ErrSecretNotFound", err)
	}

	// Soft delete: Get returns metadata with a deletion time and no data.
	if err = kv2.Delete(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	cur, err = kv2.Get(ctx, "app")
	if err != nil {
		t.Fatalf("Get deleted: %v", err)
	}
	if cur.Data != nil || cur.VersionMetadata == nil || cur.VersionMetadata.DeletionTime.IsZero() {
		t.Errorf("Get deleted = %+v %+v", cur.Data, cur.VersionMetadata)
	}
	r := raw(t, ts, "GET", "secret/data/app", "", nil)
	if md, _ := r.body["data"].(map[string]any); r.status != 404 || md == nil || md["data"] != nil || md["metadata"].(map[string]any)["deletion_time"] == "" {
		t.Errorf("raw read of deleted version = %d %v", r.status, r.body)
	}
	if err = kv2.Undelete(ctx, "app", []int{3}); err != nil {
		t.Fatal(err)
	}
	if cur, err = kv2.Get(ctx, "app"); err != nil || cur.Data["user"] != "u2" {
		t.Errorf("Get after Undelete = %+v, %v", cur, err)
	}
	if err = kv2.DeleteVersions(ctx, "app", []int{2}); err != nil {
		t.Fatal(err)
	}
	if v2s, gerr := kv2.GetVersion(ctx, "app", 2); gerr != nil || v2s.Data != nil {
		t.Errorf("GetVersion of deleted 2 = %+v, %v", v2s, gerr)
	}

	// Destroy.
	if err = kv2.Destroy(ctx, "app", []int{1}); err != nil {
		t.Fatal(err)
	}
	v1, err = kv2.GetVersion(ctx, "app", 1)
	if err != nil || v1.Data != nil || !v1.VersionMetadata.Destroyed {
		t.Errorf("GetVersion of destroyed 1 = %+v, %v", v1, err)
	}
	r = raw(t, ts, "GET", "secret/data/app?version=1", "", nil)
	if md, _ := r.body["data"].(map[string]any); r.status != 404 || md == nil || md["metadata"].(map[string]any)["destroyed"] != true {
		t.Errorf("raw read of destroyed version = %d %v", r.status, r.body)
	}

	// Metadata.
	if err = kv2.PutMetadata(ctx, "app", api.KVMetadataPutInput{MaxVersions: 5, CustomMetadata: map[string]any{"owner": "ops"}, DeleteVersionAfter: time.Hour}); err != nil {
		t.Fatalf("PutMetadata: %v", err)
	}
	md, err := kv2.GetMetadata(ctx, "app")
	if err != nil {
		t.Fatalf("GetMetadata: %v", err)
	}
	if md.MaxVersions != 5 || md.CurrentVersion != 3 || md.OldestVersion != 0 || len(md.Versions) != 3 || md.DeleteVersionAfter != time.Hour ||
		!cmp.Equal(md.CustomMetadata, map[string]any{"owner": "ops"}) || !md.Versions["1"].Destroyed {
		t.Errorf("GetMetadata = %+v", md)
	}
	maxV := 7
	if err = kv2.PatchMetadata(ctx, "app", api.KVMetadataPatchInput{MaxVersions: &maxV, CustomMetadata: map[string]any{"team": "blue"}}); err != nil {
		t.Fatalf("PatchMetadata: %v", err)
	}
	if md, err = kv2.GetMetadata(ctx, "app"); err != nil || md.MaxVersions != 7 || !cmp.Equal(md.CustomMetadata, map[string]any{"owner": "ops", "team": "blue"}) {
		t.Errorf("after PatchMetadata = %+v, %v", md, err)
	}
	list, err := c.Logical().ListWithContext(ctx, "secret/metadata/")
	if err != nil || list == nil || !cmp.Equal(list.Data["keys"], []any{"app"}) {
		t.Errorf("LIST metadata = %+v, %v", list, err)
	}
	rb, err := kv2.Rollback(ctx, "app", 3)
	if err != nil || rb.VersionMetadata.Version != 4 {
		t.Errorf("Rollback = %+v, %v", rb, err)
	}
	if err := kv2.DeleteMetadata(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	if _, err := kv2.Get(ctx, "app"); !errors.Is(err, api.ErrSecretNotFound) {
		t.Errorf("Get after DeleteMetadata = %v, want ErrSecretNotFound", err)
	}

	// Raw bad input.
	if _, err := kv2.Put(ctx, "bad", map[string]any{"a": "b"}); err != nil {
		t.Fatal(err)
	}
	const invalid = "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. If using the Vault CLI, use 'vault kv get' for this operation."
	for _, tc := range []struct {
		name, method, path, body string
		header                   map[string]string
		wantStatus               int
		wantErrors               []any
		wantWarnings             []any
	}{
		{"non-object data", "PUT", "secret/data/bad", `{"data":"hello"}`, nil, 400, []any{`error converting input hello for field "data": '' expected a map, got 'string'`}, nil},
		{"no data", "PUT", "secret/data/bad", `{"foo":"bar"}`, nil, 400, []any{"no data provided"}, nil},
		{"cas mismatch", "PUT", "secret/data/bad", `{"data":{"a":"c"},"options":{"cas":7}}`, nil, 400, []any{"check-and-set parameter did not match the current version"}, nil},
		{"v2 path without data/", "GET", "secret/bad", "", nil, 404, nil, []any{invalid}},
		{"patch without merge-patch content type", "PATCH", "secret/data/bad", `{"data":{"a":"c"}}`, map[string]string{"Content-Type": "application/json"}, 415, nil, nil},
		{"unknown version", "GET", "secret/data/bad?version=9", "", nil, 404, []any{}, nil},
		{"destroy without versions", "PUT", "secret/destroy/bad", `{}`, nil, 400, []any{"no version number provided"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := raw(t, ts, tc.method, tc.path, tc.body, tc.header)
			if r.status != tc.wantStatus {
				t.Fatalf("status = %d (%v), want %d", r.status, r.body, tc.wantStatus)
			}
			if tc.wantErrors != nil {
				if diff := cmp.Diff(tc.wantErrors, errorsOf(r)); diff != "" {
					t.Errorf("errors (-want +got):\n%s", diff)
				}
			}
			if tc.wantWarnings != nil {
				if diff := cmp.Diff(tc.wantWarnings, r.body["warnings"]); diff != "" {
					t.Errorf("warnings (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// TestHTTPKVv2PruningOnDisk checks on disk that a secret written 20 times
// with max_versions 10 keeps exactly the newest 10 versions, and that a
// destroyed version's file is gone.
func TestHTTPKVv2PruningOnDisk(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ts := coretest.NewTestServer(t, coretest.WithFileStorage(dir))
	ctx := context.Background()
	kv2 := ts.Client.KVv2("secret")
	if err := kv2.PutMetadata(ctx, "many", api.KVMetadataPutInput{MaxVersions: 10}); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := kv2.Put(ctx, "many", map[string]any{"i": i}); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"_11", "_12", "_13", "_14", "_15", "_16", "_17", "_18", "_19", "_20"}
	if diff := cmp.Diff(want, versionFilesOnDisk(t, dir)); diff != "" {
		t.Errorf("version files on disk (-want +got):\n%s", diff)
	}
	if err := kv2.Destroy(ctx, "many", []int{15}); err != nil {
		t.Fatal(err)
	}
	want = []string{"_11", "_12", "_13", "_14", "_16", "_17", "_18", "_19", "_20"}
	if diff := cmp.Diff(want, versionFilesOnDisk(t, dir)); diff != "" {
		t.Errorf("version files on disk after destroy (-want +got):\n%s", diff)
	}
}

// versionFilesOnDisk returns the sorted names of the files in the (single)
// KV v2 version folder of a file storage tree: <...>/%5Fkvv2/versions/<id>/.
func versionFilesOnDisk(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		parent := filepath.Dir(p)
		if !d.IsDir() && filepath.Base(filepath.Dir(parent)) == "versions" && filepath.Base(filepath.Dir(filepath.Dir(parent))) == "%5Fkvv2" {
			files = append(files, d.Name())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Numeric order.
	sortByLen := func(a, b string) int {
		if len(a) != len(b) {
			return len(a) - len(b)
		}
		return strings.Compare(a, b)
	}
	slices.SortFunc(files, sortByLen)
	return files
}

// TestHTTPUpgradeV1ToV2 tunes a v1 mount to version 2; data is preserved.
func TestHTTPUpgradeV1ToV2(t *testing.T) {
	t.Parallel()
	ts := coretest.NewTestServer(t)
	ctx := context.Background()
	c := ts.Client
	if err := c.Sys().MountWithContext(ctx, "aks", &api.MountInput{Type: "kv", Options: map[string]string{}}); err != nil {
		t.Fatal(err)
	}
	if err := c.KVv1("aks").Put(ctx, "mysecret", map[string]any{"foo": "bar"}); err != nil {
		t.Fatal(err)
	}
	opts := map[string]string{"version": "2"}
	if err := c.Sys().TuneMountAllowNilWithContext(ctx, "aks", api.TuneMountConfigInput{Options: &opts}); err != nil {
		t.Fatalf("tune version 2: %v", err)
	}
	got, err := c.KVv2("aks").Get(ctx, "mysecret")
	if err != nil {
		t.Fatalf("Get after upgrade: %v", err)
	}
	if diff := cmp.Diff(map[string]any{"foo": "bar"}, got.Data); diff != "" || got.VersionMetadata.Version != 1 {
		t.Errorf("after upgrade v%d (-want +got):\n%s", got.VersionMetadata.Version, diff)
	}
	if r := raw(t, ts, "GET", "aks/mysecret", "", nil); r.status != 404 {
		t.Errorf("v1-style read after upgrade = %d, want 404", r.status)
	}
}
