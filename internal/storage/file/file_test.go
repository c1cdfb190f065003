package file_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/file"
	"github.com/keyward/keyward/internal/storage/storagetest"
)

func newBackend(t testing.TB) *file.Backend {
	t.Helper()
	b, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storagetest.Run(t, func(t *testing.T) storage.Backend { return newBackend(t) })
}

func TestLayout(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := t.Context()
	for key, val := range map[string]string{
		"core/seal-config": "cfg",
		"a/b/c":            "hello",
		"_x/y":             "underscore folder",
		"%p/q":             "percent folder",
	} {
		if err = b.Put(ctx, &storage.Entry{Key: key, Value: []byte(val)}); err != nil {
			t.Fatal(err)
		}
	}
	tests := map[string]string{
		"core/_seal-config": `{"Value":"Y2Zn"}` + "\n",
		"a/b/_c":            `{"Value":"aGVsbG8="}` + "\n",
		"%5Fx/_y":           `{"Value":"` + base64.StdEncoding.EncodeToString([]byte("underscore folder")) + `"}` + "\n",
		"%25p/_q":           `{"Value":"` + base64.StdEncoding.EncodeToString([]byte("percent folder")) + `"}` + "\n",
	}
	for p, want := range tests {
		got, rerr := os.ReadFile(filepath.Join(dir, p))
		if rerr != nil {
			t.Errorf("%s: %v", p, rerr)
			continue
		}
		if diff := cmp.Diff(want, string(got)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", p, diff)
		}
		fi, serr := os.Stat(filepath.Join(dir, p))
		if serr != nil {
			t.Fatal(serr)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", p, fi.Mode().Perm())
		}
		di, serr := os.Stat(filepath.Dir(filepath.Join(dir, p)))
		if serr != nil {
			t.Fatal(serr)
		}
		if di.Mode().Perm() != 0o700 {
			t.Errorf("folder of %s mode %v, want 0700", p, di.Mode().Perm())
		}
	}
	// A folder and a leaf with the same name coexist ("_x" folder vs "x"
	// leaf would collide without escaping).
	if err = b.Put(ctx, &storage.Entry{Key: "x", Value: []byte("leaf")}); err != nil {
		t.Fatal(err)
	}
	got, err := b.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"%p/", "_x/", "a/", "core/", "x"}, got); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
}

func TestNewCreatesRootAndPersists(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "nested", "data")
	b, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("root mode %v, want 0700", fi.Mode().Perm())
	}
	if err = b.Put(t.Context(), &storage.Entry{Key: "k/v", Value: []byte("persisted")}); err != nil {
		t.Fatal(err)
	}
	if err = b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err = b.Get(t.Context(), "k/v"); !errors.Is(err, file.ErrClosed) {
		t.Errorf("Get after Close = %v, want ErrClosed", err)
	}
	if err = b.Put(t.Context(), &storage.Entry{Key: "k/v", Value: nil}); !errors.Is(err, file.ErrClosed) {
		t.Errorf("Put after Close = %v, want ErrClosed", err)
	}
	b2, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	e, err := b2.Get(t.Context(), "k/v")
	if err != nil {
		t.Fatal(err)
	}
	if string(e.Value) != "persisted" {
		t.Errorf("reopened value %q", e.Value)
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	f := filepath.Join(t.TempDir(), "plainfile")
	if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"", f, filepath.Join(f, "sub")} {
		if _, err := file.New(p); err == nil {
			t.Errorf("New(%q) succeeded", p)
		}
	}
}

func TestInvalidKeys(t *testing.T) {
	t.Parallel()
	b := newBackend(t)
	ctx := t.Context()
	tests := []struct {
		key       string
		parentRef bool
	}{
		{"", false}, {"/a", false}, {"a/", false}, {"a//b", false}, {".", false}, {"a/./b", false},
		{"..", true}, {"a/../b", true}, {"../core/keyring", true}, {"a/..", true},
		{"nul\x00byte", false}, {strings.Repeat("x", file.MaxSegment+1), false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%q", tc.key), func(t *testing.T) {
			errs := map[string]error{
				"Put":    b.Put(ctx, &storage.Entry{Key: tc.key, Value: []byte("x")}),
				"Delete": b.Delete(ctx, tc.key),
			}
			_, errs["Get"] = b.Get(ctx, tc.key)
			for op, err := range errs {
				if !errors.Is(err, file.ErrInvalidKey) {
					t.Errorf("%s = %v, want ErrInvalidKey", op, err)
				}
				if tc.parentRef && !errors.Is(err, file.ErrParentReference) {
					t.Errorf("%s = %v, want ErrParentReference", op, err)
				}
			}
		})
	}
	if err := b.Put(ctx, &storage.Entry{Key: strings.Repeat("x", file.MaxSegment), Value: []byte("x")}); err != nil {
		t.Errorf("Put(longest segment) = %v", err)
	}
	for _, p := range []string{"a", "../", "a/../", "//"} {
		if _, err := b.List(ctx, p); !errors.Is(err, file.ErrInvalidKey) {
			t.Errorf("List(%q) = %v, want ErrInvalidKey", p, err)
		}
	}
	entries, err := os.ReadDir(b.Path())
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("invalid keys left %d entries in the root, want only the valid one", len(entries))
	}
}

func TestStaleTempFilesAndCorruption(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "x", ".tmp-00112233aabbccdd")
	if err := os.WriteFile(stale, []byte(`{"Value":"dG9y`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "x", "_bad"), []byte(`{"Value":"dG9y`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "x", "_empty"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "x", "not-a-key"), []byte("?"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err = os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale temp file survived New: %v", err)
	}
	got, err := b.List(t.Context(), "x/")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"bad", "empty"}, got); diff != "" {
		t.Errorf("List ignores non-key files (-want +got):\n%s", diff)
	}
	for _, k := range []string{"x/bad", "x/empty"} {
		if _, err := b.Get(t.Context(), k); !errors.Is(err, file.ErrCorrupt) {
			t.Errorf("Get(%q) = %v, want ErrCorrupt", k, err)
		}
	}
}
