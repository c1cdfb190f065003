// Package logical is the contract between the request router (internal/core)
// and everything mounted under it: secrets engines, auth methods and the
// built-in system and token backends. It knows nothing of HTTP; the
// transport (internal/httpapi) builds a Request from the wire and renders a
// Response or error back.
package logical

import (
	"context"
	"log/slog"
	"time"

	"github.com/keyward/keyward/internal/storage"
)

// Operation is what a request does to its path. Its values are the
// capability names of ACL policies where one exists.
type Operation string

// The operations. The HTTP layer produces Read, Update, Patch, Delete and
// List; core turns Update into Create when the backend reports that the
// path does not exist yet. Renew is produced by core for auth renewals.
const (
	ReadOperation   Operation = "read"
	CreateOperation Operation = "create"
	UpdateOperation Operation = "update"
	PatchOperation  Operation = "patch"
	DeleteOperation Operation = "delete"
	ListOperation   Operation = "list"
	RenewOperation  Operation = "renew"
)

// StorageEntry is one stored value as an engine sees it (already decrypted).
type StorageEntry = storage.Entry

// Storage is the storage an engine receives: barrier-encrypted and scoped to
// the engine's own prefix, so keys are relative to the mount. It has the
// storage.Backend method set and error contract (ErrNotFound on a miss).
type Storage = storage.Backend

// ErrNotFound is storage.ErrNotFound, re-exported so engines need only
// import logical.
var ErrNotFound = storage.ErrNotFound

// Connection describes the network peer of a request. Auth methods may use
// it (for example to bind tokens to CIDRs); it is set by the transport and
// cannot be influenced by request headers.
type Connection struct {
	// RemoteAddr is the peer's IP address without port.
	RemoteAddr string
	// TLS reports whether the request arrived over TLS.
	TLS bool
}

// Request is one operation routed to a backend.
type Request struct {
	// ID is a random request identifier, also written to the audit log.
	ID string
	// Operation is what to do.
	Operation Operation
	// Path is relative to the mount point (no leading slash).
	Path string
	// MountPoint is the mount's path with a trailing slash, e.g. "aks/" or
	// "auth/azure/".
	MountPoint string
	// MountType is the engine or auth method type, e.g. "kv".
	MountType string
	// MountAccessor identifies the mount, e.g. "kv_1a2b3c4d".
	MountAccessor string
	// Data is the decoded request body or query parameters. May be nil.
	Data map[string]any
	// Headers holds a few request headers a backend may need (for example
	// Content-Type for PATCH). Keys are canonical MIME header names.
	Headers map[string][]string

	// ClientToken is the caller's token. Only the token backend reads it;
	// engines must not store or log it.
	ClientToken string
	// ClientTokenAccessor, DisplayName, EntityID and Policies describe the
	// caller once core has authenticated the request.
	ClientTokenAccessor string
	DisplayName         string
	EntityID            string
	Policies            []string

	// Connection is the network peer. Never nil on a routed request.
	Connection *Connection
	// Storage is the mount's private, encrypted storage view.
	Storage Storage

	// Auth is set on a RenewOperation of a login: the auth being renewed,
	// as stored when it was issued.
	Auth *Auth
}

// Get returns Data[key] (nil when Data is nil or key is absent).
func (r *Request) Get(key string) any {
	if r.Data == nil {
		return nil
	}
	return r.Data[key]
}

// Response is a backend's answer. A nil *Response with a nil error renders
// as 204 No Content.
type Response struct {
	// Data is the "data" member of the response envelope.
	Data map[string]any
	// Secret, when set, makes the response carry lease information.
	Secret *Secret
	// Auth, when set by a login path, asks core to create a token.
	Auth *Auth
	// Warnings become the "warnings" member.
	Warnings []string
	// StatusCode overrides the HTTP status of a successful envelope (for
	// example 404 with metadata for a deleted KV v2 version). Zero means the
	// default (200, or 204 when there is nothing to render).
	StatusCode int
}

// LeaseOptions are the lease settings of a secret or auth.
type LeaseOptions struct {
	// TTL is the lease duration; zero means the mount's default.
	TTL time.Duration
	// MaxTTL caps TTL and renewals; zero means the mount's maximum.
	MaxTTL time.Duration
	// Renewable allows renewal.
	Renewable bool
	// IssueTime is set by core when the lease is created.
	IssueTime time.Time
}

