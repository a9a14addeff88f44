package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// JWTVerifier checks bearer tokens against one configuration. Safe for
// concurrent use; build a new one to change the configuration.
type JWTVerifier struct {
	cfg     JWTConfig
	hmacKey []byte
	pubKey  any
	pubAlg  string
	methods []string
	now     func() time.Time
}

// NewJWTVerifier builds a verifier from a validated configuration. It
// returns nil, nil when JWT is not enabled.
func NewJWTVerifier(cfg JWTConfig) (*JWTVerifier, error) {
	if !cfg.Enabled() {
		return nil, nil
	}
	v := &JWTVerifier{cfg: cfg, now: time.Now}
	if cfg.HS256Secret.IsSet() {
		v.hmacKey = []byte(cfg.HS256Secret.Value())
		v.methods = append(v.methods, "HS256")
	}
	if cfg.PublicKey.IsSet() {
		key, alg, err := parsePublicKey([]byte(cfg.PublicKey.Value()))
		if err != nil {
			return nil, fmt.Errorf("auth.jwt.public_key: %w", err)
		}
		v.pubKey, v.pubAlg = key, alg
		v.methods = append(v.methods, alg)
	}
	return v, nil
}

// Verify parses and checks a token: signature (only the configured
// algorithms; "none" never), exp (required), nbf, aud, iss, and the role
// claim. Errors wrap ErrInvalidCredentials with the reason.
func (v *JWTVerifier) Verify(token string) (Principal, error) {
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(v.methods),
		jwt.WithAudience(v.cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(v.cfg.Leeway),
		jwt.WithTimeFunc(v.now),
	}
	if v.cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(v.cfg.Issuer))
	}
	claims := jwt.MapClaims{}
	_, err := jwt.NewParser(opts...).ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		switch t.Method.Alg() {
		case "HS256":
			return v.hmacKey, nil
		case v.pubAlg:
			return v.pubKey, nil
		}
		return nil, fmt.Errorf("algorithm %s not accepted", t.Method.Alg())
	})
	if err != nil {
		return Principal{}, fmt.Errorf("%w: token: %s", ErrInvalidCredentials, jwtReason(err))
	}
	sub, _ := claims.GetSubject()
	if sub == "" {
		return Principal{}, fmt.Errorf("%w: token has no sub claim", ErrInvalidCredentials)
	}
	role := RoleClient
	if raw, ok := claims[v.cfg.RoleClaim]; ok {
		s, _ := raw.(string)
		r, err := ParseRole(s)
		if err != nil {
			return Principal{}, fmt.Errorf("%w: token claim %s: %v", ErrInvalidCredentials, v.cfg.RoleClaim, err)
		}
		role = r
	}
	id := sub
	if jti, ok := claims["jti"].(string); ok && jti != "" {
		id = jti
	}
	return Principal{Kind: KindJWT, ID: id, Subject: sub, Role: role}, nil
}

// jwtReason turns the library's errors into short reasons for logs.
func jwtReason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "not valid yet (nbf)"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "wrong audience"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "wrong issuer"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "missing required claim (exp)"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "bad signature"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "unverifiable (algorithm not accepted)"
	}
	return err.Error()
}
