package dingtalk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/zhiyin/zhiyin/channels"
)

// Platform is the Message.Platform of everything this package delivers.
const Platform = "dingtalk"

// Handle.Extra keys this adapter sets on inbound messages and reads back on
// Send.
const (
	ExtraRobotCode        = "robot_code"
	ExtraConversationType = "conversation_type"
	ExtraSenderStaffID    = "sender_staff_id"
	// ExtraRecognition is DingTalk's own speech recognition of a voice
	// message; it is not put into Text.
	ExtraRecognition = "recognition"
)

// botMessage is a robot message as DingTalk delivers it (the data of a
// stream CALLBACK frame, or an HTTP callback body).
type botMessage struct {
	MsgID                     string   `json:"msgId"`
	MsgType                   string   `json:"msgtype"`
	ConversationID            string   `json:"conversationId"`
	ConversationType          string   `json:"conversationType"`
	SenderID                  string   `json:"senderId"`
	SenderStaffID             string   `json:"senderStaffId"`
	SenderNick                string   `json:"senderNick"`
	ChatbotUserID             string   `json:"chatbotUserId"`
	RobotCode                 string   `json:"robotCode"`
	IsInAtList                bool     `json:"isInAtList"`
	AtUsers                   []atUser `json:"atUsers"`
	CreateAt                  flexInt  `json:"createAt"`
	SessionWebhook            string   `json:"sessionWebhook"`
	SessionWebhookExpiredTime flexInt  `json:"sessionWebhookExpiredTime"`
	Text                      struct {
		Content string `json:"content"`
	} `json:"text"`
	Content json.RawMessage `json:"content"`
}

type atUser struct {
	DingtalkID string `json:"dingtalkId"`
	StaffID    string `json:"staffId"`
}

// mediaContent is the content of picture, audio, video and file messages
// and one element of a richText.
type mediaContent struct {
	Text                string  `json:"text"`
	Type                string  `json:"type"`
	DownloadCode        string  `json:"downloadCode"`
	PictureDownloadCode string  `json:"pictureDownloadCode"`
	Duration            flexInt `json:"duration"` // milliseconds
	Recognition         string  `json:"recognition"`
	FileName            string  `json:"fileName"`
	VideoType           string  `json:"videoType"`
}

type richTextContent struct {
	RichText []mediaContent `json:"richText"`
}

// flexInt is an integer DingTalk sends as a JSON number or as a string.
type flexInt int64

func (n *flexInt) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*n = 0
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		b = []byte(strings.TrimSpace(s))
		if len(b) == 0 {
			*n = 0
			return nil
		}
	}
	if v, err := strconv.ParseInt(string(b), 10, 64); err == nil {
		*n = flexInt(v)
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || f != f || f > 1<<62 || f < -(1<<62) {
		return fmt.Errorf("not an integer: %.40q", b)
	}
	*n = flexInt(f)
	return nil
}

// msTime converts a DingTalk timestamp to UTC; values below 1e12 are taken
// as seconds (DingTalk sends milliseconds, but be lenient). Nonsense (not
// positive, past year 9999) gives the zero time.
func msTime(v int64) time.Time {
	var t time.Time
	switch {
	case v <= 0:
		return time.Time{}
	case v < 1e12:
		t = time.Unix(v, 0).UTC()
	default:
		t = time.UnixMilli(v).UTC()
	}
	if t.Year() > 9999 {
		return time.Time{}
	}
	return t
}

