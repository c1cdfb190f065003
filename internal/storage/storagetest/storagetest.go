// Package storagetest is the conformance suite every storage.Backend
// passes (inmem, file, and the barrier and its views over inmem). Import it
// from tests only.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/storage"
)

// Run exercises the storage.Backend contract. newBackend must return a
// fresh, empty backend each time it is called (it is called once per
// subtest, possibly in parallel) and register its own cleanup.
func Run(t *testing.T, newBackend func(t *testing.T) storage.Backend) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, b storage.Backend)
	}{
		{"PutGet", testPutGet},
		{"Overwrite", testOverwrite},
		{"GetMissing", testGetMissing},
		{"Delete", testDelete},
		{"Values", testValues},
		{"List", testList},
		{"ListAfterDelete", testListAfterDelete},
		{"DeepKeys", testDeepKeys},
		{"OddKeys", testOddKeys},
		{"Concurrent", testConcurrent},
		{"CancelledContext", testCancelled},
		{"ValuesCopied", testCopied},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newBackend(t))
		})
	}
}

func put(t *testing.T, b storage.Backend, key string, value []byte) {
	t.Helper()
	if err := b.Put(t.Context(), &storage.Entry{Key: key, Value: value}); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func get(t *testing.T, b storage.Backend, key string) []byte {
	t.Helper()
	e, err := b.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if e == nil {
		t.Fatalf("Get(%q) = nil entry, nil error", key)
	}
	if e.Key != key {
		t.Errorf("Get(%q).Key = %q", key, e.Key)
	}
	return e.Value
}

func list(t *testing.T, b storage.Backend, prefix string) []string {
	t.Helper()
	got, err := b.List(t.Context(), prefix)
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	if got == nil {
		t.Errorf("List(%q) = nil slice, want non-nil", prefix)
	}
	return got
}

func wantMissing(t *testing.T, b storage.Backend, key string) {
	t.Helper()
	e, err := b.Get(t.Context(), key)
	if !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Get(%q) = %v, %v; want ErrNotFound", key, e, err)
	}
	if e != nil {
		t.Errorf("Get(%q) returned an entry with ErrNotFound", key)
	}
}

func testPutGet(t *testing.T, b storage.Backend) {
	put(t, b, "foo", []byte("bar"))
	put(t, b, "dir/foo", []byte("baz"))
	if diff := cmp.Diff([]byte("bar"), get(t, b, "foo")); diff != "" {
		t.Errorf("foo (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]byte("baz"), get(t, b, "dir/foo")); diff != "" {
		t.Errorf("dir/foo (-want +got):\n%s", diff)
	}
}

func testOverwrite(t *testing.T, b storage.Backend) {
	put(t, b, "k", []byte("one"))
	put(t, b, "k", []byte("a longer second value"))
	put(t, b, "k", []byte("3"))
	if diff := cmp.Diff([]byte("3"), get(t, b, "k")); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"k"}, list(t, b, "")); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
}

func testGetMissing(t *testing.T, b storage.Backend) {
	wantMissing(t, b, "nope")
	wantMissing(t, b, "no/such/key")
	put(t, b, "a/b", []byte("x"))
	wantMissing(t, b, "a")     // a folder is not an entry
	wantMissing(t, b, "a/b/c") // nor is a child of a leaf
}

func testDelete(t *testing.T, b storage.Backend) {
	put(t, b, "k", []byte("v"))
	put(t, b, "d/k", []byte("v"))
	for _, key := range []string{"k", "d/k"} {
		if err := b.Delete(t.Context(), key); err != nil {
			t.Fatalf("Delete(%q): %v", key, err)
		}
		wantMissing(t, b, key)
		// Deleting again (a missing key) is not an error.
		if err := b.Delete(t.Context(), key); err != nil {
			t.Errorf("second Delete(%q) = %v, want nil", key, err)
		}
	}
	if err := b.Delete(t.Context(), "never/existed"); err != nil {
		t.Errorf("Delete(missing) = %v, want nil", err)
	}
	put(t, b, "k", []byte("again"))
	if diff := cmp.Diff([]byte("again"), get(t, b, "k")); diff != "" {
		t.Errorf("re-put (-want +got):\n%s", diff)
	}
}

