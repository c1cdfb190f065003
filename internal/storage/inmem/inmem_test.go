package inmem_test

import (
	"testing"

	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/inmem"
	"github.com/keyward/keyward/internal/storage/storagetest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	storagetest.Run(t, func(*testing.T) storage.Backend { return inmem.New() })
}

func BenchmarkPut(b *testing.B) {
	m := inmem.New()
	v := make([]byte, 1024)
	b.SetBytes(int64(len(v)))
	for b.Loop() {
		if err := m.Put(b.Context(), &storage.Entry{Key: "bench/k", Value: v}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGet(b *testing.B) {
	m := inmem.New()
	v := make([]byte, 1024)
	if err := m.Put(b.Context(), &storage.Entry{Key: "bench/k", Value: v}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(v)))
	for b.Loop() {
		if _, err := m.Get(b.Context(), "bench/k"); err != nil {
			b.Fatal(err)
		}
	}
}
