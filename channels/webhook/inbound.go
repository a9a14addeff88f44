package webhook

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/zhiyin/zhiyin/channels"
)

// Field limits of an inbound message (bytes): ids beyond them are refused
// with a 400 rather than truncated.
const (
	maxIDLen       = 256
	maxNameLen     = 256
	maxURLLen      = 2048
	maxMedia       = 32
	maxIdemKeyLen  = 128
	maxTimestampSz = 19
)

// inbound is the JSON body of POST /channels/webhook/messages.
type inbound struct {
	ID               string    `json:"id"`
	Conversation     string    `json:"conversation"`
	ConversationType string    `json:"conversation_type"`
	User             inUser    `json:"user"`
	Text             string    `json:"text"`
	Thread           string    `json:"thread"`
	ReplyTo          string    `json:"reply_to"`
	Mentioned        bool      `json:"mentioned"`
	Time             flexTime  `json:"time"`
	Media            []inMedia `json:"media"`
	CallbackURL      string    `json:"callback_url"`
}

type inUser struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type inMedia struct {
	Kind string `json:"kind"`
	URL  string `json:"url"`
	Key  string `json:"key"`
	MIME string `json:"mime"`
	Size int64  `json:"size"`
	Name string `json:"name"`
}

// flexTime is an RFC 3339 string or a unix time in seconds or
// milliseconds.
type flexTime struct{ time.Time }

// Numbers below msThreshold are seconds (it is year 5138 in seconds, 1973
// in milliseconds); up to maxUnixMs they are milliseconds.
const (
	msThreshold = 1e11
	maxUnixMs   = 1e14
)

func (t *flexTime) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		t.Time = time.Time{}
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return errors.New(`"time" must be RFC 3339 ("2024-06-10T08:00:00Z") or unix seconds or milliseconds`)
		}
		t.Time = v.UTC()
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || f < 0 || f >= maxUnixMs || math.IsNaN(f) {
		return errors.New(`"time" must be RFC 3339 ("2024-06-10T08:00:00Z") or unix seconds or milliseconds`)
	}
	if f < msThreshold {
		sec, frac := math.Modf(f)
		t.Time = time.Unix(int64(sec), int64(frac*1e9)).UTC()
	} else {
		t.Time = time.UnixMilli(int64(f)).UTC()
	}
	return nil
}

// badRequest is an inbound message that can never be accepted; its text is
// shown to the sender.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func badf(format string, args ...any) error { return &badRequest{fmt.Sprintf(format, args...)} }