func testValues(t *testing.T, b storage.Backend) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	tests := []struct {
		name  string
		value []byte
	}{
		{"empty", []byte{}},
		{"nil", nil},
		{"binary", all},
		{"json-ish", []byte(`{"Value":"not really"}` + "\n")},
		{"1MiB", bytes.Repeat([]byte("0123456789abcdef"), 1<<16)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := "values/" + tc.name
			put(t, b, key, tc.value)
			got := get(t, b, key)
			if !bytes.Equal(tc.value, got) {
				t.Errorf("value of %d bytes came back as %d bytes (or different)", len(tc.value), len(got))
			}
		})
	}
}

func testList(t *testing.T, b storage.Backend) {
	for _, k := range []string{"a", "b/c", "b/d/e", "b/d/f", "x", "x/y", "zz/1", "m"} {
		put(t, b, k, []byte(k))
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"", []string{"a", "b/", "m", "x", "x/", "zz/"}},
		{"b/", []string{"c", "d/"}},
		{"b/d/", []string{"e", "f"}},
		{"x/", []string{"y"}},
		{"zz/", []string{"1"}},
		{"nope/", []string{}},
		{"b/c/", []string{}}, // children of a leaf
		{"b/d/e/", []string{}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("prefix=%q", tc.prefix), func(t *testing.T) {
			if diff := cmp.Diff(tc.want, list(t, b, tc.prefix)); diff != "" {
				t.Errorf("List(%q) (-want +got):\n%s", tc.prefix, diff)
			}
		})
	}
}

func testListAfterDelete(t *testing.T, b storage.Backend) {
	for _, k := range []string{"p/q/r", "p/q/s", "p/t", "u"} {
		put(t, b, k, []byte("v"))
	}
	for _, k := range []string{"p/q/r", "p/q/s"} {
		if err := b.Delete(t.Context(), k); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff([]string{"t"}, list(t, b, "p/")); diff != "" {
		t.Errorf("List(p/) after deleting p/q/* (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{}, list(t, b, "p/q/")); diff != "" {
		t.Errorf("List(p/q/) (-want +got):\n%s", diff)
	}
	if err := b.Delete(t.Context(), "p/t"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"u"}, list(t, b, "")); diff != "" {
		t.Errorf("List(\"\") after deleting all of p/ (-want +got):\n%s", diff)
	}
}

func testDeepKeys(t *testing.T, b storage.Backend) {
	segs := make([]string, 24)
	for i := range segs {
		segs[i] = fmt.Sprintf("level%02d", i)
	}
	key := strings.Join(segs, "/")
	put(t, b, key, []byte("deep"))
	if diff := cmp.Diff([]byte("deep"), get(t, b, key)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	parent := strings.Join(segs[:len(segs)-1], "/") + "/"
	if diff := cmp.Diff([]string{segs[len(segs)-1]}, list(t, b, parent)); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"level00/"}, list(t, b, "")); diff != "" {
		t.Errorf("List root (-want +got):\n%s", diff)
	}
}

// oddSegments are key segments that trip naive encodings: file-backend
// prefixes and escapes, temp-file look-alikes, spaces, unicode, shell and
// URL metacharacters.
var oddSegments = []string{
	"_leading-underscore", "__double", "%5Flooks-escaped", "%25", "%", "_",
	".hidden", ".tmp-0123456789abcdef", "name.temp", "with space", " lead", "trail ",
	"ünïcødé-日本", "emoji-🔑", "colon:at@plus+eq=", "tilde~bang!$&'()*,;",
	"back\\slash", "quote\"", "tab\tnewline\n", "-", "...", "a..b",
	strings.Repeat("L", 200),
}

