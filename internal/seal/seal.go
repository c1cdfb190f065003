// Package seal implements the Shamir seal: initialization (key generation
// and splitting) and unseal progress (collecting key shares until the
// threshold, then unsealing the barrier).
//
// Key hierarchy (spec §5.2): the unseal key (KEK, 32 random bytes) is split
// into the shares given to operators (with one share the share is the key
// itself). The root key (32 random bytes) is stored in physical storage at
// StoredKeysPath, AES-256-GCM encrypted under the KEK; it in turn encrypts
// the barrier's keyring. The seal configuration (shares, threshold) is
// public and stored as plaintext JSON at ConfigPath. Neither key is ever
// written in plaintext, and both are zeroed after use.
//
// A Manager is safe for concurrent use.
package seal

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/keyward/keyward/internal/barrier"
	"github.com/keyward/keyward/internal/logical"
	"github.com/keyward/keyward/internal/shamir"
	"github.com/keyward/keyward/internal/storage"
)

// Physical storage paths of the seal's records (outside the barrier).
const (
	// ConfigPath holds the plaintext seal configuration JSON.
	ConfigPath = "core/seal-config"
	// StoredKeysPath holds the root key encrypted under the unseal key.
	StoredKeysPath = "core/hsm/barrier-unseal-keys"
)

// Unseal key length bounds (Vault's): shares are the 32-byte key plus one
// Shamir byte.
const (
	minKeyLen = 16
	maxKeyLen = barrier.KeySize + shamir.ShareOverhead
)

// statusBadRequest is HTTP 400 (this package does not import net/http).
const statusBadRequest = 400

// storedKeysVersion is the first byte of the stored-keys record.
const storedKeysVersion byte = 1

// Errors. Each is a *logical.CodedError with Vault's status and message,
// so the transport can render it directly; compare with errors.Is.
var (
	// ErrAlreadyInitialized: Initialize on an initialized seal (400).
	ErrAlreadyInitialized error = &logical.CodedError{Status: statusBadRequest, Msg: "Vault is already initialized", Err: logical.ErrInvalidRequest}
	// ErrNotInitialized: Unseal before Initialize (400).
	ErrNotInitialized error = &logical.CodedError{Status: statusBadRequest, Msg: "Vault is not initialized", Err: logical.ErrInvalidRequest}
	// ErrInvalidKey is wrapped by every rejection of a key or share: bad
	// length, shares that do not combine, or a combined key that does not
	// decrypt the stored root key (the returned error is a 400
	// *logical.CodedError carrying Vault's message).
	ErrInvalidKey = errors.New("invalid key")
)

// InitRequest is the seal part of sys/init.
type InitRequest struct {
	// SecretShares is the number of unseal key shares (1..255).
	SecretShares int
	// SecretThreshold is how many shares unseal (1..SecretShares; at least
	// 2 when SecretShares > 1).
	SecretThreshold int
}

// InitResult holds the unseal key shares, to be shown to the operator once
// and never stored. With one share, Keys[0] is the 32-byte unseal key.
type InitResult struct {
	Keys [][]byte
}

// Status is the seal status (sys/seal-status).
type Status struct {
	// Type is always "shamir".
	Type string
	// Initialized and Sealed are the server's state.
	Initialized bool
	Sealed      bool
	// T is the threshold, N the number of shares (0 when uninitialized).
	T int
	N int
	// Progress is the number of distinct shares submitted in the current
	// unseal attempt.
	Progress int
	// Nonce identifies the current unseal attempt ("" when none).
	Nonce string
}

// config is the plaintext seal configuration, stored with Vault's field
// names.
type config struct {
	Type            string   `json:"type"`
	SecretShares    int      `json:"secret_shares"`
	SecretThreshold int      `json:"secret_threshold"`
	PGPKeys         []string `json:"pgp_keys"`
	Nonce           string   `json:"nonce"`
	Backup          bool     `json:"backup"`
	StoredShares    int      `json:"stored_shares"`
}

// Manager drives initialization and unsealing of a barrier.
type Manager struct {
	phys    storage.Backend
	barrier *barrier.Barrier

	mu    sync.Mutex
	cfg   *config  // guarded by mu; cached seal configuration, nil until read
	parts [][]byte // guarded by mu; shares of the current attempt
	nonce string   // guarded by mu; "" when no attempt is in progress
}

// New returns a Manager over the physical backend phys (which must be the
// one under b).
func New(phys storage.Backend, b *barrier.Barrier) *Manager {
	return &Manager{phys: phys, barrier: b}
}

func badRequest(cause error, format string, args ...any) error {
	return &logical.CodedError{Status: statusBadRequest, Msg: fmt.Sprintf(format, args...), Err: cause}
}

