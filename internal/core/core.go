// Package core orchestrates the secrets server: seal state, the mount
// router, and the request pipeline (sealed? → authenticate → ACL → audit →
// dispatch → token/lease bookkeeping → audit). Each subsystem lives in its
// own package (barrier, seal, token, lease, policy, audit); core only wires
// them together. Everything that exists only while unsealed is held in one
// unsealedState value that is built on unseal and dropped on seal.
package core

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/keyward/keyward/internal/audit"
	"github.com/keyward/keyward/internal/barrier"
	"github.com/keyward/keyward/internal/lease"
	"github.com/keyward/keyward/internal/logical"
	"github.com/keyward/keyward/internal/policy"
	"github.com/keyward/keyward/internal/seal"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/token"
)

// Version is the server version reported by seal-status and health.
const Version = "1.17.0+keyward"

// ErrSealed is returned for every request while the server is sealed.
var ErrSealed = barrier.ErrSealed

// ErrNotInitialized is returned when unsealing an uninitialized server.
var ErrNotInitialized = errors.New("Vault is not initialized") //nolint:staticcheck // Vault's wire message

// Registry lists the secrets engines and auth methods that can be mounted,
// by type name. It is built in internal/builtin.
type Registry struct {
	Engines map[string]logical.Factory
	Auth    map[string]logical.Factory
}

// Config configures a Core.
type Config struct {
	// Physical is the untrusted storage under the barrier. Required.
	Physical storage.Backend
	// StorageType is reported by seal-status ("file", "inmem").
	StorageType string
	// Registry lists mountable types. Required.
	Registry *Registry
	// Logger; nil discards.
	Logger *slog.Logger
	// Clock; nil means real time.
	Clock logical.Clock
	// DefaultLeaseTTL and MaxLeaseTTL are the system-wide TTLs (768h when 0).
	DefaultLeaseTTL time.Duration
	MaxLeaseTTL     time.Duration
	// ClusterName is reported by health and seal-status.
	ClusterName string
}

