package codec

import (
	"errors"
	"fmt"
)

// ErrorType is the reason for a local reply. Codecs map it to their
// protocol's own error codes.
type ErrorType uint8

// Local error reasons (Aeraki's ErrorType, plus timeout, unavailable and
// internal, which Aeraki folds into Unspecified).
const (
	ErrRouteNotFound     ErrorType = iota // no route matched the request
	ErrClusterNotFound                    // the route names an unknown cluster
	ErrNoHealthyUpstream                  // the cluster has no usable endpoint
	ErrUnavailable                        // connect failure, upstream closed before answering
	ErrOverloaded                         // rate limited, circuit open, too many requests
	ErrTimeout                            // no answer in time
	ErrBadResponse                        // the upstream sent a frame that could not be decoded
	ErrInternal                           // anything else, including a contained panic
	ErrUnauthorized                       // denied by policy
	ErrUnknownMethod                      // the method does not exist (used by filters and tests)
	ErrBadRequest                         // the request could not be decoded

	// NumErrorTypes is the number of error types; valid types are below it.
	NumErrorTypes
)

var errorTypeNames = [...]string{"route_not_found", "cluster_not_found", "no_healthy_upstream",
	"unavailable", "overloaded", "timeout", "bad_response", "internal", "unauthorized", "unknown_method", "bad_request"}

func (t ErrorType) String() string {
	if int(t) < len(errorTypeNames) {
		return errorTypeNames[t]
	}
	return fmt.Sprintf("error_type(%d)", t)
}

// Error is a local error to be sent to the client with ErrorReply.
type Error struct {
	Type    ErrorType
	Message string
}

func (e *Error) Error() string { return e.Type.String() + ": " + e.Message }

// Errorf returns an *Error of type t.
func Errorf(t ErrorType, format string, args ...any) *Error {
	return &Error{Type: t, Message: fmt.Sprintf(format, args...)}
}

// ErrUnsupported is wrapped by Encode errors for edits a protocol cannot carry.
var ErrUnsupported = errors.New("unsupported by protocol")

// ProtocolError is returned by Split and Decode for bytes that are not a
// valid frame. The connection that sent them is closed.
type ProtocolError struct {
	Protocol string
	Reason   string
}

func (e *ProtocolError) Error() string { return e.Protocol + ": malformed frame: " + e.Reason }

// Malformed returns a *ProtocolError.
func Malformed(protocol, format string, args ...any) error {
	return &ProtocolError{Protocol: protocol, Reason: fmt.Sprintf(format, args...)}
}
