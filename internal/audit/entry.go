package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/logical"
)

// hashPrefix starts every redacted value, as in Vault's audit log.
const hashPrefix = "hmac-sha256:"

// The JSON shapes below follow Vault's audit entries field for field
// (names and omitempty), so tooling written for Vault audit logs works.

type entryJSON struct {
	Time     string        `json:"time,omitempty"`
	Type     string        `json:"type,omitempty"`
	Auth     *authJSON     `json:"auth,omitempty"`
	Request  *requestJSON  `json:"request,omitempty"`
	Response *responseJSON `json:"response,omitempty"`
	Error    string        `json:"error,omitempty"`
}

type authJSON struct {
	ClientToken      string            `json:"client_token,omitempty"`
	Accessor         string            `json:"accessor,omitempty"`
	DisplayName      string            `json:"display_name,omitempty"`
	Policies         []string          `json:"policies,omitempty"`
	TokenPolicies    []string          `json:"token_policies,omitempty"`
	IdentityPolicies []string          `json:"identity_policies,omitempty"`
	Metadata         map[string]string `json:"metadata,omitempty"`
	NumUses          int               `json:"num_uses,omitempty"`
	EntityID         string            `json:"entity_id,omitempty"`
	TokenType        string            `json:"token_type,omitempty"`
	TokenTTL         int64             `json:"token_ttl,omitempty"`
	TokenIssueTime   string            `json:"token_issue_time,omitempty"`
}

type namespaceJSON struct {
	ID   string `json:"id"`
	Path string `json:"path,omitempty"`
}

type requestJSON struct {
	ID                  string         `json:"id,omitempty"`
	Operation           string         `json:"operation,omitempty"`
	MountPoint          string         `json:"mount_point,omitempty"`
	MountType           string         `json:"mount_type,omitempty"`
	MountAccessor       string         `json:"mount_accessor,omitempty"`
	ClientToken         string         `json:"client_token,omitempty"`
	ClientTokenAccessor string         `json:"client_token_accessor,omitempty"`
	Namespace           *namespaceJSON `json:"namespace,omitempty"`
	Path                string         `json:"path,omitempty"`
	Data                map[string]any `json:"data,omitempty"`
	RemoteAddr          string         `json:"remote_address,omitempty"`
}

type secretJSON struct {
	LeaseID string `json:"lease_id,omitempty"`
}

type responseJSON struct {
	Auth          *authJSON      `json:"auth,omitempty"`
	MountPoint    string         `json:"mount_point,omitempty"`
	MountType     string         `json:"mount_type,omitempty"`
	MountAccessor string         `json:"mount_accessor,omitempty"`
	Secret        *secretJSON    `json:"secret,omitempty"`
	Data          map[string]any `json:"data,omitempty"`
	Warnings      []string       `json:"warnings,omitempty"`
}

// hasher HMACs values with one device's salt.
type hasher struct {
	salt []byte
}

// hash returns "hmac-sha256:<hex>" of s.
func (h hasher) hash(s string) string {
	m := hmac.New(sha256.New, h.salt)
	m.Write([]byte(s))
	return hashPrefix + hex.EncodeToString(m.Sum(nil))
}

// formatOptions are the per-device options that shape an entry.
type formatOptions struct {
	hmacAccessor       bool
	logRaw             bool
	elideListResponses bool
}

// fullPath is the request path including its mount point.
func fullPath(r *logical.Request) string {
	if r.MountPoint != "" && !strings.HasPrefix(r.Path, r.MountPoint) {
		return r.MountPoint + r.Path
	}
	return r.Path
}

func (h hasher) authEntry(a *logical.Auth, o formatOptions) *authJSON {
	if a == nil {
		return &authJSON{}
	}
	out := &authJSON{
		ClientToken:      a.ClientToken,
		Accessor:         a.Accessor,
		DisplayName:      a.DisplayName,
		Policies:         a.Policies,
		TokenPolicies:    a.TokenPolicies,
		IdentityPolicies: a.IdentityPolicies,
		Metadata:         a.Metadata,
		NumUses:          a.NumUses,
		EntityID:         a.EntityID,
		TokenType:        a.TokenType,
		TokenTTL:         int64(a.TTL / time.Second),
	}
	if out.TokenType == "" && a.ClientToken != "" {
		out.TokenType = "service"
	}
	if !a.IssueTime.IsZero() {
		out.TokenIssueTime = a.IssueTime.UTC().Format(time.RFC3339)
	}
	if !o.logRaw {
		if out.ClientToken != "" {
			out.ClientToken = h.hash(out.ClientToken)
		}
		if out.Accessor != "" && o.hmacAccessor {
			out.Accessor = h.hash(out.Accessor)
		}
	}
	return out
}

