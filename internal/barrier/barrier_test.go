package barrier_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/barrier"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/inmem"
)

func mustPut(t testing.TB, s storage.Backend, key, value string) {
	t.Helper()
	if err := s.Put(t.Context(), &storage.Entry{Key: key, Value: []byte(value)}); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func mustGet(t testing.TB, s storage.Backend, key string) string {
	t.Helper()
	e, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return string(e.Value)
}

func TestInitializeUnsealLifecycle(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	phys := inmem.New()
	b := barrier.New(phys)
	if !b.Sealed() {
		t.Fatal("new barrier is not sealed")
	}
	if ok, err := b.Initialized(ctx); err != nil || ok {
		t.Fatalf("Initialized() = %v, %v before Initialize", ok, err)
	}
	root, err := barrier.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if len(root) != 32 {
		t.Fatalf("GenerateKey returned %d bytes", len(root))
	}
	if err = b.Unseal(ctx, root); !errors.Is(err, barrier.ErrNotInitialized) {
		t.Fatalf("Unseal before Initialize = %v, want ErrNotInitialized", err)
	}
	if err = b.Initialize(ctx, root); err != nil {
		t.Fatal(err)
	}
	if ok, ierr := b.Initialized(ctx); ierr != nil || !ok {
		t.Fatalf("Initialized() = %v, %v after Initialize", ok, ierr)
	}
	if !b.Sealed() {
		t.Fatal("Initialize unsealed the barrier")
	}
	if err = b.Initialize(ctx, root); !errors.Is(err, barrier.ErrAlreadyInitialized) {
		t.Fatalf("second Initialize = %v, want ErrAlreadyInitialized", err)
	}
	if err = b.Unseal(ctx, root); err != nil {
		t.Fatal(err)
	}
	if err = b.Unseal(ctx, root); err != nil {
		t.Fatalf("Unseal when unsealed = %v, want nil", err)
	}
	mustPut(t, b, "secret/a", "value-a")
	b.Seal()
	if !b.Sealed() {
		t.Fatal("Seal did not seal")
	}
	b.Seal() // idempotent

	// A second barrier over the same physical store (a restart) reads the
	// data back after unsealing with the same root key.
	b2 := barrier.New(phys)
	if err = b2.Unseal(ctx, root); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, b2, "secret/a"); got != "value-a" {
		t.Errorf("after restart got %q", got)
	}
	st, err := b2.KeyStatus()
	if err != nil {
		t.Fatal(err)
	}
	if st.Term != 1 || st.InstallTime.IsZero() {
		t.Errorf("KeyStatus = %+v, want term 1 with an install time", st)
	}
}

func TestInitializeRejectsBadRootKey(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 8, 15, 31, 33, 64} {
		b := barrier.New(inmem.New())
		if err := b.Initialize(t.Context(), make([]byte, n)); !errors.Is(err, barrier.ErrInvalidKeySize) {
			t.Errorf("Initialize(%d-byte key) = %v, want ErrInvalidKeySize", n, err)
		}
	}
}

func TestWrongRootKey(t *testing.T) {
	t.Parallel()
	b, phys, root := newUnsealed(t)
	b.Seal()
	other, err := barrier.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(root)
	flipped[31] ^= 1
	tests := map[string][]byte{
		"random":     other,
		"one bit":    flipped,
		"short":      root[:16],
		"empty":      nil,
		"wrong size": root[:20],
	}
	for name, key := range tests {
		t.Run(name, func(t *testing.T) {
			if err = b.Unseal(t.Context(), key); !errors.Is(err, barrier.ErrBadKey) {
				t.Fatalf("Unseal(wrong key) = %v, want ErrBadKey", err)
			}
			if !b.Sealed() {
				t.Fatal("barrier unsealed with a wrong key")
			}
		})
	}
	// A tampered keyring record is also a bad key, not a crash.
	e, err := phys.Get(t.Context(), barrier.KeyringPath)
	if err != nil {
		t.Fatal(err)
	}
	e.Value[len(e.Value)-1] ^= 1
	mustPut(t, phys, barrier.KeyringPath, string(e.Value))
	if err := b.Unseal(t.Context(), root); !errors.Is(err, barrier.ErrBadKey) {
		t.Fatalf("Unseal(tampered keyring) = %v, want ErrBadKey", err)
	}
}

func TestSealedReturnsErrSealed(t *testing.T) {
	t.Parallel()
	b, _, _ := newUnsealed(t)
	mustPut(t, b, "k", "v")
	b.Seal()
	ctx := t.Context()
	checks := map[string]error{
		"Put":    b.Put(ctx, &storage.Entry{Key: "k", Value: []byte("x")}),
		"Delete": b.Delete(ctx, "k"),
	}
	_, checks["Get"] = b.Get(ctx, "k")
	_, checks["List"] = b.List(ctx, "")
	_, checks["Rotate"] = b.Rotate(ctx)
	_, checks["KeyStatus"] = b.KeyStatus()
	_, checks["View.Get"] = barrier.NewView(b, "x/").Get(ctx, "k")
	for name, err := range checks {
		if !errors.Is(err, barrier.ErrSealed) {
			t.Errorf("%s while sealed = %v, want ErrSealed", name, err)
		}
	}
	if barrier.ErrSealed.Error() != "Vault is sealed" {
		t.Errorf("ErrSealed text = %q", barrier.ErrSealed)
	}
}

