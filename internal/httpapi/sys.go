package httpapi

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/keyward/keyward/internal/core"
	"github.com/keyward/keyward/internal/logical"
)

func (h *handler) sysInit(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	switch r.Method {
	case http.MethodGet:
		ok, err := h.core.Initialized(ctx)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"initialized": ok})
	case http.MethodPut, http.MethodPost:
		var body struct {
			SecretShares      int      `json:"secret_shares"`
			SecretThreshold   int      `json:"secret_threshold"`
			StoredShares      int      `json:"stored_shares"`
			PGPKeys           []string `json:"pgp_keys"`
			RecoveryShares    int      `json:"recovery_shares"`
			RecoveryThreshold int      `json:"recovery_threshold"`
			RecoveryPGPKeys   []string `json:"recovery_pgp_keys"`
			RootTokenPGPKey   string   `json:"root_token_pgp_key"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			h.writeError(w, r, logical.BadRequest("failed to parse JSON input: %v", err))
			return
		}
		if body.RecoveryShares != 0 || body.RecoveryThreshold != 0 || len(body.RecoveryPGPKeys) > 0 {
			h.writeError(w, r, logical.BadRequest("parameters specific to auto unseal seals present"))
			return
		}
		if len(body.PGPKeys) > 0 || body.RootTokenPGPKey != "" {
			h.writeError(w, r, logical.BadRequest("PGP-encrypted key shares are not supported by this server"))
			return
		}
		res, err := h.core.Initialize(ctx, core.InitRequest{SecretShares: body.SecretShares, SecretThreshold: body.SecretThreshold})
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		keys := make([]string, len(res.Keys))
		keysB64 := make([]string, len(res.Keys))
		for i, k := range res.Keys {
			keys[i] = hex.EncodeToString(k)
			keysB64[i] = base64.StdEncoding.EncodeToString(k)
		}
		h.logger.Info("initialized", "shares", body.SecretShares, "threshold", body.SecretThreshold)
		writeJSON(w, http.StatusOK, map[string]any{"keys": keys, "keys_base64": keysB64, "root_token": res.RootToken})
	default:
		methodNotAllowed(w)
	}
}

func (h *handler) sysSealStatus(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w)
		return
	}
	ctx := r.Context()
	st, err := h.core.SealStatus(ctx)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// decodeKey accepts a key share in hex or standard base64, as Vault does.
func decodeKey(s string) ([]byte, error) {
	if b, err := hex.DecodeString(s); err == nil && len(b) >= 16 && len(b) <= 33 {
		return b, nil
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return nil, logical.BadRequest("'key' must be a valid hex or base64 string")
}

func (h *handler) sysUnseal(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPut && r.Method != http.MethodPost {
		methodNotAllowed(w)
		return
	}
	ctx := r.Context()
	var body struct {
		Key     string `json:"key"`
		Reset   bool   `json:"reset"`
		Migrate bool   `json:"migrate"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		h.writeError(w, r, logical.BadRequest("failed to parse JSON input: %v", err))
		return
	}
	if body.Reset {
		st, err := h.core.ResetUnseal(ctx)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, st)
		return
	}
	if body.Key == "" {
		h.writeError(w, r, logical.BadRequest("'key' must be specified in request body as JSON, or 'reset' set to true"))
		return
	}
	key, err := decodeKey(body.Key)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	st, err := h.core.Unseal(ctx, key)
	if err != nil {
		if errors.Is(err, core.ErrNotInitialized) {
			err = logical.BadRequest("Vault is not initialized")
		}
		h.writeError(w, r, err)
		return
	}
	if !st.Sealed {
		h.logger.Info("unsealed")
	}
	writeJSON(w, http.StatusOK, st)
}

func (h *handler) sysSeal(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPut && r.Method != http.MethodPost {
		methodNotAllowed(w)
		return
	}
	ctx := r.Context()
	if err := h.core.Seal(ctx, requestToken(r), remoteIP(r)); err != nil {
		h.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) sysHealth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w)
		return
	}
	ctx := r.Context()
	q := r.URL.Query()
	code := func(name string, def int) (int, bool) {
		v := q.Get(name)
		if v == "" {
			return def, true
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 100 || n > 599 {
			h.writeError(w, r, logical.BadRequest("bad code given for %s: %q", name, v))
			return 0, false
		}
		return n, true
	}
	active, ok1 := code("activecode", http.StatusOK)
	sealedCode, ok2 := code("sealedcode", http.StatusServiceUnavailable)
	uninit, ok3 := code("uninitcode", http.StatusNotImplemented)
	_, ok4 := code("standbycode", http.StatusTooManyRequests)
	_, ok5 := code("drsecondarycode", 472)
	_, ok6 := code("performancestandbycode", 473)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 {
		return
	}
	st, err := h.core.SealStatus(ctx)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	status := active
	switch {
	case !st.Initialized:
		status = uninit
	case st.Sealed:
		status = sealedCode
	}
	body := map[string]any{
		"initialized":                  st.Initialized,
		"sealed":                       st.Sealed,
		"standby":                      false,
		"performance_standby":          false,
		"replication_performance_mode": "disabled",
		"replication_dr_mode":          "disabled",
		"server_time_utc":              time.Now().Unix(),
		"version":                      st.Version,
		"enterprise":                   false,
		"echo_duration_ms":             0,
		"clock_skew_ms":                0,
	}
	if st.ClusterName != "" {
		body["cluster_name"] = st.ClusterName
		body["cluster_id"] = st.ClusterID
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(status)
		return
	}
	writeJSON(w, status, body)
}

func (h *handler) sysLeader(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w)
		return
	}
	// Storage here is single-node: like Vault without HA, the answer does
	// not depend on the seal.
	writeJSON(w, http.StatusOK, map[string]any{
		"ha_enabled":                          false,
		"is_self":                             false,
		"active_time":                         "0001-01-01T00:00:00Z",
		"leader_address":                      "",
		"leader_cluster_address":              "",
		"performance_standby":                 false,
		"performance_standby_last_remote_wal": 0,
	})
}
