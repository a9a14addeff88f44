package sip

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"time"

	"github.com/icholy/digest"
)

// nonceLifetime is how long a challenge's nonce is honoured; an older one
// gets a fresh 401 with stale=true (the caller retries without asking the
// user), never a 403.
const nonceLifetime = 5 * time.Minute

// authVerdict is what digestAuth decided about one request.
type authVerdict int

const (
	authOK        authVerdict = iota
	authChallenge             // no credentials, or a stale nonce: 401
	authForbidden             // credentials present and wrong: 403
)

// digestAuth checks RFC 2617/3261 digest credentials (MD5, qop=auth)
// against one user. Nonces are stateless: a timestamp and its HMAC under a
// per-server random key, so a restart invalidates old ones and no table
// grows. Safe for concurrent use.
type digestAuth struct {
	user, password, realm string
	key                   [32]byte
	now                   func() time.Time
}

func newDigestAuth(cfg AuthConfig, now func() time.Time) *digestAuth {
	a := &digestAuth{user: cfg.Username, password: cfg.Password.Value(), realm: cfg.Realm, now: now}
	if a.realm == "" {
		a.realm = "zhiyin"
	}
	_, _ = rand.Read(a.key[:])
	return a
}

func (a *digestAuth) nonce() string {
	var b [8 + 16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(a.now().UnixNano()))
	m := hmac.New(sha256.New, a.key[:])
	m.Write(b[:8])
	copy(b[8:], m.Sum(nil))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// nonceFresh reports whether n is one of ours and still within its lifetime.
func (a *digestAuth) nonceFresh(n string) (ours, fresh bool) {
	b, err := base64.RawURLEncoding.DecodeString(n)
	if err != nil || len(b) != 24 {
		return false, false
	}
	m := hmac.New(sha256.New, a.key[:])
	m.Write(b[:8])
	if !hmac.Equal(m.Sum(nil)[:16], b[8:]) {
		return false, false
	}
	age := a.now().Sub(time.Unix(0, int64(binary.BigEndian.Uint64(b[:8]))))
	return true, age >= -time.Minute && age <= nonceLifetime
}

// challenge is the WWW-Authenticate value for a 401.
func (a *digestAuth) challenge(stale bool) string {
	c := digest.Challenge{Realm: a.realm, Nonce: a.nonce(), Algorithm: "MD5", QOP: []string{"auth"}, Stale: stale}
	return c.String()
}

// check decides on an Authorization header value ("" when absent).
func (a *digestAuth) check(header, method string) (authVerdict, bool) {
	if header == "" {
		return authChallenge, false
	}
	cred, err := digest.ParseCredentials(header)
	if err != nil {
		return authForbidden, false
	}
	ours, fresh := a.nonceFresh(cred.Nonce)
	if !ours {
		// A nonce we never issued (another server's, or forged): challenge
		// afresh rather than judge the password against it.
		return authChallenge, false
	}
	if !fresh {
		return authChallenge, true
	}
	if cred.Username != a.user || (cred.Realm != "" && cred.Realm != a.realm) {
		return authForbidden, false
	}
	chal := &digest.Challenge{Realm: a.realm, Nonce: cred.Nonce, Algorithm: cred.Algorithm}
	if cred.QOP != "" {
		chal.QOP = []string{cred.QOP}
	}
	if alg := cred.Algorithm; alg != "" && alg != "MD5" && alg != "md5" {
		return authForbidden, false
	}
	want, err := digest.Digest(chal, digest.Options{
		Method: method, URI: cred.URI, Username: a.user, Password: a.password,
		Cnonce: cred.Cnonce, Count: cred.Nc,
	})
	if err != nil {
		return authForbidden, false
	}
	if subtle.ConstantTimeCompare([]byte(want.Response), []byte(cred.Response)) != 1 {
		return authForbidden, false
	}
	return authOK, false
}
