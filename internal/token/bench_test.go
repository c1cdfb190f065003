package token_test

import (
	"context"
	"testing"

	"github.com/keyward/keyward/internal/token"
)

// BenchmarkLookup measures the per-request token validation hot path
// (HMAC of the ID, one storage read, JSON decode, expiry check) over
// in-memory storage with 1000 tokens.
func BenchmarkLookup(b *testing.B) {
	e := newEnv(b, nil)
	ctx := context.Background()
	ids := make([]string, 1000)
	for i := range ids {
		te, err := e.store.Create(ctx, &token.Entry{Policies: []string{"aks", "default"}, Path: "auth/azure/login", Meta: map[string]string{"role": "aks-role"}})
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = te.ID
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, err := e.store.Lookup(ctx, ids[i%len(ids)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkLookupParallel is BenchmarkLookup from GOMAXPROCS goroutines.
func BenchmarkLookupParallel(b *testing.B) {
	e := newEnv(b, nil)
	ctx := context.Background()
	te, err := e.store.Create(ctx, &token.Entry{Policies: []string{"aks", "default"}, Path: "auth/azure/login"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.store.Lookup(ctx, te.ID); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkCreate measures issuing a login token (ID + accessor
// generation, three HMACs, duplicate check, two storage writes).
func BenchmarkCreate(b *testing.B) {
	e := newEnv(b, nil)
	ctx := context.Background()
	in := &token.Entry{Policies: []string{"aks", "default"}, Path: "auth/azure/login", Meta: map[string]string{"role": "aks-role"}, Renewable: true}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.store.Create(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}
