package wecom

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zhiyin/zhiyin/channels"
)

// envelope is the outer XML of a callback POST.
type envelope struct {
	XMLName    xml.Name `xml:"xml"`
	ToUserName string   `xml:"ToUserName"`
	Encrypt    string   `xml:"Encrypt"`
	AgentID    string   `xml:"AgentID"`
}

// parseEnvelope parses the outer XML of a callback POST. It requires an
// <Encrypt> element.
func parseEnvelope(body []byte) (envelope, error) {
	var env envelope
	if err := xml.Unmarshal(body, &env); err != nil {
		return envelope{}, fmt.Errorf("parse callback envelope: %w", err)
	}
	env.Encrypt = strings.TrimSpace(env.Encrypt)
	if env.Encrypt == "" {
		return envelope{}, errors.New("parse callback envelope: no Encrypt element")
	}
	return env, nil
}

// inbound is the decrypted XML of an app message or event.
type inbound struct {
	XMLName      xml.Name `xml:"xml"`
	ToUserName   string   `xml:"ToUserName"`
	FromUserName string   `xml:"FromUserName"`
	CreateTime   string   `xml:"CreateTime"`
	MsgType      string   `xml:"MsgType"`
	MsgID        string   `xml:"MsgId"`
	AgentID      string   `xml:"AgentID"`
	Content      string   `xml:"Content"`
	PicURL       string   `xml:"PicUrl"`
	MediaID      string   `xml:"MediaId"`
	Format       string   `xml:"Format"`
	ThumbMediaID string   `xml:"ThumbMediaId"`
	FileName     string   `xml:"FileName"`
	FileSize     string   `xml:"FileSize"`
	LocationX    string   `xml:"Location_X"`
	LocationY    string   `xml:"Location_Y"`
	Scale        string   `xml:"Scale"`
	Label        string   `xml:"Label"`
	Title        string   `xml:"Title"`
	Description  string   `xml:"Description"`
	URL          string   `xml:"Url"`
	Event        string   `xml:"Event"`
	ChatID       string   `xml:"ChatId"`
	ChatType     string   `xml:"ChatType"`
}

// parseInbound parses a decrypted message.
func parseInbound(plain []byte) (inbound, error) {
	var in inbound
	if err := xml.Unmarshal(plain, &in); err != nil {
		return inbound{}, fmt.Errorf("parse callback message: %w", err)
	}
	in.MsgType = strings.ToLower(strings.TrimSpace(in.MsgType))
	if in.MsgType == "" {
		return inbound{}, errors.New("parse callback message: no MsgType")
	}
	return in, nil
}

