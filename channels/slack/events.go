package slack

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/zhiyin/zhiyin/channels"
)

// Events API request headers.
const (
	hdrTimestamp   = "X-Slack-Request-Timestamp"
	hdrSignature   = "X-Slack-Signature"
	hdrRetryNum    = "X-Slack-Retry-Num"
	hdrRetryReason = "X-Slack-Retry-Reason"
)

// Sign returns Slack's v0 request signature of body sent at timestamp (Unix
// seconds, as text): "v0=" + hex(HMAC-SHA256(secret, "v0:" + timestamp +
// ":" + body)). Tests and callers that forward callbacks use it.
func Sign(secret, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("v0:" + timestamp + ":"))
	m.Write(body)
	return "v0=" + hex.EncodeToString(m.Sum(nil))
}

// checkSignature reports whether sig is body's v0 signature, in constant
// time.
func checkSignature(secret, timestamp, sig string, body []byte) bool {
	return hmac.Equal([]byte(sig), []byte(Sign(secret, timestamp, body)))
}

// verify checks a callback's signature, freshness and novelty. It returns
// the refusal reason and a short note for the answer, or "" when the
// request is Slack's and new.
func (a *Adapter) verify(h http.Header, body []byte) (channels.Reason, string) {
	ts, sig := h.Get(hdrTimestamp), h.Get(hdrSignature)
	if ts == "" || sig == "" {
		return channels.ReasonSignature, "missing " + hdrSignature + " or " + hdrTimestamp
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return channels.ReasonSignature, "malformed " + hdrTimestamp
	}
	if !checkSignature(a.cfg.SigningSecret.Value(), ts, sig, body) {
		return channels.ReasonSignature, "invalid signature"
	}
	if skew := a.now().Sub(time.Unix(sec, 0)).Abs(); skew > a.cfg.MaxSkew {
		return channels.ReasonStale, "stale timestamp"
	}
	// Slack signs every attempt anew (a retry has a fresh timestamp), so
	// an identical signature is a captured request played again.
	if a.replay.Seen(sig) {
		return channels.ReasonReplay, "replayed request"
	}
	return "", ""
}

// serveEvents is the Events API callback: verify, parse, Deliver, then
// answer 200 (Slack wants it within 3 s; later, or a 5xx, and it retries
// with X-Slack-Retry-Num, which the hub's dedup absorbs).
func (a *Adapter) serveEvents(w http.ResponseWriter, r *http.Request) {
	sink := a.activeSink()
	if sink == nil {
		http.Error(w, "slack adapter not running", http.StatusServiceUnavailable)
		return
	}
	body, ok := channels.ReadBody(w, r, int64(a.cfg.MaxBody), sink)
	if !ok {
		return
	}
	if reason, note := a.verify(r.Header, body); reason != "" {
		sink.Rejected(reason)
		a.log.Warn("slack callback refused", logReason, string(reason))
		http.Error(w, note, http.StatusUnauthorized)
		return
	}
	env, err := parseEnvelope(body)
	if err != nil {
		sink.Rejected(channels.ReasonMalformed)
		a.log.Warn("slack callback malformed", logErr, err)
		http.Error(w, "malformed body", http.StatusBadRequest)
		return
	}
	switch env.Type {
	case "url_verification":
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"challenge": env.Challenge})
		return
	case "event_callback":
	default:
		// app_rate_limited and whatever Slack adds later: nothing to do.
		a.log.Debug("slack callback ignored", logEvent, env.Type)
		w.WriteHeader(http.StatusOK)
		return
	}
	if n := r.Header.Get(hdrRetryNum); n != "" {
		a.log.Debug("slack callback retried", logRetry, n, logReason, r.Header.Get(hdrRetryReason))
	}
	m, err := a.parseEvent(env, body)
	if err != nil {
		sink.Rejected(channels.ReasonMalformed)
		a.log.Warn("slack event malformed", logErr, err)
		http.Error(w, "malformed event", http.StatusBadRequest)
		return
	}
	if m != nil {
		if err := sink.Deliver(r.Context(), m); err != nil {
			if errors.Is(err, channels.ErrInvalid) {
				http.Error(w, "message refused", http.StatusBadRequest)
				return
			}
			a.log.Warn("slack message not stored; Slack will retry", logErr, err)
			http.Error(w, "try again later", http.StatusServiceUnavailable)
			return
		}
	}
	w.WriteHeader(http.StatusOK)
}

