// Package barrier is the security barrier: an AES-256-GCM keyring that
// encrypts every value written to an untrusted storage.Backend.
//
// Key hierarchy (spec §5.2–5.4): the root key (held by the seal, see
// internal/seal) encrypts the keyring record at the physical path
// "core/keyring"; the keyring holds one data key per term, the highest term
// being active. A stored value is
//
//	BE32(term) || 0x02 || nonce[12] || AES-GCM(key[term]).Seal(plaintext, aad=path)
//
// so a ciphertext only decrypts under the storage path it was written to.
// Rotation adds a term; older terms stay readable. Sealing drops (and
// zeroes) every key. A Barrier is safe for concurrent use; Get and Put take
// a read lock only long enough to snapshot the keyring.
package barrier

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward/internal/storage"
)

// KeyringPath is the physical path of the keyring record (encrypted under
// the root key, term 1).
const KeyringPath = "core/keyring"

const (
	// versionAAD marks a value whose GCM additional data is its path.
	versionAAD  byte   = 0x02
	initialTerm uint32 = 1
	termSize           = 4
	nonceSize          = 12
	headerSize         = termSize + 1 + nonceSize
	// KeySize is the length of the keys GenerateKey returns (AES-256).
	KeySize = 32
)

// Errors. ErrSealed and ErrBadKey carry Vault's messages (httpapi maps
// "Vault is sealed" to 503 and a bad key to 400).
var (
	// ErrSealed is returned by every data method while the barrier is sealed.
	ErrSealed = errors.New("Vault is sealed") //nolint:staticcheck // Vault's wire message
	// ErrBadKey is returned by Unseal when the root key does not decrypt
	// the keyring.
	ErrBadKey = errors.New("unseal failed, invalid key")
	// ErrNotInitialized is returned by Unseal before Initialize.
	ErrNotInitialized = errors.New("Vault is not initialized") //nolint:staticcheck // Vault's wire message
	// ErrAlreadyInitialized is returned by Initialize when a keyring exists.
	ErrAlreadyInitialized = errors.New("Vault is already initialized") //nolint:staticcheck // Vault's wire message
	// ErrInvalidKeySize is returned for root keys that are not 16, 24 or 32
	// bytes long.
	ErrInvalidKeySize = errors.New("key size must be 16, 24 or 32 bytes")
	// ErrDecrypt wraps every failure to authenticate or decode a stored
	// value (wrong path, tampering, unknown term, truncation).
	ErrDecrypt = errors.New("decryption failed")
	// ErrReservedPath is returned by Put and Delete on the barrier's and the
	// seal's own bootstrap records, which live outside the barrier.
	ErrReservedPath = errors.New("barrier: path is reserved for bootstrap records")
)

// KeyStatus describes the active data key.
type KeyStatus struct {
	// Term is the active key's term (1 after Initialize, +1 per Rotate).
	Term uint32
	// InstallTime is when the active key was created.
	InstallTime time.Time
	// Encryptions counts the values encrypted with the active key
	// (persisted at each Rotate; the count since then is kept in memory).
	Encryptions int64
}

// GenerateKey returns KeySize random bytes from crypto/rand.
func GenerateKey() ([]byte, error) {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("barrier: generating key: %w", err)
	}
	return k, nil
}

// Barrier encrypts values on their way to a physical backend. It implements
// storage.Backend; every method fails with ErrSealed while sealed.
type Barrier struct {
	phys storage.Backend

	// stateMu serializes Initialize, Unseal, Seal and Rotate (which do I/O)
	// so that mu is never held across I/O. Lock order: stateMu, then mu.
	stateMu sync.Mutex
	mu      sync.RWMutex
	kr      *keyring // guarded by mu; nil while sealed; immutable once published
}

var _ storage.Backend = (*Barrier)(nil)

// New returns a sealed barrier over phys.
func New(phys storage.Backend) *Barrier {
	return &Barrier{phys: phys}
}

