package skill

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/zhiyin/zhiyin/internal/config"
)

// Webhook defaults and limits.
const (
	DefaultWebhookTimeout = 3 * time.Second
	DefaultWebhookRetries = 1
	maxWebhookTimeout     = time.Minute
	maxWebhookRetries     = 10
	maxResponseBody       = 1 << 20 // bytes of a response body read at most
	defaultBackoff        = 200 * time.Millisecond
	wireVersion           = "zhiyin/1"
	requestedSlot         = "requested_slot"
	handoffAction         = "action_handoff"
)

var skillName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// WebhookConfig is one entry of the actions: list: a skill served by an
// HTTP action server.
type WebhookConfig struct {
	// Name is the skill name the domain uses; it is also the action name
	// sent to the server (next_action).
	Name string `yaml:"name"`
	// URL is the action server's webhook, e.g. http://127.0.0.1:5055/webhook.
	URL string `yaml:"url"`
	// Secret signs every call (X-Zhiyin-Signature). Optional: inline,
	// "${ENV}", or secret_file: PATH (read when the configuration loads);
	// never printed. Without one, calls are unsigned.
	Secret config.Secret `yaml:"secret"`
	// Timeout bounds one attempt; 0 means 3s.
	Timeout time.Duration `yaml:"timeout"`
	// Retries is how many more attempts follow a network error, a timeout,
	// a 5xx or a 429; 0 means the default 1, -1 means none.
	Retries int `yaml:"retries"`
}

// Validate implements config.Validatable.
func (c *WebhookConfig) Validate(v *config.Validator) {
	if c.Name == "" {
		v.Errorf("name", "required: the skill name the domain refers to")
	} else if !skillName.MatchString(c.Name) {
		v.Errorf("name", "%q: use letters, digits, '_', '-' and '.'", c.Name)
	}
	if c.URL == "" {
		v.Errorf("url", "required: the action server's webhook, e.g. http://127.0.0.1:5055/webhook")
	} else if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.Errorf("url", "%q is not an http:// or https:// URL with a host", redactURL(c.URL))
	}
	if c.Timeout < 0 || c.Timeout > maxWebhookTimeout {
		v.Errorf("timeout", "must be between 0 (default 3s) and %s, got %s", maxWebhookTimeout, c.Timeout)
	}
	if c.Retries < -1 || c.Retries > maxWebhookRetries {
		v.Errorf("retries", "must be between -1 (none) and %d, got %d", maxWebhookRetries, c.Retries)
	}
}

// redactURL hides a password in a URL for messages.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return "(unparsable URL)"
}

// Webhook is a skill answered by an HTTP action server speaking the Rasa
// action-server protocol. Safe for concurrent use.
type Webhook struct {
	name    string
	url     string
	shown   string // url with any password redacted, for errors
	secret  []byte
	timeout time.Duration
	retries int
	client  *http.Client
	backoff time.Duration // before the first retry; doubles after
	now     func() time.Time
}

var _ Skill = (*Webhook)(nil)

// NewWebhook validates c and returns the skill; it does no I/O. client nil means a plain http.Client; its own Timeout, if
// any, should exceed c.Timeout, which bounds each attempt.
func NewWebhook(c WebhookConfig, client *http.Client) (*Webhook, error) {
	if err := config.Validate(&c); err != nil {
		return nil, fmt.Errorf("webhook %s: %w", c.Name, err)
	}
	secret := []byte(c.Secret.Value())
	if client == nil {
		client = &http.Client{}
	}
	w := &Webhook{
		name: c.Name, url: c.URL, shown: redactURL(c.URL), secret: secret,
		timeout: c.Timeout, retries: c.Retries, client: client,
		backoff: defaultBackoff, now: time.Now,
	}
	if w.timeout == 0 {
		w.timeout = DefaultWebhookTimeout
	}
	switch w.retries {
	case 0:
		w.retries = DefaultWebhookRetries
	case -1:
		w.retries = 0
	}
	return w, nil
}

// Name returns the configured name.
func (w *Webhook) Name() string { return w.name }

// CanHandle is always true: the action server decides.
func (w *Webhook) CanHandle(*Request) bool { return true }

