package kv_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/logical"
	"github.com/keyward/keyward/internal/storage/inmem"
)

// Storage layout the tests inspect directly.
const (
	versionsDir = "_kvv2/versions/"
	metadataDir = "_kvv2/metadata/"
)

func put(e *env, path string, data map[string]any, opts map[string]any) (*logical.Response, error) {
	body := map[string]any{"data": data}
	if opts != nil {
		body["options"] = opts
	}
	return e.do(logical.UpdateOperation, "data/"+path, body)
}

func mustPut(t *testing.T, e *env, path string, data map[string]any) *logical.Response {
	t.Helper()
	resp, err := put(e, path, data, nil)
	if err != nil {
		t.Fatalf("put %s: %v", path, err)
	}
	return resp
}

func versionMeta(version uint64, created time.Time, deletion string, destroyed bool, custom map[string]string) map[string]any {
	return map[string]any{
		"version":         version,
		"created_time":    ts(created),
		"deletion_time":   deletion,
		"destroyed":       destroyed,
		"custom_metadata": custom,
	}
}

// versionEntries lists the stored version entries of the mount (one
// directory per secret).
func versionEntries(t *testing.T, e *env) map[string][]string {
	t.Helper()
	ctx := context.Background()
	dirs, err := e.s.List(ctx, versionsDir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, d := range dirs {
		names, err := e.s.List(ctx, versionsDir+d)
		if err != nil {
			t.Fatal(err)
		}
		if len(names) > 0 {
			out[d] = names
		}
	}
	return out
}

func TestV2WriteRead(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "2")

	resp := mustPut(t, e, "app/db", map[string]any{"user": "u1", "n": float64(1)})
	if diff := cmp.Diff(versionMeta(1, t0, "", false, nil), resp.Data); diff != "" {
		t.Errorf("write 1 (-want +got):\n%s", diff)
	}
	e.clock.Advance(time.Second)
	resp = mustPut(t, e, "app/db", map[string]any{"user": "u2"})
	if diff := cmp.Diff(versionMeta(2, t0.Add(time.Second), "", false, nil), resp.Data); diff != "" {
		t.Errorf("write 2 (-want +got):\n%s", diff)
	}

	for _, tc := range []struct {
		name    string
		data    map[string]any
		want    map[string]any
		created time.Time
		version uint64
	}{
		{"current", nil, map[string]any{"user": "u2"}, t0.Add(time.Second), 2},
		{"version 1 as string", map[string]any{"version": "1"}, map[string]any{"user": "u1", "n": json.Number("1")}, t0, 1},
		{"version 2 as number", map[string]any{"version": json.Number("2")}, map[string]any{"user": "u2"}, t0.Add(time.Second), 2},
		{"version 0 is current", map[string]any{"version": float64(0)}, map[string]any{"user": "u2"}, t0.Add(time.Second), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := e.must(logical.ReadOperation, "data/app/db", tc.data)
			want := map[string]any{"data": tc.want, "metadata": versionMeta(tc.version, tc.created, "", false, nil)}
			if diff := cmp.Diff(want, got.Data); diff != "" {
				t.Errorf("read (-want +got):\n%s", diff)
			}
			if got.StatusCode != 0 {
				t.Errorf("StatusCode = %d, want 0", got.StatusCode)
			}
		})
	}

	for _, tc := range []struct {
		name string
		path string
		data map[string]any
	}{
		{"unknown key", "data/nope", nil},
		{"unknown version", "data/app/db", map[string]any{"version": "7"}},
	} {
		if got := e.must(logical.ReadOperation, tc.path, tc.data); got != nil {
			t.Errorf("%s: read = %+v, want nil (404)", tc.name, got)
		}
	}

	// Empty object and null data are accepted (Vault stores {}).
	mustPut(t, e, "empty", map[string]any{})
	if _, err := e.do(logical.UpdateOperation, "data/null", map[string]any{"data": nil}); err != nil {
		t.Fatalf("write null data: %v", err)
	}
	resp = e.must(logical.ReadOperation, "data/null", nil)
	if diff := cmp.Diff(map[string]any{}, resp.Data["data"]); diff != "" {
		t.Errorf("null data read back (-want +got):\n%s", diff)
	}
}

