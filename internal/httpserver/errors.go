package httpserver

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
)

// Error codes in {"error":{"code": …}}. Stable: clients may switch on them.
const (
	CodeBadRequest       = "bad_request"
	CodeUnauthorized     = "unauthorized"
	CodeForbidden        = "forbidden"
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeRequestTimeout   = "request_timeout"
	CodeConflict         = "conflict"
	CodePayloadTooLarge  = "payload_too_large"
	CodeUnsupportedMedia = "unsupported_media_type"
	CodeHeadersTooLarge  = "headers_too_large"
	CodeRateLimited      = "rate_limited"
	CodeInternal         = "internal"
	CodeUnavailable      = "unavailable"
)

// Error is an error with an HTTP answer. Handlers return it (or wrap it) to
// choose the status, code and message the client sees; any other error is a
// 500 whose details stay in the log.
type Error struct {
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration // sets Retry-After when > 0
	Err        error         // the cause, logged, never shown
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with a formatted message.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorBody is the JSON every error answer carries.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of ErrorBody.
type ErrorDetail struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id,omitempty"`
}

// fromFiber maps fiber's own errors (routing, body limit, timeouts) to ours.
func fromFiber(fe *fiber.Error) *Error {
	code := CodeBadRequest
	msg := fe.Message
	switch fe.Code {
	case fiber.StatusNotFound:
		code, msg = CodeNotFound, "no such route"
	case fiber.StatusMethodNotAllowed:
		code, msg = CodeMethodNotAllowed, "method not allowed on this route"
	case fiber.StatusRequestTimeout:
		code, msg = CodeRequestTimeout, "the request was not received in time"
	case fiber.StatusRequestEntityTooLarge:
		code, msg = CodePayloadTooLarge, "request body too large (see server.body_limit)"
	case fiber.StatusRequestHeaderFieldsTooLarge:
		code, msg = CodeHeadersTooLarge, "request headers too large"
	case fiber.StatusUnsupportedMediaType:
		code = CodeUnsupportedMedia
	case fiber.StatusServiceUnavailable:
		code = CodeUnavailable
	case fiber.StatusTooManyRequests:
		code = CodeRateLimited
	default:
		if fe.Code >= 500 {
			return &Error{Status: fiber.StatusInternalServerError, Code: CodeInternal, Message: "internal error", Err: fe}
		}
	}
	return &Error{Status: fe.Code, Code: code, Message: msg}
}

// toError classifies any error returned by a handler.
func (s *Server) toError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var fe *fiber.Error
	if errors.As(err, &fe) {
		return fromFiber(fe)
	}
	if s.deps.MapError != nil {
		if e := s.deps.MapError(err); e != nil {
			if e.Err == nil {
				e.Err = err
			}
			return e
		}
	}
	return &Error{Status: fiber.StatusInternalServerError, Code: CodeInternal, Message: "internal error", Err: err}
}

// writeError sends e as JSON. A 500's message names the request id so that an
// operator can find the log line.
func writeError(c *fiber.Ctx, e *Error, requestID string) error {
	msg := e.Message
	if e.Status >= 500 && e.Code == CodeInternal && requestID != "" {
		msg = "internal error (request id " + requestID + ")"
	}
	if e.RetryAfter > 0 {
		secs := int((e.RetryAfter + time.Second - 1) / time.Second)
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(secs))
	}
	if e.Status == fiber.StatusUnauthorized {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="zhiyin"`)
	}
	c.Status(e.Status)
	return c.JSON(ErrorBody{Error: ErrorDetail{Code: e.Code, Message: msg, RequestID: requestID}})
}
