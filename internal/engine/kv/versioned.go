package kv

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward/internal/logical"
	"github.com/keyward/keyward/internal/logical/framework"
)

// Storage layout of a KV v2 mount, relative to the mount's view. KV v1 data
// of a mount upgraded in place lives at the root of the same view until the
// upgrade moves it; v2 data stays under v2Prefix so the two never collide
// (a v1 key under "_kvv2/" itself would be skipped by the upgrade).
const (
	v2Prefix       = "_kvv2/"
	keyUpgrade     = v2Prefix + "upgrade"
	keySalt        = v2Prefix + "salt"
	keyConfig      = v2Prefix + "config"
	metadataPrefix = v2Prefix + "metadata/"
	versionsPrefix = v2Prefix + "versions/"

	// defaultMaxVersions is kept when neither the mount config nor the key
	// sets max_versions.
	defaultMaxVersions = 10
	// deleteVersionAfterDisabled in the mount config turns
	// delete_version_after off for every key (Vault stores -1s).
	deleteVersionAfterDisabled = -1 * time.Second

	upgradingMsg = "Upgrading from non-versioned to versioned data. This backend will be unavailable for a brief period and will resume service shortly."
)

// kvConfig is the mount-wide configuration (path "config").
type kvConfig struct {
	MaxVersions        uint32        `json:"max_versions"`
	CasRequired        bool          `json:"cas_required"`
	DeleteVersionAfter time.Duration `json:"delete_version_after"`
}

// keyMetadata is the metadata record of one secret.
type keyMetadata struct {
	Key                string                      `json:"key"`
	Versions           map[uint64]*versionMetadata `json:"versions"`
	CurrentVersion     uint64                      `json:"current_version"`
	OldestVersion      uint64                      `json:"oldest_version"`
	MaxVersions        uint32                      `json:"max_versions"`
	CasRequired        bool                        `json:"cas_required"`
	DeleteVersionAfter time.Duration               `json:"delete_version_after"`
	CustomMetadata     map[string]string           `json:"custom_metadata,omitempty"`
	CreatedTime        time.Time                   `json:"created_time"`
	UpdatedTime        time.Time                   `json:"updated_time"`
}

// versionMetadata describes one version inside keyMetadata.
type versionMetadata struct {
	CreatedTime  time.Time  `json:"created_time"`
	DeletionTime *time.Time `json:"deletion_time,omitempty"`
	Destroyed    bool       `json:"destroyed,omitempty"`
}

// versionEntry is the stored data of one version.
type versionEntry struct {
	Data        json.RawMessage `json:"data"`
	CreatedTime time.Time       `json:"created_time"`
}

// upgradeInfo records the v1 to v2 upgrade of a mount.
type upgradeInfo struct {
	StartedTime  time.Time `json:"started_time"`
	FinishedTime time.Time `json:"finished_time"`
	Done         bool      `json:"done"`
}

// numLocks is the number of lock stripes serializing per-key updates.
const numLocks = 256

// versioned is KV v2.
type versioned struct {
	*framework.Backend
	logger *slog.Logger // non-nil
	clock  logical.Clock

	// locks serialize read-modify-write of one key's metadata; a key maps
	// to locks[fnv32a(key) % numLocks].
	locks [numLocks]sync.RWMutex

	// upgrading is set while the v1 to v2 upgrade runs; handlers then
	// answer 400 as Vault does.
	upgrading atomic.Bool
	// ready is set once the salt is loaded and the upgrade has finished.
	ready   atomic.Bool
	readyMu sync.Mutex // serializes prepare
	// salt keys the HMAC naming version entries; written once under
	// readyMu before ready is set, read-only afterwards.
	salt []byte

	cfgMu sync.RWMutex
	cfg   *kvConfig // guarded by cfgMu; nil = not loaded
}

func newVersioned(conf logical.BackendConfig) (logical.Backend, error) {
	b := &versioned{logger: conf.Logger, clock: conf.Clock}
	b.Backend = &framework.Backend{
		Paths: []*framework.Path{
			b.pathConfig(),
			b.pathData(),
			b.pathMetadata(),
			b.pathDelete(),
			b.pathUndelete(),
			b.pathDestroy(),
			b.pathSubkeys(),
			// Must stay last: it matches everything.
			b.pathInvalid(),
		},
		Init: b.prepare,
	}
	if err := b.Compile(); err != nil {
		return nil, err
	}
	return b, nil
}