func termOf(t *testing.T, phys storage.Backend, key string) uint32 {
	t.Helper()
	e, err := phys.Get(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Value) < 5 || e.Value[4] != 0x02 {
		t.Fatalf("stored value of %q has no version-2 header: % x", key, e.Value[:min(8, len(e.Value))])
	}
	return binary.BigEndian.Uint32(e.Value)
}

func TestRotate(t *testing.T) {
	t.Parallel()
	b, phys, root := newUnsealed(t)
	mustPut(t, b, "old", "written with term 1")
	if got := termOf(t, phys, "old"); got != 1 {
		t.Fatalf("term of first write = %d, want 1", got)
	}
	for want := uint32(2); want <= 4; want++ {
		term, err := b.Rotate(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if term != want {
			t.Fatalf("Rotate = %d, want %d", term, want)
		}
		key := fmt.Sprintf("new%d", term)
		mustPut(t, b, key, key)
		if got := termOf(t, phys, key); got != term {
			t.Errorf("write after rotate used term %d, want %d", got, term)
		}
		st, err := b.KeyStatus()
		if err != nil {
			t.Fatal(err)
		}
		if st.Term != term || st.Encryptions != 1 {
			t.Errorf("KeyStatus = %+v, want term %d with 1 encryption", st, term)
		}
	}
	if got := mustGet(t, b, "old"); got != "written with term 1" {
		t.Errorf("old value after rotation = %q", got)
	}
	// The rotated keyring persists: after a restart every term decrypts.
	b.Seal()
	b2 := barrier.New(phys)
	if err := b2.Unseal(t.Context(), root); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"old", "new2", "new3", "new4"} {
		mustGet(t, b2, k)
	}
	if st, _ := b2.KeyStatus(); st.Term != 4 {
		t.Errorf("term after restart = %d, want 4", st.Term)
	}
}

func TestUnknownTermAndCorruptValues(t *testing.T) {
	t.Parallel()
	b, phys, _ := newUnsealed(t)
	mutate := map[string]func([]byte) []byte{
		"unknown term":   func(v []byte) []byte { binary.BigEndian.PutUint32(v, 99); return v },
		"legacy version": func(v []byte) []byte { v[4] = 0x01; return v },
		"flipped nonce":  func(v []byte) []byte { v[6] ^= 0x80; return v },
		"flipped tag":    func(v []byte) []byte { v[len(v)-1] ^= 0x80; return v },
		"flipped body":   func(v []byte) []byte { v[17] ^= 0x80; return v },
		"truncated":      func(v []byte) []byte { return v[:10] },
		"empty":          func([]byte) []byte { return nil },
	}
	for name, f := range mutate {
		t.Run(name, func(t *testing.T) {
			// Corrupt the value in place: same path, so only the mutation
			// can make it fail.
			key := "corrupt/" + strings.ReplaceAll(name, " ", "-")
			mustPut(t, b, key, "some value")
			e, err := phys.Get(t.Context(), key)
			if err != nil {
				t.Fatal(err)
			}
			mustPut(t, phys, key, string(f(e.Value)))
			if _, err := b.Get(t.Context(), key); !errors.Is(err, barrier.ErrDecrypt) {
				t.Fatalf("Get = %v, want ErrDecrypt", err)
			}
		})
	}
}

func TestCiphertextBoundToPath(t *testing.T) {
	t.Parallel()
	b, phys, _ := newUnsealed(t)
	mustPut(t, b, "logical/a/secret", "for a only")
	e, err := phys.Get(t.Context(), "logical/a/secret")
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, phys, "logical/b/secret", string(e.Value))
	if _, err := b.Get(t.Context(), "logical/b/secret"); !errors.Is(err, barrier.ErrDecrypt) {
		t.Fatalf("Get of moved ciphertext = %v, want ErrDecrypt", err)
	}
	if got := mustGet(t, b, "logical/a/secret"); got != "for a only" {
		t.Errorf("original = %q", got)
	}
}

