package agent

import (
	"encoding/json"
	"net/http"
)

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	raw, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(raw)
}

// writeError writes IMDS's flat error document.
func writeError(w http.ResponseWriter, status int, code, desc string) {
	raw, _ := json.Marshal(map[string]string{"error": code, "error_description": desc})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(append(raw, '\n'))
}

func routeName(r route) string {
	switch r {
	case routeToken:
		return "token"
	case routeInstance:
		return "instance"
	case routeVersions:
		return "versions"
	case routeNotFound:
		return "not_found"
	default:
		return "invalid"
	}
}