// envelope is an Events API callback body (and a Socket Mode events_api
// payload).
type envelope struct {
	Type           string          `json:"type"`
	Challenge      string          `json:"challenge"`
	TeamID         string          `json:"team_id"`
	EnterpriseID   string          `json:"enterprise_id"`
	APIAppID       string          `json:"api_app_id"`
	EventID        string          `json:"event_id"`
	EventTime      int64           `json:"event_time"`
	Event          json.RawMessage `json:"event"`
	Authorizations []struct {
		UserID string `json:"user_id"`
		IsBot  bool   `json:"is_bot"`
	} `json:"authorizations"`
}

// event is the inner event of a callback: a message or an app_mention
// (other types are only looked at for their type).
type event struct {
	Type        string `json:"type"`
	Subtype     string `json:"subtype"`
	Channel     string `json:"channel"`
	ChannelType string `json:"channel_type"`
	User        string `json:"user"`
	BotID       string `json:"bot_id"`
	Text        string `json:"text"`
	TS          string `json:"ts"`
	ThreadTS    string `json:"thread_ts"`
	Team        string `json:"team"`
	Files       []file `json:"files"`
	UserProfile *struct {
		DisplayName string `json:"display_name"`
		RealName    string `json:"real_name"`
		Name        string `json:"name"`
	} `json:"user_profile"`
}

// file is a shared file's public part.
type file struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Title      string `json:"title"`
	Mimetype   string `json:"mimetype"`
	Filetype   string `json:"filetype"`
	Subtype    string `json:"subtype"`
	Mode       string `json:"mode"`
	Size       int64  `json:"size"`
	URLPrivate string `json:"url_private"`
	DurationMS int64  `json:"duration_ms"`
}

// parseEnvelope decodes a callback body.
func parseEnvelope(body []byte) (*envelope, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("%w: %w", errMalformed, err)
	}
	if env.Type == "" {
		return nil, fmt.Errorf("%w: no type", errMalformed)
	}
	return &env, nil
}

// userSubtypes are the message subtypes a person writes; every other
// subtype (bot_message, message_changed, message_deleted, channel_join, …)
// is Slack or a bot talking and is ignored.
var userSubtypes = map[string]bool{"": true, "file_share": true, "thread_broadcast": true, "me_message": true}

// parseEvent turns an event_callback into a message, or nil for an event
// that is acknowledged and ignored (other event types, bots, ourselves,
// edits). raw is the whole callback, kept as Message.Raw.
//
// Dedup: in a channel, a message that mentions the bot arrives twice, as a
// "message" and as an "app_mention", with different event_ids. Both carry
// the message's own channel and ts, so the key is "channel:ts" (the
// message's ID) for either: the second one, and every retry of either,
// collapses into the first. Mentioned is computed from the text, so it is
// right whichever comes first.
func (a *Adapter) parseEvent(env *envelope, raw []byte) (*channels.Message, error) {
	if len(env.Event) == 0 {
		return nil, fmt.Errorf("%w: event_callback without event", errMalformed)
	}
	var ev event
	if err := json.Unmarshal(env.Event, &ev); err != nil {
		return nil, fmt.Errorf("%w: event: %w", errMalformed, err)
	}
	switch ev.Type {
	case "message":
		if !userSubtypes[ev.Subtype] {
			return nil, nil
		}
	case "app_mention":
	default:
		return nil, nil
	}
	bot := a.botUser()
	if bot == "" {
		// Slack names the installation's bot user in every callback.
		for _, au := range env.Authorizations {
			if au.IsBot {
				bot = au.UserID
				break
			}
		}
	}
	if ev.BotID != "" || ev.User == "" || (bot != "" && ev.User == bot) {
		return nil, nil
	}
	if ev.Channel == "" || ev.TS == "" {
		return nil, fmt.Errorf("%w: %s without channel or ts", errMalformed, ev.Type)
	}
	t, err := parseTS(ev.TS)
	if err != nil {
		return nil, err
	}
	text, mentions := plainText(ev.Text, bot)
	mentioned := ev.Type == "app_mention"
	for _, u := range mentions {
		if bot != "" && u == bot {
			mentioned = true
		}
	}
	team := env.TeamID
	if team == "" {
		team = ev.Team
	}
	id := ev.Channel + ":" + ev.TS
	m := &channels.Message{
		Channel:          Name,
		Platform:         "slack",
		Bot:              team,
		ID:               id,
		DedupKey:         id,
		Conversation:     ev.Channel,
		ConversationType: conversationType(ev.ChannelType, ev.Channel),
		Thread:           ev.ThreadTS,
		Sender:           channels.Sender{ID: ev.User, Name: displayName(&ev)},
		Mentions:         mentions,
		Mentioned:        mentioned,
		Time:             t,
		Text:             text,
		Media:            media(ev.Files),
		Raw:              json.RawMessage(raw),
	}
	return m, nil
}

