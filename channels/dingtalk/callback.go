package dingtalk

import (
	"errors"
	"net/http"

	"github.com/zhiyin/zhiyin/channels"
)

// serveCallback handles a robot callback (http mode): DingTalk POSTs the
// robot message with headers timestamp (ms) and sign. It answers 200 once
// the message is committed (or deliberately ignored), 401 for a forged,
// missing, stale or replayed signature, 413/400 for oversize or malformed
// bodies, 503 when the hub could not commit (DingTalk retries).
func (a *Adapter) serveCallback(w http.ResponseWriter, r *http.Request) {
	sink := a.getSink()
	if sink == nil {
		http.Error(w, "not started", http.StatusServiceUnavailable)
		return
	}
	sign := r.Header.Get("sign")
	if reason := verifySign(r.Header.Get("timestamp"), sign, a.cfg.ClientSecret.Value(), a.now()); reason != "" {
		sink.Rejected(reason)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	body, ok := channels.ReadBody(w, r, int64(a.cfg.MaxBody), sink)
	if !ok {
		return
	}
	m, err := parseBotMessage(body, a.now())
	switch {
	case errors.Is(err, errIgnore):
		a.log.Debug("dingtalk: callback ignored", logKeyErr, err)
		w.WriteHeader(http.StatusOK)
		return
	case err != nil:
		sink.Rejected(channels.ReasonMalformed)
		http.Error(w, "malformed robot message", http.StatusBadRequest)
		return
	}
	// The sign covers only the timestamp, not the body: a sign is good for
	// exactly one request.
	if a.guard.Seen(sign) && !a.takeReleased(sign) {
		sink.Rejected(channels.ReasonReplay)
		http.Error(w, "replayed signature", http.StatusUnauthorized)
		return
	}
	m.Channel = a.Name()
	switch err := sink.Deliver(r.Context(), m); {
	case err == nil:
		w.WriteHeader(http.StatusOK)
	case errors.Is(err, channels.ErrInvalid):
		a.log.Warn("dingtalk: callback message refused by the hub", logKeyMsgID, m.ID, logKeyErr, err)
		http.Error(w, "invalid message", http.StatusBadRequest)
	default:
		a.release(sign)
		a.log.Warn("dingtalk: callback not committed; DingTalk will retry", logKeyMsgID, m.ID, logKeyErr, err)
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
	}
}

// release lets one more request with sign through (its delivery failed, so
// DingTalk's retry is not a replay). Bounded by maxReleased.
func (a *Adapter) release(sign string) {
	a.relMu.Lock()
	defer a.relMu.Unlock()
	if len(a.released) >= maxReleased {
		for k := range a.released {
			delete(a.released, k)
			break
		}
	}
	a.released[sign] = struct{}{}
}

// takeReleased reports whether sign was released, forgetting it.
func (a *Adapter) takeReleased(sign string) bool {
	a.relMu.Lock()
	defer a.relMu.Unlock()
	_, ok := a.released[sign]
	delete(a.released, sign)
	return ok
}
