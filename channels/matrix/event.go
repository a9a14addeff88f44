package matrix

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/zhiyin/zhiyin/channels"
)

// platform is Message.Platform.
const platform = "matrix"

// syncResponse is the part of a /sync answer the adapter reads. Events stay
// raw so that one broken event does not cost the batch, and so that each
// message keeps its own payload.
type syncResponse struct {
	NextBatch string `json:"next_batch"`
	Rooms     struct {
		Join   map[string]joinedRoom  `json:"join"`
		Invite map[string]invitedRoom `json:"invite"`
	} `json:"rooms"`
}

type joinedRoom struct {
	Summary struct {
		JoinedMemberCount *int `json:"m.joined_member_count"`
	} `json:"summary"`
	State struct {
		Events []json.RawMessage `json:"events"`
	} `json:"state"`
	Timeline struct {
		Events    []json.RawMessage `json:"events"`
		Limited   bool              `json:"limited"`
		PrevBatch string            `json:"prev_batch"`
	} `json:"timeline"`
}

type invitedRoom struct {
	InviteState struct {
		Events []json.RawMessage `json:"events"`
	} `json:"invite_state"`
}

// parseSync decodes a /sync answer.
func parseSync(b []byte) (*syncResponse, error) {
	var r syncResponse
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: %v", errMalformed, err)
	}
	if r.NextBatch == "" {
		return nil, fmt.Errorf("%w: no next_batch", errMalformed)
	}
	return &r, nil
}

var errMalformed = errors.New("malformed matrix answer")

// event is a room event (ClientEvent), without its content.
type event struct {
	Type           string          `json:"type"`
	EventID        string          `json:"event_id"`
	Sender         string          `json:"sender"`
	OriginServerTS int64           `json:"origin_server_ts"`
	StateKey       *string         `json:"state_key"`
	Content        json.RawMessage `json:"content"`
}

// messageContent is the content of an m.room.message event.
type messageContent struct {
	MsgType   string     `json:"msgtype"`
	Body      string     `json:"body"`
	Filename  string     `json:"filename"`
	URL       string     `json:"url"`
	Info      *mediaInfo `json:"info"`
	RelatesTo *struct {
		RelType       string `json:"rel_type"`
		EventID       string `json:"event_id"`
		IsFallingBack bool   `json:"is_falling_back"`
		InReplyTo     *struct {
			EventID string `json:"event_id"`
		} `json:"m.in_reply_to"`
	} `json:"m.relates_to"`
	Mentions *struct {
		UserIDs []string `json:"user_ids"`
	} `json:"m.mentions"`
	Voice json.RawMessage `json:"org.matrix.msc3245.voice"`
}

type mediaInfo struct {
	MimeType string  `json:"mimetype"`
	Size     flexInt `json:"size"`
	Duration flexInt `json:"duration"`
}

// flexInt reads a number or a numeric string; anything else is 0. It never
// fails, so that a sloppy client's info block does not cost the message.
type flexInt int64

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if n, err := strconv.ParseFloat(s, 64); err == nil && n >= 0 && n < 1<<62 {
		*f = flexInt(n)
	} else {
		*f = 0
	}
	return nil
}

// memberContent is the content of an m.room.member state event.
type memberContent struct {
	Membership  string `json:"membership"`
	DisplayName string `json:"displayname"`
}

// identity is who the adapter is: its user id and display name.
type identity struct {
	UserID      string
	DisplayName string
}

// localpart returns "bot" of "@bot:example.org".
func (id identity) localpart() string {
	l, _, _ := strings.Cut(strings.TrimPrefix(id.UserID, "@"), ":")
	return l
}

// roomInfo is what the adapter knows about the room of a message.
type roomInfo struct {
	ID         string
	Direct     bool
	SenderName string
}

