package cloud

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Bucket names in the bbolt file.
var (
	bucketTenants     = []byte("tenants")
	bucketSubs        = []byte("subscriptions")
	bucketGroups      = []byte("resourceGroups")
	bucketIdentities  = []byte("identities")
	bucketFICs        = []byte("federatedCredentials")
	bucketComputes    = []byte("computes")
	bucketPrincipals  = []byte("principals")
	bucketAssignments = []byte("roleAssignments")
	bucketKeys        = []byte("signingKeys")
	bucketMeta        = []byte("meta")
	allBuckets        = [][]byte{bucketTenants, bucketSubs, bucketGroups, bucketIdentities, bucketFICs, bucketComputes, bucketPrincipals, bucketAssignments, bucketKeys, bucketMeta}
)

// store is the persistent side of the cloud's state: one bbolt file
// (cloud.db, mode 0600) in the data directory. Signing keys are sealed with
// AES-256-GCM under a key-encryption key kept in a separate file
// (signing.kek, 0600), so a copy of cloud.db alone does not reveal them.
type store struct {
	db  *bolt.DB
	kek cipher.AEAD
}

// openStore opens (creating if needed) the store in dir.
func openStore(dir string) (*store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cloud: data dir: %w", err)
	}
	db, err := bolt.Open(filepath.Join(dir, "cloud.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("cloud: open store: %w", err)
	}
	if err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, cerr := tx.CreateBucketIfNotExists(b); cerr != nil {
				return cerr
			}
		}
		return nil
	}); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("cloud: init store: %w", err)
	}
	kek, err := loadKEK(filepath.Join(dir, "signing.kek"))
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return &store{db: db, kek: kek}, nil
}

func loadKEK(path string) (cipher.AEAD, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		raw = make([]byte, 32)
		if _, err = io.ReadFull(rand.Reader, raw); err != nil {
			return nil, fmt.Errorf("cloud: kek: %w", err)
		}
		if err = os.WriteFile(path, raw, 0o600); err != nil {
			return nil, fmt.Errorf("cloud: write kek: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("cloud: read kek: %w", err)
	}
	if len(raw) != 32 {
		return nil, fmt.Errorf("cloud: %s: want 32 bytes, have %d", path, len(raw))
	}
	blk, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("cloud: kek: %w", err)
	}
	return cipher.NewGCM(blk)
}

func (s *store) close() error { return s.db.Close() }

// put stores v as JSON under bucket/key.
func (s *store) put(bucket []byte, k string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("cloud: encode: %w", err)
	}
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put([]byte(k), b) })
}

// del removes bucket/key.
func (s *store) del(bucket []byte, k string) error {
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Delete([]byte(k)) })
}

// each calls fn for every value in bucket.
func (s *store) each(bucket []byte, fn func(v []byte) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(_, v []byte) error { return fn(v) })
	})
}

// loadAll decodes every value of bucket into a fresh T and passes it to add.
func loadAll[T any](s *store, bucket []byte, add func(*T)) error {
	return s.each(bucket, func(v []byte) error {
		t := new(T)
		if err := json.Unmarshal(v, t); err != nil {
			return fmt.Errorf("cloud: decode %s: %w", bucket, err)
		}
		add(t)
		return nil
	})
}

// sealedAll returns every value of bucket decrypted.
func (s *store) sealedAll(bucket []byte) ([][]byte, error) {
	var out [][]byte
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
			n := s.kek.NonceSize()
			if len(v) < n {
				return errors.New("cloud: sealed value too short")
			}
			pt, err := s.kek.Open(nil, v[:n], v[n:], []byte(string(bucket)+"/"+string(k)))
			if err != nil {
				return fmt.Errorf("cloud: unseal %s: %w", k, err)
			}
			out = append(out, pt)
			return nil
		})
	})
	return out, err
}

// replaceSealed replaces the whole bucket with the given sealed values.
func (s *store) replaceSealed(bucket []byte, values map[string][]byte) error {
	type kv struct {
		k string
		v []byte
	}
	var enc []kv
	for k, pt := range values {
		nonce := make([]byte, s.kek.NonceSize())
		if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
			return fmt.Errorf("cloud: nonce: %w", err)
		}
		enc = append(enc, kv{k, s.kek.Seal(nonce, nonce, pt, []byte(string(bucket)+"/"+k))})
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucket); err != nil {
			return err
		}
		b, err := tx.CreateBucket(bucket)
		if err != nil {
			return err
		}
		for _, e := range enc {
			if err := b.Put([]byte(e.k), e.v); err != nil {
				return err
			}
		}
		return nil
	})
}

// view calls fn with the value of bucket/key, if present.
func (s *store) view(bucket []byte, k string, fn func(v []byte)) error {
	return s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucket).Get([]byte(k)); v != nil {
			fn(v)
		}
		return nil
	})
}

// putRaw stores raw bytes under bucket/key.
func (s *store) putRaw(bucket []byte, k string, v []byte) error {
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put([]byte(k), v) })
}
