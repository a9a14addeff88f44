package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"time"

	"github.com/zhiyin/zhiyin/internal/config"
)

// Config is the `auth:` section. Reloadable on SIGHUP.
type Config struct {
	// AllowLoopback lets requests from 127.0.0.1/::1 in without credentials,
	// as admin. Only allowed while server.listen is a loopback address: a
	// reverse proxy on the same host would make every request look local.
	AllowLoopback bool `yaml:"allow_loopback"`
	// JWT enables bearer tokens when a secret or a public key is set.
	JWT JWTConfig `yaml:"jwt"`
}

// JWTConfig is `auth.jwt`.
type JWTConfig struct {
	// HS256Secret is the shared secret for HS256 tokens, at least 32 bytes.
	HS256Secret config.Secret `yaml:"hs256_secret"`
	// PublicKey is a PEM public key (RSA for RS256, EC P-256 for ES256).
	// Usually given as public_key_file.
	PublicKey config.Secret `yaml:"public_key"`
	// Audience must appear in every token's aud claim. Required when JWT is
	// enabled.
	Audience string `yaml:"audience"`
	// Issuer, when set, must equal every token's iss claim.
	Issuer string `yaml:"issuer"`
	// Leeway tolerates clock skew in exp and nbf.
	Leeway time.Duration `yaml:"leeway"`
	// RoleClaim names the claim holding "admin" or "client" (default role;
	// a token without it is a client).
	RoleClaim string `yaml:"role_claim"`
}

// DefaultConfig returns the built-in defaults: no loopback exemption, no JWT.
func DefaultConfig() Config {
	return Config{JWT: JWTConfig{Leeway: 30 * time.Second, RoleClaim: "role"}}
}

// Enabled reports whether JWT bearer tokens are accepted.
func (c *JWTConfig) Enabled() bool { return c.HS256Secret.IsSet() || c.PublicKey.IsSet() }

// Validate implements config.Validatable.
func (c *JWTConfig) Validate(v *config.Validator) {
	if c.HS256Secret.IsSet() && len(c.HS256Secret.Value()) < 32 {
		v.Errorf("hs256_secret", "must be at least 32 bytes (got %d); generate one with `head -c 48 /dev/urandom | base64`", len(c.HS256Secret.Value()))
	}
	if c.PublicKey.IsSet() {
		if _, _, err := parsePublicKey([]byte(c.PublicKey.Value())); err != nil {
			v.Errorf("public_key", "%v", err)
		}
	}
	if c.Enabled() && c.Audience == "" {
		v.Errorf("audience", "required when JWT is enabled (tokens are checked against it)")
	}
	if c.Leeway < 0 || c.Leeway > 5*time.Minute {
		v.Errorf("leeway", "must be between 0 and 5m, got %s", c.Leeway)
	}
	if c.RoleClaim == "" {
		v.Errorf("role_claim", "required (the default is role)")
	}
}

// parsePublicKey parses a PEM public key and returns it with the JWT
// algorithm it verifies.
func parsePublicKey(pemBytes []byte) (any, string, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, "", fmt.Errorf("not a PEM public key (expected -----BEGIN PUBLIC KEY-----)")
	}
	var key any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			key = cert.PublicKey
		}
	default:
		return nil, "", fmt.Errorf("PEM block %q is not a public key (private keys must never be given to zhiyin)", block.Type)
	}
	if err != nil {
		return nil, "", fmt.Errorf("parse public key: %w", err)
	}
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, "", fmt.Errorf("RSA key has %d bits; at least 2048 are required", k.N.BitLen())
		}
		return k, "RS256", nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, "", fmt.Errorf("EC key is on %s; ES256 needs P-256", k.Curve.Params().Name)
		}
		return k, "ES256", nil
	}
	return nil, "", fmt.Errorf("unsupported public key type %T: use RSA (RS256) or EC P-256 (ES256)", key)
}
