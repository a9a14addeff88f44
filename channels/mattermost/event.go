package mattermost

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/zhiyin/zhiyin/channels"
)

// platform is Message.Platform.
const platform = "mattermost"

// event is one websocket frame from the server: an event (with seq) or a
// reply to one of our requests (with seq_reply).
type event struct {
	Event     string          `json:"event"`
	Data      json.RawMessage `json:"data"`
	Broadcast broadcast       `json:"broadcast"`
	Seq       int64           `json:"seq"`
	// Replies to our actions.
	SeqReply int64           `json:"seq_reply"`
	Status   string          `json:"status"`
	Error    json.RawMessage `json:"error"`
}

type broadcast struct {
	ChannelID string `json:"channel_id"`
	UserID    string `json:"user_id"`
	TeamID    string `json:"team_id"`
}

// hello is the data of the "hello" event.
type hello struct {
	ServerVersion string `json:"server_version"`
	ConnectionID  string `json:"connection_id"`
}

// posted is the data of the "posted" event. Post and Mentions are JSON
// encoded as strings; jsonString accepts the plain form too.
type posted struct {
	ChannelType string     `json:"channel_type"`
	ChannelName string     `json:"channel_name"`
	SenderName  string     `json:"sender_name"`
	TeamID      string     `json:"team_id"`
	Mentions    jsonString `json:"mentions"`
	Post        jsonString `json:"post"`
}

// post is a Mattermost post (model.Post), the fields zhiyin reads.
type post struct {
	ID        string   `json:"id"`
	CreateAt  int64    `json:"create_at"`
	UserID    string   `json:"user_id"`
	ChannelID string   `json:"channel_id"`
	RootID    string   `json:"root_id"`
	Message   string   `json:"message"`
	Type      string   `json:"type"`
	FileIDs   []string `json:"file_ids"`
	Props     props    `json:"props"`
	Metadata  struct {
		Files []fileInfo `json:"files"`
	} `json:"metadata"`
}

// props holds the post properties that mark automated posts. Mattermost
// writes them as strings ("true"), some integrations as booleans.
type props struct {
	FromBot     flexBool `json:"from_bot"`
	FromWebhook flexBool `json:"from_webhook"`
}

type fileInfo struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Size     int64  `json:"size"`
	MimeType string `json:"mime_type"`
}

// jsonString is a JSON value that Mattermost sends encoded inside a JSON
// string ("{\"id\":…}"); it holds the decoded JSON text. A value that is
// not a string is kept as it is.
type jsonString []byte

func (j *jsonString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*j = jsonString(s)
		return nil
	}
	if string(b) == "null" {
		*j = nil
		return nil
	}
	*j = append(jsonString(nil), b...)
	return nil
}

// flexBool reads true, "true" and anything else as false; it never fails.
type flexBool bool

func (f *flexBool) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	*f = flexBool(strings.EqualFold(s, "true"))
	return nil
}

// errMalformed marks a frame or post that does not parse.
var errMalformed = errors.New("malformed mattermost event")

// parseEvent decodes one websocket frame.
func parseEvent(b []byte) (*event, error) {
	var ev event
	if err := json.Unmarshal(b, &ev); err != nil {
		return nil, fmt.Errorf("%w: %v", errMalformed, err)
	}
	return &ev, nil
}

// botIdentity is who the adapter is on the server (GET /api/v4/users/me).
type botIdentity struct {
	ID       string
	Username string
}

// toMessage turns a "posted" event into a unified message. It returns nil,
// nil for posts that are not answered: the bot's own, other bots', system
// and plugin posts.
func toMessage(ev *event, bot botIdentity, raw []byte) (*channels.Message, error) {
	var d posted
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		return nil, fmt.Errorf("%w: posted data: %v", errMalformed, err)
	}
	if len(d.Post) == 0 {
		return nil, fmt.Errorf("%w: posted event without post", errMalformed)
	}
	var p post
	if err := json.Unmarshal(d.Post, &p); err != nil {
		return nil, fmt.Errorf("%w: post: %v", errMalformed, err)
	}
	switch {
	case p.ID == "" || p.ChannelID == "":
		return nil, fmt.Errorf("%w: post without id or channel_id", errMalformed)
	case p.Type != "":
		// "system_join_channel" and the like, and plugin posts ("custom_…").
		return nil, nil
	case bot.ID != "" && p.UserID == bot.ID:
		return nil, nil
	case bool(p.Props.FromBot):
		return nil, nil
	}
	var mentions []string
	if len(d.Mentions) > 0 {
		// Best effort: a broken list costs the mention flag, not the post.
		_ = json.Unmarshal(d.Mentions, &mentions)
	}
	m := &channels.Message{
		Platform:         platform,
		Bot:              bot.ID,
		ID:               p.ID,
		Conversation:     p.ChannelID,
		ConversationType: conversationType(d.ChannelType),
		Thread:           p.RootID,
		Sender: channels.Sender{
			ID:    p.UserID,
			Name:  strings.TrimPrefix(d.SenderName, "@"),
			IsBot: bool(p.Props.FromWebhook),
		},
		Mentions: mentions,
		Text:     stripMention(p.Message, bot.Username),
		Media:    media(&p),
		Raw:      json.RawMessage(raw),
	}
	if p.CreateAt > 0 {
		m.Time = time.UnixMilli(p.CreateAt).UTC()
	}
	for _, id := range mentions {
		if bot.ID != "" && id == bot.ID {
			m.Mentioned = true
		}
	}
	if !m.Mentioned && bot.Username != "" && hasMention(p.Message, bot.Username) {
		m.Mentioned = true
	}
	return m, nil
}