func testOddKeys(t *testing.T, b storage.Backend) {
	var leaves []string
	for _, s := range oddSegments {
		// As a leaf at the root, as a folder, and as a leaf in a folder.
		put(t, b, s, []byte("leaf:"+s))
		put(t, b, s+"/child", []byte("child:"+s))
		put(t, b, "odd/"+s, []byte("nested:"+s))
		leaves = append(leaves, s)
	}
	for _, s := range oddSegments {
		for key, want := range map[string]string{s: "leaf:" + s, s + "/child": "child:" + s, "odd/" + s: "nested:" + s} {
			if diff := cmp.Diff([]byte(want), get(t, b, key)); diff != "" {
				t.Errorf("Get(%q) (-want +got):\n%s", key, diff)
			}
		}
		if diff := cmp.Diff([]string{"child"}, list(t, b, s+"/")); diff != "" {
			t.Errorf("List(%q) (-want +got):\n%s", s+"/", diff)
		}
	}
	slices.Sort(leaves)
	if diff := cmp.Diff(leaves, list(t, b, "odd/")); diff != "" {
		t.Errorf("List(odd/) (-want +got):\n%s", diff)
	}
	var root []string
	for _, s := range oddSegments {
		root = append(root, s, s+"/")
	}
	root = append(root, "odd/")
	slices.Sort(root)
	if diff := cmp.Diff(root, list(t, b, "")); diff != "" {
		t.Errorf("List(\"\") (-want +got):\n%s", diff)
	}
}

func testConcurrent(t *testing.T, b storage.Backend) {
	const workers, perWorker = 8, 25
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker*4)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				key := fmt.Sprintf("conc/w%d/k%d", w, i)
				val := []byte(key)
				if err := b.Put(ctx, &storage.Entry{Key: key, Value: val}); err != nil {
					errs <- err
					continue
				}
				e, err := b.Get(ctx, key)
				if err != nil {
					errs <- err
				} else if !bytes.Equal(e.Value, val) {
					errs <- fmt.Errorf("Get(%q) = %q", key, e.Value)
				}
				// Everybody also hammers one shared key and lists.
				if err := b.Put(ctx, &storage.Entry{Key: "conc/shared", Value: val}); err != nil {
					errs <- err
				}
				if _, err := b.Get(ctx, "conc/shared"); err != nil {
					errs <- err
				}
				if _, err := b.List(ctx, "conc/"); err != nil {
					errs <- err
				}
				if i%5 == 4 {
					if err := b.Delete(ctx, key); err != nil {
						errs <- err
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for w := range workers {
		var want []string
		for i := range perWorker {
			if i%5 != 4 {
				want = append(want, fmt.Sprintf("k%d", i))
			}
		}
		slices.Sort(want)
		if diff := cmp.Diff(want, list(t, b, fmt.Sprintf("conc/w%d/", w))); diff != "" {
			t.Errorf("worker %d keys (-want +got):\n%s", w, diff)
		}
	}
	shared := get(t, b, "conc/shared")
	if !bytes.HasPrefix(shared, []byte("conc/w")) {
		t.Errorf("shared key holds %q, want one of the written values", shared)
	}
}

func testCancelled(t *testing.T, b storage.Backend) {
	put(t, b, "k", []byte("v"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := b.Put(ctx, &storage.Entry{Key: "k", Value: []byte("new")}); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with cancelled ctx = %v, want context.Canceled", err)
	}
	if _, err := b.Get(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with cancelled ctx = %v, want context.Canceled", err)
	}
	if _, err := b.List(ctx, ""); !errors.Is(err, context.Canceled) {
		t.Errorf("List with cancelled ctx = %v, want context.Canceled", err)
	}
	if err := b.Delete(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Errorf("Delete with cancelled ctx = %v, want context.Canceled", err)
	}
	// Nothing changed.
	if diff := cmp.Diff([]byte("v"), get(t, b, "k")); diff != "" {
		t.Errorf("after cancelled calls (-want +got):\n%s", diff)
	}
}

func testCopied(t *testing.T, b storage.Backend) {
	in := []byte("original")
	put(t, b, "k", in)
	copy(in, "MUTATED!")
	got := get(t, b, "k")
	if diff := cmp.Diff([]byte("original"), got); diff != "" {
		t.Errorf("after mutating the Put slice (-want +got):\n%s", diff)
	}
	copy(got, "MUTATED!")
	if diff := cmp.Diff([]byte("original"), get(t, b, "k")); diff != "" {
		t.Errorf("after mutating the Get slice (-want +got):\n%s", diff)
	}
}
