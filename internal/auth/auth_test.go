package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/zhiyin/zhiyin/internal/config"
	"github.com/zhiyin/zhiyin/internal/store"
	"github.com/zhiyin/zhiyin/internal/store/storetest"
)

// newTestDB opens a real store with this package's migrations.
func newTestDB(t *testing.T) *store.DB {
	return storetest.Open(t, storetest.Fast(), store.MigrationSet{Component: MigrationComponent, FS: Migrations()})
}

func TestAPIKeyLifecycle(t *testing.T) {
	ctx := context.Background()
	ks := NewKeyStore(newTestDB(t))
	plain, k, err := ks.Create(ctx, "crm integration", RoleClient)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(plain, KeyPrefix+k.ID+"_") || len(plain) != len(KeyPrefix)+12+1+52 {
		t.Fatalf("key %q has the wrong shape", plain)
	}
	p, err := ks.Verify(ctx, plain)
	if err != nil {
		t.Fatal(err)
	}
	if p.Role != RoleClient || p.Subject != "key:"+k.ID || p.Kind != KindAPIKey {
		t.Errorf("principal = %+v", p)
	}
	// The plaintext is not stored.
	var stored []byte
	if err := ks.db.Read().QueryRow(`SELECT secret_sha256 FROM api_keys WHERE id = ?`, k.ID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(stored), plain[len(KeyPrefix)+13:]) || len(stored) != 32 {
		t.Errorf("stored secret is not a 32-byte hash: %q", stored)
	}
	// Wrong secret, malformed, unknown.
	bad := plain[:len(plain)-1] + map[bool]string{true: "b", false: "a"}[plain[len(plain)-1] == 'a']
	for _, presented := range []string{bad, "zy_short", "nope", KeyPrefix + "aaaaaaaaaaaa_" + strings.Repeat("a", 52)} {
		if _, err := ks.Verify(ctx, presented); !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("Verify(%q) = %v, want ErrInvalidCredentials", presented, err)
		}
	}
	// Duplicate active name refused; after revoke the name is free again.
	if _, _, err := ks.Create(ctx, "crm integration", RoleAdmin); !errors.Is(err, ErrDuplicateName) {
		t.Errorf("duplicate name: %v", err)
	}
	if _, err := ks.Revoke(ctx, "crm integration"); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Verify(ctx, plain); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("revoked key verified: %v", err)
	}
	if _, err := ks.Revoke(ctx, k.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("second revoke: %v", err)
	}
	if _, _, err := ks.Create(ctx, "crm integration", RoleAdmin); err != nil {
		t.Errorf("name not reusable after revoke: %v", err)
	}
	keys, err := ks.List(ctx, false)
	if err != nil || len(keys) != 1 || keys[0].Role != RoleAdmin {
		t.Errorf("List active = %+v, %v", keys, err)
	}
	all, _ := ks.List(ctx, true)
	if len(all) != 2 {
		t.Errorf("List all = %d keys", len(all))
	}
	// Usage is recorded by FlushUsage.
	if err := ks.FlushUsage(ctx); err != nil {
		t.Fatal(err)
	}
	all, _ = ks.List(ctx, true)
	for _, k := range all {
		if k.RevokedAt != nil && k.LastUsed == nil {
			t.Errorf("key %s used once but has no last_used_at", k.ID)
		}
	}
}

func TestAPIKeyBadInput(t *testing.T) {
	ks := NewKeyStore(newTestDB(t))
	for _, name := range []string{"", strings.Repeat("x", 65), "tab\there", "nl\n"} {
		if _, _, err := ks.Create(context.Background(), name, RoleClient); err == nil {
			t.Errorf("Create(%q) accepted", name)
		}
	}
	if _, _, err := ks.Create(context.Background(), "ok", Role("root")); err == nil {
		t.Error("unknown role accepted")
	}
}

func hsConfig() JWTConfig {
	c := DefaultConfig().JWT
	c.HS256Secret = config.NewSecret(strings.Repeat("k", 40))
	c.Audience = "zhiyin"
	c.Leeway = 0
	return c
}

