package auth

import "errors"

var (
	// ErrNoCredentials is returned by Authenticator.Authenticate when the
	// request carries neither an API key nor a bearer token.
	ErrNoCredentials = errors.New("no credentials")
	// ErrInvalidCredentials is returned by Authenticate and KeyStore.Verify
	// for a malformed, unknown, revoked or expired key or token. Its wrapped
	// message says which, for logs; clients only see a generic 401.
	ErrInvalidCredentials = errors.New("invalid credentials")
	// ErrNotFound is returned by KeyStore.Revoke for an unknown key.
	ErrNotFound = errors.New("no such API key")
	// ErrDuplicateName is returned by KeyStore.Create when an active key
	// already has the name.
	ErrDuplicateName = errors.New("an active API key already has this name")
)

// ValidationError is returned by KeyStore.Create for a bad name or role: the
// caller's mistake, not a failure.
type ValidationError struct{ Msg string }

func (e *ValidationError) Error() string { return e.Msg }
