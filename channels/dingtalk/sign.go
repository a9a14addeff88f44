package dingtalk

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"time"

	"github.com/zhiyin/zhiyin/channels"
)

// signWindow is how far a callback's timestamp may be from our clock
// (DingTalk: "more than 1 hour apart is an illegal request").
const signWindow = time.Hour

// Sign returns DingTalk's robot signature of timestamp (milliseconds, in
// decimal) with secret: base64(HMAC-SHA256(key = secret, msg = timestamp +
// "\n" + secret)). Robot callbacks carry it in the sign header; custom robot
// sends put it, URL-encoded, in the sign query parameter.
func Sign(timestamp, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'\n'})
	mac.Write([]byte(secret))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// verifySign checks a callback's timestamp and sign headers against secret
// at now. It returns "" when they are good, else the reason to refuse.
func verifySign(timestamp, sign, secret string, now time.Time) channels.Reason {
	if timestamp == "" || sign == "" || secret == "" {
		return channels.ReasonSignature
	}
	ms, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil || ms <= 0 {
		return channels.ReasonSignature
	}
	// Compare in milliseconds: no overflow for any positive int64 against a
	// sane clock.
	if d := now.UnixMilli() - ms; d > signWindow.Milliseconds() || d < -signWindow.Milliseconds() {
		return channels.ReasonStale
	}
	want := Sign(timestamp, secret)
	if !hmac.Equal([]byte(want), []byte(sign)) {
		return channels.ReasonSignature
	}
	return ""
}