// term is one data key. Only encryptions changes after construction.
type term struct {
	term        uint32
	value       []byte
	aead        cipher.AEAD
	installTime time.Time
	encryptions atomic.Int64
}

// keyring is an immutable snapshot of the root key and data keys; Rotate
// publishes a new one sharing the older *term values.
type keyring struct {
	root     []byte
	rootAEAD cipher.AEAD
	terms    map[uint32]*term
	active   *term
}

// encodedKeyring is the JSON of the keyring record.
type encodedKeyring struct {
	RootKey []byte       `json:"root_key"`
	Keys    []encodedKey `json:"keys"`
}

type encodedKey struct {
	Term        uint32    `json:"term"`
	Version     int       `json:"version"`
	Value       []byte    `json:"value"`
	InstallTime time.Time `json:"install_time"`
	Encryptions int64     `json:"encryptions,omitempty"`
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	switch len(key) {
	case 16, 24, 32:
	default:
		return nil, ErrInvalidKeySize
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("barrier: %w", err)
	}
	return cipher.NewGCM(block)
}

func newTerm(n uint32, value []byte, installed time.Time, encryptions int64) (*term, error) {
	aead, err := newAEAD(value)
	if err != nil {
		return nil, err
	}
	t := &term{term: n, value: value, aead: aead, installTime: installed}
	t.encryptions.Store(encryptions)
	return t, nil
}

// encrypt seals plaintext for path under t.
func encrypt(t *term, path string, plaintext []byte) ([]byte, error) {
	out := make([]byte, headerSize, headerSize+len(plaintext)+t.aead.Overhead())
	binary.BigEndian.PutUint32(out, t.term)
	out[termSize] = versionAAD
	nonce := out[termSize+1 : headerSize]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("barrier: generating nonce: %w", err)
	}
	return t.aead.Seal(out, nonce, plaintext, []byte(path)), nil
}

// decrypt opens a value stored at path, picking the key by its term.
func decrypt(lookup func(uint32) *term, path string, value []byte) ([]byte, error) {
	if len(value) < headerSize {
		return nil, fmt.Errorf("%w: value too short", ErrDecrypt)
	}
	n := binary.BigEndian.Uint32(value)
	if value[termSize] != versionAAD {
		return nil, fmt.Errorf("%w: unsupported version %d", ErrDecrypt, value[termSize])
	}
	t := lookup(n)
	if t == nil {
		return nil, fmt.Errorf("%w: no decryption key available for term %d", ErrDecrypt, n)
	}
	pt, err := t.aead.Open(nil, value[termSize+1:headerSize], value[headerSize:], []byte(path))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDecrypt, err)
	}
	return pt, nil
}

// reserved reports whether key is a bootstrap record kept outside the
// barrier (the keyring and the seal's physical records).
func reserved(key string) bool {
	return key == KeyringPath || key == "core/seal-config" || strings.HasPrefix(key, "core/hsm/")
}

// snapshot returns the current keyring, or ErrSealed.
func (b *Barrier) snapshot() (*keyring, error) {
	b.mu.RLock()
	kr := b.kr
	b.mu.RUnlock()
	if kr == nil {
		return nil, ErrSealed
	}
	return kr, nil
}

// Initialized reports whether a keyring exists in physical storage.
func (b *Barrier) Initialized(ctx context.Context) (bool, error) {
	_, err := b.phys.Get(ctx, KeyringPath)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, storage.ErrNotFound):
		return false, nil
	default:
		return false, fmt.Errorf("barrier: checking keyring: %w", err)
	}
}