// parseMessage decodes and checks an inbound body into a unified message
// (Channel and DedupKey are the caller's). now stamps messages without a
// time. Errors are *badRequest.
func parseMessage(body []byte, now time.Time) (*channels.Message, error) {
	var in inbound
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return nil, &badRequest{"invalid JSON body: " + jsonReason(err)}
	}
	if len(bytes.TrimSpace(body[dec.InputOffset():])) != 0 {
		return nil, &badRequest{"invalid JSON body: unexpected data after the object"}
	}
	if err := checkID("id", in.ID, true); err != nil {
		return nil, err
	}
	if err := checkID("conversation", in.Conversation, true); err != nil {
		return nil, err
	}
	if err := checkID("user.id", in.User.ID, true); err != nil {
		return nil, err
	}
	if err := checkID("thread", in.Thread, false); err != nil {
		return nil, err
	}
	if err := checkID("reply_to", in.ReplyTo, false); err != nil {
		return nil, err
	}
	name := strings.TrimSpace(in.User.Name)
	if len(name) > maxNameLen {
		return nil, badf(`"user.name" is longer than %d bytes`, maxNameLen)
	}
	var ct channels.ConversationType
	switch in.ConversationType {
	case "", "direct":
		ct = channels.Direct
	case "group":
		ct = channels.Group
	case "channel":
		ct = channels.Channel
	default:
		return nil, badf(`"conversation_type" must be "direct", "group" or "channel", got %q`, in.ConversationType)
	}
	if in.CallbackURL != "" {
		if len(in.CallbackURL) > maxURLLen {
			return nil, badf(`"callback_url" is longer than %d bytes`, maxURLLen)
		}
		if msg := checkURL(in.CallbackURL); msg != "" {
			return nil, badf(`"callback_url": %s`, msg)
		}
	}
	if len(in.Media) > maxMedia {
		return nil, badf(`"media" has %d items; at most %d`, len(in.Media), maxMedia)
	}
	m := &channels.Message{
		Channel:          Name,
		Platform:         Name,
		ID:               in.ID,
		Conversation:     in.Conversation,
		ConversationType: ct,
		Thread:           in.Thread,
		ReplyTo:          in.ReplyTo,
		Sender:           channels.Sender{ID: in.User.ID, Name: name},
		Mentioned:        in.Mentioned,
		Time:             in.Time.Time,
		Text:             strings.TrimSpace(in.Text),
		Handle:           channels.Handle{URL: in.CallbackURL},
		Raw:              json.RawMessage(body),
	}
	if m.Time.IsZero() {
		m.Time = now.UTC()
	}
	if len(in.Media) > 0 {
		m.Media = make([]channels.Media, len(in.Media))
		for i, md := range in.Media {
			var kind channels.MediaKind
			switch md.Kind {
			case "image", "file", "voice", "video":
				kind = channels.MediaKind(md.Kind)
			default:
				return nil, badf(`"media[%d].kind" must be "image", "file", "voice" or "video", got %q`, i, md.Kind)
			}
			if md.URL == "" && md.Key == "" {
				return nil, badf(`"media[%d]" needs a "url" or a "key"`, i)
			}
			if md.URL != "" {
				if len(md.URL) > maxURLLen {
					return nil, badf(`"media[%d].url" is longer than %d bytes`, i, maxURLLen)
				}
				if msg := checkURL(md.URL); msg != "" {
					return nil, badf(`"media[%d].url": %s`, i, msg)
				}
			}
			if len(md.Key) > maxURLLen || len(md.MIME) > maxNameLen || len(md.Name) > maxNameLen {
				return nil, badf(`"media[%d]": key, mime or name too long`, i)
			}
			if md.Size < 0 {
				return nil, badf(`"media[%d].size" must not be negative`, i)
			}
			m.Media[i] = channels.Media{Kind: kind, URL: md.URL, Key: md.Key, MIME: md.MIME, Size: md.Size, Name: md.Name}
		}
	}
	if m.Text == "" && len(m.Media) == 0 {
		return nil, &badRequest{`the message needs "text" or "media"`}
	}
	return m, nil
}

func checkID(field, v string, required bool) error {
	switch {
	case v == "" && required:
		return badf("%q is required", field)
	case len(v) > maxIDLen:
		return badf("%q is longer than %d bytes", field, maxIDLen)
	}
	return nil
}

// jsonReason turns a decoding error into words for the sender.
func jsonReason(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("field %q must be a JSON %s, not %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
		}
		return fmt.Sprintf("expected a JSON %s, not %s", jsonKind(te.Type.Kind().String()), te.Value)
	case errors.Is(err, io.EOF):
		return "the body is empty; send a JSON object"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON ends too early"
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return "unknown field " + f
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "struct", "map":
		return "object"
	case "slice", "array":
		return "array"
	}
	return "number"
}

