package azure

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/keyward/keyward/internal/logical"
)

// Sentinel errors of a failed login or renewal. Every failure is returned
// as a *logical.CodedError whose Msg is the public text (Vault's wording
// where Vault has one) and whose Err wraps one of these, so callers and
// tests classify failures with errors.Is. Most are HTTP 500, as Vault's
// plugin returns them as plain errors (spec §10.6).
var (
	// ErrMalformedToken: the jwt is not a compact JWS with a JSON payload.
	ErrMalformedToken = errors.New("malformed jwt")
	// ErrUnsupportedAlgorithm: the jwt is not signed with RS256.
	ErrUnsupportedAlgorithm = errors.New("unsupported signing algorithm")
	// ErrUnknownKey: no key of the issuer's JWKS has the jwt's kid.
	ErrUnknownKey = errors.New("unknown signing key")
	// ErrBadSignature: the signature does not verify with the issuer's key.
	ErrBadSignature = errors.New("invalid signature")
	// ErrIssuer: the iss claim is not the discovered issuer.
	ErrIssuer = errors.New("issuer mismatch")
	// ErrAudience: the aud claim does not contain the configured resource.
	ErrAudience = errors.New("audience mismatch")
	// ErrExpired: exp is in the past (beyond the leeway) or missing.
	ErrExpired = errors.New("token expired")
	// ErrNotYetValid: nbf is in the future (beyond the leeway).
	ErrNotYetValid = errors.New("token not yet valid")
	// ErrTenant: the tid claim is not the configured tenant.
	ErrTenant = errors.New("tenant mismatch")
	// ErrMissingClaim: a claim the method needs (oid) is absent.
	ErrMissingClaim = errors.New("missing claim")
	// ErrNotAuthorized: a role binding (bound_*) or the identity check
	// against the ARM resource refused the login.
	ErrNotAuthorized = errors.New("login not authorized by role")
	// ErrResourceLookup: an ARM lookup of the named resource failed.
	ErrResourceLookup = errors.New("resource lookup failed")
	// ErrDiscovery: OIDC discovery or the JWKS fetch failed.
	ErrDiscovery = errors.New("oidc discovery failed")
	// ErrNotConfigured: the mount has no usable config.
	ErrNotConfigured = errors.New("azure auth not configured")
	// ErrRenewal: a renewal was refused (role gone or changed).
	ErrRenewal = errors.New("renewal refused")
)

// fail returns a 500 *logical.CodedError with a public message that wraps
// kind (one of the sentinels above) and, when non-nil, cause.
func fail(kind, cause error, format string, args ...any) error {
	inner := kind
	if cause != nil {
		inner = fmt.Errorf("%w: %w", kind, cause)
	}
	return &logical.CodedError{Status: http.StatusInternalServerError, Msg: fmt.Sprintf(format, args...), Err: inner}
}