func TestV2BadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "2")
	mustPut(t, e, "s", map[string]any{"a": "b"})
	e.must(logical.UpdateOperation, "data/cas", map[string]any{"data": map[string]any{"a": "b"}})
	e.must(logical.UpdateOperation, "metadata/casreq", map[string]any{"cas_required": true})

	for _, tc := range []struct {
		name       string
		op         logical.Operation
		path       string
		data       map[string]any
		wantStatus int
		wantMsg    string
	}{
		{"data is a string", logical.UpdateOperation, "data/s", map[string]any{"data": "hello"}, 400, `error converting input hello for field "data": '' expected a map, got 'string'`},
		{"data is an array", logical.UpdateOperation, "data/s", map[string]any{"data": []any{"a"}}, 400, `error converting input [a] for field "data": '' expected a map, got 'slice'`},
		{"data is a number", logical.UpdateOperation, "data/s", map[string]any{"data": json.Number("3")}, 400, `error converting input 3 for field "data": '' expected a map, got 'float64'`},
		{"no data", logical.UpdateOperation, "data/s", map[string]any{"foo": "bar"}, 400, "no data provided"},
		{"empty body", logical.UpdateOperation, "data/s", nil, 400, "no data provided"},
		{"cas mismatch", logical.UpdateOperation, "data/cas", map[string]any{"data": map[string]any{"a": "c"}, "options": map[string]any{"cas": json.Number("5")}}, 400, "check-and-set parameter did not match the current version"},
		{"cas 0 on existing key", logical.UpdateOperation, "data/cas", map[string]any{"data": map[string]any{"a": "c"}, "options": map[string]any{"cas": float64(0)}}, 400, "check-and-set parameter did not match the current version"},
		{"cas not a number", logical.UpdateOperation, "data/cas", map[string]any{"data": map[string]any{"a": "c"}, "options": map[string]any{"cas": "x"}}, 400, "error parsing check-and-set parameter"},
		{"options not an object", logical.UpdateOperation, "data/cas", map[string]any{"data": map[string]any{"a": "c"}, "options": "cas=1"}, 400, `error converting input cas=1 for field "options": '' expected a map, got 'string'`},
		{"cas required by key", logical.UpdateOperation, "data/casreq", map[string]any{"data": map[string]any{"a": "c"}}, 400, "check-and-set parameter required for this call"},
		{"version not a number", logical.ReadOperation, "data/s", map[string]any{"version": "abc"}, 400, ""},
		{"delete without versions", logical.UpdateOperation, "delete/s", map[string]any{}, 400, "No version number provided"},
		{"undelete without versions", logical.UpdateOperation, "undelete/s", map[string]any{"versions": []any{}}, 400, "No version number provided"},
		{"destroy without versions", logical.UpdateOperation, "destroy/s", nil, 400, "no version number provided"},
		{"destroy bad version", logical.UpdateOperation, "destroy/s", map[string]any{"versions": []any{"one"}}, 400, ""},
		{"metadata write without path", logical.UpdateOperation, "metadata/", map[string]any{"max_versions": 3}, 400, "missing path"},
		{"negative max_versions", logical.UpdateOperation, "metadata/s", map[string]any{"max_versions": -1}, 400, ""},
		{"negative metadata delete_version_after", logical.UpdateOperation, "metadata/s", map[string]any{"delete_version_after": "-1h"}, 400, ""},
		{"bad delete_version_after", logical.UpdateOperation, "config", map[string]any{"delete_version_after": "soon"}, 400, ""},
		{"custom_metadata not an object", logical.UpdateOperation, "metadata/s", map[string]any{"custom_metadata": "a=b"}, 400, "custom_metadata validation failed: '' expected a map, got 'string'"},
		{"custom_metadata empty value", logical.UpdateOperation, "metadata/s", map[string]any{"custom_metadata": map[string]any{"k": ""}}, 400, "1 error occurred:\n\t* custom_metadata validation failed: length of value for key \"k\" is 0 but must be 0 < len(value) <= 512\n\n"},
		{"custom_metadata long key", logical.UpdateOperation, "metadata/s", map[string]any{"custom_metadata": map[string]any{strings.Repeat("k", 129): "v"}}, 400, ""},
		{"custom_metadata unprintable", logical.UpdateOperation, "metadata/s", map[string]any{"custom_metadata": map[string]any{"k": "a\x00b"}}, 400, "1 error occurred:\n\t* custom_metadata validation failed: value for key \"k\" contains unprintable characters\n\n"},
		{"subkeys negative depth", logical.ReadOperation, "subkeys/s", map[string]any{"depth": "-1"}, 400, ""},
		{"list on data path", logical.ListOperation, "data/s", nil, 405, ""},
		{"read on delete path", logical.ReadOperation, "delete/s", nil, 405, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := e.do(tc.op, tc.path, tc.data)
			if got := status(err); got != tc.wantStatus {
				t.Fatalf("status = %d (err %v, resp %+v), want %d", got, err, resp, tc.wantStatus)
			}
			if tc.wantMsg != "" && err.Error() != tc.wantMsg {
				t.Errorf("message = %q, want %q", err.Error(), tc.wantMsg)
			}
		})
	}

	tooMany := map[string]any{}
	for i := range 65 {
		tooMany[fmt.Sprint("k", i)] = "v"
	}
	_, err := e.do(logical.UpdateOperation, "metadata/s", map[string]any{"custom_metadata": tooMany})
	if want := "1 error occurred:\n\t* custom_metadata validation failed: payload must contain at most 64 keys, provided 65\n\n"; status(err) != 400 || err.Error() != want {
		t.Errorf("65 custom_metadata keys: %v, want 400 %q", err, want)
	}

	// Nothing was written by the failed requests.
	resp := e.must(logical.ReadOperation, "metadata/s", nil)
	if resp.Data["current_version"] != uint64(1) || resp.Data["max_versions"] != uint32(0) || !isNilStringMap(resp.Data["custom_metadata"]) {
		t.Errorf("metadata after failed writes = %+v", resp.Data)
	}
	resp = e.must(logical.ReadOperation, "data/cas", nil)
	if diff := cmp.Diff(map[string]any{"a": "b"}, resp.Data["data"]); diff != "" {
		t.Errorf("cas data after failed writes (-want +got):\n%s", diff)
	}
}