// toMessage turns one timeline event into a unified message. It returns
// nil, nil for events that are not answered: other event types, our own
// messages, notices (bots), edits and redacted events.
func toMessage(raw []byte, room roomInfo, me identity) (*channels.Message, error) {
	var ev event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, fmt.Errorf("%w: event: %v", errMalformed, err)
	}
	if ev.Type != "m.room.message" || ev.StateKey != nil {
		return nil, nil
	}
	if ev.EventID == "" || ev.Sender == "" {
		return nil, fmt.Errorf("%w: event without event_id or sender", errMalformed)
	}
	if ev.Sender == me.UserID {
		return nil, nil
	}
	var c messageContent
	if err := json.Unmarshal(ev.Content, &c); err != nil {
		return nil, fmt.Errorf("%w: content of %s: %v", errMalformed, ev.EventID, err)
	}
	switch {
	case c.MsgType == "":
		return nil, nil // redacted
	case c.MsgType == "m.notice":
		// Notices are what bots send; the spec asks bots to ignore them
		// (no loops between bots).
		return nil, nil
	case c.RelatesTo != nil && c.RelatesTo.RelType == "m.replace":
		return nil, nil // an edit of an earlier message
	}
	m := &channels.Message{
		Platform:     platform,
		Bot:          me.UserID,
		ID:           ev.EventID,
		Conversation: room.ID,
		Sender:       channels.Sender{ID: ev.Sender, Name: room.SenderName},
		Raw:          json.RawMessage(raw),
	}
	if room.Direct {
		m.ConversationType = channels.Direct
	} else {
		m.ConversationType = channels.Group
	}
	if ev.OriginServerTS > 0 {
		m.Time = time.UnixMilli(ev.OriginServerTS).UTC()
	}
	isReply := false
	if r := c.RelatesTo; r != nil {
		if r.RelType == "m.thread" {
			m.Thread = r.EventID
		}
		if r.InReplyTo != nil && r.InReplyTo.EventID != "" && !r.IsFallingBack {
			m.ReplyTo = r.InReplyTo.EventID
			isReply = true
		}
	}
	if c.Mentions != nil {
		m.Mentions = c.Mentions.UserIDs
		for _, u := range c.Mentions.UserIDs {
			if u == me.UserID {
				m.Mentioned = true
			}
		}
	}

	body := c.Body
	if isReply || strings.HasPrefix(body, "> <") {
		body = stripReplyFallback(body)
	}
	text, stripped := stripMentionPrefix(body, me)
	if stripped && c.Mentions == nil {
		// No intentional mentions (an older client): the name prefix is
		// the mention.
		m.Mentioned = true
	}
	if c.Mentions == nil && !m.Mentioned && strings.Contains(body, me.UserID) {
		m.Mentioned = true
	}

	switch c.MsgType {
	case "m.image", "m.file", "m.audio", "m.video":
		md := channels.Media{URL: c.URL, Name: c.Body}
		if c.Filename != "" {
			md.Name = c.Filename
		}
		if c.Info != nil {
			md.MIME = c.Info.MimeType
			md.Size = int64(c.Info.Size)
			md.Duration = time.Duration(c.Info.Duration) * time.Millisecond
		}
		switch c.MsgType {
		case "m.image":
			md.Kind = channels.Image
		case "m.video":
			md.Kind = channels.Video
		case "m.audio":
			md.Kind = channels.File
			if md.Duration > 0 || len(c.Voice) > 0 {
				md.Kind = channels.Voice
			}
		default:
			md.Kind = channels.File
		}
		if md.Kind == channels.File || md.Kind == channels.Image {
			md.Duration = 0
		}
		m.Media = []channels.Media{md}
		// The body is the file name, unless a filename is given: then it
		// is a caption.
		if c.Filename != "" && c.Body != c.Filename {
			m.Text = strings.TrimSpace(text)
		}
	default:
		// m.text, m.emote, m.location and unknown types: the body is the
		// plain-text form.
		m.Text = strings.TrimSpace(text)
	}
	return m, nil
}

// stripReplyFallback removes the quote a reply starts with ("> <@alice:x>
// original\n> more\n\n") and returns the reply itself. A body that is all
// quote is returned unchanged.
func stripReplyFallback(body string) string {
	rest := body
	quoted := false
	for strings.HasPrefix(rest, ">") {
		quoted = true
		nl := strings.IndexByte(rest, '\n')
		if nl < 0 {
			return body
		}
		rest = rest[nl+1:]
	}
	if !quoted {
		return body
	}
	// The fallback ends with an empty line.
	if r, ok := strings.CutPrefix(rest, "\n"); ok {
		return r
	}
	return rest
}

// stripMentionPrefix removes a leading mention of the bot: "Name: ",
// "name, ", "@bot:server " (the display name, the localpart or the full
// user id, case-insensitive) and reports whether it did.
func stripMentionPrefix(body string, me identity) (string, bool) {
	s := strings.TrimLeft(body, " \t\n")
	candidates := []struct {
		name  string
		space bool // a plain space may end it
	}{
		{me.UserID, true},
		{me.DisplayName, false},
		{"@" + me.DisplayName, true},
		{me.localpart(), false},
		{"@" + me.localpart(), true},
	}
	for _, c := range candidates {
		if c.name == "" || c.name == "@" || len(s) < len(c.name) || !strings.EqualFold(s[:len(c.name)], c.name) {
			continue
		}
		rest := s[len(c.name):]
		switch {
		case rest == "":
			return "", true
		case rest[0] == ':' || rest[0] == ',':
			return strings.TrimLeft(rest[1:], " \t\n"), true
		case c.space && (rest[0] == ' ' || rest[0] == '\n'):
			return strings.TrimLeft(rest, " \t\n"), true
		}
	}
	return body, false
}