func (h hasher) requestEntry(r *logical.Request, data map[string]any, o formatOptions) *requestJSON {
	out := &requestJSON{
		ID:                  r.ID,
		Operation:           string(r.Operation),
		MountPoint:          r.MountPoint,
		MountType:           r.MountType,
		MountAccessor:       r.MountAccessor,
		ClientToken:         r.ClientToken,
		ClientTokenAccessor: r.ClientTokenAccessor,
		Namespace:           &namespaceJSON{ID: "root"},
		Path:                fullPath(r),
		Data:                data,
	}
	if r.Connection != nil {
		out.RemoteAddr = r.Connection.RemoteAddr
	}
	if !o.logRaw {
		if out.ClientToken != "" {
			out.ClientToken = h.hash(out.ClientToken)
		}
		if out.ClientTokenAccessor != "" && o.hmacAccessor {
			out.ClientTokenAccessor = h.hash(out.ClientTokenAccessor)
		}
		out.Data = h.hashMap(data)
	}
	return out
}

func (h hasher) responseEntry(in *Input, o formatOptions) *responseJSON {
	resp := in.Response
	if resp == nil {
		return nil
	}
	out := &responseJSON{
		MountPoint:    in.Request.MountPoint,
		MountType:     in.Request.MountType,
		MountAccessor: in.Request.MountAccessor,
		Warnings:      resp.Warnings,
	}
	if resp.Auth != nil {
		out.Auth = h.authEntry(resp.Auth, o)
	}
	if resp.Secret != nil && resp.Secret.LeaseID != "" {
		out.Secret = &secretJSON{LeaseID: resp.Secret.LeaseID}
	}
	data := resp.Data
	if o.elideListResponses && in.Request.Operation == logical.ListOperation {
		data = elideList(data)
	}
	if o.logRaw {
		out.Data = data
	} else {
		out.Data = h.hashMap(data)
	}
	return out
}

// elideList replaces "keys" and "key_info" of a list response by their
// element counts.
func elideList(data map[string]any) map[string]any {
	if data == nil {
		return nil
	}
	out := make(map[string]any, len(data))
	for k, v := range data {
		out[k] = v
	}
	switch keys := data["keys"].(type) {
	case []string:
		out["keys"] = len(keys)
	case []any:
		out["keys"] = len(keys)
	}
	switch info := data["key_info"].(type) {
	case map[string]any:
		out["key_info"] = len(info)
	}
	return out
}

// hashMap returns a copy of m with every string (and json.Number) value
// replaced by its HMAC, recursively. Keys are kept. nil stays nil.
func (h hasher) hashMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = h.hashValue(v)
	}
	return out
}

func (h hasher) hashValue(v any) any {
	switch x := v.(type) {
	case nil, bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64,
		float32, float64, time.Duration:
		return x
	case time.Time:
		return x
	case string:
		return h.hash(x)
	case json.Number:
		return h.hash(x.String())
	case map[string]any:
		return h.hashMap(x)
	case map[string]string:
		out := make(map[string]any, len(x))
		for k, s := range x {
			out[k] = h.hash(s)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = h.hashValue(e)
		}
		return out
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = h.hash(s)
		}
		return out
	case []map[string]any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = h.hashMap(e)
		}
		return out
	default:
		// Anything else (structs, typed maps/slices) is normalised through
		// JSON so that no string inside it escapes hashing.
		b, err := json.Marshal(x)
		if err != nil {
			return h.hash("")
		}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.UseNumber()
		var g any
		if err := dec.Decode(&g); err != nil {
			return h.hash(string(b))
		}
		return h.hashValue(g)
	}
}

// format renders one JSON line (without the trailing newline) for a
// request (resp=false) or response entry.
func (h hasher) format(now time.Time, in *Input, resp bool, o formatOptions) ([]byte, error) {
	e := entryJSON{
		Time:    now.UTC().Format(time.RFC3339Nano),
		Type:    "request",
		Auth:    h.authEntry(in.Caller, o),
		Request: h.requestEntry(in.Request, in.Request.Data, o),
	}
	if in.Err != nil {
		e.Error = in.Err.Error()
	}
	if resp {
		e.Type = "response"
		e.Response = h.responseEntry(in, o)
	}
	return json.Marshal(e)
}