// parseBotMessage turns a robot message into the unified form. Errors:
// ErrMalformed (does not parse, no msgId or conversationId), errIgnore (a
// msgtype we do not handle, or the bot's own message: acknowledge and drop).
// now stands in for a missing createAt.
func parseBotMessage(data []byte, now time.Time) (*channels.Message, error) {
	var bm botMessage
	if err := json.Unmarshal(data, &bm); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if bm.MsgID == "" {
		return nil, fmt.Errorf("%w: no msgId", ErrMalformed)
	}
	if bm.ConversationID == "" {
		return nil, fmt.Errorf("%w: no conversationId", ErrMalformed)
	}
	if bm.ChatbotUserID != "" && bm.SenderID == bm.ChatbotUserID {
		return nil, fmt.Errorf("%w: sent by the bot itself", errIgnore)
	}
	m := &channels.Message{
		Channel:      Platform,
		Platform:     Platform,
		Bot:          bm.RobotCode,
		ID:           bm.MsgID,
		DedupKey:     bm.MsgID,
		Conversation: bm.ConversationID,
		Sender:       channels.Sender{ID: bm.SenderStaffID, Name: bm.SenderNick},
		Mentioned:    bm.IsInAtList,
		Time:         msTime(int64(bm.CreateAt)),
		Raw:          json.RawMessage(bytes.Clone(data)),
	}
	if m.Bot == "" {
		m.Bot = bm.ChatbotUserID
	}
	if m.Sender.ID == "" {
		m.Sender.ID = bm.SenderID
	}
	if m.Time.IsZero() {
		m.Time = now.UTC()
	}
	// "1" is a one-to-one chat, "2" a group; anything else is treated as a
	// group, where the bot answers only when mentioned.
	m.ConversationType = channels.Group
	if bm.ConversationType == "1" {
		m.ConversationType = channels.Direct
	}
	for _, u := range bm.AtUsers {
		id := u.DingtalkID
		if id == "" {
			id = u.StaffID
		}
		if id != "" {
			m.Mentions = append(m.Mentions, id)
		}
	}
	extra := map[string]string{}
	put := func(k, v string) {
		if v != "" {
			extra[k] = v
		}
	}
	put(ExtraRobotCode, bm.RobotCode)
	put(ExtraConversationType, bm.ConversationType)
	put(ExtraSenderStaffID, bm.SenderStaffID)

	mentions := len(bm.AtUsers)
	if mentions == 0 && bm.IsInAtList {
		mentions = 1
	}
	switch bm.MsgType {
	case "text", "":
		if bm.MsgType == "" && bm.Text.Content == "" {
			return nil, fmt.Errorf("%w: no msgtype", errIgnore)
		}
		m.Text = stripMentions(bm.Text.Content, mentions)
	case "richText":
		var rt richTextContent
		if err := unmarshalContent(bm.Content, &rt); err != nil {
			return nil, fmt.Errorf("%w: richText content: %w", ErrMalformed, err)
		}
		var parts []string
		for _, p := range rt.RichText {
			switch {
			case p.Text != "":
				parts = append(parts, p.Text)
			case p.DownloadCode != "" || p.PictureDownloadCode != "":
				m.Media = append(m.Media, channels.Media{Kind: channels.Image, Key: firstOf(p.DownloadCode, p.PictureDownloadCode)})
			}
		}
		m.Text = stripMentions(strings.Join(parts, "\n"), mentions)
	case "picture", "audio", "video", "file":
		var c mediaContent
		if err := unmarshalContent(bm.Content, &c); err != nil {
			return nil, fmt.Errorf("%w: %s content: %w", ErrMalformed, bm.MsgType, err)
		}
		md := channels.Media{Key: firstOf(c.DownloadCode, c.PictureDownloadCode)}
		switch bm.MsgType {
		case "picture":
			md.Kind = channels.Image
		case "audio":
			md.Kind = channels.Voice
			md.Duration = time.Duration(max(c.Duration, 0)) * time.Millisecond
			put(ExtraRecognition, strings.TrimSpace(c.Recognition))
		case "video":
			md.Kind = channels.Video
			md.Duration = time.Duration(max(c.Duration, 0)) * time.Millisecond
			if c.VideoType != "" && !strings.ContainsAny(c.VideoType, "/ ;") {
				md.MIME = "video/" + strings.ToLower(c.VideoType)
			}
		case "file":
			md.Kind = channels.File
			md.Name = c.FileName
		}
		m.Media = append(m.Media, md)
	default:
		return nil, fmt.Errorf("%w: msgtype %.40q", errIgnore, bm.MsgType)
	}
	m.Handle = channels.Handle{URL: bm.SessionWebhook, Expires: msTime(int64(bm.SessionWebhookExpiredTime))}
	if len(extra) > 0 {
		m.Handle.Extra = extra
	}
	return m, nil
}

// unmarshalContent decodes content, which DingTalk sends as an object (and
// some gateways as a JSON string holding one).
func unmarshalContent(raw json.RawMessage, dst any) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return fmt.Errorf("no content")
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return err
		}
		raw = []byte(s)
	}
	return json.Unmarshal(raw, dst)
}

// stripMentions trims s and removes up to n leading "@name" tokens (DingTalk
// leaves the @text of mentioned users in the content; the bot's own is
// usually already gone, leaving a leading space).
func stripMentions(s string, n int) string {
	s = strings.TrimSpace(s)
	for ; n > 0 && strings.HasPrefix(s, "@"); n-- {
		i := strings.IndexFunc(s, unicode.IsSpace)
		if i < 0 {
			return ""
		}
		s = strings.TrimSpace(s[i:])
	}
	return s
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