func sign(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestJWTHS256(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	v, err := NewJWTVerifier(hsConfig())
	if err != nil {
		t.Fatal(err)
	}
	v.now = func() time.Time { return now }
	key := []byte(strings.Repeat("k", 40))
	base := func() jwt.MapClaims {
		return jwt.MapClaims{"sub": "user-42", "aud": "zhiyin", "exp": now.Add(time.Hour).Unix()}
	}
	with := func(k string, val any) jwt.MapClaims { c := base(); c[k] = val; return c }
	without := func(k string) jwt.MapClaims { c := base(); delete(c, k); return c }

	p, err := v.Verify(sign(t, jwt.SigningMethodHS256, key, base()))
	if err != nil || p.Subject != "user-42" || p.Role != RoleClient {
		t.Fatalf("valid token: %+v, %v", p, err)
	}
	p, err = v.Verify(sign(t, jwt.SigningMethodHS256, key, with("role", "admin")))
	if err != nil || p.Role != RoleAdmin {
		t.Fatalf("admin token: %+v, %v", p, err)
	}
	cases := map[string]string{
		"expired":          sign(t, jwt.SigningMethodHS256, key, with("exp", now.Add(-time.Second).Unix())),
		"not yet valid":    sign(t, jwt.SigningMethodHS256, key, with("nbf", now.Add(time.Minute).Unix())),
		"wrong audience":   sign(t, jwt.SigningMethodHS256, key, with("aud", "other")),
		"no audience":      sign(t, jwt.SigningMethodHS256, key, without("aud")),
		"no exp":           sign(t, jwt.SigningMethodHS256, key, without("exp")),
		"no sub":           sign(t, jwt.SigningMethodHS256, key, without("sub")),
		"bad role":         sign(t, jwt.SigningMethodHS256, key, with("role", "root")),
		"wrong key":        sign(t, jwt.SigningMethodHS256, []byte(strings.Repeat("x", 40)), base()),
		"HS512 not on":     sign(t, jwt.SigningMethodHS512, key, base()),
		"alg none":         sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, base()),
		"garbage":          "a.b.c",
		"empty":            "",
		"audience list ok": "",
	}
	delete(cases, "audience list ok")
	for name, tok := range cases {
		if _, err := v.Verify(tok); !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("%s: got %v, want ErrInvalidCredentials", name, err)
		}
	}
	// aud as a list containing ours is accepted.
	if _, err := v.Verify(sign(t, jwt.SigningMethodHS256, key, with("aud", []string{"x", "zhiyin"}))); err != nil {
		t.Errorf("audience list: %v", err)
	}
	// Leeway tolerates small skew.
	cfg := hsConfig()
	cfg.Leeway = 30 * time.Second
	lv, _ := NewJWTVerifier(cfg)
	lv.now = v.now
	if _, err := lv.Verify(sign(t, jwt.SigningMethodHS256, key, with("exp", now.Add(-10*time.Second).Unix()))); err != nil {
		t.Errorf("leeway: %v", err)
	}
}

func pemPublic(t *testing.T, pub any) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func TestJWTPublicKeys(t *testing.T) {
	now := time.Now()
	claims := jwt.MapClaims{"sub": "u", "aud": "zhiyin", "exp": now.Add(time.Hour).Unix()}
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, tc := range []struct {
		name   string
		pub    any
		method jwt.SigningMethod
		priv   any
	}{
		{"RS256", &rsaKey.PublicKey, jwt.SigningMethodRS256, rsaKey},
		{"ES256", &ecKey.PublicKey, jwt.SigningMethodES256, ecKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pubPEM := pemPublic(t, tc.pub)
			cfg := DefaultConfig().JWT
			cfg.PublicKey = config.NewSecret(pubPEM)
			cfg.Audience = "zhiyin"
			v, err := NewJWTVerifier(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.Verify(sign(t, tc.method, tc.priv, claims)); err != nil {
				t.Fatalf("valid %s token: %v", tc.name, err)
			}
			// Algorithm confusion: an HS256 token keyed with the public key
			// text must not verify.
			forged := sign(t, jwt.SigningMethodHS256, []byte(pubPEM), claims)
			if _, err := v.Verify(forged); !errors.Is(err, ErrInvalidCredentials) {
				t.Errorf("HS256 token keyed with the public key accepted: %v", err)
			}
		})
	}
}