// Handle POSTs the request to the action server and decodes its answer. It
// blocks for at most (retries+1) × timeout plus the backoff between
// attempts, less if ctx ends first. Network errors, timeouts, 5xx and 429
// are retried; 4xx (ErrRejected) and a malformed body (ErrBadResponse) are
// not. When all attempts fail the error wraps ErrTimeout (the last attempt
// timed out) or ErrUnavailable; when ctx ends it wraps ctx.Err().
func (w *Webhook) Handle(ctx context.Context, req *Request) (*Response, error) {
	if req == nil {
		return nil, fmt.Errorf("webhook %s: nil request", w.name)
	}
	body, err := json.Marshal(w.wireRequest(req))
	if err != nil {
		return nil, fmt.Errorf("webhook %s: encode request: %w", w.name, err)
	}
	id := rand.Text()
	attempts := w.retries + 1
	var last error
	for i := range attempts {
		if i > 0 {
			if err := sleep(ctx, w.backoff<<(i-1)); err != nil {
				return nil, fmt.Errorf("webhook %s: gave up after %d of %d attempts (%v): %w", w.name, i, attempts, last, err)
			}
		}
		resp, retry, err := w.attempt(ctx, id, body, req)
		if err == nil {
			return resp, nil
		}
		if !retry || ctx.Err() != nil {
			return nil, fmt.Errorf("webhook %s: %w", w.name, err)
		}
		last = err
	}
	return nil, fmt.Errorf("webhook %s: %d attempts failed, the last: %w", w.name, attempts, last)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// attempt makes one call; retry says whether a failure may be retried.
func (w *Webhook) attempt(ctx context.Context, id string, body []byte, req *Request) (_ *Response, retry bool, _ error) {
	actx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(actx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return nil, false, fmt.Errorf("build request for %s: %w", w.shown, err)
	}
	ts := strconv.FormatInt(w.now().Unix(), 10)
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json")
	hreq.Header.Set("User-Agent", "zhiyin")
	hreq.Header.Set(HeaderTimestamp, ts)
	hreq.Header.Set(HeaderRequestID, id)
	if len(w.secret) > 0 {
		hreq.Header.Set(HeaderSignature, Sign(w.secret, ts, body))
	}
	hresp, err := w.client.Do(hreq)
	if err != nil {
		return nil, true, w.transportErr(ctx, actx, err)
	}
	defer hresp.Body.Close()
	switch code := hresp.StatusCode; {
	case code == http.StatusTooManyRequests || code >= 500:
		_, _ = io.Copy(io.Discard, io.LimitReader(hresp.Body, maxResponseBody))
		return nil, true, fmt.Errorf("%s answered %s: %w", w.shown, hresp.Status, ErrUnavailable)
	case code == http.StatusNoContent:
		return &Response{}, false, nil
	case code < 200 || code > 299:
		snippet, _ := io.ReadAll(io.LimitReader(hresp.Body, 256))
		return nil, false, fmt.Errorf("%s answered %s%s: check the action server's log and that it serves action %q: %w",
			w.shown, hresp.Status, quoteSnippet(snippet), w.nextAction(req), ErrRejected)
	}
	data, err := io.ReadAll(io.LimitReader(hresp.Body, maxResponseBody+1))
	if err != nil {
		return nil, true, w.transportErr(ctx, actx, err)
	}
	if len(data) > maxResponseBody {
		return nil, false, fmt.Errorf("%s: response larger than %d bytes: %w", w.shown, maxResponseBody, ErrBadResponse)
	}
	resp, err := decodeResponse(data, req.Purpose, req.Slot)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", w.shown, err)
	}
	return resp, false, nil
}

// transportErr classifies a failed round trip or body read.
func (w *Webhook) transportErr(ctx, actx context.Context, err error) error {
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("call %s: %w", w.shown, ctx.Err())
	case errors.Is(actx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("call %s: no answer within %s: check the action server or raise the action's timeout: %w", w.shown, w.timeout, ErrTimeout)
	}
	return fmt.Errorf("call %s: %w: %w", w.shown, ErrUnavailable, err)
}