func TestV2InvalidPaths(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "2")
	const invalid = "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. If using the Vault CLI, use 'vault kv %s' for this operation."
	for _, tc := range []struct {
		op   logical.Operation
		path string
		want string
	}{
		{logical.ReadOperation, "mysecret", fmt.Sprintf(invalid, "get")},
		{logical.UpdateOperation, "mysecret", fmt.Sprintf(invalid, "put")},
		{logical.PatchOperation, "mysecret", fmt.Sprintf(invalid, "patch")},
		{logical.DeleteOperation, "a/b", fmt.Sprintf(invalid, "delete")},
		{logical.ListOperation, "a/", fmt.Sprintf(invalid, "list")},
		{logical.ReadOperation, "", fmt.Sprintf(invalid, "get")},
		{logical.ListOperation, "data/", fmt.Sprintf(invalid, "list")},
		{logical.ReadOperation, "data", "Non-listing operations on the root of a K/V v2 mount are not supported."},
		{logical.ReadOperation, "metadata", "Non-listing operations on the root of a K/V v2 mount are not supported."},
		{logical.UpdateOperation, "destroy", "Non-listing operations on the root of a K/V v2 mount are not supported."},
	} {
		t.Run(string(tc.op)+" "+tc.path, func(t *testing.T) {
			resp, err := e.do(tc.op, tc.path, map[string]any{"a": "b"})
			if err != nil {
				t.Fatalf("err = %v, want a 404 response", err)
			}
			want := &logical.Response{StatusCode: 404, Warnings: []string{tc.want}}
			if diff := cmp.Diff(want, resp); diff != "" {
				t.Errorf("response (-want +got):\n%s", diff)
			}
		})
	}
}

func TestV2SoftDeleteUndeleteDestroy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "2")
	for i := 1; i <= 3; i++ {
		mustPut(t, e, "s", map[string]any{"v": strconv.Itoa(i)})
	}
	now := ts(t0)

	// DELETE data/s soft-deletes the current version (3).
	if resp := e.must(logical.DeleteOperation, "data/s", nil); resp != nil {
		t.Fatalf("delete = %+v, want nil", resp)
	}
	resp := e.must(logical.ReadOperation, "data/s", nil)
	want := &logical.Response{StatusCode: 404, Data: map[string]any{"data": nil, "metadata": versionMeta(3, t0, now, false, nil)}}
	if diff := cmp.Diff(want, resp); diff != "" {
		t.Errorf("read deleted current version (-want +got):\n%s", diff)
	}

	// delete/ soft-deletes listed versions; unknown versions are ignored.
	e.must(logical.UpdateOperation, "delete/s", map[string]any{"versions": []any{json.Number("1"), float64(99)}})
	resp = e.must(logical.ReadOperation, "data/s", map[string]any{"version": "1"})
	if resp.StatusCode != 404 || resp.Data["data"] != nil {
		t.Errorf("read deleted version 1 = %+v, want 404 with null data", resp)
	}
	if got := e.must(logical.ReadOperation, "data/s", map[string]any{"version": "2"}); got.StatusCode != 0 {
		t.Errorf("version 2 affected by delete of 1: %+v", got)
	}

	// undelete restores both (comma string form).
	e.must(logical.UpdateOperation, "undelete/s", map[string]any{"versions": "1,3"})
	for _, v := range []string{"1", "3"} {
		got := e.must(logical.ReadOperation, "data/s", map[string]any{"version": v})
		if got.StatusCode != 0 || got.Data["data"].(map[string]any)["v"] != v {
			t.Errorf("read undeleted version %s = %+v", v, got)
		}
	}

	// destroy removes the data from storage for real.
	before := versionEntries(t, e)
	if len(before) != 1 {
		t.Fatalf("version dirs = %v, want 1", before)
	}
	var dir string
	for d := range before {
		dir = d
	}
	if diff := cmp.Diff([]string{"1", "2", "3"}, before[dir]); diff != "" {
		t.Fatalf("stored versions before destroy (-want +got):\n%s", diff)
	}
	e.must(logical.UpdateOperation, "destroy/s", map[string]any{"versions": []any{float64(2)}})
	if diff := cmp.Diff([]string{"1", "3"}, versionEntries(t, e)[dir]); diff != "" {
		t.Errorf("stored versions after destroy (-want +got):\n%s", diff)
	}
	if _, err := e.s.Get(context.Background(), versionsDir+dir+"2"); status(err) == 0 {
		t.Error("destroyed version still in storage")
	}
	resp = e.must(logical.ReadOperation, "data/s", map[string]any{"version": "2"})
	want = &logical.Response{StatusCode: 404, Data: map[string]any{"data": nil, "metadata": versionMeta(2, t0, "", true, nil)}}
	if diff := cmp.Diff(want, resp); diff != "" {
		t.Errorf("read destroyed version (-want +got):\n%s", diff)
	}
	// A destroyed version cannot be undeleted or deleted.
	e.must(logical.UpdateOperation, "undelete/s", map[string]any{"versions": []any{float64(2)}})
	e.must(logical.UpdateOperation, "delete/s", map[string]any{"versions": []any{float64(2)}})
	if got := e.must(logical.ReadOperation, "data/s", map[string]any{"version": "2"}); got.StatusCode != 404 || got.Data["metadata"].(map[string]any)["deletion_time"] != "" {
		t.Errorf("destroyed version after undelete/delete = %+v", got)
	}

	// Operations on a missing key are no-ops answering 204.
	for _, p := range []string{"delete/none", "undelete/none", "destroy/none"} {
		if resp := e.must(logical.UpdateOperation, p, map[string]any{"versions": []any{float64(1)}}); resp != nil {
			t.Errorf("%s = %+v, want nil", p, resp)
		}
	}
	if resp := e.must(logical.DeleteOperation, "data/none", nil); resp != nil {
		t.Errorf("DELETE data/none = %+v, want nil", resp)
	}
}