// guard wraps a handler: it answers 400 while the upgrade runs and makes
// sure the mount is prepared (salt loaded, upgrade done) before serving,
// in case core did not call Initialize.
func (b *versioned) guard(fn framework.OperationFunc) framework.OperationFunc {
	return func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
		if b.upgrading.Load() {
			return nil, logical.BadRequest(upgradingMsg)
		}
		if !b.ready.Load() {
			if err := b.prepare(ctx, req.Storage); err != nil {
				return nil, err
			}
		}
		return fn(ctx, req, d)
	}
}

// prepare loads (or creates) the salt and runs the v1 to v2 upgrade when
// it has not completed yet. It is the backend's Initialize: core calls it
// after mounting and after every unseal. The upgrade is synchronous.
func (b *versioned) prepare(ctx context.Context, s logical.Storage) error {
	b.readyMu.Lock()
	defer b.readyMu.Unlock()
	b.cfgMu.Lock()
	b.cfg = nil
	b.cfgMu.Unlock()
	if b.ready.Load() {
		return nil
	}
	if b.salt == nil {
		salt, err := loadSalt(ctx, s)
		if err != nil {
			return err
		}
		b.salt = salt
	}
	if err := b.upgrade(ctx, s); err != nil {
		return err
	}
	b.ready.Store(true)
	return nil
}

func loadSalt(ctx context.Context, s logical.Storage) ([]byte, error) {
	e, err := s.Get(ctx, keySalt)
	if err == nil {
		if len(e.Value) != 32 {
			return nil, fmt.Errorf("kv: stored salt has %d bytes, want 32", len(e.Value))
		}
		return e.Value, nil
	}
	if !errors.Is(err, logical.ErrNotFound) {
		return nil, fmt.Errorf("kv: load salt: %w", err)
	}
	salt := make([]byte, 32)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("kv: generate salt: %w", err)
	}
	if err := s.Put(ctx, &logical.StorageEntry{Key: keySalt, Value: salt}); err != nil {
		return nil, fmt.Errorf("kv: store salt: %w", err)
	}
	return salt, nil
}

// upgrade turns every KV v1 entry of the view into version 1 of a v2
// secret with the same data, then deletes the v1 entry, as Vault's upgrade
// does. It records completion so it runs once; an interrupted upgrade is
// resumed (re-upgrading a key is idempotent).
func (b *versioned) upgrade(ctx context.Context, s logical.Storage) error {
	var info upgradeInfo
	e, err := s.Get(ctx, keyUpgrade)
	switch {
	case err == nil:
		if uerr := json.Unmarshal(e.Value, &info); uerr != nil {
			return fmt.Errorf("kv: decode upgrade record: %w", uerr)
		}
		if info.Done {
			return nil
		}
	case errors.Is(err, logical.ErrNotFound):
	default:
		return fmt.Errorf("kv: read upgrade record: %w", err)
	}

	b.upgrading.Store(true)
	defer b.upgrading.Store(false)
	if info.StartedTime.IsZero() {
		info.StartedTime = b.clock.Now().UTC()
	}
	if err = putJSON(ctx, s, keyUpgrade, &info); err != nil {
		return err
	}
	keys, err := collectV1Keys(ctx, s, "")
	if err != nil {
		return fmt.Errorf("kv: collect keys to upgrade: %w", err)
	}
	if len(keys) > 0 {
		b.logger.Info("upgrading kv v1 data to v2", "keys", len(keys))
	}
	for _, k := range keys {
		if err := b.upgradeKey(ctx, s, k); err != nil {
			return fmt.Errorf("kv: upgrade key: %w", err)
		}
	}
	info.Done = true
	info.FinishedTime = b.clock.Now().UTC()
	return putJSON(ctx, s, keyUpgrade, &info)
}

