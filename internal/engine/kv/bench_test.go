package kv_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/keyward/keyward/internal/logical"
)

var benchSecret = map[string]any{"username": "app", "password": "s3cr3t-s3cr3t-s3cr3t", "port": "5432"}

func BenchmarkV1Read(b *testing.B) {
	e := newEnv(b, "1")
	e.must(logical.UpdateOperation, "mysecret", benchSecret)
	r := e.req(logical.ReadOperation, "mysecret", nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.b.HandleRequest(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkV2Read(b *testing.B) {
	e := newEnv(b, "2")
	e.must(logical.UpdateOperation, "data/mysecret", map[string]any{"data": benchSecret})
	r := e.req(logical.ReadOperation, "data/mysecret", nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.b.HandleRequest(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkV2Write writes new versions of one key (pruning past 10).
func BenchmarkV2Write(b *testing.B) {
	e := newEnv(b, "2")
	ctx := context.Background()
	body := map[string]any{"data": benchSecret}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.b.HandleRequest(ctx, e.req(logical.UpdateOperation, "data/mysecret", body)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkV2WriteParallel writes versions of 64 keys from all procs.
func BenchmarkV2WriteParallel(b *testing.B) {
	e := newEnv(b, "2")
	ctx := context.Background()
	body := map[string]any{"data": benchSecret}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			if _, err := e.b.HandleRequest(ctx, e.req(logical.UpdateOperation, "data/k"+strconv.Itoa(i%64), body)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