// validate checks a seal configuration the way Vault does.
func (r InitRequest) validate() error {
	var msg string
	switch {
	case r.SecretShares < 1:
		msg = "shares must be at least one"
	case r.SecretThreshold < 1:
		msg = "threshold must be at least one"
	case r.SecretShares > 1 && r.SecretThreshold == 1:
		msg = "threshold must be greater than one for multiple shares"
	case r.SecretShares > 255:
		msg = "shares must be less than 256"
	case r.SecretThreshold > 255:
		msg = "threshold must be less than 256"
	case r.SecretThreshold > r.SecretShares:
		msg = "threshold cannot be larger than shares"
	default:
		return nil
	}
	return badRequest(logical.ErrInvalidRequest, "invalid seal configuration: %s", msg)
}

// loadConfig returns the seal configuration; found is false when the seal
// is not initialized. Caller holds m.mu.
func (m *Manager) loadConfig(ctx context.Context) (c *config, found bool, err error) {
	if m.cfg != nil {
		return m.cfg, true, nil
	}
	e, err := m.phys.Get(ctx, ConfigPath)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("seal: reading seal configuration: %w", err)
	}
	c = new(config)
	if err := json.Unmarshal(e.Value, c); err != nil {
		return nil, false, fmt.Errorf("seal: decoding seal configuration: %w", err)
	}
	if c.SecretShares < 1 || c.SecretThreshold < 1 || c.SecretThreshold > c.SecretShares {
		return nil, false, fmt.Errorf("seal: invalid stored seal configuration (%d of %d)", c.SecretThreshold, c.SecretShares)
	}
	m.cfg = c
	return c, true, nil
}

// Initialized reports whether the seal has been initialized.
func (m *Manager) Initialized(ctx context.Context) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, found, err := m.loadConfig(ctx)
	return found, err
}

// Initialize generates the unseal and root keys, stores the root key
// encrypted under the unseal key, initializes the barrier and writes the
// seal configuration. It leaves the barrier UNSEALED so the caller can
// create the root token; the caller seals afterwards (except in dev mode).
// Invalid parameters yield a 400 *logical.CodedError with Vault's message;
// a second call yields ErrAlreadyInitialized.
func (m *Manager) Initialize(ctx context.Context, req InitRequest) (*InitResult, error) {
	if err := req.validate(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, found, err := m.loadConfig(ctx)
	if err != nil {
		return nil, err
	}
	if found {
		return nil, ErrAlreadyInitialized
	}
	if ok, ierr := m.barrier.Initialized(ctx); ierr != nil {
		return nil, ierr
	} else if ok {
		// A keyring without a seal configuration: an earlier Initialize
		// crashed half-way. Refuse rather than overwrite it.
		return nil, fmt.Errorf("seal: barrier keyring exists without a seal configuration (interrupted initialization): %w", barrier.ErrAlreadyInitialized)
	}

	unsealKey, err := barrier.GenerateKey()
	if err != nil {
		return nil, err
	}
	defer clear(unsealKey)
	rootKey, err := barrier.GenerateKey()
	if err != nil {
		return nil, err
	}
	defer clear(rootKey)

	var keys [][]byte
	if req.SecretShares == 1 {
		keys = [][]byte{append([]byte(nil), unsealKey...)}
	} else {
		keys, err = shamir.Split(unsealKey, req.SecretShares, req.SecretThreshold)
		if err != nil {
			return nil, fmt.Errorf("seal: splitting unseal key: %w", err)
		}
	}

	if err = m.barrier.Initialize(ctx, rootKey); err != nil {
		return nil, fmt.Errorf("seal: initializing barrier: %w", err)
	}
	blob, err := wrapRootKey(unsealKey, rootKey)
	if err != nil {
		return nil, err
	}
	if err = m.phys.Put(ctx, &storage.Entry{Key: StoredKeysPath, Value: blob}); err != nil {
		return nil, fmt.Errorf("seal: storing root key: %w", err)
	}
	nc := &config{Type: "shamir", SecretShares: req.SecretShares, SecretThreshold: req.SecretThreshold, StoredShares: 1}
	raw, err := json.Marshal(nc)
	if err != nil {
		return nil, fmt.Errorf("seal: encoding seal configuration: %w", err)
	}
	if err := m.phys.Put(ctx, &storage.Entry{Key: ConfigPath, Value: raw}); err != nil {
		return nil, fmt.Errorf("seal: storing seal configuration: %w", err)
	}
	m.cfg = nc
	if err := m.barrier.Unseal(ctx, rootKey); err != nil {
		return nil, fmt.Errorf("seal: unsealing new barrier: %w", err)
	}
	m.resetLocked()
	return &InitResult{Keys: keys}, nil
}

// wrapRootKey encrypts rootKey under kek: version(1) || nonce(12) ||
// AES-GCM(kek).Seal(rootKey, aad=StoredKeysPath).
func wrapRootKey(kek, rootKey []byte) ([]byte, error) {
	aead, err := kekAEAD(kek)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: generating nonce: %w", err)
	}
	out := make([]byte, 0, 1+len(nonce)+len(rootKey)+aead.Overhead())
	out = append(out, storedKeysVersion)
	out = append(out, nonce...)
	return aead.Seal(out, nonce, rootKey, []byte(StoredKeysPath)), nil
}