// conversationType maps channel_type; app_mention has none, so the
// channel id's prefix decides (D… is a direct message).
func conversationType(channelType, channel string) channels.ConversationType {
	switch channelType {
	case "im":
		return channels.Direct
	case "mpim":
		return channels.Group
	case "channel", "group": // public and private channels
		return channels.Channel
	}
	if strings.HasPrefix(channel, "D") {
		return channels.Direct
	}
	return channels.Channel
}

func displayName(ev *event) string {
	p := ev.UserProfile
	switch {
	case p == nil:
		return ""
	case p.DisplayName != "":
		return p.DisplayName
	case p.RealName != "":
		return p.RealName
	default:
		return p.Name
	}
}

// parseTS turns a Slack ts ("1531420618.000200": seconds, then
// microseconds) into a UTC time.
func parseTS(ts string) (time.Time, error) {
	secs, frac, dot := strings.Cut(ts, ".")
	if !digits(secs) || len(secs) > 12 || (dot && !digits(frac)) || len(frac) > 9 {
		return time.Time{}, fmt.Errorf("%w: ts %q", errMalformed, ts)
	}
	sec, _ := strconv.ParseInt(secs, 10, 64)
	var nsec int64
	if frac != "" {
		nsec, _ = strconv.ParseInt(frac, 10, 64)
		for i := len(frac); i < 9; i++ {
			nsec *= 10
		}
	}
	return time.Unix(sec, nsec).UTC(), nil
}

// digits reports whether s is one or more ASCII digits.
func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// media turns shared files into references; the bytes stay at url_private
// (fetched with the bot token).
func media(files []file) []channels.Media {
	var out []channels.Media
	for _, f := range files {
		if f.Mode == "tombstone" || (f.URLPrivate == "" && f.ID == "") {
			continue // deleted, or nothing to point at
		}
		kind := channels.File
		mime := strings.ToLower(f.Mimetype)
		switch {
		case strings.HasPrefix(mime, "audio/") &&
			(f.Subtype == "slack_audio" || f.Filetype == "m4a" || f.Filetype == "webm"):
			kind = channels.Voice // a recorded clip
		case strings.HasPrefix(mime, "image/"):
			kind = channels.Image
		case strings.HasPrefix(mime, "video/"):
			kind = channels.Video
		}
		name := f.Name
		if name == "" {
			name = f.Title
		}
		m := channels.Media{Kind: kind, Key: f.ID, URL: f.URLPrivate, MIME: f.Mimetype, Size: f.Size, Name: name}
		if f.DurationMS > 0 {
			m.Duration = time.Duration(f.DurationMS) * time.Millisecond
		}
		out = append(out, m)
	}
	return out
}

// plainText turns Slack's message markup into plain text: the bot's own
// mention is removed, other mentions become "@name" (or "@U…"), channel
// links "#name", links their URL (with the label in front when there is
// one), and &amp; &lt; &gt; are unescaped. It returns every user id
// mentioned (the bot's included), in order, without repeats.
func plainText(s, bot string) (string, []string) {
	var b strings.Builder
	var mentions []string
	seen := map[string]bool{}
	for {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			b.WriteString(s)
			break
		}
		j := strings.IndexByte(s[i:], '>')
		if j < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		tok := s[i+1 : i+j]
		s = s[i+j+1:]
		ref, label, _ := strings.Cut(tok, "|")
		switch {
		case strings.HasPrefix(ref, "@"):
			id := ref[1:]
			if id != "" && !seen[id] {
				seen[id] = true
				mentions = append(mentions, id)
			}
			if bot != "" && id == bot {
				// Drop the mention and one of the spaces around it.
				if strings.HasSuffix(b.String(), " ") && strings.HasPrefix(s, " ") {
					s = s[1:]
				}
				continue
			}
			if label == "" {
				label = id
			}
			b.WriteString("@" + strings.TrimPrefix(label, "@"))
		case strings.HasPrefix(ref, "#"):
			if label == "" {
				label = ref[1:]
			}
			b.WriteString("#" + label)
		case strings.HasPrefix(ref, "!"):
			// <!here>, <!channel>, <!subteam^S…|@team>, <!date^…|fallback>
			switch {
			case label != "":
				b.WriteString(label)
			case strings.HasPrefix(ref, "!subteam^") || strings.HasPrefix(ref, "!date^"):
			default:
				b.WriteString("@" + ref[1:])
			}
		default:
			u := strings.TrimPrefix(ref, "mailto:")
			if label != "" && label != u && label != ref {
				b.WriteString(label + " (" + u + ")")
			} else {
				b.WriteString(u)
			}
		}
	}
	return strings.TrimSpace(unescape(b.String())), mentions
}

var unescaper = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")

func unescape(s string) string { return unescaper.Replace(s) }
