package skill

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSignKnownAnswer(t *testing.T) {
	// Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac secret
	got := Sign([]byte("secret"), "1700000000", []byte(`{"a":1}`))
	if !strings.HasPrefix(got, "v1=") || len(got) != 3+64 {
		t.Fatalf("Sign = %q", got)
	}
	if want := "v1=49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686"; got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
}

func TestVerify(t *testing.T) {
	secret := []byte("s3cret")
	now := time.Unix(1_800_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	body := []byte(`{"next_action":"order_lookup"}`)
	good := Sign(secret, ts, body)
	for _, tc := range []struct {
		name    string
		secret  []byte
		ts, sig string
		body    []byte
		want    error
	}{
		{"ok", secret, ts, good, body, nil},
		{"ok among several", secret, ts, "v1=" + strings.Repeat("0", 64) + ", " + good, body, nil},
		{"tampered body", secret, ts, good, []byte(`{"next_action":"cancel"}`), ErrBadSignature},
		{"wrong secret", []byte("other"), ts, good, body, ErrBadSignature},
		{"timestamp changed", secret, strconv.FormatInt(now.Unix()-1, 10), good, body, ErrBadSignature},
		{"stale", secret, strconv.FormatInt(now.Unix()-301, 10), Sign(secret, strconv.FormatInt(now.Unix()-301, 10), body), body, ErrStaleTimestamp},
		{"future", secret, strconv.FormatInt(now.Unix()+301, 10), Sign(secret, strconv.FormatInt(now.Unix()+301, 10), body), body, ErrStaleTimestamp},
		{"within skew", secret, strconv.FormatInt(now.Unix()-300, 10), Sign(secret, strconv.FormatInt(now.Unix()-300, 10), body), body, nil},
		{"not a number", secret, "yesterday", good, body, ErrBadSignature},
		{"huge timestamp", secret, "-9223372036854775808", good, body, ErrStaleTimestamp},
		{"no prefix", secret, ts, strings.TrimPrefix(good, "v1="), body, ErrBadSignature},
		{"bad hex", secret, ts, "v1=zz", body, ErrBadSignature},
		{"empty", secret, ts, "", body, ErrBadSignature},
		{"no secret", nil, ts, good, body, ErrBadSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Verify(tc.secret, tc.ts, tc.sig, tc.body, now, 5*time.Minute)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Verify = %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

func FuzzVerify(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"a":1}`)
	f.Add("1800000000", Sign([]byte("k"), "1800000000", body), body)
	f.Add("1800000000", "v1=,v1=00", body)
	f.Add("x", "", []byte{})
	f.Add("99999999999999999999", "v1="+strings.Repeat("f", 64), body)
	f.Fuzz(func(t *testing.T, ts, sig string, body []byte) {
		err := Verify([]byte("k"), ts, sig, body, now, time.Minute)
		if err == nil && Sign([]byte("k"), ts, body) != strings.TrimSpace(sig) && !strings.Contains(sig, Sign([]byte("k"), ts, body)[3:]) {
			t.Fatalf("accepted a signature that is not ours: ts=%q sig=%q", ts, sig)
		}
	})
}