// conversationType maps Mattermost's channel types: D direct, G group
// message, O public and P private channels.
func conversationType(t string) channels.ConversationType {
	switch t {
	case "D":
		return channels.Direct
	case "G":
		return channels.Group
	default:
		return channels.Channel
	}
}

// media lists a post's files: the metadata the server attaches where it
// does, the bare file id otherwise.
func media(p *post) []channels.Media {
	if len(p.FileIDs) == 0 && len(p.Metadata.Files) == 0 {
		return nil
	}
	info := make(map[string]fileInfo, len(p.Metadata.Files))
	ids := append([]string(nil), p.FileIDs...)
	for _, f := range p.Metadata.Files {
		if _, ok := info[f.ID]; !ok && f.ID != "" {
			info[f.ID] = f
			if !contains(ids, f.ID) {
				ids = append(ids, f.ID)
			}
		}
	}
	out := make([]channels.Media, 0, len(ids))
	for _, id := range ids {
		if id == "" {
			continue
		}
		f := info[id]
		out = append(out, channels.Media{
			Kind: kindOf(f.MimeType),
			Key:  id,
			MIME: f.MimeType,
			Size: max(f.Size, 0),
			Name: f.Name,
		})
	}
	return out
}

func kindOf(mime string) channels.MediaKind {
	switch {
	case strings.HasPrefix(mime, "image/"):
		return channels.Image
	case strings.HasPrefix(mime, "video/"):
		return channels.Video
	default:
		return channels.File
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// isNameByte reports whether c may appear in a Mattermost username.
func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_'
}

// mentionAt reports whether s[i:] starts with "@name" (case-insensitive)
// not followed by another username character, and returns its length.
func mentionAt(s string, i int, name string) (int, bool) {
	n := 1 + len(name)
	if i+n > len(s) || s[i] != '@' || !strings.EqualFold(s[i+1:i+n], name) {
		return 0, false
	}
	if i+n < len(s) && isNameByte(s[i+n]) {
		// "@bot.helper" is someone else; but a trailing '.' or '-' ends a
		// sentence: "@bot." mentions bot.
		if c := s[i+n]; (c == '.' || c == '-' || c == '_') && (i+n+1 == len(s) || !isNameByte(s[i+n+1])) {
			return n, true
		}
		return 0, false
	}
	if i > 0 && isNameByte(s[i-1]) {
		return 0, false // an e-mail address, not a mention
	}
	return n, true
}

// hasMention reports whether text mentions @name.
func hasMention(text, name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(text); i++ {
		if _, ok := mentionAt(text, i, name); ok {
			return true
		}
	}
	return false
}

// stripMention removes every "@name" mention of the bot (and a ':', ',',
// '.' or ';' right after it) and trims the text.
func stripMention(text, name string) string {
	if name == "" || !strings.Contains(text, "@") {
		return strings.TrimSpace(text)
	}
	var b strings.Builder
	b.Grow(len(text))
	for i := 0; i < len(text); {
		n, ok := mentionAt(text, i, name)
		if !ok {
			b.WriteByte(text[i])
			i++
			continue
		}
		i += n
		if i < len(text) && strings.IndexByte(":,.;", text[i]) >= 0 {
			i++
		}
		// Do not leave two spaces where the mention was.
		if i < len(text) && text[i] == ' ' && (b.Len() == 0 || strings.HasSuffix(b.String(), " ")) {
			i++
		}
	}
	return strings.TrimSpace(b.String())
}
