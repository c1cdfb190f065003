package cloud

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
)

// ARMError is an Azure Resource Manager error: an HTTP status and the body
// {"error":{"code":...,"message":...}}. Domain operations of Server return
// it (wrapped or bare) so the ARM handlers and in-process callers see the
// same codes real ARM uses.
type ARMError struct {
	Status  int
	Code    string
	Message string
}

// Error implements error.
func (e *ARMError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

func armErr(status int, code, format string, args ...any) *ARMError {
	return &ARMError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// writeJSON writes v with status and the JSON content type.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encoding error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeARMError writes err in ARM's error shape; errors that are not an
// *ARMError become 500 InternalServerError without their detail.
func writeARMError(w http.ResponseWriter, err error) {
	var ae *ARMError
	if !errors.As(err, &ae) {
		ae = armErr(http.StatusInternalServerError, "InternalServerError", "Encountered internal server error. Diagnostic information: timestamp '%s'.", time.Now().UTC().Format("20060102T150405Z"))
	}
	w.Header().Set("x-ms-failure-cause", "gateway")
	writeJSON(w, ae.Status, map[string]any{"error": map[string]string{"code": ae.Code, "message": ae.Message}})
}

// AADError is an Entra ID token-endpoint error (AADSTS codes).
type AADError struct {
	Status      int
	Err         string // OAuth error, e.g. "invalid_client"
	Code        int    // AADSTS number
	Description string // text after "AADSTSnnnn: "
}

// Error implements error.
func (e *AADError) Error() string {
	return fmt.Sprintf("%s: AADSTS%d: %s", e.Err, e.Code, e.Description)
}

func aadErr(status int, oauthErr string, code int, format string, args ...any) *AADError {
	return &AADError{Status: status, Err: oauthErr, Code: code, Description: fmt.Sprintf(format, args...)}
}

// writeAADError writes err in Entra's token-endpoint error shape.
func writeAADError(w http.ResponseWriter, err error, now time.Time) {
	var ae *AADError
	if !errors.As(err, &ae) {
		ae = aadErr(http.StatusInternalServerError, "server_error", 90012, "The server encountered an internal error.")
	}
	trace, corr := uuid.NewString(), uuid.NewString()
	ts := now.UTC().Format("2006-01-02 15:04:05Z")
	writeJSON(w, ae.Status, map[string]any{
		"error":             ae.Err,
		"error_description": fmt.Sprintf("AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s", ae.Code, ae.Description, trace, corr, ts),
		"error_codes":       []int{ae.Code},
		"timestamp":         ts,
		"trace_id":          trace,
		"correlation_id":    corr,
		"error_uri":         "https://login.microsoftonline.com/error?code=" + fmt.Sprint(ae.Code),
	})
}

// IMDSError is an instance-metadata-service error: status plus the flat body
// {"error":...,"error_description":...}.
type IMDSError struct {
	Status      int
	Err         string
	Description string
}

// Error implements error.
func (e *IMDSError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Err, e.Description) }

// isCode reports whether err is an *ARMError with the given code.
func isCode(err error, code string) bool {
	var ae *ARMError
	return errors.As(err, &ae) && ae.Code == code
}