// Secret carries lease information of a read.
type Secret struct {
	LeaseOptions
	// LeaseID is assigned by core when it registers a lease.
	LeaseID string
	// NoLease reports the duration (lease_duration) without registering a
	// revocable lease, as KV does.
	NoLease bool
	// InternalData is stored with the lease and returned on renew/revoke;
	// never sent to the client.
	InternalData map[string]any
}

// Alias names the caller in the auth method's own terms (for Azure, the
// object ID of the managed identity).
type Alias struct {
	Name     string
	Metadata map[string]string
}

// Auth is a login result; core turns it into a token.
type Auth struct {
	LeaseOptions
	// DisplayName is prefixed with the mount's name by core.
	DisplayName string
	// Policies are the token policies to attach.
	Policies []string
	// NoDefaultPolicy keeps core from adding the "default" policy.
	NoDefaultPolicy bool
	// Metadata is attached to the token and shown by lookups.
	Metadata map[string]string
	// InternalData is stored with the token, returned on renew, never shown.
	InternalData map[string]any
	// ExplicitMaxTTL is a hard cap no renewal can exceed; zero means none.
	ExplicitMaxTTL time.Duration
	// Period makes the token periodic; zero means not periodic.
	Period time.Duration
	// NumUses limits uses; zero means unlimited.
	NumUses int
	// BoundCIDRs restricts where the token may be used from.
	BoundCIDRs []string
	// TokenType is "service" (default) or "batch".
	TokenType string
	// Alias identifies the caller to the identity store.
	Alias *Alias
	// EntityID is set by core.
	EntityID string

	// ClientToken and Accessor are set by core once the token exists.
	ClientToken string
	Accessor    string
	// TokenPolicies and IdentityPolicies are set by core.
	TokenPolicies    []string
	IdentityPolicies []string
	// Orphan is set by core.
	Orphan bool
	// MountType is set by core (the auth method type).
	MountType string
}

// Paths lists path globs with special treatment. A trailing "*" matches any
// suffix; otherwise a match is exact. Paths are relative to the mount.
type Paths struct {
	// Unauthenticated paths are served without a token (login endpoints).
	Unauthenticated []string
	// Root paths need the sudo capability in addition to the operation's.
	Root []string
}

// Backend is a mounted secrets engine or auth method.
type Backend interface {
	// HandleRequest serves one request. Errors are typed (see errors.go);
	// validation failures are *CodedError with status 400.
	HandleRequest(ctx context.Context, req *Request) (*Response, error)
	// SpecialPaths returns the backend's unauthenticated and sudo paths, or
	// nil for none.
	SpecialPaths() *Paths
}

// ExistenceChecker is implemented by backends that distinguish create from
// update for ACL purposes. checkFound is false when the path has no
// existence check, in which case a write stays an update.
type ExistenceChecker interface {
	ExistenceCheck(ctx context.Context, req *Request) (checkFound, exists bool, err error)
}

// Initializer is implemented by backends that must prepare storage once the
// barrier is unsealed (for example KV's v1 to v2 upgrade). Core calls it
// after mounting and after every unseal.
type Initializer interface {
	Initialize(ctx context.Context, s Storage) error
}

// Cleaner is implemented by backends that hold resources to release when
// the mount is removed or the server seals.
type Cleaner interface {
	Cleanup(ctx context.Context)
}

// SystemView is the read-only view of the server a backend may consult. Its
// values follow mount tuning, so backends must not cache them.
type SystemView interface {
	// DefaultLeaseTTL is the mount's default lease TTL (after tuning).
	DefaultLeaseTTL() time.Duration
	// MaxLeaseTTL is the mount's maximum lease TTL (after tuning).
	MaxLeaseTTL() time.Duration
}

// Clock tells the time. Core injects a real clock in production and a
// settable one in tests.
type Clock interface {
	Now() time.Time
}

// BackendConfig is what a Factory receives.
type BackendConfig struct {
	// Logger is never nil (core passes a discard logger at worst).
	Logger *slog.Logger
	// System is never nil.
	System SystemView
	// Options are the mount's options (for example "version": "2").
	Options map[string]string
	// Clock is never nil.
	Clock Clock
	// HTTPClient settings and other outbound dependencies are given to the
	// auth methods that need them through their own registry entries.
}

// Factory builds a backend for one mount.
type Factory func(ctx context.Context, conf BackendConfig) (Backend, error)
