package oidc

import (
	"crypto/rand"
	"encoding/base64"
	"strconv"
	"time"
)

// Token lifetimes of Entra access tokens.
const (
	// ManagedIdentityLifetime is exp-iat of a managed-identity token
	// (24 h plus the 5 min seen in real tokens).
	ManagedIdentityLifetime = 24*time.Hour + 5*time.Minute
	// ManagedIdentityExtLifetime is what IMDS reports as ext_expires_in.
	ManagedIdentityExtLifetime = 86399 * time.Second
	// ClientCredentialsLifetime is the lifetime of a client-credentials token.
	ClientCredentialsLifetime = 3599 * time.Second
)

// V1Issuer returns the issuer of v1 access tokens of tenant:
// https://sts.windows.net/{tenant}/ (trailing slash).
func V1Issuer(tenant string) string { return "https://sts.windows.net/" + tenant + "/" }

// V2Issuer returns the v2.0 issuer of tenant at authorityHost (which must
// end with "/"): {authorityHost}{tenant}/v2.0.
func V2Issuer(authorityHost, tenant string) string { return authorityHost + tenant + "/v2.0" }

// AccessToken is the claim set of an Entra v1 access token, in the field
// order real tokens use. Optional claims are omitted when empty.
type AccessToken struct {
	Aud      string   `json:"aud"`
	Iss      string   `json:"iss"`
	Iat      int64    `json:"iat"`
	Nbf      int64    `json:"nbf"`
	Exp      int64    `json:"exp"`
	Aio      string   `json:"aio"`
	AppID    string   `json:"appid"`
	AppIDACR string   `json:"appidacr"`
	Groups   []string `json:"groups,omitempty"`
	Idp      string   `json:"idp"`
	IDTyp    string   `json:"idtyp"`
	OID      string   `json:"oid"`
	Rh       string   `json:"rh"`
	Sub      string   `json:"sub"`
	Tid      string   `json:"tid"`
	Uti      string   `json:"uti"`
	Ver      string   `json:"ver"`
	XMSAzRID string   `json:"xms_az_rid,omitempty"`
	XMSIdRel string   `json:"xms_idrel,omitempty"`
	XMSMIRID string   `json:"xms_mirid,omitempty"`
	XMSTcdt  string   `json:"xms_tcdt,omitempty"`
}

// Expiry returns exp as a time.
func (c *AccessToken) Expiry() time.Time { return time.Unix(c.Exp, 0) }

// ManagedIdentity describes the identity a managed-identity token is minted for.
type ManagedIdentity struct {
	TenantID string
	// ClientID becomes appid.
	ClientID string
	// PrincipalID becomes oid and sub.
	PrincipalID string
	// ResourceID is the identity's ARM ID (xms_mirid): the user-assigned
	// identity, or the compute resource for a system-assigned identity.
	ResourceID string
	// ComputeID is the requesting compute resource (xms_az_rid); empty for a
	// system-assigned identity.
	ComputeID string
}

// NewManagedIdentityToken returns the claims IMDS's token for id and
// resource carries when issued at now: aud = resource verbatim, iss/idp the
// v1 issuer, appidacr "2", idtyp "app", ver "1.0", exp = now + 24h5m.
func NewManagedIdentityToken(id ManagedIdentity, resource string, now time.Time) *AccessToken {
	iss := V1Issuer(id.TenantID)
	return &AccessToken{
		Aud:      resource,
		Iss:      iss,
		Iat:      now.Unix(),
		Nbf:      now.Unix(),
		Exp:      now.Add(ManagedIdentityLifetime).Unix(),
		Aio:      opaque(18),
		AppID:    id.ClientID,
		AppIDACR: "2",
		Idp:      iss,
		IDTyp:    "app",
		OID:      id.PrincipalID,
		Rh:       "0." + opaque(36) + ".",
		Sub:      id.PrincipalID,
		Tid:      id.TenantID,
		Uti:      opaque(16),
		Ver:      "1.0",
		XMSAzRID: id.ComputeID,
		XMSIdRel: "7 14",
		XMSMIRID: id.ResourceID,
		XMSTcdt:  strconv.FormatInt(now.Add(-365*24*time.Hour).Unix(), 10),
	}
}

// App describes a service principal (or a managed identity using a
// federated credential) authenticating with client credentials.
type App struct {
	TenantID    string
	ClientID    string
	PrincipalID string
	// ACR is appidacr: "1" client secret, "2" certificate or assertion.
	ACR string
	// ResourceID is set for managed identities (xms_mirid).
	ResourceID string
}

// NewAppToken returns the claims of a client-credentials access token for
// app and resource issued at now (v1 shape, lifetime ClientCredentialsLifetime).
func NewAppToken(app App, resource string, now time.Time) *AccessToken {
	iss := V1Issuer(app.TenantID)
	return &AccessToken{
		Aud:      resource,
		Iss:      iss,
		Iat:      now.Unix(),
		Nbf:      now.Unix(),
		Exp:      now.Add(ClientCredentialsLifetime).Unix(),
		Aio:      opaque(18),
		AppID:    app.ClientID,
		AppIDACR: app.ACR,
		Idp:      iss,
		IDTyp:    "app",
		OID:      app.PrincipalID,
		Rh:       "0." + opaque(36) + ".",
		Sub:      app.PrincipalID,
		Tid:      app.TenantID,
		Uti:      opaque(16),
		Ver:      "1.0",
		XMSMIRID: app.ResourceID,
	}
}

// opaque returns n random bytes, base64url encoded, for the opaque claims.
func opaque(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥ 1.24).
	return base64.RawURLEncoding.EncodeToString(b)
}
