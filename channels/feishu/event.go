package feishu

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/zhiyin/zhiyin/channels"
)

// Platform is Message.Platform for Feishu and Lark.
const Platform = "feishu"

// eventKind says what parseEvent found.
type eventKind int

const (
	// kindIgnore: a valid event zhiyin does not handle (other event types,
	// messages sent by apps, system messages): acknowledged, not delivered.
	kindIgnore eventKind = iota
	// kindChallenge: url_verification; answer {"challenge": …}.
	kindChallenge
	// kindMessage: a message to deliver.
	kindMessage
)

// parsed is one decrypted callback or long-connection payload.
type parsed struct {
	kind      eventKind
	token     string // the verification token the event carries
	challenge string
	eventType string
	msg       *channels.Message
}

// envelope covers url_verification, v2 ("schema": "2.0") and v1 events.
type envelope struct {
	Encrypt   *string `json:"encrypt"`
	Type      string  `json:"type"`
	Challenge string  `json:"challenge"`
	Token     string  `json:"token"`
	Schema    string  `json:"schema"`
	Header    *struct {
		EventID    string `json:"event_id"`
		EventType  string `json:"event_type"`
		CreateTime string `json:"create_time"`
		Token      string `json:"token"`
		AppID      string `json:"app_id"`
		TenantKey  string `json:"tenant_key"`
	} `json:"header"`
	// v1
	UUID  string          `json:"uuid"`
	TS    json.RawMessage `json:"ts"`
	Event json.RawMessage `json:"event"`
}

type userID struct {
	OpenID  string `json:"open_id"`
	UserID  string `json:"user_id"`
	UnionID string `json:"union_id"`
}

func (u userID) id() string {
	switch {
	case u.OpenID != "":
		return u.OpenID
	case u.UserID != "":
		return u.UserID
	}
	return u.UnionID
}

// messageEvent is im.message.receive_v1's event.
type messageEvent struct {
	Sender struct {
		SenderID   userID `json:"sender_id"`
		SenderType string `json:"sender_type"`
		TenantKey  string `json:"tenant_key"`
	} `json:"sender"`
	Message struct {
		MessageID   string `json:"message_id"`
		RootID      string `json:"root_id"`
		ParentID    string `json:"parent_id"`
		ThreadID    string `json:"thread_id"`
		CreateTime  string `json:"create_time"`
		ChatID      string `json:"chat_id"`
		ChatType    string `json:"chat_type"`
		MessageType string `json:"message_type"`
		Content     string `json:"content"`
		Mentions    []struct {
			Key  string `json:"key"`
			ID   userID `json:"id"`
			Name string `json:"name"`
		} `json:"mentions"`
	} `json:"message"`
}

// v1Event is the legacy (v1) event, "type": "message" and others.
type v1Event struct {
	Type          string `json:"type"`
	AppID         string `json:"app_id"`
	TenantKey     string `json:"tenant_key"`
	RootID        string `json:"root_id"`
	ParentID      string `json:"parent_id"`
	OpenChatID    string `json:"open_chat_id"`
	ChatType      string `json:"chat_type"`
	MsgType       string `json:"msg_type"`
	OpenID        string `json:"open_id"`
	UserID        string `json:"user_id"`
	OpenMessageID string `json:"open_message_id"`
	IsMention     bool   `json:"is_mention"`
	Text          string `json:"text"`
	TextWithout   string `json:"text_without_at_bot"`
	ImageKey      string `json:"image_key"`
	FileKey       string `json:"file_key"`
	FileName      string `json:"file_name"`
}

