package auth

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
)

// Authenticator turns a request's credentials into a Principal: an API key
// (in "Authorization: Bearer zy_…" or "X-API-Key: zy_…") or a JWT bearer
// token. Safe for concurrent use; SetJWT swaps the JWT configuration
// atomically on reload.
type Authenticator struct {
	keys *KeyStore
	jwt  atomic.Pointer[JWTVerifier]
}

// NewAuthenticator returns an authenticator over keys and an optional JWT
// verifier (nil: bearer tokens other than API keys are refused).
func NewAuthenticator(keys *KeyStore, jwt *JWTVerifier) *Authenticator {
	a := &Authenticator{keys: keys}
	a.jwt.Store(jwt)
	return a
}

// SetJWT replaces the JWT verifier (nil disables JWT).
func (a *Authenticator) SetJWT(v *JWTVerifier) { a.jwt.Store(v) }

// Authenticate checks the Authorization header value and the X-API-Key
// header value. It returns ErrNoCredentials when both are empty, an error
// wrapping ErrInvalidCredentials when they do not check out, or another
// error when the key store cannot be read.
func (a *Authenticator) Authenticate(ctx context.Context, authorization, apiKey string) (Principal, error) {
	if apiKey != "" {
		return a.keys.Verify(ctx, strings.TrimSpace(apiKey))
	}
	if authorization == "" {
		return Principal{}, ErrNoCredentials
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(authorization), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return Principal{}, fmt.Errorf("%w: Authorization must be \"Bearer <token>\"", ErrInvalidCredentials)
	}
	token = strings.TrimSpace(token)
	if strings.HasPrefix(token, KeyPrefix) {
		return a.keys.Verify(ctx, token)
	}
	v := a.jwt.Load()
	if v == nil {
		return Principal{}, fmt.Errorf("%w: bearer token is not an API key and JWT is not enabled", ErrInvalidCredentials)
	}
	return v.Verify(token)
}
