// Package audit writes Vault-compatible audit logs: one JSON line per
// request and per response, with tokens, accessors and every string of the
// request and response data replaced by "hmac-sha256:<hex>" computed with a
// per-device salt. A Broker owns the enabled devices (file, stdout,
// discard), persists the audit table and salts through a barrier-encrypted
// logical.Storage, and serves the sys/audit, sys/audit-hash endpoints. The
// audit log is separate from the operational slog log, which never
// receives tokens or secret values.
package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/keyward/keyward/internal/logical"
)

// ErrAuditFailed is returned by LogRequest and LogResponse when every
// enabled device failed; core must then fail the request (500).
var ErrAuditFailed = errors.New("audit: no audit device succeeded")

// Storage keys, relative to BrokerConfig.Storage.
const (
	tableKey   = "table"
	saltPrefix = "salt/"
)

// BrokerConfig configures a Broker.
type BrokerConfig struct {
	// Storage holds the audit table and the per-device salts. It must be
	// barrier-encrypted (salts are HMAC keys). Required.
	Storage logical.Storage
	// Logger receives device failures (never tokens or data). Nil
	// discards.
	Logger *slog.Logger
	// Clock stamps entries. Nil means the real clock.
	Clock logical.Clock
	// Stdout is where "file_path=stdout" devices write. Nil means
	// os.Stdout.
	Stdout io.Writer
}

// tableEntry is one enabled device as persisted.
type tableEntry struct {
	Path        string            `json:"path"`
	Type        string            `json:"type"`
	Description string            `json:"description"`
	Options     map[string]string `json:"options"`
	Local       bool              `json:"local"`
	UUID        string            `json:"uuid"`
	Accessor    string            `json:"accessor"`
}

// device is one enabled audit device.
type device struct {
	entry  tableEntry
	hasher hasher
	opts   formatOptions
	prefix string
	sink   sink
}

