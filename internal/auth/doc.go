// Package auth decides who a request comes from: API keys (random, stored
// only as SHA-256 hashes, roles admin and client) and JWT bearer tokens
// (HS256 shared secret, or RS256/ES256 public key; exp, nbf and aud checked).
//
// It stores keys through a small DB interface (internal/store satisfies it)
// and knows nothing of HTTP: the server shell turns headers into calls to
// Authenticator.Authenticate and principals into 401/403 answers.
package auth