// quoteSnippet shows the start of an error body on one line.
func quoteSnippet(b []byte) string {
	s := strings.ToValidUTF8(string(b), "")
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return ""
	}
	if utf8.RuneCountInString(s) > 120 {
		s = string([]rune(s)[:120]) + "…"
	}
	return " (" + s + ")"
}

// nextAction is the action the server runs: the skill's name, or
// validate_<form> for a validation (rasa-sdk FormValidationAction).
func (w *Webhook) nextAction(req *Request) string {
	if req.Purpose == Validate && req.Form != "" {
		return "validate_" + req.Form
	}
	return w.name
}

// Wire format: the Rasa action-server call.
type wireRequest struct {
	NextAction string      `json:"next_action"`
	SenderID   string      `json:"sender_id"`
	Tracker    wireTracker `json:"tracker"`
	Domain     wireDomain  `json:"domain"`
	Version    string      `json:"version"`
}

type wireTracker struct {
	SenderID         string            `json:"sender_id"`
	Slots            map[string]any    `json:"slots"`
	LatestMessage    wireMessage       `json:"latest_message"`
	LatestActionName string            `json:"latest_action_name"`
	ActiveLoop       map[string]string `json:"active_loop"`
	Events           []any             `json:"events"`
	Paused           bool              `json:"paused"`
	FollowupAction   *string           `json:"followup_action"`
	LatestInputChan  string            `json:"latest_input_channel,omitempty"`
}

type wireMessage struct {
	Text     string       `json:"text"`
	Intent   wireIntent   `json:"intent"`
	Entities []wireEntity `json:"entities"`
}

type wireIntent struct {
	Name       string  `json:"name"`
	Confidence float64 `json:"confidence"`
}

type wireEntity struct {
	Entity string `json:"entity"`
	Value  string `json:"value"`
	Text   string `json:"text,omitempty"` // as written, when it differs from value
}

type wireDomain struct {
	Slots map[string]wireSlot `json:"slots"`
	Forms map[string]wireForm `json:"forms,omitempty"`
}

type wireSlot struct {
	Type     string `json:"type"`
	Mappings []any  `json:"mappings"`
}

type wireForm struct {
	RequiredSlots []string `json:"required_slots"`
}

type wireActionEvent struct {
	Event string `json:"event"`
	Name  string `json:"name"`
}

type wireUserEvent struct {
	Event        string      `json:"event"`
	Text         string      `json:"text"`
	ParseData    wireMessage `json:"parse_data"`
	InputChannel string      `json:"input_channel,omitempty"`
}

type wireSlotEvent struct {
	Event string `json:"event"`
	Name  string `json:"name"`
	Value any    `json:"value"`
}

// wireRequest builds the call. The domain is minimal but never empty: a
// recent rasa-sdk caches the domain and treats an empty one as missing, and
// a FormValidationAction reads the form's required_slots from it.
func (w *Webhook) wireRequest(req *Request) wireRequest {
	msg := wireMessage{
		Text:     req.Text,
		Intent:   wireIntent{Name: req.Intent, Confidence: req.Confidence},
		Entities: make([]wireEntity, 0, len(req.Entities)),
	}
	for _, e := range req.Entities {
		we := wireEntity{Entity: e.Type, Value: e.Value}
		if e.Normalized != "" && e.Normalized != e.Value {
			we.Value, we.Text = e.Normalized, e.Value
		}
		msg.Entities = append(msg.Entities, we)
	}
	slots := make(map[string]any, len(req.Slots)+2)
	domain := wireDomain{Slots: map[string]wireSlot{}}
	for k, v := range req.Slots {
		slots[k] = v
	}
	slots[requestedSlot] = nil
	events := []any{
		wireActionEvent{Event: "action", Name: "action_listen"},
		wireUserEvent{Event: "user", Text: req.Text, ParseData: msg, InputChannel: req.Channel},
	}
	active := map[string]string{}
	switch req.Purpose {
	case Validate:
		if req.Slot != "" {
			// As Rasa does: the candidate is in the slots and is the last
			// event, where FormValidationAction.slots_to_validate finds it.
			slots[req.Slot] = req.Value
			slots[requestedSlot] = req.Slot
			events = append(events, wireSlotEvent{Event: "slot", Name: req.Slot, Value: req.Value})
		}
		if req.Form != "" {
			active["name"] = req.Form
			domain.Forms = map[string]wireForm{req.Form: {RequiredSlots: nonNil(req.Slot)}}
		}
	case Submit:
		if req.Form != "" {
			active["name"] = req.Form
			domain.Forms = map[string]wireForm{req.Form: {RequiredSlots: sortedKeys(req.Slots)}}
		}
	}
	for k := range slots {
		if k != requestedSlot {
			domain.Slots[k] = wireSlot{Type: "any", Mappings: []any{}}
		}
	}
	domain.Slots[requestedSlot] = wireSlot{Type: "any", Mappings: []any{}}
	return wireRequest{
		NextAction: w.nextAction(req),
		SenderID:   req.UserID,
		Tracker: wireTracker{
			SenderID:         req.UserID,
			Slots:            slots,
			LatestMessage:    msg,
			LatestActionName: "action_listen",
			ActiveLoop:       active,
			Events:           events,
			LatestInputChan:  req.Channel,
		},
		Domain:  domain,
		Version: wireVersion,
	}
}

