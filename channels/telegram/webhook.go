package telegram

import (
	"crypto/subtle"
	"errors"
	"net/http"

	"github.com/zhiyin/zhiyin/channels"
)

// secretHeader carries setWebhook's secret_token on every webhook call.
const secretHeader = "X-Telegram-Bot-Api-Secret-Token"

// serveWebhook takes one Update. 200 once the sink took it (or it is
// ignored); 401 for a missing or wrong secret; 400 for a body that does not
// parse; 503 when the sink failed, so that Telegram retries.
func (a *Adapter) serveWebhook(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	sink := a.currentSink()
	if sink == nil {
		http.Error(w, ErrNotStarted.Error(), http.StatusServiceUnavailable)
		return
	}
	got := r.Header.Get(secretHeader)
	if len(a.secret) == 0 || subtle.ConstantTimeCompare([]byte(got), a.secret) != 1 {
		sink.Rejected(channels.ReasonSignature)
		http.Error(w, "missing or wrong "+secretHeader, http.StatusUnauthorized)
		return
	}
	body, ok := channels.ReadBody(w, r, a.maxBody, sink)
	if !ok {
		return
	}
	id, m, err := parseUpdate(body, a.identity())
	if err != nil {
		sink.Rejected(channels.ReasonMalformed)
		a.log.Warn("telegram webhook: bad update", logErr, err, logUpdate, id)
		http.Error(w, "malformed update", http.StatusBadRequest)
		return
	}
	if m == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	m.Channel = Name
	switch err := sink.Deliver(r.Context(), m); {
	case err == nil:
		w.WriteHeader(http.StatusOK)
	case errors.Is(err, channels.ErrInvalid):
		a.log.Warn("telegram update refused by the hub", logErr, err, logUpdate, id)
		http.Error(w, "invalid message", http.StatusBadRequest)
	default:
		a.log.Warn("telegram webhook: deliver failed; Telegram will retry", logErr, err, logUpdate, id)
		http.Error(w, "try again later", http.StatusServiceUnavailable)
	}
}