// serveCallback answers GET (URL verification) and POST (messages) on
// CallbackPath. Mounted without API-key auth: every request is verified
// against the callback token here.
func (a *Adapter) serveCallback(w http.ResponseWriter, r *http.Request) {
	sink := a.currentSink()
	if sink == nil {
		// Not started (or stopping): WeCom retries later.
		http.Error(w, "not ready", http.StatusServiceUnavailable)
		return
	}
	switch r.Method {
	case http.MethodGet:
		a.handleVerify(w, r, sink)
	case http.MethodPost:
		a.handlePost(w, r, sink)
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// query is the signed part of a callback URL.
type query struct {
	signature, timestamp, nonce string
}

func readQuery(r *http.Request) query {
	q := r.URL.Query()
	return query{signature: q.Get("msg_signature"), timestamp: q.Get("timestamp"), nonce: q.Get("nonce")}
}

// check verifies the signature over encrypt and the timestamp's skew; on
// failure it has answered 401 and reported the refusal.
func (a *Adapter) check(w http.ResponseWriter, sink channels.Sink, q query, encrypt string) bool {
	if q.signature == "" || q.timestamp == "" || q.nonce == "" || !a.crypto.Verify(q.signature, q.timestamp, q.nonce, encrypt) {
		sink.Rejected(channels.ReasonSignature)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return false
	}
	ts, err := strconv.ParseInt(q.timestamp, 10, 64)
	if err != nil || ts <= 0 || ts > 1<<40 {
		sink.Rejected(channels.ReasonStale)
		http.Error(w, "bad timestamp", http.StatusUnauthorized)
		return false
	}
	if skew := a.now().Sub(time.Unix(ts, 0)).Abs(); skew > a.cfg.MaxSkew {
		sink.Rejected(channels.ReasonStale)
		http.Error(w, "stale timestamp", http.StatusUnauthorized)
		return false
	}
	return true
}

// handleVerify answers the URL check WeCom makes when the callback URL is
// saved: the decrypted echostr, bare, within 1 s.
func (a *Adapter) handleVerify(w http.ResponseWriter, r *http.Request, sink channels.Sink) {
	q := readQuery(r)
	// The echostr is base64 and WeCom does not always escape its '+'; a
	// query parser turns those into spaces, which base64 never contains.
	echo := strings.ReplaceAll(r.URL.Query().Get("echostr"), " ", "+")
	if echo == "" {
		sink.Rejected(channels.ReasonMalformed)
		http.Error(w, "missing echostr", http.StatusBadRequest)
		return
	}
	if !a.check(w, sink, q, echo) {
		return
	}
	msg, _, err := a.crypto.Decrypt(echo)
	if err != nil {
		sink.Rejected(channels.ReasonMalformed)
		http.Error(w, "cannot decrypt echostr", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(msg)
}

// handlePost takes one message or event: verify, decrypt, Deliver, then
// answer 200 "" (WeCom retries up to 3 times when it gets no answer within
// 5 s).
func (a *Adapter) handlePost(w http.ResponseWriter, r *http.Request, sink channels.Sink) {
	q := readQuery(r)
	if q.signature == "" {
		sink.Rejected(channels.ReasonSignature)
		http.Error(w, "missing msg_signature", http.StatusUnauthorized)
		return
	}
	body, ok := channels.ReadBody(w, r, int64(a.cfg.MaxBody), sink)
	if !ok {
		return
	}
	env, err := parseEnvelope(body)
	if err != nil {
		sink.Rejected(channels.ReasonMalformed)
		http.Error(w, "malformed body", http.StatusBadRequest)
		return
	}
	if !a.check(w, sink, q, env.Encrypt) {
		return
	}
	// A request whose signature and nonce we have already acknowledged is
	// WeCom retrying it (our answer was lost or late): the signature is
	// valid, so it is not an attack, and the message is already committed.
	// Answer 200 at once; refusing it with 401 would only make WeCom retry
	// again and flag the callback URL as failing. Only acknowledged
	// requests are remembered, so a retry after a failed Deliver is
	// processed again (and the hub deduplicates on MsgId should two race).
	key := q.signature + "|" + q.nonce
	if a.acked.Has(key) {
		w.WriteHeader(http.StatusOK)
		return
	}
	plain, _, err := a.crypto.Decrypt(env.Encrypt)
	if err != nil {
		sink.Rejected(channels.ReasonMalformed)
		http.Error(w, "cannot decrypt", http.StatusBadRequest)
		return
	}
	in, err := parseInbound(plain)
	if err != nil {
		sink.Rejected(channels.ReasonMalformed)
		http.Error(w, "malformed message", http.StatusBadRequest)
		return
	}
	m := a.toMessage(in, plain)
	if m == nil {
		a.log.Debug("wecom: callback ignored", logMsgType, in.MsgType, logEvent, in.Event, logAgentID, in.AgentID)
		a.acked.Add(key)
		w.WriteHeader(http.StatusOK)
		return
	}
	switch err := sink.Deliver(r.Context(), m); {
	case errors.Is(err, channels.ErrInvalid):
		a.log.Warn("wecom: message refused by the inbox", logMsgID, m.ID, logErr, err)
		http.Error(w, "invalid message", http.StatusBadRequest)
		return
	case err != nil:
		a.log.Warn("wecom: cannot commit message; WeCom will retry", logMsgID, m.ID, logErr, err)
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	a.acked.Add(key)
	w.WriteHeader(http.StatusOK)
}

// toMessage converts a decrypted message, or returns nil for what is
// acknowledged and ignored: events (enter_agent, subscribe, …), message
// types we do not handle, and messages for another app.
func (a *Adapter) toMessage(in inbound, plain []byte) *channels.Message {
	agent := strings.TrimSpace(in.AgentID)
	if agent != "" && a.cfg.AgentID != 0 && agent != strconv.Itoa(a.cfg.AgentID) {
		return nil
	}
	if agent == "" && a.cfg.AgentID != 0 {
		agent = strconv.Itoa(a.cfg.AgentID)
	}
	from := strings.TrimSpace(in.FromUserName)
	m := &channels.Message{
		Channel:          a.Name(),
		Platform:         Name,
		Bot:              agent,
		ID:               strings.TrimSpace(in.MsgID),
		Conversation:     from,
		ConversationType: channels.Direct,
		Sender:           channels.Sender{ID: from},
		Time:             parseTime(in.CreateTime, a.now),
	}
	switch in.MsgType {
	case "text":
		m.Text = strings.TrimSpace(in.Content)
	case "image":
		m.Media = []channels.Media{{Kind: channels.Image, Key: in.MediaID, URL: strings.TrimSpace(in.PicURL)}}
	case "voice":
		md := channels.Media{Kind: channels.Voice, Key: in.MediaID}
		if f := strings.ToLower(strings.TrimSpace(in.Format)); f != "" {
			md.MIME = "audio/" + f // amr, speex
		}
		m.Media = []channels.Media{md}
	case "video":
		m.Media = []channels.Media{{Kind: channels.Video, Key: in.MediaID}}
	case "file":
		size, _ := strconv.ParseInt(strings.TrimSpace(in.FileSize), 10, 64)
		m.Media = []channels.Media{{Kind: channels.File, Key: in.MediaID, Name: in.FileName, Size: max(size, 0)}}
	case "location":
		m.Text = strings.TrimSpace(fmt.Sprintf("%s (%s, %s)", strings.TrimSpace(in.Label), in.LocationX, in.LocationY))
	case "link":
		m.Text = joinLines(in.Title, in.Description, in.URL)
	default: // "event" and types we do not know
		return nil
	}
	if m.ID == "" {
		// No MsgId (should not happen for messages): a hash of the
		// plaintext is stable across WeCom's retries, which re-encrypt
		// the same message.
		sum := sha256.Sum256(plain)
		m.ID = "sha256:" + hex.EncodeToString(sum[:16])
	}
	// MsgId is what WeCom's retries share; it is the dedup key.
	m.DedupKey = m.ID
	// Messages to a self-built app are one-to-one. Where a chat is named
	// (app group chats, smart bots in groups, which receive only messages
	// that @mention them) answer in the chat.
	if chat := strings.TrimSpace(in.ChatID); chat != "" && !strings.EqualFold(in.ChatType, "single") {
		m.Conversation = chat
		m.ConversationType = channels.Group
		m.Mentioned = true
		m.Handle.Extra = map[string]string{"chat_id": chat}
	}
	if raw, err := json.Marshal(string(plain)); err == nil {
		m.Raw = raw
	}
	return m
}

// parseTime reads CreateTime (seconds; milliseconds tolerated), or now.
func parseTime(s string, now func() time.Time) time.Time {
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	switch {
	case err != nil || v <= 0:
		return now().UTC()
	case v > 1e12:
		return time.UnixMilli(v).UTC()
	default:
		return time.Unix(v, 0).UTC()
	}
}

func joinLines(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "\n")
}

// ackCache remembers acknowledged callback requests (signature and nonce)
// for a window. Bounded: at most max entries, the oldest forgotten first.
// Unlike channels.ReplayGuard it records only on Add, so a request that
// failed is not mistaken for one that was answered. Safe for concurrent
// use.
type ackCache struct {
	mu     sync.Mutex
	window time.Duration
	max    int
	at     map[string]time.Time
	order  []string
	now    func() time.Time
}

func newAckCache(window time.Duration, max int) *ackCache {
	return &ackCache{window: window, max: max, at: map[string]time.Time{}, now: time.Now}
}

// Has reports whether key was added within the window.
func (c *ackCache) Has(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.at[key]
	return ok && c.now().Sub(t) <= c.window
}

// Add records key now.
func (c *ackCache) Add(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for len(c.order) > 0 {
		k := c.order[0]
		t, ok := c.at[k]
		if ok && now.Sub(t) <= c.window && len(c.order) < c.max {
			break
		}
		c.order = c.order[1:]
		if ok {
			delete(c.at, k)
		}
	}
	if _, ok := c.at[key]; ok {
		c.at[key] = now
		return
	}
	c.at[key] = now
	c.order = append(c.order, key)
}