func collectV1Keys(ctx context.Context, s logical.Storage, prefix string) ([]string, error) {
	children, err := s.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, c := range children {
		full := prefix + c
		if full == v2Prefix {
			continue
		}
		if strings.HasSuffix(c, "/") {
			sub, err := collectV1Keys(ctx, s, full)
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
			continue
		}
		out = append(out, full)
	}
	return out, nil
}

func (b *versioned) upgradeKey(ctx context.Context, s logical.Storage, key string) error {
	l := b.lockFor(key)
	l.Lock()
	defer l.Unlock()
	e, err := s.Get(ctx, key)
	if errors.Is(err, logical.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !json.Valid(e.Value) {
		// v1 only ever stores JSON objects; leave anything else in place.
		b.logger.Warn("kv upgrade: skipping entry that is not JSON")
		return nil
	}
	now := b.clock.Now().UTC()
	meta := newKeyMetadata(key)
	if err := b.putVersion(ctx, s, key, 1, &versionEntry{Data: e.Value, CreatedTime: now}); err != nil {
		return err
	}
	// As Vault: the upgraded key is added with a window of one version.
	meta.addVersion(now, nil, 1)
	if err := putMeta(ctx, s, meta); err != nil {
		return err
	}
	return s.Delete(ctx, key)
}

// lockFor returns the lock stripe of key.
func (b *versioned) lockFor(key string) *sync.RWMutex {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return &b.locks[h%numLocks]
}

// config returns a copy of the mount configuration.
func (b *versioned) config(ctx context.Context, s logical.Storage) (kvConfig, error) {
	b.cfgMu.RLock()
	if b.cfg != nil {
		c := *b.cfg
		b.cfgMu.RUnlock()
		return c, nil
	}
	b.cfgMu.RUnlock()
	b.cfgMu.Lock()
	defer b.cfgMu.Unlock()
	if b.cfg != nil {
		return *b.cfg, nil
	}
	var c kvConfig
	if err := getJSON(ctx, s, keyConfig, &c); err != nil && !errors.Is(err, logical.ErrNotFound) {
		return kvConfig{}, err
	}
	b.cfg = &c
	return c, nil
}

// versionDir is the storage folder holding the versions of key. The
// secret's path is hidden behind a salted HMAC so version entries do not
// reveal it.
func (b *versioned) versionDir(key string) string {
	m := hmac.New(sha256.New, b.salt)
	m.Write([]byte(key))
	return versionsPrefix + hex.EncodeToString(m.Sum(nil)) + "/"
}

// versionKey names the storage entry of one version of key.
func (b *versioned) versionKey(key string, version uint64) string {
	return b.versionDir(key) + strconv.FormatUint(version, 10)
}

func (b *versioned) putVersion(ctx context.Context, s logical.Storage, key string, version uint64, v *versionEntry) error {
	return putJSON(ctx, s, b.versionKey(key, version), v)
}

// getVersion returns the stored data of a version or logical.ErrNotFound.
func (b *versioned) getVersion(ctx context.Context, s logical.Storage, key string, version uint64) (*versionEntry, error) {
	var v versionEntry
	if err := getJSON(ctx, s, b.versionKey(key, version), &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// versionData loads and decodes the data of a version.
func (b *versioned) versionData(ctx context.Context, s logical.Storage, key string, version uint64) (map[string]any, error) {
	v, err := b.getVersion(ctx, s, key, version)
	if errors.Is(err, logical.ErrNotFound) {
		return nil, fmt.Errorf("kv: could not find version data: %w", err)
	}
	if err != nil {
		return nil, err
	}
	return decodeObject(v.Data)
}

// pruneVersions deletes the stored data of version upTo and of every older
// version still present, newest first, stopping at the first missing one
// (as Vault's cleanup does, so a failed cleanup is finished next time).
func (b *versioned) pruneVersions(ctx context.Context, s logical.Storage, key string, upTo uint64) error {
	if upTo == 0 {
		return nil
	}
	var keys []string
	for v := upTo; v > 0; v-- {
		k := b.versionKey(key, v)
		if _, err := s.Get(ctx, k); errors.Is(err, logical.ErrNotFound) {
			break
		} else if err != nil {
			return err
		}
		keys = append(keys, k)
	}
	// Oldest first, so an interrupted cleanup leaves a contiguous tail.
	for i := len(keys) - 1; i >= 0; i-- {
		if err := s.Delete(ctx, keys[i]); err != nil {
			return err
		}
	}
	return nil
}

func newKeyMetadata(key string) *keyMetadata {
	return &keyMetadata{Key: key, Versions: map[uint64]*versionMetadata{}}
}

// getMeta returns the metadata of key or logical.ErrNotFound.
func getMeta(ctx context.Context, s logical.Storage, key string) (*keyMetadata, error) {
	if key == "" {
		return nil, logical.ErrNotFound
	}
	var m keyMetadata
	if err := getJSON(ctx, s, metadataPrefix+key, &m); err != nil {
		return nil, err
	}
	if m.Versions == nil {
		m.Versions = map[uint64]*versionMetadata{}
	}
	return &m, nil
}

func putMeta(ctx context.Context, s logical.Storage, m *keyMetadata) error {
	return putJSON(ctx, s, metadataPrefix+m.Key, m)
}

// addVersion appends a version and slides the window of kept versions. It
// returns the new version's metadata and the newest version whose data
// must now be deleted (0 for none). The window is the larger of the key's
// and the mount's max_versions, or 10 when both are 0, as in Vault.
func (m *keyMetadata) addVersion(created time.Time, deletion *time.Time, cfgMaxVersions uint32) (*versionMetadata, uint64) {
	vm := &versionMetadata{CreatedTime: created, DeletionTime: deletion}
	m.CurrentVersion++
	m.Versions[m.CurrentVersion] = vm
	m.UpdatedTime = created
	if m.CreatedTime.IsZero() {
		m.CreatedTime = created
	}
	maxVersions := uint64(max(m.MaxVersions, cfgMaxVersions))
	if maxVersions == 0 {
		maxVersions = defaultMaxVersions
	}
	if m.CurrentVersion-m.OldestVersion < maxVersions {
		return vm, 0
	}
	toDelete := m.CurrentVersion - maxVersions
	for v := m.OldestVersion; v <= toDelete; v++ {
		delete(m.Versions, v)
	}
	m.OldestVersion = toDelete + 1
	return vm, toDelete
}

// deletionTime computes a new version's automatic deletion time from the
// smaller non-zero delete_version_after of mount and key.
func deletionTime(created time.Time, cfg kvConfig, meta *keyMetadata) *time.Time {
	if cfg.DeleteVersionAfter == deleteVersionAfterDisabled {
		return nil
	}
	mount, key := cfg.DeleteVersionAfter, meta.DeleteVersionAfter
	if mount < 0 {
		mount = 0
	}
	var d time.Duration
	switch {
	case mount == 0 && key == 0:
		return nil
	case key == 0:
		d = mount
	case mount == 0:
		d = key
	default:
		d = min(mount, key)
	}
	t := created.Add(d)
	return &t
}

// deleted reports whether vm is soft-deleted at now.
func (vm *versionMetadata) deleted(now time.Time) bool {
	return vm.DeletionTime != nil && !vm.DeletionTime.After(now)
}

func getJSON(ctx context.Context, s logical.Storage, key string, v any) error {
	e, err := s.Get(ctx, key)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(e.Value, v); err != nil {
		return fmt.Errorf("kv: decode stored entry: %w", err)
	}
	return nil
}

func putJSON(ctx context.Context, s logical.Storage, key string, v any) error {
	buf, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("kv: encode entry: %w", err)
	}
	return s.Put(ctx, &logical.StorageEntry{Key: key, Value: buf})
}

// formatTime renders a timestamp as Vault does (RFC 3339 with nanoseconds,
// UTC), or "" for none.
func formatTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// versionInfo is the per-version metadata Vault returns from data reads
// and writes.
func versionInfo(version uint64, vm *versionMetadata, custom map[string]string) map[string]any {
	return map[string]any{
		"version":         version,
		"created_time":    formatTime(&vm.CreatedTime),
		"deletion_time":   formatTime(vm.DeletionTime),
		"destroyed":       vm.Destroyed,
		"custom_metadata": custom,
	}
}