func TestV2MaxVersionsPruning(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "2")
	e.must(logical.UpdateOperation, "metadata/many", map[string]any{"max_versions": json.Number("10")})
	for i := 1; i <= 20; i++ {
		mustPut(t, e, "many", map[string]any{"i": strconv.Itoa(i)})
		e.clock.Advance(time.Second)
	}

	resp := e.must(logical.ReadOperation, "metadata/many", nil)
	if got, want := resp.Data["current_version"], uint64(20); got != want {
		t.Errorf("current_version = %v, want %v", got, want)
	}
	if got, want := resp.Data["oldest_version"], uint64(11); got != want {
		t.Errorf("oldest_version = %v, want %v", got, want)
	}
	var kept []string
	for k := range resp.Data["versions"].(map[string]any) {
		kept = append(kept, k)
	}
	slices.Sort(kept)
	want := []string{"11", "12", "13", "14", "15", "16", "17", "18", "19", "20"}
	if diff := cmp.Diff(want, kept); diff != "" {
		t.Errorf("metadata versions (-want +got):\n%s", diff)
	}

	// Storage holds exactly the newest 10 entries.
	entries := versionEntries(t, e)
	if len(entries) != 1 {
		t.Fatalf("version dirs = %v, want 1", entries)
	}
	for _, names := range entries {
		slices.SortFunc(names, func(a, b string) int { x, _ := strconv.Atoi(a); y, _ := strconv.Atoi(b); return x - y })
		if diff := cmp.Diff(want, names); diff != "" {
			t.Errorf("stored versions (-want +got):\n%s", diff)
		}
	}

	if got := e.must(logical.ReadOperation, "data/many", map[string]any{"version": "10"}); got != nil {
		t.Errorf("read pruned version = %+v, want nil (404)", got)
	}
	resp = e.must(logical.ReadOperation, "data/many", map[string]any{"version": "11"})
	if diff := cmp.Diff(map[string]any{"i": "11"}, resp.Data["data"]); diff != "" {
		t.Errorf("oldest kept version data (-want +got):\n%s", diff)
	}

	// Lowering max_versions prunes several at the next write; the effective
	// window is the larger of key and mount settings (Vault's rule).
	e.must(logical.UpdateOperation, "metadata/many", map[string]any{"max_versions": 3})
	mustPut(t, e, "many", map[string]any{"i": "21"})
	for _, names := range versionEntries(t, e) {
		slices.Sort(names)
		if diff := cmp.Diff([]string{"19", "20", "21"}, names); diff != "" {
			t.Errorf("stored versions after max_versions=3 (-want +got):\n%s", diff)
		}
	}
	e.must(logical.UpdateOperation, "config", map[string]any{"max_versions": 5})
	for i := 22; i <= 26; i++ {
		mustPut(t, e, "many", map[string]any{"i": strconv.Itoa(i)})
	}
	resp = e.must(logical.ReadOperation, "metadata/many", nil)
	if got := len(resp.Data["versions"].(map[string]any)); got != 5 {
		t.Errorf("versions kept with key 3 / mount 5 = %d, want 5", got)
	}

	// Default window is 10.
	e.must(logical.UpdateOperation, "config", map[string]any{"max_versions": 0})
	for i := 1; i <= 13; i++ {
		mustPut(t, e, "default", map[string]any{"i": strconv.Itoa(i)})
	}
	resp = e.must(logical.ReadOperation, "metadata/default", nil)
	if got := len(resp.Data["versions"].(map[string]any)); got != 10 || resp.Data["oldest_version"] != uint64(4) {
		t.Errorf("default window: %d versions, oldest %v; want 10, 4", got, resp.Data["oldest_version"])
	}
}