func nonNil(s string) []string {
	if s == "" {
		return []string{}
	}
	return []string{s}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Wire format: the action server's answer.
type wireResponse struct {
	Events    []wireEvent `json:"events"`
	Responses []wireReply `json:"responses"`
}

type wireEvent struct {
	Event string          `json:"event"`
	Name  string          `json:"name"`
	Value json.RawMessage `json:"value"`
}

type wireReply struct {
	Text     *string `json:"text"`
	Markdown bool    `json:"markdown"`
}

// decodeResponse reads an action server's JSON answer. Slot events become
// slot updates (JSON null clears), except requested_slot, which the engine
// owns; for a Validate call, null for the validated slot makes the
// verdict invalid. Responses with text become replies (responses naming a
// domain template only are skipped: the server's domain is not ours). An
// action_handoff action or followup, or a handoff event, asks for a
// hand-off. Anything that is not such JSON wraps ErrBadResponse.
func decodeResponse(data []byte, purpose Purpose, slot string) (*Response, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, fmt.Errorf("decode response: not a JSON object: %w", ErrBadResponse)
	}
	var wr wireResponse
	if err := json.Unmarshal(data, &wr); err != nil {
		return nil, fmt.Errorf("decode response: %w: %v", ErrBadResponse, err)
	}
	resp := &Response{}
	for _, ev := range wr.Events {
		switch ev.Event {
		case "slot":
			if ev.Name == "" || ev.Name == requestedSlot {
				continue
			}
			v, err := slotValue(ev.Value)
			if err != nil {
				return nil, fmt.Errorf("decode response: slot %q: %w: %v", ev.Name, ErrBadResponse, err)
			}
			if resp.Slots == nil {
				resp.Slots = map[string]*string{}
			}
			resp.Slots[ev.Name] = v
		case "handoff":
			resp.Handoff = true
		case "action", "followup":
			if ev.Name == handoffAction {
				resp.Handoff = true
			}
		}
	}
	if purpose == Validate && slot != "" {
		if v, ok := resp.Slots[slot]; ok && v == nil {
			no := false
			resp.Valid = &no
		}
	}
	for _, r := range wr.Responses {
		if r.Text != nil && strings.TrimSpace(*r.Text) != "" {
			resp.Replies = append(resp.Replies, Reply{Text: *r.Text, Markdown: r.Markdown})
		}
	}
	return resp, nil
}

// slotValue turns a JSON slot value into text: strings as they are, numbers
// as written, booleans as true/false, lists and objects as compact JSON;
// null (or no value) is nil.
func slotValue(raw json.RawMessage) (*string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var s string
	switch raw[0] {
	case '"':
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
	case '[', '{':
		var b bytes.Buffer
		if err := json.Compact(&b, raw); err != nil {
			return nil, err
		}
		s = b.String()
	default: // number, true, false: already validated by the decoder
		s = string(raw)
	}
	return &s, nil
}
