package file_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/keyward/keyward/internal/storage"
)

// The file backend's benchmarks, and for comparison the alternative design
// (one bbolt database under the data path) and the raw
// write+fsync+rename+dir-fsync pattern the file backend is built on.

var benchValue = bytes.Repeat([]byte("v"), 1024)

func BenchmarkFilePut(b *testing.B) {
	fb := newBackend(b)
	b.SetBytes(int64(len(benchValue)))
	i := 0
	for b.Loop() {
		i++
		if err := fb.Put(b.Context(), &storage.Entry{Key: fmt.Sprintf("bench/k%d", i%1000), Value: benchValue}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFilePutParallel(b *testing.B) {
	fb := newBackend(b)
	b.SetBytes(int64(len(benchValue)))
	var n atomic.Int64
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			key := fmt.Sprintf("bench/k%d", n.Add(1)%1000)
			if err := fb.Put(context.Background(), &storage.Entry{Key: key, Value: benchValue}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkFileGet(b *testing.B) {
	fb := newBackend(b)
	if err := fb.Put(b.Context(), &storage.Entry{Key: "bench/k", Value: benchValue}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(benchValue)))
	for b.Loop() {
		if _, err := fb.Get(b.Context(), "bench/k"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAltRawRenamePut is the bare durable-replace pattern: write a
// temp file, fsync, rename, fsync the folder.
func BenchmarkAltRawRenamePut(b *testing.B) {
	dir := b.TempDir()
	final := filepath.Join(dir, "_k")
	tmp := filepath.Join(dir, ".tmp-k")
	for b.Loop() {
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			b.Fatal(err)
		}
		if _, err = f.Write(benchValue); err != nil {
			b.Fatal(err)
		}
		if err = f.Sync(); err != nil {
			b.Fatal(err)
		}
		if err = f.Close(); err != nil {
			b.Fatal(err)
		}
		if err = os.Rename(tmp, final); err != nil {
			b.Fatal(err)
		}
		d, err := os.Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		if err := d.Sync(); err != nil {
			b.Fatal(err)
		}
		d.Close()
	}
}

func openBolt(b *testing.B) *bolt.DB {
	b.Helper()
	db, err := bolt.Open(filepath.Join(b.TempDir(), "keyward.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists([]byte("kv"))
		return err
	}); err != nil {
		b.Fatal(err)
	}
	return db
}

// BenchmarkAltBoltPut: one fsynced bbolt transaction per Put.
func BenchmarkAltBoltPut(b *testing.B) {
	db := openBolt(b)
	i := 0
	b.SetBytes(int64(len(benchValue)))
	for b.Loop() {
		i++
		key := []byte(fmt.Sprintf("bench/k%d", i%1000))
		if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("kv")).Put(key, benchValue) }); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAltBoltPutParallel: concurrent Puts, each its own transaction
// (bbolt has a single writer, so they serialize).
func BenchmarkAltBoltPutParallel(b *testing.B) {
	db := openBolt(b)
	var n atomic.Int64
	b.SetBytes(int64(len(benchValue)))
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			key := []byte(fmt.Sprintf("bench/k%d", n.Add(1)%1000))
			if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("kv")).Put(key, benchValue) }); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkAltBoltGet(b *testing.B) {
	db := openBolt(b)
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("kv")).Put([]byte("bench/k"), benchValue) }); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(benchValue)))
	for b.Loop() {
		if err := db.View(func(tx *bolt.Tx) error {
			_ = bytes.Clone(tx.Bucket([]byte("kv")).Get([]byte("bench/k")))
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAltBoltBatchParallel: concurrent Puts through db.Batch, which
// group-commits concurrent writers into one fsynced transaction.
func BenchmarkAltBoltBatchParallel(b *testing.B) {
	db := openBolt(b)
	var n atomic.Int64
	b.SetBytes(int64(len(benchValue)))
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			key := []byte(fmt.Sprintf("bench/k%d", n.Add(1)%1000))
			if err := db.Batch(func(tx *bolt.Tx) error { return tx.Bucket([]byte("kv")).Put(key, benchValue) }); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
