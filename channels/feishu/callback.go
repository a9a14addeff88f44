package feishu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/zhiyin/zhiyin/channels"
)

// Callback headers.
const (
	hdrLarkSignature = "X-Lark-Signature"
	hdrLarkTimestamp = "X-Lark-Request-Timestamp"
	hdrLarkNonce     = "X-Lark-Request-Nonce"
)

// deliverTimeout bounds Sink.Deliver: Feishu waits 3 s for the answer.
const deliverTimeout = 2500 * time.Millisecond

// serveEvents is POST /channels/feishu/events.
//
// With encrypt_key set every event must carry a valid X-Lark-Signature, a
// timestamp within max_skew and a nonce not seen before (401 otherwise). The
// one exception is url_verification, which Feishu's console may send
// unsigned: it is answered when it decrypts (so its sender knows the key)
// and carries the right verification_token; an unsigned body that is
// anything else (a plain challenge included), or does not decrypt, is a 401
// too — never a 400, so that
// unsigned requests cannot probe the padding.
func (a *Adapter) serveEvents(w http.ResponseWriter, r *http.Request) {
	sink := a.currentSink()
	if sink == nil {
		http.Error(w, "feishu adapter not started", http.StatusServiceUnavailable)
		return
	}
	body, ok := channels.ReadBody(w, r, int64(a.cfg.MaxBody), sink)
	if !ok {
		return
	}
	key := a.cfg.EncryptKey.Value()
	sig := r.Header.Get(hdrLarkSignature)
	signed := key != "" && sig != ""
	nonce := r.Header.Get(hdrLarkNonce)
	if signed {
		ts := r.Header.Get(hdrLarkTimestamp)
		if !verifySignature(ts, nonce, key, body, sig) {
			a.refuse(w, sink, channels.ReasonSignature, http.StatusUnauthorized, "bad signature")
			return
		}
		sec, err := strconv.ParseInt(ts, 10, 64)
		if err != nil {
			a.refuse(w, sink, channels.ReasonSignature, http.StatusUnauthorized, "bad timestamp")
			return
		}
		if d := a.now().Sub(time.Unix(sec, 0)); d > a.cfg.MaxSkew || d < -a.cfg.MaxSkew {
			a.refuse(w, sink, channels.ReasonStale, http.StatusUnauthorized, "stale timestamp")
			return
		}
		if a.replay.Seen(ts+"\x00"+nonce) && !a.retries.take(ts+"\x00"+nonce) {
			a.refuse(w, sink, channels.ReasonReplay, http.StatusUnauthorized, "replayed nonce")
			return
		}
	}
	p, encrypted, err := a.open(body)
	if err != nil {
		if key != "" && !signed {
			a.refuse(w, sink, channels.ReasonSignature, http.StatusUnauthorized, "missing signature")
			return
		}
		a.log.Warn("feishu: malformed callback", logErr, err)
		a.refuse(w, sink, channels.ReasonMalformed, http.StatusBadRequest, "malformed event")
		return
	}
	if key != "" && !signed && (p.kind != kindChallenge || !encrypted) {
		a.refuse(w, sink, channels.ReasonSignature, http.StatusUnauthorized, "missing signature")
		return
	}
	if want := a.cfg.VerificationToken.Value(); want != "" && !equalSecret(p.token, want) {
		a.refuse(w, sink, channels.ReasonSignature, http.StatusUnauthorized, "bad verification token")
		return
	}
	switch p.kind {
	case kindChallenge:
		writeJSON(w, map[string]string{"challenge": p.challenge})
		return
	case kindIgnore:
		a.log.Debug("feishu: event ignored", logEventType, p.eventType)
		writeJSON(w, struct{}{})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), deliverTimeout)
	defer cancel()
	p.msg.Channel = a.Name()
	switch err := sink.Deliver(ctx, p.msg); {
	case err == nil:
		writeJSON(w, struct{}{})
	case errors.Is(err, channels.ErrInvalid):
		a.log.Warn("feishu: event refused by the inbox", logEventID, p.msg.DedupKey, logErr, err)
		http.Error(w, "invalid message", http.StatusBadRequest)
	default:
		if signed {
			a.retries.add(r.Header.Get(hdrLarkTimestamp) + "\x00" + nonce)
		}
		a.log.Warn("feishu: delivery failed; Feishu will redeliver", logEventID, p.msg.DedupKey, logErr, err)
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
	}
}

// open decrypts body when it is {"encrypt": …} and parses the event; it
// reports whether the body was encrypted.
func (a *Adapter) open(body []byte) (*parsed, bool, error) {
	var outer struct {
		Encrypt *string `json:"encrypt"`
	}
	if err := json.Unmarshal(body, &outer); err != nil {
		return nil, false, fmt.Errorf("parse callback: %w: %v", errMalformed, err)
	}
	if outer.Encrypt == nil {
		p, err := parseEvent(body, a.cfg.BotOpenID, a.now())
		return p, false, err
	}
	key := a.cfg.EncryptKey.Value()
	if key == "" {
		return nil, true, errors.New("encrypted event but no encrypt_key configured: set channels.feishu.encrypt_key to the app's Encrypt Key")
	}
	plain, err := decrypt(key, *outer.Encrypt)
	if err != nil {
		return nil, true, err
	}
	p, err := parseEvent(plain, a.cfg.BotOpenID, a.now())
	return p, true, err
}

func (a *Adapter) refuse(w http.ResponseWriter, sink channels.Sink, reason channels.Reason, status int, msg string) {
	sink.Rejected(reason)
	a.log.Debug("feishu: callback refused", logReason, reason)
	http.Error(w, msg, status)
}

func writeJSON(w http.ResponseWriter, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}
