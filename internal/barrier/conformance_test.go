package barrier_test

import (
	"testing"

	"github.com/keyward/keyward/internal/barrier"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/inmem"
	"github.com/keyward/keyward/internal/storage/storagetest"
)

// newUnsealed returns an initialized, unsealed barrier over a fresh inmem
// backend, the backend and the root key.
func newUnsealed(t testing.TB) (*barrier.Barrier, *inmem.Backend, []byte) {
	t.Helper()
	phys := inmem.New()
	b := barrier.New(phys)
	root, err := barrier.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Initialize(t.Context(), root); err != nil {
		t.Fatal(err)
	}
	if err := b.Unseal(t.Context(), root); err != nil {
		t.Fatal(err)
	}
	return b, phys, root
}

// TestConformance runs the suite against the barrier itself. The suite
// needs an empty namespace and the barrier's root holds "core/keyring", so
// the barrier is exercised under a top-level folder through a View (which
// only prepends the folder).
func TestConformance(t *testing.T) {
	t.Parallel()
	storagetest.Run(t, func(t *testing.T) storage.Backend {
		b, _, _ := newUnsealed(t)
		return barrier.NewView(b, "suite/")
	})
}

func TestViewConformance(t *testing.T) {
	t.Parallel()
	storagetest.Run(t, func(t *testing.T) storage.Backend {
		b, _, _ := newUnsealed(t)
		return barrier.NewView(b, "logical").SubView("0000-1111/")
	})
}
