// Package httpapi is Keyward's Vault-compatible HTTP transport. It turns
// /v1/* requests into logical.Requests for internal/core, renders Vault's
// response and error envelopes, and serves the seal endpoints (init,
// seal-status, unseal, seal, health, leader) and the web UI.
package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/core"
	"github.com/keyward/keyward/internal/logical"
)

// Config configures the handler.
type Config struct {
	// Core serves the requests. Required.
	Core *core.Core
	// Logger for access and error logs; nil discards. Tokens are never
	// logged.
	Logger *slog.Logger
	// MaxRequestSize bounds request bodies (413 beyond); 0 means 32 MiB.
	MaxRequestSize int64
	// UI serves the web UI under /ui/ and redirects / to it.
	UI bool
}

type handler struct {
	core   *core.Core
	logger *slog.Logger
	max    int64
}

// New returns the HTTP handler of the API.
func New(cfg Config) http.Handler {
	h := &handler{core: cfg.Core, logger: cfg.Logger, max: cfg.MaxRequestSize}
	if h.logger == nil {
		h.logger = slog.New(slog.DiscardHandler)
	}
	if h.max <= 0 {
		h.max = 32 << 20
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/sys/init", h.sysInit)
	mux.HandleFunc("/v1/sys/seal-status", h.sysSealStatus)
	mux.HandleFunc("/v1/sys/unseal", h.sysUnseal)
	mux.HandleFunc("/v1/sys/seal", h.sysSeal)
	mux.HandleFunc("/v1/sys/health", h.sysHealth)
	mux.HandleFunc("/v1/sys/leader", h.sysLeader)
	mux.HandleFunc("/v1/", h.logical)
	if cfg.UI {
		mux.Handle("/ui/", uiHandler())
		mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/ui/", http.StatusTemporaryRedirect)
		})
	}
	return h.wrap(mux)
}

// wrap adds the headers every response carries, the body limit and the
// access log.
func (h *handler) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		w.Header().Set("Cache-Control", "no-store")
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, h.max)
		}
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		if hasDotSegment(r.URL.Path) {
			// Refuse instead of letting the mux redirect to the cleaned path.
			h.writeError(sw, r, logical.BadRequest("path cannot contain parent references"))
			return
		}
		next.ServeHTTP(sw, r)
		h.logger.Debug("request", "method", r.Method, "path", logPath(r.URL.Path), "status", sw.status,
			"duration", time.Since(start), "remote", remoteIP(r))
	})
}

// tokenInURL are the (deprecated) paths that take a token in the URL.
var tokenInURL = []string{"/v1/auth/token/renew/", "/v1/auth/token/revoke/", "/v1/auth/token/revoke-orphan/"}

// logPath is the URL path as logged: a token in the URL is redacted.
func logPath(p string) string {
	for _, prefix := range tokenInURL {
		if strings.HasPrefix(p, prefix) && len(p) > len(prefix) {
			return prefix + "<redacted>"
		}
	}
	return p
}

func hasDotSegment(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." || seg == "." {
			return true
		}
	}
	return false
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// remoteIP is the peer's address. Forwarding headers are never trusted.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// requestToken returns the caller's token from X-Vault-Token or a Bearer
// Authorization header.
func requestToken(r *http.Request) string {
	if t := r.Header.Get("X-Vault-Token"); t != "" {
		return t
	}
	if a := r.Header.Get("Authorization"); a != "" {
		if t, ok := strings.CutPrefix(a, "Bearer "); ok {
			return strings.TrimSpace(t)
		}
	}
	return ""
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"errors":["internal error: response encoding failed"]}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg, internal := statusOf(err)
	if internal {
		h.logger.Error("request failed", "method", r.Method, "path", logPath(r.URL.Path), "error", err)
	}
	errs := []string{}
	if msg != "" {
		errs = append(errs, msg)
	}
	writeJSON(w, status, map[string]any{"errors": errs})
}

func methodNotAllowed(w http.ResponseWriter) {
	writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"errors": []string{}})
}

// decodeBody decodes a JSON (or form) body into a map. An empty body gives
// an empty map.
func decodeBody(r *http.Request) (map[string]any, error) {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	trimmed := bytes.TrimSpace(raw)
	// curl -d sends JSON bodies with the form content type (the tutorial
	// does): a body that starts like JSON is JSON whatever the header says.
	if ct == "application/x-www-form-urlencoded" && (len(trimmed) == 0 || trimmed[0] != '{') {
		vals, err := url.ParseQuery(string(raw))
		if err != nil {
			return nil, logical.BadRequest("failed to parse form input: %v", err)
		}
		return flattenQuery(vals), nil
	}
	data := map[string]any{}
	if len(trimmed) == 0 {
		return data, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&data); err != nil {
		return nil, logical.BadRequest("failed to parse JSON input: %v", err)
	}
	if dec.More() {
		return nil, logical.BadRequest("failed to parse JSON input: trailing data after the JSON object")
	}
	return data, nil
}

func flattenQuery(vals url.Values) map[string]any {
	data := map[string]any{}
	for k, v := range vals {
		if len(v) == 1 {
			data[k] = v[0]
		} else {
			list := make([]any, len(v))
			for i, s := range v {
				list[i] = s
			}
			data[k] = list
		}
	}
	return data
}