// Broker fans audit entries out to the enabled devices. It is safe for
// concurrent use.
type Broker struct {
	storage logical.Storage
	logger  *slog.Logger
	clock   logical.Clock
	stdout  io.Writer

	// mu guards devices and serialises table changes. Logging holds it for
	// reading; each sink has its own lock for writes.
	mu      sync.RWMutex
	devices map[string]*device // by path with trailing "/"; guarded by mu
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// NewBroker returns a Broker with no devices; call Setup after unseal.
func NewBroker(cfg BrokerConfig) *Broker {
	b := &Broker{
		storage: cfg.Storage,
		logger:  cfg.Logger,
		clock:   cfg.Clock,
		stdout:  cfg.Stdout,
		devices: map[string]*device{},
	}
	if b.logger == nil {
		b.logger = slog.New(slog.DiscardHandler)
	}
	if b.clock == nil {
		b.clock = realClock{}
	}
	if b.stdout == nil {
		b.stdout = os.Stdout
	}
	return b
}

// Setup loads the audit table and opens its devices. A device that cannot
// be opened stays enabled but fails every write (so requests fail when it
// is the only device), and the failure is logged.
func (b *Broker) Setup(ctx context.Context) error {
	table, err := b.loadTable(ctx)
	if err != nil {
		return err
	}
	devs := make(map[string]*device, len(table))
	for _, e := range table {
		salt, err := b.loadSalt(ctx, e.UUID)
		if err != nil {
			closeAll(devs)
			return err
		}
		d, err := b.newDevice(e, salt)
		if err != nil {
			b.logger.Error("audit device could not be opened", "path", e.Path, "type", e.Type, "error", err)
			d = &device{entry: e, hasher: hasher{salt: salt}, sink: brokenSink{err: err}}
		}
		devs[e.Path] = d
	}
	b.mu.Lock()
	old := b.devices
	b.devices = devs
	b.mu.Unlock()
	closeAll(old)
	return nil
}

// Teardown closes every device. The broker logs nothing until the next
// Setup. It is safe on a nil Broker.
func (b *Broker) Teardown() {
	if b == nil {
		return
	}
	b.mu.Lock()
	old := b.devices
	b.devices = map[string]*device{}
	b.mu.Unlock()
	closeAll(old)
}

// Reopen closes and reopens every file device (for log rotation on
// SIGHUP). It returns the errors of the devices that failed.
func (b *Broker) Reopen() error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	var errs []error
	for p, d := range b.devices {
		if err := d.sink.reopen(); err != nil {
			errs = append(errs, fmt.Errorf("audit device %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

func closeAll(devs map[string]*device) {
	for _, d := range devs {
		_ = d.sink.close()
	}
}

// Enabled reports whether at least one device is enabled.
func (b *Broker) Enabled() bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.devices) > 0
}

// Input is what one audit entry describes.
type Input struct {
	// Caller is the authenticated caller's token information, or nil for
	// unauthenticated requests.
	Caller *logical.Auth
	// Request is the request. Required. Path is relative to MountPoint
	// (or the full path when MountPoint is empty).
	Request *logical.Request
	// Response may be nil.
	Response *logical.Response
	// Err is the error returned to the client, or nil.
	Err error
}

// LogRequest writes a "request" entry to every device. It returns an error
// wrapping ErrAuditFailed only when devices are enabled and all of them
// failed; with no devices it returns nil.
func (b *Broker) LogRequest(ctx context.Context, in *Input) error {
	return b.log(ctx, in, false)
}

// LogResponse writes a "response" entry, with the same failure rule as
// LogRequest.
func (b *Broker) LogResponse(ctx context.Context, in *Input) error {
	return b.log(ctx, in, true)
}

func (b *Broker) log(_ context.Context, in *Input, resp bool) error {
	if in == nil || in.Request == nil {
		return errors.New("audit: input without a request")
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if len(b.devices) == 0 {
		return nil
	}
	now := b.clock.Now()
	var errs []error
	ok := 0
	// ctx is deliberately not consulted: a client that went away must
	// still leave its audit record.
	for _, d := range b.devices {
		line, err := d.hasher.format(now, in, resp, d.opts)
		if err == nil {
			buf := make([]byte, 0, len(d.prefix)+len(line)+1)
			buf = append(buf, d.prefix...)
			buf = append(buf, line...)
			buf = append(buf, '\n')
			err = d.sink.write(buf)
		}
		if err != nil {
			b.logger.Error("audit device failed to log", "path", d.entry.Path, "type", d.entry.Type, "error", err)
			errs = append(errs, fmt.Errorf("%s: %w", d.entry.Path, err))
			continue
		}
		ok++
	}
	if ok == 0 {
		return fmt.Errorf("%w: %w", ErrAuditFailed, errors.Join(errs...))
	}
	return nil
}

// Hash returns the value the device at path writes for input
// ("hmac-sha256:<hex>"), as sys/audit-hash does.
func (b *Broker) Hash(path, input string) (string, error) {
	path = normalizePath(path)
	b.mu.RLock()
	d, ok := b.devices[path]
	b.mu.RUnlock()
	if !ok {
		return "", logical.BadRequest("unknown audit backend %q", path)
	}
	return d.hasher.hash(input), nil
}

func normalizePath(p string) string {
	p = strings.TrimPrefix(p, "/")
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p
}

// EnableRequest describes a device to enable.
type EnableRequest struct {
	Path        string
	Type        string
	Description string
	Options     map[string]string
	Local       bool
}

// Enable enables a device. Validation errors are 400 *logical.CodedError.
func (b *Broker) Enable(ctx context.Context, r EnableRequest) error {
	path := normalizePath(r.Path)
	if path == "/" {
		return logical.BadRequest("backend path must be specified")
	}
	if r.Type == "" {
		return logical.BadRequest("backend type must be specified")
	}
	opts := map[string]string{}
	for k, v := range r.Options {
		opts[k] = v
	}
	e := tableEntry{
		Path:        path,
		Type:        r.Type,
		Description: r.Description,
		Options:     opts,
		Local:       r.Local,
		UUID:        randomHex(16),
		Accessor:    "audit_" + r.Type + "_" + randomHex(4),
	}
	salt := make([]byte, 32)
	if _, err := rand.Read(salt); err != nil {
		return fmt.Errorf("audit: salt: %w", err)
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	for p := range b.devices {
		if strings.HasPrefix(p, path) || strings.HasPrefix(path, p) {
			return logical.BadRequest("path already in use")
		}
	}
	d, err := b.newDevice(e, salt)
	if err != nil {
		return err
	}
	if err := b.storage.Put(ctx, &logical.StorageEntry{Key: saltPrefix + e.UUID, Value: []byte(hex.EncodeToString(salt))}); err != nil {
		_ = d.sink.close()
		return fmt.Errorf("audit: store salt: %w", err)
	}
	next := b.tableLocked()
	next = append(next, e)
	if err := b.saveTable(ctx, next); err != nil {
		_ = d.sink.close()
		_ = b.storage.Delete(ctx, saltPrefix+e.UUID)
		return err
	}
	b.devices[path] = d
	b.logger.Info("enabled audit device", "path", path, "type", e.Type)
	return nil
}

// Disable disables the device at path. Disabling a missing device is not
// an error. Its salt is destroyed, so old hashes can no longer be
// reproduced.
func (b *Broker) Disable(ctx context.Context, path string) error {
	path = normalizePath(path)
	b.mu.Lock()
	defer b.mu.Unlock()
	d, ok := b.devices[path]
	if !ok {
		return nil
	}
	next := slices.DeleteFunc(b.tableLocked(), func(e tableEntry) bool { return e.Path == path })
	if err := b.saveTable(ctx, next); err != nil {
		return err
	}
	delete(b.devices, path)
	_ = d.sink.close()
	if err := b.storage.Delete(ctx, saltPrefix+d.entry.UUID); err != nil {
		b.logger.Warn("audit salt could not be deleted", "path", path, "error", err)
	}
	b.logger.Info("disabled audit device", "path", path, "type", d.entry.Type)
	return nil
}

// tableLocked returns the current table sorted by path. Caller holds mu.
func (b *Broker) tableLocked() []tableEntry {
	out := make([]tableEntry, 0, len(b.devices))
	for _, d := range b.devices {
		out = append(out, d.entry)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

func (b *Broker) loadTable(ctx context.Context) ([]tableEntry, error) {
	e, err := b.storage.Get(ctx, tableKey)
	if errors.Is(err, logical.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: read table: %w", err)
	}
	var t []tableEntry
	if err := json.Unmarshal(e.Value, &t); err != nil {
		return nil, fmt.Errorf("audit: decode table: %w", err)
	}
	return t, nil
}

func (b *Broker) saveTable(ctx context.Context, t []tableEntry) error {
	if t == nil {
		t = []tableEntry{}
	}
	v, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("audit: encode table: %w", err)
	}
	if err := b.storage.Put(ctx, &logical.StorageEntry{Key: tableKey, Value: v}); err != nil {
		return fmt.Errorf("audit: write table: %w", err)
	}
	return nil
}

func (b *Broker) loadSalt(ctx context.Context, uuid string) ([]byte, error) {
	e, err := b.storage.Get(ctx, saltPrefix+uuid)
	if err != nil {
		return nil, fmt.Errorf("audit: read salt: %w", err)
	}
	salt, err := hex.DecodeString(string(e.Value))
	if err != nil {
		return nil, fmt.Errorf("audit: decode salt: %w", err)
	}
	return salt, nil
}

// newDevice builds a device from its table entry. Option errors are 400.
func (b *Broker) newDevice(e tableEntry, salt []byte) (*device, error) {
	d := &device{entry: e, hasher: hasher{salt: salt}, prefix: e.Options["prefix"]}
	var err error
	if d.opts.hmacAccessor, err = parseBoolOption(e.Options, "hmac_accessor", true); err != nil {
		return nil, logical.BadRequest("%v", err)
	}
	if d.opts.logRaw, err = parseBoolOption(e.Options, "log_raw", false); err != nil {
		return nil, logical.BadRequest("%v", err)
	}
	if d.opts.elideListResponses, err = parseBoolOption(e.Options, "elide_list_responses", false); err != nil {
		return nil, logical.BadRequest("%v", err)
	}
	if f := e.Options["format"]; f != "" && f != "json" {
		return nil, logical.BadRequest("unknown format type %q", f)
	}
	switch e.Type {
	case "file":
		path := e.Options["file_path"]
		if path == "" {
			path = e.Options["path"] // Vault's legacy option name
		}
		switch path {
		case "":
			return nil, logical.BadRequest("file_path is required")
		case "stdout":
			d.sink = &writerSink{w: b.stdout}
		case "discard":
			d.sink = discardSink{}
		default:
			mode, err := parseMode(e.Options["mode"])
			if err != nil {
				return nil, logical.BadRequest("%v", err)
			}
			s, err := newFileSink(path, mode)
			if err != nil {
				return nil, logical.BadRequest("sanity check failed; unable to open %q for writing: %v", path, err)
			}
			d.sink = s
		}
	default:
		return nil, logical.BadRequest("unknown backend type: %q", e.Type)
	}
	return d, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
