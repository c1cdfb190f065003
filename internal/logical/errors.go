package logical

import (
	"errors"
	"fmt"
)

// Sentinel errors. internal/httpapi maps them to HTTP statuses in its one
// error table; nobody matches on their strings.
var (
	// ErrPermissionDenied: the caller may not do this (403).
	ErrPermissionDenied = errors.New("permission denied")
	// ErrUnsupportedPath: nothing is routed at this path (404).
	ErrUnsupportedPath = errors.New("unsupported path")
	// ErrUnsupportedOperation: the path exists but not this operation (405).
	ErrUnsupportedOperation = errors.New("unsupported operation")
	// ErrInvalidRequest: the request is malformed (400).
	ErrInvalidRequest = errors.New("invalid request")
	// ErrRateLimited: too many requests (429).
	ErrRateLimited = errors.New("rate limit quota exceeded")
	// ErrUpstream: a dependency such as Azure failed (502 unless coded).
	ErrUpstream = errors.New("upstream service failed")
)

// CodedError is an error with an explicit HTTP status and a public message.
// Err, when set, is the internal cause: logged, never sent to the client.
type CodedError struct {
	Status int
	Msg    string
	Err    error
}

// Error returns the public message.
func (e *CodedError) Error() string { return e.Msg }

// Unwrap returns the internal cause.
func (e *CodedError) Unwrap() error { return e.Err }

// Errorf returns a *CodedError with the given status and message.
func Errorf(status int, format string, args ...any) error {
	return &CodedError{Status: status, Msg: fmt.Sprintf(format, args...)}
}

// BadRequest returns a 400 *CodedError; use it for validation failures.
func BadRequest(format string, args ...any) error {
	return &CodedError{Status: 400, Msg: fmt.Sprintf(format, args...), Err: ErrInvalidRequest}
}

// Denied returns a 403 *CodedError whose message replaces the generic
// "permission denied" (Vault's auth methods explain why a login failed).
func Denied(format string, args ...any) error {
	return &CodedError{Status: 403, Msg: fmt.Sprintf(format, args...), Err: ErrPermissionDenied}
}
