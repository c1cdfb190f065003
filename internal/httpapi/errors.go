package httpapi

import (
	"errors"
	"net/http"

	"github.com/keyward/keyward/internal/core"
	"github.com/keyward/keyward/internal/logical"
)

// statusOf is the one table mapping errors to HTTP statuses and public
// messages. An empty message renders as {"errors":[]}. Anything not in the
// table is a 500 whose detail is logged, not sent.
func statusOf(err error) (status int, msg string, internal bool) {
	var coded *logical.CodedError
	var noRoute *core.ErrNoRoute
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge, "http: request body too large", false
	case errors.Is(err, core.ErrSealed):
		return http.StatusServiceUnavailable, "Vault is sealed", false
	case errors.As(err, &coded):
		return coded.Status, coded.Msg, false
	case errors.As(err, &noRoute):
		return http.StatusNotFound, noRoute.Error(), false
	case errors.Is(err, logical.ErrPermissionDenied):
		return http.StatusForbidden, "permission denied", false
	case errors.Is(err, logical.ErrUnsupportedPath):
		return http.StatusNotFound, "unsupported path", false
	case errors.Is(err, logical.ErrUnsupportedOperation):
		return http.StatusMethodNotAllowed, "unsupported operation", false
	case errors.Is(err, logical.ErrInvalidRequest):
		return http.StatusBadRequest, "invalid request", false
	case errors.Is(err, logical.ErrRateLimited):
		return http.StatusTooManyRequests, "rate limit quota exceeded", false
	case errors.Is(err, logical.ErrUpstream):
		return http.StatusBadGateway, err.Error(), false
	case errors.Is(err, logical.ErrNotFound):
		return http.StatusNotFound, "", false
	default:
		return http.StatusInternalServerError, "internal error", true
	}
}
