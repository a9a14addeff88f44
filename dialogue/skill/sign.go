package skill

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Signature headers of a webhook call.
const (
	// HeaderTimestamp carries the call's time in Unix seconds.
	HeaderTimestamp = "X-Zhiyin-Timestamp"
	// HeaderSignature carries Sign(secret, timestamp, body).
	HeaderSignature = "X-Zhiyin-Signature"
	// HeaderRequestID is the same on every attempt of one call, so a
	// receiver can drop a retried duplicate.
	HeaderRequestID = "X-Zhiyin-Request-Id"
)

const sigPrefix = "v1="

// Sign returns "v1=" + hex(HMAC-SHA256(secret, ts + "." + body)): the value
// of the X-Zhiyin-Signature header for a body sent at ts (Unix seconds as
// decimal text).
func Sign(secret []byte, ts string, body []byte) string {
	return sigPrefix + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a signed webhook call as its receiver: ts must be Unix
// seconds within skew of now (ErrStaleTimestamp otherwise), and sig (one
// "v1=<hex>" or several separated by commas, as during a secret rotation)
// must hold Sign(secret, ts, body); anything else wraps ErrBadSignature.
// The comparison takes constant time. An empty secret never verifies.
func Verify(secret []byte, ts, sig string, body []byte, now time.Time, skew time.Duration) error {
	if len(secret) == 0 {
		return fmt.Errorf("verify webhook: no secret configured: %w", ErrBadSignature)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("verify webhook: timestamp %.32q is not Unix seconds: %w", ts, ErrBadSignature)
	}
	skewSec := int64(skew / time.Second)
	if n := now.Unix(); sec < n-skewSec || sec > n+skewSec {
		return fmt.Errorf("verify webhook: timestamp %d is more than %s from now (%d): %w", sec, skew, n, ErrStaleTimestamp)
	}
	want := mac(secret, ts, body)
	seen := false
	for part := range strings.SplitSeq(sig, ",") {
		hexSig, ok := strings.CutPrefix(strings.TrimSpace(part), sigPrefix)
		if !ok {
			continue
		}
		got, err := hex.DecodeString(hexSig)
		if err != nil || len(got) != sha256.Size {
			continue
		}
		seen = true
		if hmac.Equal(got, want) {
			return nil
		}
	}
	if !seen {
		return fmt.Errorf("verify webhook: no v1=<64 hex digits> signature in %s: %w", HeaderSignature, ErrBadSignature)
	}
	return fmt.Errorf("verify webhook: signature does not match the body: %w", ErrBadSignature)
}