func TestV2ConcurrentCAS(t *testing.T) {
	t.Parallel()
	e := newEnvOn(t, "2", yieldingStorage{inmem.New()}, &fakeClock{now: t0})
	const writers = 50
	for round := range 5 {
		var wins, mismatches atomic.Int32
		var wg sync.WaitGroup
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := put(e, "race", map[string]any{"w": strconv.Itoa(w)}, map[string]any{"cas": json.Number(strconv.Itoa(round))})
				switch {
				case err == nil:
					wins.Add(1)
				case status(err) == 400 && err.Error() == "check-and-set parameter did not match the current version":
					mismatches.Add(1)
				default:
					t.Errorf("writer %d: unexpected error %v", w, err)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 || mismatches.Load() != writers-1 {
			t.Fatalf("round %d: %d wins, %d mismatches; want 1, %d", round, wins.Load(), mismatches.Load(), writers-1)
		}
		resp := e.must(logical.ReadOperation, "metadata/race", nil)
		if got, want := resp.Data["current_version"], uint64(round+1); got != want {
			t.Fatalf("round %d: current_version = %v, want %v", round, got, want)
		}
	}
}

func TestV2ConcurrentWritersNoneLost(t *testing.T) {
	t.Parallel()
	e := newEnvOn(t, "2", yieldingStorage{inmem.New()}, &fakeClock{now: t0})
	e.must(logical.UpdateOperation, "config", map[string]any{"max_versions": 100})
	const writers = 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := put(e, "busy", map[string]any{"w": strconv.Itoa(w)}, nil); err != nil {
				t.Errorf("writer %d: %v", w, err)
			}
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for v := 1; v <= writers; v++ {
		resp := e.must(logical.ReadOperation, "data/busy", map[string]any{"version": strconv.Itoa(v)})
		if resp == nil {
			t.Fatalf("version %d missing", v)
		}
		seen[resp.Data["data"].(map[string]any)["w"].(string)] = true
	}
	if len(seen) != writers {
		t.Errorf("%d distinct writers' data stored, want %d", len(seen), writers)
	}
}

func TestV2Patch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "2")
	mustPut(t, e, "p", map[string]any{"keep": "1", "drop": "2", "nested": map[string]any{"a": "x", "b": "y"}})

	for _, tc := range []struct {
		name        string
		contentType string
		wantStatus  int
	}{
		{"no content type", "", 415},
		{"json content type", "application/json", 415},
		{"malformed content type", "a/b; =", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.patch("data/p", tc.contentType, map[string]any{"data": map[string]any{"x": "y"}})
			if status(err) != tc.wantStatus {
				t.Errorf("patch = %v (status %d), want %d", err, status(err), tc.wantStatus)
			}
		})
	}

	e.clock.Advance(time.Minute)
	resp, err := e.patch("data/p", "application/merge-patch+json; charset=utf-8", map[string]any{
		"data":    map[string]any{"drop": nil, "new": "3", "nested": map[string]any{"a": nil, "c": "z"}},
		"options": map[string]any{"cas": float64(1)},
	})
	if err != nil {
		t.Fatalf("patch: %v", err)
	}
	if diff := cmp.Diff(versionMeta(2, t0.Add(time.Minute), "", false, nil), resp.Data); diff != "" {
		t.Errorf("patch response (-want +got):\n%s", diff)
	}
	resp = e.must(logical.ReadOperation, "data/p", nil)
	want := map[string]any{"keep": "1", "new": "3", "nested": map[string]any{"b": "y", "c": "z"}}
	if diff := cmp.Diff(want, resp.Data["data"]); diff != "" {
		t.Errorf("patched data (-want +got):\n%s", diff)
	}

	const mp = "application/merge-patch+json"
	for _, tc := range []struct {
		name       string
		path       string
		data       map[string]any
		wantStatus int
		wantMsg    string
	}{
		{"no data", "data/p", map[string]any{}, 400, "no data provided"},
		{"non-object data", "data/p", map[string]any{"data": "x"}, 400, ""},
		{"cas mismatch", "data/p", map[string]any{"data": map[string]any{"a": "b"}, "options": map[string]any{"cas": 1}}, 400, "check-and-set parameter did not match the current version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, perr := e.patch(tc.path, mp, tc.data)
			if status(perr) != tc.wantStatus || (tc.wantMsg != "" && perr.Error() != tc.wantMsg) {
				t.Errorf("patch = %v, want %d %q", perr, tc.wantStatus, tc.wantMsg)
			}
		})
	}

	if got, perr := e.patch("data/missing", mp, map[string]any{"data": map[string]any{"a": "b"}}); perr != nil || got == nil || got.StatusCode != 404 {
		t.Errorf("patch missing key = %+v, %v; want a 404 response", got, perr)
	}
	e.must(logical.DeleteOperation, "data/p", nil)
	resp, err = e.patch("data/p", mp, map[string]any{"data": map[string]any{"a": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	wantResp := &logical.Response{StatusCode: 404, Data: versionMeta(2, t0.Add(time.Minute), ts(t0.Add(time.Minute)), false, nil)}
	if diff := cmp.Diff(wantResp, resp); diff != "" {
		t.Errorf("patch of deleted version (-want +got):\n%s", diff)
	}
}

func TestV2Subkeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "2")
	mustPut(t, e, "s", map[string]any{
		"foo":   "abc",
		"bar":   map[string]any{"baz": "def", "quux": map[string]any{"deep": "x"}},
		"empty": map[string]any{},
		"list":  []any{"a"},
	})
	for _, tc := range []struct {
		depth any
		want  map[string]any
	}{
		{nil, map[string]any{"foo": nil, "bar": map[string]any{"baz": nil, "quux": map[string]any{"deep": nil}}, "empty": nil, "list": nil}},
		{"1", map[string]any{"foo": nil, "bar": nil, "empty": nil, "list": nil}},
		{"2", map[string]any{"foo": nil, "bar": map[string]any{"baz": nil, "quux": nil}, "empty": nil, "list": nil}},
	} {
		t.Run(fmt.Sprint("depth ", tc.depth), func(t *testing.T) {
			data := map[string]any{}
			if tc.depth != nil {
				data["depth"] = tc.depth
			}
			resp := e.must(logical.ReadOperation, "subkeys/s", data)
			want := map[string]any{"subkeys": tc.want, "metadata": versionMeta(1, t0, "", false, nil)}
			if diff := cmp.Diff(want, resp.Data); diff != "" {
				t.Errorf("subkeys (-want +got):\n%s", diff)
			}
		})
	}
	if resp := e.must(logical.ReadOperation, "subkeys/none", nil); resp != nil {
		t.Errorf("subkeys of missing key = %+v, want nil", resp)
	}
	e.must(logical.DeleteOperation, "data/s", nil)
	if resp := e.must(logical.ReadOperation, "subkeys/s", nil); resp.StatusCode != 404 || resp.Data["subkeys"] != nil {
		t.Errorf("subkeys of deleted version = %+v, want 404 with null subkeys", resp)
	}
}