func TestNoPlaintextInPhysicalStore(t *testing.T) {
	t.Parallel()
	b, phys, root := newUnsealed(t)
	const secret = "TOP-SECRET-sentinel-7f3a9c"
	mustPut(t, b, "logical/kv/mysecret", `{"password":"`+secret+`"}`)
	mustPut(t, barrier.NewView(b, "sys/policy/"), "aks", secret)
	if _, err := b.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	mustPut(t, b, "after-rotate", secret)

	var walk func(prefix string)
	n := 0
	walk = func(prefix string) {
		keys, err := phys.List(t.Context(), prefix)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if strings.HasSuffix(k, "/") {
				walk(prefix + k)
				continue
			}
			e, err := phys.Get(t.Context(), prefix+k)
			if err != nil {
				t.Fatal(err)
			}
			n++
			if bytes.Contains(e.Value, []byte(secret)) || bytes.Contains(e.Value, []byte("TOP-SECRET")) {
				t.Errorf("physical %q contains the plaintext secret", prefix+k)
			}
			if bytes.Contains(e.Value, root) {
				t.Errorf("physical %q contains the root key", prefix+k)
			}
		}
	}
	walk("")
	if n != 4 { // keyring + three values
		t.Errorf("scanned %d physical entries, want 4", n)
	}
}

func TestReservedPaths(t *testing.T) {
	t.Parallel()
	b, _, _ := newUnsealed(t)
	for _, key := range []string{barrier.KeyringPath, "core/seal-config", "core/hsm/barrier-unseal-keys"} {
		if err := b.Put(t.Context(), &storage.Entry{Key: key, Value: []byte("x")}); !errors.Is(err, barrier.ErrReservedPath) {
			t.Errorf("Put(%q) = %v, want ErrReservedPath", key, err)
		}
		if err := b.Delete(t.Context(), key); !errors.Is(err, barrier.ErrReservedPath) {
			t.Errorf("Delete(%q) = %v, want ErrReservedPath", key, err)
		}
	}
	mustPut(t, b, "core/mounts", "allowed")
	if ok, err := b.Initialized(t.Context()); err != nil || !ok {
		t.Errorf("keyring damaged: Initialized = %v, %v", ok, err)
	}
}

func TestView(t *testing.T) {
	t.Parallel()
	b, phys, _ := newUnsealed(t)
	v := barrier.NewView(b, "logical/uuid1") // missing "/" is added
	if v.Prefix() != "logical/uuid1/" {
		t.Fatalf("Prefix = %q", v.Prefix())
	}
	mustPut(t, v, "foo", "bar")
	if _, err := phys.Get(t.Context(), "logical/uuid1/foo"); err != nil {
		t.Fatalf("view write not under its prefix: %v", err)
	}
	e, err := v.Get(t.Context(), "foo")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&storage.Entry{Key: "foo", Value: []byte("bar")}, e); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	other := barrier.NewView(b, "logical/uuid2/")
	if _, err := other.Get(t.Context(), "foo"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("sibling view sees foo: %v", err)
	}
	// "../" is just part of a key name inside a view: it cannot reach
	// outside the prefix.
	mustPut(t, v, "../uuid2/foo", "escape?")
	if _, err := other.Get(t.Context(), "foo"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("view escaped its prefix: %v", err)
	}
}

// TestConcurrentRotateSeal runs readers and writers against rotations and a
// final seal, for the race detector; every error must be ErrSealed.
func TestConcurrentRotateSeal(t *testing.T) {
	t.Parallel()
	b, _, root := newUnsealed(t)
	ctx := t.Context()
	mustPut(t, b, "shared", "v")
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for w := range 4 {
		wg.Go(func() {
			for i := range 100 {
				key := fmt.Sprintf("w%d/%d", w, i%10)
				if err := b.Put(ctx, &storage.Entry{Key: key, Value: []byte(key)}); err != nil && !errors.Is(err, barrier.ErrSealed) {
					errs <- err
				}
				if _, err := b.Get(ctx, "shared"); err != nil && !errors.Is(err, barrier.ErrSealed) {
					errs <- err
				}
			}
		})
	}
	wg.Go(func() {
		for range 5 {
			if _, err := b.Rotate(ctx); err != nil && !errors.Is(err, barrier.ErrSealed) {
				errs <- err
			}
		}
		b.Seal()
		if err := b.Unseal(context.WithoutCancel(ctx), root); err != nil {
			errs <- err
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := mustGet(t, b, "shared"); got != "v" {
		t.Errorf("shared = %q", got)
	}
}

func BenchmarkBarrierPut(b *testing.B) {
	br, _, _ := newUnsealed(b)
	val := bytes.Repeat([]byte("x"), 1024)
	b.SetBytes(int64(len(val)))
	for b.Loop() {
		if err := br.Put(b.Context(), &storage.Entry{Key: "bench/key", Value: val}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBarrierGet(b *testing.B) {
	br, _, _ := newUnsealed(b)
	val := bytes.Repeat([]byte("x"), 1024)
	mustPut(b, br, "bench/key", string(val))
	b.SetBytes(int64(len(val)))
	for b.Loop() {
		if _, err := br.Get(b.Context(), "bench/key"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBarrierGetParallel(b *testing.B) {
	br, _, _ := newUnsealed(b)
	val := bytes.Repeat([]byte("x"), 1024)
	mustPut(b, br, "bench/key", string(val))
	b.SetBytes(int64(len(val)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := br.Get(context.Background(), "bench/key"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