// logical serves every /v1/ path that has no special handler.
func (h *handler) logical(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/v1/")
	req := &logical.Request{
		Path:        path,
		ClientToken: requestToken(r),
		Connection:  &logical.Connection{RemoteAddr: remoteIP(r), TLS: r.TLS != nil},
		Headers:     map[string][]string{},
	}
	if ct := r.Header.Values("Content-Type"); len(ct) > 0 {
		req.Headers["Content-Type"] = ct
	}
	query := r.URL.Query()
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		req.Operation = logical.ReadOperation
		if l := query.Get("list"); l == "true" || l == "1" {
			req.Operation = logical.ListOperation
			query.Del("list")
		}
		req.Data = flattenQuery(query)
	case "LIST":
		req.Operation = logical.ListOperation
		req.Data = flattenQuery(query)
	case http.MethodDelete:
		req.Operation = logical.DeleteOperation
		req.Data = flattenQuery(query)
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		req.Operation = logical.UpdateOperation
		if r.Method == http.MethodPatch {
			req.Operation = logical.PatchOperation
			ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if ct != "application/merge-patch+json" {
				writeJSON(w, http.StatusUnsupportedMediaType, map[string]any{"errors": []string{}})
				return
			}
		}
		data, err := decodeBody(r)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		req.Data = data
	default:
		methodNotAllowed(w)
		return
	}
	if req.Operation == logical.ListOperation && !strings.HasSuffix(req.Path, "/") {
		req.Path += "/"
	}
	resp, err := h.core.HandleRequest(r.Context(), req)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.respond(w, r, req, resp)
}

// envelope is Vault's response body.
type envelope struct {
	RequestID     string         `json:"request_id"`
	LeaseID       string         `json:"lease_id"`
	Renewable     bool           `json:"renewable"`
	LeaseDuration int64          `json:"lease_duration"`
	Data          map[string]any `json:"data"`
	WrapInfo      any            `json:"wrap_info"`
	Warnings      []string       `json:"warnings"`
	Auth          *authBody      `json:"auth"`
	MountType     string         `json:"mount_type"`
}

type authBody struct {
	ClientToken      string            `json:"client_token"`
	Accessor         string            `json:"accessor"`
	Policies         []string          `json:"policies"`
	TokenPolicies    []string          `json:"token_policies"`
	IdentityPolicies []string          `json:"identity_policies,omitempty"`
	Metadata         map[string]string `json:"metadata"`
	LeaseDuration    int64             `json:"lease_duration"`
	Renewable        bool              `json:"renewable"`
	EntityID         string            `json:"entity_id"`
	TokenType        string            `json:"token_type"`
	Orphan           bool              `json:"orphan"`
	MFARequirement   any               `json:"mfa_requirement"`
	NumUses          int               `json:"num_uses"`
}

func (h *handler) respond(w http.ResponseWriter, r *http.Request, req *logical.Request, resp *logical.Response) {
	if resp == nil {
		if req.Operation == logical.ReadOperation || req.Operation == logical.ListOperation {
			writeJSON(w, http.StatusNotFound, map[string]any{"errors": []string{}})
			return
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if req.Operation == logical.ListOperation && len(resp.Warnings) == 0 {
		keys, _ := resp.Data["keys"].([]string)
		anyKeys, _ := resp.Data["keys"].([]any)
		if len(keys) == 0 && len(anyKeys) == 0 {
			writeJSON(w, http.StatusNotFound, map[string]any{"errors": []string{}})
			return
		}
	}
	env := envelope{RequestID: req.ID, Data: resp.Data, Warnings: resp.Warnings, MountType: req.MountType}
	if resp.Secret != nil {
		env.LeaseID = resp.Secret.LeaseID
		env.Renewable = resp.Secret.Renewable
		env.LeaseDuration = int64(resp.Secret.TTL / time.Second)
	}
	if a := resp.Auth; a != nil {
		env.Auth = &authBody{
			ClientToken:      a.ClientToken,
			Accessor:         a.Accessor,
			Policies:         a.Policies,
			TokenPolicies:    a.TokenPolicies,
			IdentityPolicies: a.IdentityPolicies,
			Metadata:         a.Metadata,
			LeaseDuration:    int64(a.TTL / time.Second),
			Renewable:        a.Renewable,
			EntityID:         a.EntityID,
			TokenType:        a.TokenType,
			Orphan:           a.Orphan,
			NumUses:          a.NumUses,
		}
		if env.Auth.TokenType == "" {
			env.Auth.TokenType = "service"
		}
	}
	status := http.StatusOK
	if resp.StatusCode != 0 {
		status = resp.StatusCode
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(status)
		return
	}
	if strings.HasPrefix(req.Path, "sys/") && resp.Data != nil {
		// Vault's sys injection: data keys also at the top level.
		raw, err := json.Marshal(env)
		if err == nil {
			top := map[string]json.RawMessage{}
			if err := json.Unmarshal(raw, &top); err == nil {
				merged := map[string]any{}
				for k, v := range resp.Data {
					merged[k] = v
				}
				for k, v := range top {
					merged[k] = v
				}
				writeJSON(w, status, merged)
				return
			}
		}
	}
	writeJSON(w, status, env)
}