func TestV2Metadata(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "2")

	// Metadata can be written before any data exists.
	if resp := e.must(logical.UpdateOperation, "metadata/app/cfg", map[string]any{
		"max_versions":         "5",
		"cas_required":         true,
		"delete_version_after": "1h",
		"custom_metadata":      map[string]any{"owner": "ops", "n": json.Number("7")},
	}); resp != nil {
		t.Fatalf("metadata write = %+v, want nil", resp)
	}
	e.clock.Advance(time.Second)
	resp, err := put(e, "app/cfg", map[string]any{"a": "b"}, map[string]any{"cas": 0})
	if err != nil {
		t.Fatal(err)
	}
	custom := map[string]string{"owner": "ops", "n": "7"}
	if diff := cmp.Diff(versionMeta(1, t0.Add(time.Second), ts(t0.Add(time.Second+time.Hour)), false, custom), resp.Data); diff != "" {
		t.Errorf("write response (-want +got):\n%s", diff)
	}
	resp = e.must(logical.ReadOperation, "metadata/app/cfg", nil)
	want := map[string]any{
		"versions": map[string]any{
			"1": map[string]any{"created_time": ts(t0.Add(time.Second)), "deletion_time": ts(t0.Add(time.Second + time.Hour)), "destroyed": false},
		},
		"current_version":      uint64(1),
		"oldest_version":       uint64(0),
		"created_time":         ts(t0),
		"updated_time":         ts(t0.Add(time.Second)),
		"max_versions":         uint32(5),
		"cas_required":         true,
		"delete_version_after": "1h0m0s",
		"custom_metadata":      custom,
	}
	if diff := cmp.Diff(want, resp.Data); diff != "" {
		t.Errorf("metadata read (-want +got):\n%s", diff)
	}

	// PATCH: null removes a custom key, other settings untouched.
	const mp = "application/merge-patch+json"
	if _, err := e.patch("metadata/app/cfg", "", map[string]any{"max_versions": 2}); status(err) != 415 {
		t.Errorf("metadata patch without content type = %v, want 415", err)
	}
	if got, perr := e.patch("metadata/app/cfg", mp, map[string]any{"custom_metadata": map[string]any{"owner": nil, "team": "blue"}, "max_versions": 2}); perr != nil || got != nil {
		t.Fatalf("metadata patch = %+v, %v", got, perr)
	}
	resp = e.must(logical.ReadOperation, "metadata/app/cfg", nil)
	if diff := cmp.Diff(map[string]string{"n": "7", "team": "blue"}, resp.Data["custom_metadata"]); diff != "" {
		t.Errorf("patched custom_metadata (-want +got):\n%s", diff)
	}
	if resp.Data["max_versions"] != uint32(2) || resp.Data["cas_required"] != true || resp.Data["delete_version_after"] != "1h0m0s" {
		t.Errorf("patched settings = %+v", resp.Data)
	}
	if got, perr := e.patch("metadata/none", mp, map[string]any{"max_versions": 2}); perr != nil || got == nil || got.StatusCode != 404 {
		t.Errorf("patch of missing metadata = %+v, %v; want a 404 response", got, perr)
	}

	// A full write replaces custom_metadata; null clears it (vault/api
	// sends null when the map is unset).
	e.must(logical.UpdateOperation, "metadata/app/cfg", map[string]any{"custom_metadata": nil, "cas_required": false, "max_versions": 0, "delete_version_after": "0s"})
	resp = e.must(logical.ReadOperation, "metadata/app/cfg", nil)
	if !isNilStringMap(resp.Data["custom_metadata"]) || resp.Data["cas_required"] != false || resp.Data["delete_version_after"] != "0s" {
		t.Errorf("metadata after reset = %+v", resp.Data)
	}

	// Listing.
	mustPut(t, e, "app/other", map[string]any{"a": "b"})
	mustPut(t, e, "top", map[string]any{"a": "b"})
	for _, tc := range []struct {
		path string
		want []string
	}{
		{"metadata/", []string{"app/", "top"}},
		{"metadata/app/", []string{"cfg", "other"}},
		{"metadata/app", []string{"cfg", "other"}},
		{"metadata/zzz/", []string{}},
	} {
		resp := e.must(logical.ListOperation, tc.path, nil)
		if diff := cmp.Diff(map[string]any{"keys": tc.want}, resp.Data); diff != "" {
			t.Errorf("list %s (-want +got):\n%s", tc.path, diff)
		}
	}

	// DELETE metadata removes every version and the metadata from storage.
	for range 3 {
		mustPut(t, e, "top", map[string]any{"a": "c"})
	}
	before := len(versionEntries(t, e))
	if resp := e.must(logical.DeleteOperation, "metadata/top", nil); resp != nil {
		t.Fatalf("metadata delete = %+v", resp)
	}
	if after := len(versionEntries(t, e)); after != before-1 {
		t.Errorf("version dirs %d -> %d, want one fewer", before, after)
	}
	if _, err := e.s.Get(context.Background(), metadataDir+"top"); status(err) == 0 {
		t.Error("metadata entry still stored")
	}
	if resp := e.must(logical.ReadOperation, "data/top", nil); resp != nil {
		t.Errorf("read after metadata delete = %+v, want nil", resp)
	}
	if resp := e.must(logical.ReadOperation, "metadata/top", nil); resp != nil {
		t.Errorf("metadata read after delete = %+v, want nil", resp)
	}
	e.must(logical.DeleteOperation, "metadata/top", nil)

	// A write of no settings is a no-op that creates nothing.
	e.must(logical.UpdateOperation, "metadata/ghost", map[string]any{"unknown": 1})
	if resp := e.must(logical.ReadOperation, "metadata/ghost", nil); resp != nil {
		t.Errorf("metadata created by an empty write: %+v", resp)
	}
}