// Initialize creates a keyring with a fresh term-1 data key and stores it
// encrypted under rootKey. It leaves the barrier sealed; rootKey is not
// retained. It fails with ErrAlreadyInitialized if a keyring exists.
func (b *Barrier) Initialize(ctx context.Context, rootKey []byte) error {
	b.stateMu.Lock()
	defer b.stateMu.Unlock()
	rootAEAD, err := newAEAD(rootKey)
	if err != nil {
		return err
	}
	ok, err := b.Initialized(ctx)
	if err != nil {
		return err
	}
	if ok {
		return ErrAlreadyInitialized
	}
	value, err := GenerateKey()
	if err != nil {
		return err
	}
	t, err := newTerm(initialTerm, value, time.Now().UTC(), 0)
	if err != nil {
		return err
	}
	kr := &keyring{root: rootKey, rootAEAD: rootAEAD, terms: map[uint32]*term{initialTerm: t}, active: t}
	err = b.persist(ctx, kr)
	clear(value)
	return err
}

// persist writes kr to KeyringPath, encrypted under its root key.
func (b *Barrier) persist(ctx context.Context, kr *keyring) error {
	enc := encodedKeyring{RootKey: kr.root}
	for n := initialTerm; n <= kr.active.term; n++ {
		t, ok := kr.terms[n]
		if !ok {
			continue
		}
		enc.Keys = append(enc.Keys, encodedKey{
			Term: t.term, Version: 1, Value: t.value,
			InstallTime: t.installTime, Encryptions: t.encryptions.Load(),
		})
	}
	plain, err := json.Marshal(enc)
	if err != nil {
		return fmt.Errorf("barrier: encoding keyring: %w", err)
	}
	defer clear(plain)
	rootTerm := &term{term: initialTerm, aead: kr.rootAEAD}
	ct, err := encrypt(rootTerm, KeyringPath, plain)
	if err != nil {
		return err
	}
	if err := b.phys.Put(ctx, &storage.Entry{Key: KeyringPath, Value: ct}); err != nil {
		return fmt.Errorf("barrier: storing keyring: %w", err)
	}
	return nil
}

// Unseal decrypts the keyring with rootKey and makes the data keys
// available. A wrong key yields ErrBadKey; unsealing an unsealed barrier is
// a no-op. The barrier keeps its own copy of rootKey.
func (b *Barrier) Unseal(ctx context.Context, rootKey []byte) error {
	b.stateMu.Lock()
	defer b.stateMu.Unlock()
	b.mu.RLock()
	unsealed := b.kr != nil
	b.mu.RUnlock()
	if unsealed {
		return nil
	}
	rootAEAD, err := newAEAD(rootKey)
	if err != nil {
		return ErrBadKey
	}
	e, err := b.phys.Get(ctx, KeyringPath)
	if errors.Is(err, storage.ErrNotFound) {
		return ErrNotInitialized
	}
	if err != nil {
		return fmt.Errorf("barrier: reading keyring: %w", err)
	}
	rootTerm := &term{term: initialTerm, aead: rootAEAD}
	plain, err := decrypt(func(n uint32) *term {
		if n == initialTerm {
			return rootTerm
		}
		return nil
	}, KeyringPath, e.Value)
	if err != nil {
		return fmt.Errorf("%w (%w)", ErrBadKey, err)
	}
	defer clear(plain)
	var enc encodedKeyring
	if err := json.Unmarshal(plain, &enc); err != nil {
		return fmt.Errorf("barrier: decoding keyring: %w", err)
	}
	defer clear(enc.RootKey)
	if subtle.ConstantTimeCompare(enc.RootKey, rootKey) != 1 {
		return ErrBadKey
	}
	kr := &keyring{root: append([]byte(nil), rootKey...), rootAEAD: rootAEAD, terms: make(map[uint32]*term, len(enc.Keys))}
	for _, k := range enc.Keys {
		t, err := newTerm(k.Term, k.Value, k.InstallTime, k.Encryptions)
		if err != nil {
			return fmt.Errorf("barrier: keyring term %d: %w", k.Term, err)
		}
		kr.terms[k.Term] = t
		if kr.active == nil || t.term > kr.active.term {
			kr.active = t
		}
	}
	if kr.active == nil {
		return fmt.Errorf("barrier: keyring has no keys")
	}
	b.mu.Lock()
	b.kr = kr
	b.mu.Unlock()
	return nil
}