// Answers.
var (
	acceptedBody = []byte(`{"accepted":true,"duplicate":false}` + "\n")
	jsonCT       = []string{"application/json"}
	retryOne     = []string{"1"}
)

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	b, _ := json.Marshal(errorBody{errorDetail{Code: code, Message: msg}})
	h := w.Header()
	h["Content-Type"] = jsonCT
	h.Set("X-Content-Type-Options", "nosniff")
	if status == http.StatusServiceUnavailable {
		h["Retry-After"] = retryOne
	}
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// serveInbound is the handler of POST /channels/webhook/messages.
func (a *Adapter) serveInbound(w http.ResponseWriter, r *http.Request) {
	box := a.sink.Load()
	if box == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "the webhook channel is not running; retry later")
		return
	}
	sink := box.Sink
	body, ok := a.readBody(w, r, sink)
	if !ok {
		return
	}
	if reason, msg := a.verify(r.Header, body); reason != "" {
		sink.Rejected(reason)
		writeError(w, http.StatusUnauthorized, "unauthorized", msg)
		return
	}
	key := r.Header.Get(HeaderIdempotency)
	if msg := checkIdempotencyKey(key); msg != "" {
		sink.Rejected(channels.ReasonMalformed)
		writeError(w, http.StatusBadRequest, "bad_request", msg)
		return
	}
	m, err := parseMessage(body, a.now())
	if err != nil {
		sink.Rejected(channels.ReasonMalformed)
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	m.DedupKey = key
	if err := sink.Deliver(r.Context(), m); err != nil {
		if errors.Is(err, channels.ErrInvalid) {
			writeError(w, http.StatusBadRequest, "bad_request", err.Error())
			return
		}
		a.log.Warn("webhook: message not stored; the sender should retry", logKeyError, err)
		writeError(w, http.StatusServiceUnavailable, "unavailable", "the message could not be stored now; retry later with a fresh signature and the same Idempotency-Key")
		return
	}
	h := w.Header()
	h["Content-Type"] = jsonCT
	w.WriteHeader(http.StatusAccepted)
	w.Write(acceptedBody)
}

// readBody reads a body of known length in one allocation; anything else
// goes through channels.ReadBody.
func (a *Adapter) readBody(w http.ResponseWriter, r *http.Request, sink channels.Sink) ([]byte, bool) {
	limit := int64(a.cfg.MaxBody)
	n := r.ContentLength
	if n < 0 || n > limit {
		return channels.ReadBody(w, r, limit, sink)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r.Body, body); err != nil {
		sink.Rejected(channels.ReasonMalformed)
		writeError(w, http.StatusBadRequest, "bad_request", "cannot read the request body")
		return nil, false
	}
	return body, true
}

// verify checks the timestamp, the signature and replays. It returns the
// reason and a message for the sender, or "" when the request is genuine
// and new.
func (a *Adapter) verify(h http.Header, body []byte) (channels.Reason, string) {
	ts := h.Get(HeaderTimestamp)
	if ts == "" {
		return channels.ReasonSignature, "missing " + HeaderTimestamp + " (unix seconds)"
	}
	if len(ts) > maxTimestampSz {
		return channels.ReasonSignature, "malformed " + HeaderTimestamp + " (unix seconds)"
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sec < 0 {
		return channels.ReasonSignature, "malformed " + HeaderTimestamp + " (unix seconds)"
	}
	sigText := h.Get(HeaderSignature)
	sigText = strings.TrimPrefix(sigText, "sha256=")
	if sigText == "" {
		return channels.ReasonSignature, "missing " + HeaderSignature
	}
	var got, want [sha256.Size]byte
	if !unhex(&got, sigText) {
		return channels.ReasonSignature, "malformed " + HeaderSignature + " (64 hex digits of HMAC-SHA256)"
	}
	a.macOf(&want, ts, body)
	if !hmac.Equal(got[:], want[:]) {
		return channels.ReasonSignature, "signature mismatch: sign timestamp + \".\" + body with HMAC-SHA256 and the shared secret"
	}
	skew := a.now().Unix() - sec
	if skew < 0 {
		skew = -skew
	}
	if skew > int64(a.cfg.MaxSkew/time.Second) {
		return channels.ReasonStale, HeaderTimestamp + " is too far from the server's clock; sign with the current time"
	}
	if a.replays.Seen(string(want[:])) {
		return channels.ReasonReplay, "this signature was already used; sign a retry afresh with the current time"
	}
	return "", ""
}

// checkIdempotencyKey returns what is wrong with an Idempotency-Key, or "".
func checkIdempotencyKey(k string) string {
	if k == "" {
		return "missing " + HeaderIdempotency + " header (a unique key per message; a retry repeats it)"
	}
	if len(k) > maxIdemKeyLen {
		return fmt.Sprintf("%s is longer than %d bytes", HeaderIdempotency, maxIdemKeyLen)
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return HeaderIdempotency + " must be printable ASCII"
		}
	}
	return ""
}