func TestV2ConfigAndCASRequired(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "2")
	resp := e.must(logical.ReadOperation, "config", nil)
	if diff := cmp.Diff(map[string]any{"max_versions": uint32(0), "cas_required": false, "delete_version_after": "0s"}, resp.Data); diff != "" {
		t.Errorf("default config (-want +got):\n%s", diff)
	}
	e.must(logical.UpdateOperation, "config", map[string]any{"max_versions": json.Number("7"), "cas_required": "true", "delete_version_after": "3h25m19s"})
	resp = e.must(logical.ReadOperation, "config", nil)
	if diff := cmp.Diff(map[string]any{"max_versions": uint32(7), "cas_required": true, "delete_version_after": "3h25m19s"}, resp.Data); diff != "" {
		t.Errorf("config after write (-want +got):\n%s", diff)
	}

	if _, err := put(e, "c", map[string]any{"a": "b"}, nil); status(err) != 400 || err.Error() != "check-and-set parameter required for this call" {
		t.Errorf("write without cas under cas_required = %v", err)
	}
	if _, err := put(e, "c", map[string]any{"a": "b"}, map[string]any{"cas": 0}); err != nil {
		t.Errorf("write with cas 0: %v", err)
	}
	resp = e.must(logical.UpdateOperation, "metadata/c", map[string]any{"cas_required": false})
	if resp == nil || len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "mandated by backend config") {
		t.Errorf("cas_required=false under mount cas_required: %+v, want warning", resp)
	}

	e.must(logical.UpdateOperation, "config", map[string]any{"delete_version_after": -1})
	resp = e.must(logical.ReadOperation, "config", nil)
	if resp.Data["delete_version_after"] != "-1s" {
		t.Errorf("disabled delete_version_after = %v, want -1s", resp.Data["delete_version_after"])
	}
	if resp := e.must(logical.UpdateOperation, "config", map[string]any{}); resp != nil {
		t.Errorf("empty config write = %+v", resp)
	}
}

func TestV2DeleteVersionAfter(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "2")
	e.must(logical.UpdateOperation, "config", map[string]any{"delete_version_after": "1h"})
	mustPut(t, e, "s", map[string]any{"a": "b"})

	e.clock.Advance(59 * time.Minute)
	if resp := e.must(logical.ReadOperation, "data/s", nil); resp.StatusCode != 0 {
		t.Fatalf("read before expiry = %+v", resp)
	}
	e.clock.Advance(time.Minute)
	resp := e.must(logical.ReadOperation, "data/s", nil)
	want := &logical.Response{StatusCode: 404, Data: map[string]any{"data": nil, "metadata": versionMeta(1, t0, ts(t0.Add(time.Hour)), false, nil)}}
	if diff := cmp.Diff(want, resp); diff != "" {
		t.Errorf("read after delete_version_after (-want +got):\n%s", diff)
	}

	// Undelete gives the version a fresh deadline from now.
	e.must(logical.UpdateOperation, "undelete/s", map[string]any{"versions": []any{1}})
	resp = e.must(logical.ReadOperation, "data/s", nil)
	if resp.StatusCode != 0 || resp.Data["metadata"].(map[string]any)["deletion_time"] != ts(t0.Add(2*time.Hour)) {
		t.Errorf("after undelete = %+v", resp)
	}

	// The smaller non-zero of key and mount wins.
	e.must(logical.UpdateOperation, "metadata/short", map[string]any{"delete_version_after": "10m"})
	resp = mustPut(t, e, "short", map[string]any{"a": "b"})
	if got, want := resp.Data["deletion_time"], ts(e.clock.Now().Add(10*time.Minute)); got != want {
		t.Errorf("deletion_time with key 10m, mount 1h = %v, want %v", got, want)
	}

	// Disabled at the mount: no automatic deletion at all.
	e.must(logical.UpdateOperation, "config", map[string]any{"delete_version_after": "-1s"})
	resp = mustPut(t, e, "short", map[string]any{"a": "c"})
	if got := resp.Data["deletion_time"]; got != "" {
		t.Errorf("deletion_time with mount disabled = %v, want empty", got)
	}
}

func TestV2ExistenceCheck(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "2")
	ec := e.b.(logical.ExistenceChecker)
	check := func(path string) (bool, bool) {
		t.Helper()
		found, exists, err := ec.ExistenceCheck(context.Background(), e.req(logical.UpdateOperation, path, nil))
		if err != nil {
			t.Fatal(err)
		}
		return found, exists
	}
	for _, p := range []string{"data/k", "metadata/k"} {
		if found, exists := check(p); !found || exists {
			t.Errorf("%s before write: found %v exists %v, want true false", p, found, exists)
		}
	}
	mustPut(t, e, "k", map[string]any{"a": "b"})
	for _, p := range []string{"data/k", "metadata/k"} {
		if found, exists := check(p); !found || !exists {
			t.Errorf("%s after write: found %v exists %v, want true true", p, found, exists)
		}
	}
	// Paths without an existence check stay updates.
	for _, p := range []string{"config", "delete/k", "destroy/k", "undelete/k"} {
		if found, _ := check(p); found {
			t.Errorf("%s has an existence check; Vault has none", p)
		}
	}
}