// Core is the server. It is safe for concurrent use.
type Core struct {
	cfg       Config
	logger    *slog.Logger // non-nil
	clock     logical.Clock
	barrier   *barrier.Barrier
	seal      *seal.Manager
	clusterID string

	// mu guards state. Requests hold it for reading while they run, so
	// Seal (which takes it for writing) waits for in-flight requests.
	mu    sync.RWMutex
	state *unsealedState // nil while sealed; guarded by mu
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// New builds a sealed Core.
func New(cfg Config) (*Core, error) {
	if cfg.Physical == nil {
		return nil, errors.New("core: Physical storage is required")
	}
	if cfg.Registry == nil {
		return nil, errors.New("core: Registry is required")
	}
	if cfg.DefaultLeaseTTL == 0 {
		cfg.DefaultLeaseTTL = 768 * time.Hour
	}
	if cfg.MaxLeaseTTL == 0 {
		cfg.MaxLeaseTTL = 768 * time.Hour
	}
	if cfg.ClusterName == "" {
		cfg.ClusterName = "vault-cluster-" + randomHex(4)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	clock := cfg.Clock
	if clock == nil {
		clock = realClock{}
	}
	b := barrier.New(cfg.Physical)
	return &Core{
		cfg:       cfg,
		logger:    logger,
		clock:     clock,
		barrier:   b,
		seal:      seal.New(cfg.Physical, b),
		clusterID: newUUID(),
	}, nil
}

// Close seals the core and releases its resources.
func (c *Core) Close(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sealLocked(ctx)
}

// InitRequest is the body of PUT sys/init.
type InitRequest struct {
	SecretShares    int
	SecretThreshold int
}

// InitResult is what init returns: the unseal key shares and root token.
type InitResult struct {
	Keys      [][]byte
	RootToken string
}

// Initialized reports whether the server has been initialized.
func (c *Core) Initialized(ctx context.Context) (bool, error) {
	return c.seal.Initialized(ctx)
}

// Initialize creates the key hierarchy and the root token. The server is
// sealed afterwards, as Vault's is.
func (c *Core) Initialize(ctx context.Context, req InitRequest) (*InitResult, error) {
	res, err := c.initialize(ctx, req, "")
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.sealLocked(ctx)
	c.mu.Unlock()
	return res, nil
}

func (c *Core) initialize(ctx context.Context, req InitRequest, rootID string) (*InitResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	res, err := c.seal.Initialize(ctx, seal.InitRequest{SecretShares: req.SecretShares, SecretThreshold: req.SecretThreshold})
	if err != nil {
		return nil, err
	}
	// The barrier is unsealed now: set up the stores and mint the root token.
	if err = c.postUnsealLocked(ctx); err != nil {
		c.sealLocked(ctx)
		return nil, fmt.Errorf("post-init setup: %w", err)
	}
	root, err := c.state.tokens.CreateRoot(ctx, rootID)
	if err != nil {
		c.sealLocked(ctx)
		return nil, fmt.Errorf("creating root token: %w", err)
	}
	return &InitResult{Keys: res.Keys, RootToken: root.ID}, nil
}

// DevResult is what DevInitialize returns.
type DevResult struct {
	UnsealKey []byte
	RootToken string
}

// DevInitialize initializes with one key share, keeps the server unsealed,
// uses rootTokenID as the root token when set, and mounts KV v2 at secret/
// like `vault server -dev`.
func (c *Core) DevInitialize(ctx context.Context, rootTokenID string) (*DevResult, error) {
	res, err := c.initialize(ctx, InitRequest{SecretShares: 1, SecretThreshold: 1}, rootTokenID)
	if err != nil {
		return nil, err
	}
	if _, ok := c.cfg.Registry.Engines["kv"]; ok {
		err := c.Mount(ctx, &MountEntry{Table: tableMounts, Path: "secret/", Type: "kv", Description: "key/value secret storage", Options: map[string]string{"version": "2"}})
		if err != nil {
			return nil, fmt.Errorf("mounting secret/: %w", err)
		}
	}
	return &DevResult{UnsealKey: res.Keys[0], RootToken: res.RootToken}, nil
}

// SealStatus is the body of sys/seal-status and sys/unseal.
type SealStatus struct {
	Type         string `json:"type"`
	Initialized  bool   `json:"initialized"`
	Sealed       bool   `json:"sealed"`
	T            int    `json:"t"`
	N            int    `json:"n"`
	Progress     int    `json:"progress"`
	Nonce        string `json:"nonce"`
	Version      string `json:"version"`
	BuildDate    string `json:"build_date"`
	Migration    bool   `json:"migration"`
	ClusterName  string `json:"cluster_name,omitempty"`
	ClusterID    string `json:"cluster_id,omitempty"`
	RecoverySeal bool   `json:"recovery_seal"`
	StorageType  string `json:"storage_type"`
}

// SealStatus reports the seal state.
func (c *Core) SealStatus(ctx context.Context) (*SealStatus, error) {
	st, err := c.seal.Status(ctx)
	if err != nil {
		return nil, err
	}
	out := &SealStatus{
		Type:        st.Type,
		Initialized: st.Initialized,
		Sealed:      st.Sealed,
		T:           st.T,
		N:           st.N,
		Progress:    st.Progress,
		Nonce:       st.Nonce,
		Version:     Version,
		BuildDate:   buildDate,
		StorageType: c.cfg.StorageType,
	}
	if !st.Sealed {
		out.ClusterName = c.cfg.ClusterName
		out.ClusterID = c.clusterID
	}
	return out, nil
}

const buildDate = "2026-11-27T00:00:00Z"

// Unseal submits one key share; at the threshold the server unseals.
func (c *Core) Unseal(ctx context.Context, key []byte) (*SealStatus, error) {
	c.mu.Lock()
	if c.state == nil {
		if _, err := c.seal.Unseal(ctx, key); err != nil {
			c.mu.Unlock()
			return nil, err
		}
		if !c.barrier.Sealed() {
			if err := c.postUnsealLocked(ctx); err != nil {
				c.sealLocked(ctx)
				c.mu.Unlock()
				return nil, fmt.Errorf("unseal setup failed: %w", err)
			}
		}
	}
	c.mu.Unlock()
	return c.SealStatus(ctx)
}

// ResetUnseal discards the key shares submitted so far.
func (c *Core) ResetUnseal(ctx context.Context) (*SealStatus, error) {
	c.mu.RLock()
	unsealed := c.state != nil
	c.mu.RUnlock()
	if unsealed {
		return nil, logical.BadRequest("vault is unsealed")
	}
	c.seal.ResetUnseal()
	return c.SealStatus(ctx)
}

// Sealed reports whether the server is sealed.
func (c *Core) Sealed() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.state == nil
}

// Seal seals the server on behalf of the holder of tok, who needs update
// and sudo on sys/seal.
func (c *Core) Seal(ctx context.Context, tok string, remoteAddr string) error {
	req := &logical.Request{
		Operation:   logical.UpdateOperation,
		Path:        "sys/seal",
		ClientToken: tok,
		Connection:  &logical.Connection{RemoteAddr: remoteAddr},
	}
	c.mu.RLock()
	st := c.state
	if st == nil {
		c.mu.RUnlock()
		return ErrSealed
	}
	_, err := c.authorize(ctx, st, req, true)
	c.mu.RUnlock()
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.sealLocked(ctx)
	c.mu.Unlock()
	c.logger.Info("sealed by request")
	return nil
}

// sealLocked drops all unsealed state. Caller holds mu for writing.
func (c *Core) sealLocked(ctx context.Context) {
	if c.state != nil {
		c.state.teardown(ctx)
		c.state = nil
	}
	c.seal.Seal()
}

// postUnsealLocked builds the unsealed state. Caller holds mu for writing.
func (c *Core) postUnsealLocked(ctx context.Context) error {
	st, err := c.buildState(ctx)
	if err != nil {
		return err
	}
	c.state = st
	return nil
}

// unsealedState is everything that exists only while unsealed.
type unsealedState struct {
	router   *router
	tokens   *token.Store
	leases   *lease.Manager
	policies *policy.Store
	audit    *audit.Broker
	// tableMu serializes changes to the mount tables.
	tableMu sync.Mutex
	// cancel stops the background loops (token and lease tidy).
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (s *unsealedState) teardown(ctx context.Context) {
	s.cancel()
	s.wg.Wait()
	s.router.cleanup(ctx)
	s.audit.Teardown()
}

// randomHex returns n random bytes in hex. crypto/rand.Read never returns
// an error (Go 1.24+: it aborts the process instead).
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