// Seal drops the keyring and zeroes the key bytes it holds. Operations
// already in flight may complete; later ones fail with ErrSealed.
func (b *Barrier) Seal() {
	b.stateMu.Lock()
	defer b.stateMu.Unlock()
	b.mu.Lock()
	kr := b.kr
	b.kr = nil
	b.mu.Unlock()
	if kr == nil {
		return
	}
	clear(kr.root)
	for _, t := range kr.terms {
		clear(t.value)
	}
}

// Sealed reports whether the barrier is sealed.
func (b *Barrier) Sealed() bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.kr == nil
}

// Rotate installs a new data key with the next term and persists the
// keyring; values written before stay readable with their own terms.
func (b *Barrier) Rotate(ctx context.Context) (uint32, error) {
	b.stateMu.Lock()
	defer b.stateMu.Unlock()
	old, err := b.snapshot()
	if err != nil {
		return 0, err
	}
	value, err := GenerateKey()
	if err != nil {
		return 0, err
	}
	t, err := newTerm(old.active.term+1, value, time.Now().UTC(), 0)
	if err != nil {
		return 0, err
	}
	kr := &keyring{root: old.root, rootAEAD: old.rootAEAD, terms: make(map[uint32]*term, len(old.terms)+1), active: t}
	for n, ot := range old.terms {
		kr.terms[n] = ot
	}
	kr.terms[t.term] = t
	if err := b.persist(ctx, kr); err != nil {
		clear(value)
		return 0, err
	}
	b.mu.Lock()
	b.kr = kr
	b.mu.Unlock()
	return t.term, nil
}

// KeyStatus describes the active data key, or fails with ErrSealed.
func (b *Barrier) KeyStatus() (KeyStatus, error) {
	kr, err := b.snapshot()
	if err != nil {
		return KeyStatus{}, err
	}
	return KeyStatus{
		Term:        kr.active.term,
		InstallTime: kr.active.installTime,
		Encryptions: kr.active.encryptions.Load(),
	}, nil
}

// Put encrypts e.Value with the active key (AAD = e.Key) and stores it.
func (b *Barrier) Put(ctx context.Context, e *storage.Entry) error {
	kr, err := b.snapshot()
	if err != nil {
		return err
	}
	if reserved(e.Key) {
		return fmt.Errorf("%w: %q", ErrReservedPath, e.Key)
	}
	ct, err := encrypt(kr.active, e.Key, e.Value)
	if err != nil {
		return err
	}
	kr.active.encryptions.Add(1)
	return b.phys.Put(ctx, &storage.Entry{Key: e.Key, Value: ct})
}

// Get reads and decrypts the entry under key. A value that fails to
// authenticate (for example one copied from another path) yields an error
// wrapping ErrDecrypt.
func (b *Barrier) Get(ctx context.Context, key string) (*storage.Entry, error) {
	kr, err := b.snapshot()
	if err != nil {
		return nil, err
	}
	e, err := b.phys.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	pt, err := decrypt(func(n uint32) *term { return kr.terms[n] }, key, e.Value)
	if err != nil {
		return nil, fmt.Errorf("barrier: %q: %w", key, err)
	}
	return &storage.Entry{Key: key, Value: pt}, nil
}

// Delete removes key.
func (b *Barrier) Delete(ctx context.Context, key string) error {
	if _, err := b.snapshot(); err != nil {
		return err
	}
	if reserved(key) {
		return fmt.Errorf("%w: %q", ErrReservedPath, key)
	}
	return b.phys.Delete(ctx, key)
}

// List lists prefix in physical storage (key names are not encrypted).
func (b *Barrier) List(ctx context.Context, prefix string) ([]string, error) {
	if _, err := b.snapshot(); err != nil {
		return nil, err
	}
	return b.phys.List(ctx, prefix)
}