func TestUpgradeV1ToV2(t *testing.T) {
	t.Parallel()
	v1 := newEnv(t, "1")
	secrets := map[string]map[string]any{
		"mysecret":  {"foo": "bar"},
		"dir/a":     {"n": json.Number("1"), "ttl": "1h"},
		"dir/sub/b": {"nested": map[string]any{"x": "y"}},
	}
	for p, d := range secrets {
		v1.must(logical.UpdateOperation, p, d)
	}

	v1.clock.Advance(time.Hour)
	v2 := newEnvOn(t, "2", v1.s, v1.clock)
	for p, d := range secrets {
		resp := v2.must(logical.ReadOperation, "data/"+p, nil)
		want := map[string]any{"data": d, "metadata": versionMeta(1, t0.Add(time.Hour), "", false, nil)}
		if diff := cmp.Diff(want, resp.Data); diff != "" {
			t.Errorf("upgraded %s (-want +got):\n%s", p, diff)
		}
	}
	resp := v2.must(logical.ReadOperation, "metadata/mysecret", nil)
	if resp.Data["current_version"] != uint64(1) || resp.Data["oldest_version"] != uint64(1) {
		t.Errorf("upgraded metadata = %+v, want current 1 oldest 1", resp.Data)
	}
	resp = v2.must(logical.ListOperation, "metadata/", nil)
	if diff := cmp.Diff([]string{"dir/", "mysecret"}, resp.Data["keys"]); diff != "" {
		t.Errorf("metadata list after upgrade (-want +got):\n%s", diff)
	}
	// The v1 entries are gone from the root of the view.
	root, err := v1.s.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"_kvv2/"}, root); diff != "" {
		t.Errorf("storage root after upgrade (-want +got):\n%s", diff)
	}

	// New writes continue at version 2; re-initializing (unseal) or
	// re-creating the backend does not upgrade again.
	if got := mustPut(t, v2, "mysecret", map[string]any{"foo": "baz"}); got.Data["version"] != uint64(2) {
		t.Errorf("write after upgrade = %+v, want version 2", got.Data)
	}
	if err := v2.b.(logical.Initializer).Initialize(context.Background(), v2.s); err != nil {
		t.Fatal(err)
	}
	again := newEnvOn(t, "2", v1.s, v1.clock)
	resp = again.must(logical.ReadOperation, "data/mysecret", nil)
	if diff := cmp.Diff(map[string]any{"foo": "baz"}, resp.Data["data"]); diff != "" {
		t.Errorf("after re-creating the backend (-want +got):\n%s", diff)
	}
}

func TestUpgradeWithoutInitialize(t *testing.T) {
	t.Parallel()
	v1 := newEnv(t, "1")
	v1.must(logical.UpdateOperation, "k", map[string]any{"a": "b"})
	// A backend core forgot to initialize upgrades on first use.
	b, err := newEnvNoInit(t, "2")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, b: b, s: v1.s, clock: v1.clock}
	resp := e.must(logical.ReadOperation, "data/k", nil)
	if diff := cmp.Diff(map[string]any{"a": "b"}, resp.Data["data"]); diff != "" {
		t.Errorf("lazy upgrade (-want +got):\n%s", diff)
	}
}

// isNilStringMap reports whether v is a nil map[string]string (rendered as
// JSON null, as Vault does for unset custom_metadata).
func isNilStringMap(v any) bool {
	m, ok := v.(map[string]string)
	return ok && m == nil
}

// pausingStorage blocks the first List until released, so a test can act
// while the upgrade is in progress.
type pausingStorage struct {
	logical.Storage
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (p *pausingStorage) List(ctx context.Context, prefix string) ([]string, error) {
	p.once.Do(func() {
		close(p.entered)
		<-p.release
	})
	return p.Storage.List(ctx, prefix)
}

func TestUpgradeInProgressAnswers400(t *testing.T) {
	t.Parallel()
	v1 := newEnv(t, "1")
	v1.must(logical.UpdateOperation, "k", map[string]any{"a": "b"})

	ps := &pausingStorage{Storage: v1.s, entered: make(chan struct{}), release: make(chan struct{})}
	b, err := newEnvNoInit(t, "2")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- b.(logical.Initializer).Initialize(context.Background(), ps) }()
	<-ps.entered

	e := &env{t: t, b: b, s: v1.s, clock: v1.clock}
	const msg = "Upgrading from non-versioned to versioned data. This backend will be unavailable for a brief period and will resume service shortly."
	for _, op := range []logical.Operation{logical.ReadOperation, logical.UpdateOperation, logical.ListOperation} {
		path := map[logical.Operation]string{logical.ListOperation: "metadata/"}[op]
		if path == "" {
			path = "data/k"
		}
		_, err := e.b.HandleRequest(context.Background(), e.req(op, path, map[string]any{"data": map[string]any{"x": "y"}}))
		if status(err) != 400 || err.Error() != msg {
			t.Errorf("%s %s during upgrade = %v, want 400 %q", op, path, err, msg)
		}
	}
	close(ps.release)
	if err := <-done; err != nil {
		t.Fatalf("Initialize: %v", err)
	}
	resp := e.must(logical.ReadOperation, "data/k", nil)
	if diff := cmp.Diff(map[string]any{"a": "b"}, resp.Data["data"]); diff != "" {
		t.Errorf("after upgrade (-want +got):\n%s", diff)
	}
}