// parseEvent reads a plaintext payload. botOpenID is the bot's open_id
// ("" when unknown). now stamps messages that carry no time.
func parseEvent(plain []byte, botOpenID string, now time.Time) (*parsed, error) {
	var env envelope
	if err := json.Unmarshal(plain, &env); err != nil {
		return nil, fmt.Errorf("parse event: %w: %v", errMalformed, err)
	}
	if env.Encrypt != nil {
		return nil, fmt.Errorf("parse event: %w: still encrypted", errMalformed)
	}
	if env.Type == "url_verification" {
		return &parsed{kind: kindChallenge, token: env.Token, challenge: env.Challenge}, nil
	}
	raw := json.RawMessage(append([]byte(nil), plain...))
	if env.Header != nil || env.Schema != "" {
		if env.Header == nil || env.Header.EventID == "" || env.Header.EventType == "" {
			return nil, fmt.Errorf("parse event: %w: v2 event without header.event_id or event_type", errMalformed)
		}
		h := env.Header
		p := &parsed{kind: kindIgnore, token: h.Token, eventType: h.EventType}
		if h.EventType != "im.message.receive_v1" {
			return p, nil
		}
		var ev messageEvent
		if err := json.Unmarshal(env.Event, &ev); err != nil {
			return nil, fmt.Errorf("parse event %s: %w: %v", h.EventID, errMalformed, err)
		}
		m, err := messageV2(&ev, botOpenID)
		if err != nil {
			return nil, fmt.Errorf("parse event %s: %w", h.EventID, err)
		}
		if m == nil {
			return p, nil
		}
		m.Bot = h.AppID
		m.DedupKey = h.EventID
		if m.Time.IsZero() {
			m.Time = parseTime(h.CreateTime)
		}
		if m.Time.IsZero() {
			m.Time = now.UTC()
		}
		if h.TenantKey != "" {
			m.Handle.Extra = map[string]string{"tenant_key": h.TenantKey}
		}
		m.Raw = raw
		p.kind, p.msg = kindMessage, m
		return p, nil
	}
	if env.UUID == "" || len(env.Event) == 0 {
		return nil, fmt.Errorf("parse event: %w: neither a v2 event nor a v1 event with uuid", errMalformed)
	}
	var ev v1Event
	if err := json.Unmarshal(env.Event, &ev); err != nil {
		return nil, fmt.Errorf("parse event %s: %w: %v", env.UUID, errMalformed, err)
	}
	p := &parsed{kind: kindIgnore, token: env.Token, eventType: ev.Type}
	if ev.Type != "message" {
		return p, nil
	}
	m, err := messageV1(&ev)
	if err != nil {
		return nil, fmt.Errorf("parse event %s: %w", env.UUID, err)
	}
	if m == nil {
		return p, nil
	}
	m.DedupKey = env.UUID
	var ts string
	if json.Unmarshal(env.TS, &ts) != nil {
		ts = string(env.TS)
	}
	m.Time = parseTime(ts)
	if m.Time.IsZero() {
		m.Time = now.UTC()
	}
	m.Raw = raw
	p.kind, p.msg = kindMessage, m
	return p, nil
}

// messageV2 builds the message of an im.message.receive_v1 event, or nil
// for one zhiyin ignores (sent by an app, an unsupported message type).
func messageV2(ev *messageEvent, botOpenID string) (*channels.Message, error) {
	em := &ev.Message
	if em.MessageID == "" || em.ChatID == "" {
		return nil, fmt.Errorf("%w: message without message_id or chat_id", errMalformed)
	}
	if ev.Sender.SenderType == "app" {
		return nil, nil
	}
	m := &channels.Message{
		Platform:         Platform,
		ID:               em.MessageID,
		Conversation:     em.ChatID,
		ConversationType: channels.Group,
		Thread:           em.ThreadID,
		ReplyTo:          em.ParentID,
		Sender:           channels.Sender{ID: ev.Sender.SenderID.id()},
		Time:             parseTime(em.CreateTime),
	}
	if em.ChatType == "p2p" {
		m.ConversationType = channels.Direct
	}
	if m.Thread == "" {
		m.Thread = em.RootID
	}
	var keys []string
	for _, mn := range em.Mentions {
		id := mn.ID.id()
		if id != "" {
			m.Mentions = append(m.Mentions, id)
		}
		if botOpenID != "" && mn.ID.OpenID == botOpenID {
			m.Mentioned = true
		}
		if mn.Key != "" {
			keys = append(keys, mn.Key)
		}
	}
	if botOpenID == "" && m.ConversationType == channels.Group && len(em.Mentions) > 0 {
		// Without the bot's open_id any mention counts: a group message
		// reaches the app at all only when the bot is mentioned, unless the
		// app has the "read all group messages" permission.
		m.Mentioned = true
	}
	if err := fillContent(m, em.MessageType, em.Content, keys); err != nil {
		return nil, err
	}
	if m.Text == "" && len(m.Media) == 0 && !textual(em.MessageType) {
		return nil, nil
	}
	return m, nil
}

func textual(t string) bool { return t == "text" || t == "post" }

// fillContent sets Text and Media from a message's content JSON.
func fillContent(m *channels.Message, msgType, content string, mentionKeys []string) error {
	var c struct {
		Text     string `json:"text"`
		ImageKey string `json:"image_key"`
		FileKey  string `json:"file_key"`
		FileName string `json:"file_name"`
		Duration int64  `json:"duration"`
	}
	switch msgType {
	case "text", "image", "file", "audio", "media":
		if err := json.Unmarshal([]byte(content), &c); err != nil {
			return fmt.Errorf("%w: %s content: %v", errMalformed, msgType, err)
		}
	case "post":
		text, media, err := postContent(content)
		if err != nil {
			return err
		}
		m.Text, m.Media = cleanText(text, mentionKeys), media
		return nil
	default:
		// share_chat, sticker, interactive, system, …: not understood.
		return nil
	}
	switch msgType {
	case "text":
		m.Text = cleanText(c.Text, mentionKeys)
	case "image":
		if c.ImageKey != "" {
			m.Media = []channels.Media{{Kind: channels.Image, Key: c.ImageKey}}
		}
	case "file":
		if c.FileKey != "" {
			m.Media = []channels.Media{{Kind: channels.File, Key: c.FileKey, Name: c.FileName}}
		}
	case "audio":
		if c.FileKey != "" {
			m.Media = []channels.Media{{Kind: channels.Voice, Key: c.FileKey, Duration: time.Duration(max(c.Duration, 0)) * time.Millisecond}}
		}
	case "media":
		if c.FileKey != "" {
			m.Media = []channels.Media{{Kind: channels.Video, Key: c.FileKey, Name: c.FileName, Duration: time.Duration(max(c.Duration, 0)) * time.Millisecond}}
		}
	}
	return nil
}