func TestJWTConfigValidate(t *testing.T) {
	rsaSmall, _ := rsa.GenerateKey(rand.Reader, 1024)
	ecP384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	privDER, _ := x509.MarshalPKCS8PrivateKey(rsaSmall)
	cases := []struct {
		name string
		mod  func(c *JWTConfig)
		want string
	}{
		{"short secret", func(c *JWTConfig) { c.HS256Secret = config.NewSecret("short"); c.Audience = "a" }, "jwt.hs256_secret: must be at least 32 bytes (got 5); generate one with `head -c 48 /dev/urandom | base64`"},
		{"no audience", func(c *JWTConfig) { c.HS256Secret = config.NewSecret(strings.Repeat("k", 32)) }, "jwt.audience: required when JWT is enabled (tokens are checked against it)"},
		{"not pem", func(c *JWTConfig) { c.PublicKey = config.NewSecret("hello"); c.Audience = "a" }, "jwt.public_key: not a PEM public key (expected -----BEGIN PUBLIC KEY-----)"},
		{"private key", func(c *JWTConfig) {
			c.PublicKey = config.NewSecret(string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})))
			c.Audience = "a"
		}, `jwt.public_key: PEM block "PRIVATE KEY" is not a public key (private keys must never be given to zhiyin)`},
		{"small rsa", func(c *JWTConfig) {
			c.PublicKey = config.NewSecret(pemPublic(t, &rsaSmall.PublicKey))
			c.Audience = "a"
		}, "jwt.public_key: RSA key has 1024 bits; at least 2048 are required"},
		{"p384", func(c *JWTConfig) { c.PublicKey = config.NewSecret(pemPublic(t, &ecP384.PublicKey)); c.Audience = "a" }, "jwt.public_key: EC key is on P-384; ES256 needs P-256"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mod(&c.JWT)
			v := config.NewValidator("")
			c.JWT.Validate(v.Sub("jwt"))
			if err := v.Err(); err == nil || err.Error() != tc.want {
				t.Errorf("got %v\nwant %s", err, tc.want)
			}
		})
	}
}

func TestAuthenticator(t *testing.T) {
	ctx := context.Background()
	ks := NewKeyStore(newTestDB(t))
	plain, _, _ := ks.Create(ctx, "k", RoleAdmin)
	a := NewAuthenticator(ks, nil)
	if _, err := a.Authenticate(ctx, "", ""); !errors.Is(err, ErrNoCredentials) {
		t.Errorf("no credentials: %v", err)
	}
	for _, h := range []string{"Bearer " + plain, "bearer  " + plain} {
		if p, err := a.Authenticate(ctx, h, ""); err != nil || !p.IsAdmin() {
			t.Errorf("%q: %+v %v", h, p, err)
		}
	}
	if p, err := a.Authenticate(ctx, "", plain); err != nil || !p.IsAdmin() {
		t.Errorf("X-API-Key: %+v %v", p, err)
	}
	for _, h := range []string{"Basic abc", "Bearer", "Bearer eyJ.x.y"} {
		if _, err := a.Authenticate(ctx, h, ""); !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("%q: %v", h, err)
		}
	}
	// Enabling JWT at run time.
	v, _ := NewJWTVerifier(hsConfig())
	a.SetJWT(v)
	tok := sign(t, jwt.SigningMethodHS256, []byte(strings.Repeat("k", 40)), jwt.MapClaims{"sub": "s", "aud": "zhiyin", "exp": time.Now().Add(time.Minute).Unix()})
	if p, err := a.Authenticate(ctx, "Bearer "+tok, ""); err != nil || p.Kind != KindJWT {
		t.Errorf("jwt: %+v %v", p, err)
	}
}

func TestPrincipalCanAccess(t *testing.T) {
	c := Principal{Role: RoleClient, Subject: "key:a"}
	if !c.CanAccess("key:a") || c.CanAccess("key:b") || c.CanAccess("") {
		t.Error("client access rules wrong")
	}
	if !(Principal{Role: RoleAdmin}).CanAccess("anyone") {
		t.Error("admin denied")
	}
}

func FuzzParseKey(f *testing.F) {
	f.Add("zy_abcdefghijkl_" + strings.Repeat("a", 52))
	f.Add("zy__")
	f.Fuzz(func(t *testing.T, s string) {
		id, secret, ok := ParseKey(s)
		if ok && (len(id) != 12 || len(secret) != 52 || !strings.HasPrefix(s, KeyPrefix)) {
			t.Fatalf("accepted %q", s)
		}
	})
}

func FuzzJWTVerify(f *testing.F) {
	f.Add("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig")
	f.Add("a.b.c")
	v, _ := NewJWTVerifier(hsConfig())
	f.Fuzz(func(t *testing.T, tok string) {
		if p, err := v.Verify(tok); err == nil {
			t.Fatalf("fuzzed token verified: %+v", p)
		}
	})
}