// unwrapRootKey reverses wrapRootKey.
func unwrapRootKey(kek, blob []byte) ([]byte, error) {
	aead, err := kekAEAD(kek)
	if err != nil {
		return nil, err
	}
	ns := aead.NonceSize()
	if len(blob) < 1+ns+aead.Overhead() || blob[0] != storedKeysVersion {
		return nil, errors.New("malformed stored keys record")
	}
	return aead.Open(nil, blob[1:1+ns], blob[1+ns:], []byte(StoredKeysPath))
}

func kekAEAD(kek []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Unseal adds one key share to the current attempt. Below the threshold it
// returns the status with the new progress; a share already submitted in
// this attempt is ignored. At the threshold it combines the shares,
// decrypts the root key and unseals the barrier; whatever the outcome the
// attempt ends (progress resets). Rejected keys yield a 400
// *logical.CodedError wrapping ErrInvalidKey. Unsealing an unsealed server
// returns its status.
func (m *Manager) Unseal(ctx context.Context, key []byte) (Status, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, found, err := m.loadConfig(ctx)
	if err != nil {
		return Status{}, err
	}
	if !found {
		return m.statusLocked(nil), ErrNotInitialized
	}
	if !m.barrier.Sealed() {
		return m.statusLocked(c), nil
	}
	switch {
	case len(key) < minKeyLen:
		return m.statusLocked(c), badRequest(ErrInvalidKey, "invalid key: key is shorter than minimum %d bytes", minKeyLen)
	case len(key) > maxKeyLen:
		return m.statusLocked(c), badRequest(ErrInvalidKey, "invalid key: key is longer than maximum %d bytes", maxKeyLen)
	}
	for _, p := range m.parts {
		if subtle.ConstantTimeCompare(p, key) == 1 {
			return m.statusLocked(c), nil
		}
	}
	if m.nonce == "" {
		n, nerr := newNonce()
		if nerr != nil {
			return Status{}, nerr
		}
		m.nonce = n
	}
	m.parts = append(m.parts, append([]byte(nil), key...))
	if len(m.parts) < c.SecretThreshold {
		return m.statusLocked(c), nil
	}

	parts := m.parts
	m.parts = nil
	m.nonce = ""
	defer func() {
		for _, p := range parts {
			clear(p)
		}
	}()
	var unsealKey []byte
	if c.SecretThreshold == 1 {
		unsealKey = append([]byte(nil), parts[0]...)
	} else {
		unsealKey, err = shamir.Combine(parts)
		if err != nil {
			return m.statusLocked(c), badRequest(fmt.Errorf("%w: %w", ErrInvalidKey, err), "failed to compute combined key: %v", err)
		}
	}
	defer clear(unsealKey)
	e, err := m.phys.Get(ctx, StoredKeysPath)
	if err != nil {
		return m.statusLocked(c), fmt.Errorf("seal: unable to retrieve stored keys: %w", err)
	}
	rootKey, err := unwrapRootKey(unsealKey, e.Value)
	if err != nil {
		return m.statusLocked(c), badRequest(fmt.Errorf("%w: %w", ErrInvalidKey, err),
			"unable to retrieve stored keys: invalid key: failed to decrypt keys from storage: cipher: message authentication failed")
	}
	defer clear(rootKey)
	if err := m.barrier.Unseal(ctx, rootKey); err != nil {
		if errors.Is(err, barrier.ErrBadKey) {
			return m.statusLocked(c), badRequest(fmt.Errorf("%w: %w", ErrInvalidKey, err), "%s", barrier.ErrBadKey.Error())
		}
		return m.statusLocked(c), fmt.Errorf("seal: unsealing barrier: %w", err)
	}
	return m.statusLocked(c), nil
}

// ResetUnseal discards the shares of the current unseal attempt.
func (m *Manager) ResetUnseal() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.resetLocked()
}

func (m *Manager) resetLocked() {
	for _, p := range m.parts {
		clear(p)
	}
	m.parts = nil
	m.nonce = ""
}

// Seal seals the barrier (zeroing its keys) and discards unseal progress.
func (m *Manager) Seal() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.resetLocked()
	m.barrier.Seal()
}

// Status returns the seal status.
func (m *Manager) Status(ctx context.Context) (Status, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, _, err := m.loadConfig(ctx)
	if err != nil {
		return Status{}, err
	}
	return m.statusLocked(c), nil
}

// statusLocked builds the status; c is nil when uninitialized.
func (m *Manager) statusLocked(c *config) Status {
	s := Status{Type: "shamir", Sealed: m.barrier.Sealed(), Progress: len(m.parts), Nonce: m.nonce}
	if c != nil {
		s.Initialized = true
		s.T, s.N = c.SecretThreshold, c.SecretShares
	}
	return s
}

// newNonce returns a random UUID (version 4) naming an unseal attempt.
func newNonce() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("seal: generating nonce: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:]), nil
}