type postElem struct {
	Tag      string `json:"tag"`
	Text     string `json:"text"`
	Href     string `json:"href"`
	UserID   string `json:"user_id"`
	ImageKey string `json:"image_key"`
	FileKey  string `json:"file_key"`
}

type postBody struct {
	Title   string       `json:"title"`
	Content [][]postElem `json:"content"`
}

// postContent flattens a rich-text (post) message: the title, then one line
// per paragraph; images and videos become media.
func postContent(content string) (string, []channels.Media, error) {
	var p postBody
	if err := json.Unmarshal([]byte(content), &p); err != nil {
		return "", nil, fmt.Errorf("%w: post content: %v", errMalformed, err)
	}
	if p.Title == "" && p.Content == nil {
		// Some senders wrap the post in a locale: {"zh_cn": {...}}.
		var byLocale map[string]postBody
		if json.Unmarshal([]byte(content), &byLocale) == nil {
			for _, l := range []string{"zh_cn", "en_us", "ja_jp"} {
				if b, ok := byLocale[l]; ok {
					p = b
					break
				}
			}
		}
	}
	var lines []string
	var media []channels.Media
	if p.Title != "" {
		lines = append(lines, p.Title)
	}
	for _, para := range p.Content {
		var b strings.Builder
		for _, e := range para {
			switch e.Tag {
			case "text", "a", "md", "code_block":
				b.WriteString(e.Text)
			case "at":
				b.WriteString(" " + e.UserID + " ")
			case "img":
				if e.ImageKey != "" {
					media = append(media, channels.Media{Kind: channels.Image, Key: e.ImageKey})
				}
			case "media":
				if e.FileKey != "" {
					media = append(media, channels.Media{Kind: channels.Video, Key: e.FileKey})
				}
			}
		}
		lines = append(lines, b.String())
	}
	return strings.Join(lines, "\n"), media, nil
}

// placeholder matches a mention placeholder with the blanks around it.
var placeholder = regexp.MustCompile(`[ \t]*@_(?:user_[0-9]+|all)[ \t]*`)

// cleanText removes mention placeholders ("@_user_1", "@_all" and the keys
// the event lists) and trims the text and the blanks around each line.
func cleanText(s string, keys []string) string {
	for _, k := range keys {
		if k != "" {
			s = strings.ReplaceAll(s, k, " ")
		}
	}
	s = placeholder.ReplaceAllString(s, " ")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.Trim(l, " \t\r")
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

// atTag matches v1's <at open_id="…">@name</at>.
var atTag = regexp.MustCompile(`[ \t]*<at [^>]*>[^<]*</at>[ \t]*`)

// messageV1 builds the message of a legacy "message" event.
func messageV1(ev *v1Event) (*channels.Message, error) {
	if ev.OpenMessageID == "" || ev.OpenChatID == "" {
		return nil, fmt.Errorf("%w: v1 message without open_message_id or open_chat_id", errMalformed)
	}
	m := &channels.Message{
		Platform:         Platform,
		Bot:              ev.AppID,
		ID:               ev.OpenMessageID,
		Conversation:     ev.OpenChatID,
		ConversationType: channels.Group,
		Thread:           ev.RootID,
		ReplyTo:          ev.ParentID,
		Sender:           channels.Sender{ID: ev.OpenID},
		Mentioned:        ev.IsMention,
	}
	if m.Sender.ID == "" {
		m.Sender.ID = ev.UserID
	}
	if ev.ChatType == "private" || ev.ChatType == "p2p" {
		m.ConversationType = channels.Direct
	}
	if ev.TenantKey != "" {
		m.Handle.Extra = map[string]string{"tenant_key": ev.TenantKey}
	}
	switch ev.MsgType {
	case "text":
		t := ev.TextWithout
		if t == "" {
			t = ev.Text
		}
		m.Text = strings.TrimSpace(atTag.ReplaceAllString(t, " "))
	case "image":
		m.Media = []channels.Media{{Kind: channels.Image, Key: ev.ImageKey}}
	case "file":
		m.Media = []channels.Media{{Kind: channels.File, Key: ev.FileKey, Name: ev.FileName}}
	default:
		return nil, nil
	}
	return m, nil
}

// parseTime reads a Feishu time: milliseconds ("1609073151345"), seconds
// ("1609073151") or fractional seconds ("1502199207.7171419"). Zero when
// absent or unparsable.
func parseTime(s string) time.Time {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		if i <= 0 || i >= 1e14 { // past year 5000 either way: nonsense
			return time.Time{}
		}
		if i >= 1e11 { // milliseconds (from 1973 on); as seconds it would be past year 5000
			return time.UnixMilli(i).UTC()
		}
		return time.Unix(i, 0).UTC()
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 || f >= 1e11 {
		return time.Time{}
	}
	return time.UnixMilli(int64(f * 1000)).UTC()
}
