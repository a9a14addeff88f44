package telegram

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/zhiyin/zhiyin/channels"
)

// platform is Message.Platform.
const platform = "telegram"

// errMalformed marks an update that does not parse or lacks what every
// update has (update_id, a message's chat and message_id).
var errMalformed = errors.New("malformed update")

// The parts of the Bot API's Update this adapter reads.
type (
	update struct {
		UpdateID          int64    `json:"update_id"`
		Message           *message `json:"message"`
		EditedMessage     *message `json:"edited_message"`
		ChannelPost       *message `json:"channel_post"`
		EditedChannelPost *message `json:"edited_channel_post"`
	}
	message struct {
		MessageID       int64       `json:"message_id"`
		MessageThreadID int64       `json:"message_thread_id"`
		IsTopicMessage  bool        `json:"is_topic_message"`
		From            *user       `json:"from"`
		SenderChat      *chat       `json:"sender_chat"`
		Date            int64       `json:"date"`
		Chat            chat        `json:"chat"`
		ReplyToMessage  *message    `json:"reply_to_message"`
		Text            string      `json:"text"`
		Entities        []entity    `json:"entities"`
		Caption         string      `json:"caption"`
		CaptionEntities []entity    `json:"caption_entities"`
		Photo           []photoSize `json:"photo"`
		Document        *file       `json:"document"`
		Voice           *file       `json:"voice"`
		Audio           *file       `json:"audio"`
		Video           *file       `json:"video"`
		VideoNote       *file       `json:"video_note"`
	}
	user struct {
		ID        int64  `json:"id"`
		IsBot     bool   `json:"is_bot"`
		FirstName string `json:"first_name"`
		LastName  string `json:"last_name"`
		Username  string `json:"username"`
	}
	chat struct {
		ID        int64  `json:"id"`
		Type      string `json:"type"`
		Title     string `json:"title"`
		Username  string `json:"username"`
		FirstName string `json:"first_name"`
		LastName  string `json:"last_name"`
	}
	entity struct {
		Type   string `json:"type"`
		Offset int    `json:"offset"`
		Length int    `json:"length"`
		User   *user  `json:"user"`
	}
	photoSize struct {
		FileID   string `json:"file_id"`
		Width    int64  `json:"width"`
		Height   int64  `json:"height"`
		FileSize int64  `json:"file_size"`
	}
	file struct {
		FileID    string `json:"file_id"`
		FileName  string `json:"file_name"`
		MimeType  string `json:"mime_type"`
		FileSize  int64  `json:"file_size"`
		Duration  int64  `json:"duration"`
		Title     string `json:"title"`
		Performer string `json:"performer"`
	}
)

// identity is who the bot is: its user id (from getMe, else the token's
// prefix) and @username (from the configuration or getMe), for mentions,
// replies to the bot and Message.Bot.
type identity struct {
	ID       int64
	Username string
}

// key is how the bot appears in Message.Mentions.
func (me identity) key() string {
	if me.ID != 0 {
		return strconv.FormatInt(me.ID, 10)
	}
	return "@" + me.Username
}

// parseUpdate decodes one Update. It returns its update_id and the message
// to deliver, or a nil message for an update that is acknowledged and
// ignored: edited messages, update types this adapter does not handle,
// service messages (no text, no media) and messages written by bots.
// Errors wrap errMalformed.
func parseUpdate(raw []byte, me identity) (int64, *channels.Message, error) {
	var u update
	if err := json.Unmarshal(raw, &u); err != nil {
		// Still say which update it was, so that polling moves past it.
		var id struct {
			UpdateID int64 `json:"update_id"`
		}
		_ = json.Unmarshal(raw, &id)
		return max(id.UpdateID, 0), nil, fmt.Errorf("%w: %v", errMalformed, err)
	}
	if u.UpdateID <= 0 {
		return 0, nil, fmt.Errorf("%w: no update_id", errMalformed)
	}
	msg := u.Message
	if msg == nil {
		msg = u.ChannelPost
	}
	if msg == nil {
		return u.UpdateID, nil, nil
	}
	if msg.MessageID == 0 || msg.Chat.ID == 0 {
		return u.UpdateID, nil, fmt.Errorf("%w: update %d: message without message_id or chat", errMalformed, u.UpdateID)
	}
	m, err := toMessage(msg, me)
	if m != nil {
		m.DedupKey = "u" + strconv.FormatInt(u.UpdateID, 10)
		m.Raw = json.RawMessage(raw)
	}
	return u.UpdateID, m, err
}

// toMessage fills the unified message from a Telegram message, or returns
// nil for one that is not answered.
func toMessage(msg *message, me identity) (*channels.Message, error) {
	chatID := strconv.FormatInt(msg.Chat.ID, 10)
	m := &channels.Message{
		Platform:     platform,
		ID:           chatID + ":" + strconv.FormatInt(msg.MessageID, 10),
		Conversation: chatID,
		Time:         unixTime(msg.Date),
	}
	if me.ID != 0 {
		m.Bot = strconv.FormatInt(me.ID, 10)
	}
	switch msg.Chat.Type {
	case "private":
		m.ConversationType = channels.Direct
	case "channel":
		m.ConversationType = channels.Channel
	default: // group, supergroup, and anything new: answer only when mentioned
		m.ConversationType = channels.Group
	}
	switch {
	case msg.SenderChat != nil:
		// On behalf of a channel or an anonymous group admin (whose "from"
		// is the GroupAnonymousBot): a person, not a bot.
		m.Sender = channels.Sender{ID: strconv.FormatInt(msg.SenderChat.ID, 10), Name: chatName(msg.SenderChat)}
	case msg.From != nil:
		if msg.From.IsBot || (me.ID != 0 && msg.From.ID == me.ID) {
			return nil, nil
		}
		m.Sender = channels.Sender{ID: strconv.FormatInt(msg.From.ID, 10), Name: userName(msg.From)}
	default:
		m.Sender = channels.Sender{ID: chatID, Name: chatName(&msg.Chat)}
	}
	if msg.IsTopicMessage && msg.MessageThreadID != 0 {
		m.Thread = strconv.FormatInt(msg.MessageThreadID, 10)
	}
	if r := msg.ReplyToMessage; r != nil && r.MessageID != 0 {
		m.ReplyTo = chatID + ":" + strconv.FormatInt(r.MessageID, 10)
		if f := r.From; f != nil && ((me.ID != 0 && f.ID == me.ID) ||
			(f.IsBot && me.Username != "" && strings.EqualFold(f.Username, me.Username))) {
			m.Mentioned = true
		}
	}
	text, ents := msg.Text, msg.Entities
	if text == "" {
		text, ents = msg.Caption, msg.CaptionEntities
	}
	mentions, mentioned, text := mentionsOf(text, ents, me)
	m.Mentions = mentions
	m.Mentioned = m.Mentioned || mentioned
	m.Text = strings.TrimSpace(text)
	m.Media = mediaOf(msg)
	if m.Text == "" && len(m.Media) == 0 {
		return nil, nil // service message: a member joined, a pin, a sticker …
	}
	return m, nil
}

// unixTime converts Telegram's date (seconds; milliseconds from some test
// servers) to UTC; a missing date is now.
func unixTime(d int64) time.Time {
	switch {
	case d <= 0:
		return time.Now().UTC()
	case d > 1e12:
		return time.UnixMilli(d).UTC()
	default:
		return time.Unix(d, 0).UTC()
	}
}

func userName(u *user) string {
	if n := strings.TrimSpace(u.FirstName + " " + u.LastName); n != "" {
		return n
	}
	return u.Username
}

func chatName(c *chat) string {
	if c.Title != "" {
		return c.Title
	}
	if n := strings.TrimSpace(c.FirstName + " " + c.LastName); n != "" {
		return n
	}
	return c.Username
}

// span is a range of UTF-16 code units (Telegram's entity offsets).
type span struct{ from, to int }

// mentionsOf reads the mentions out of text's entities: @usernames and
// text mentions (users without a username) go to mentions; a mention of
// the bot sets mentioned and is cut from the text, as is the @bot suffix
// of a /command@bot. A /command at the start without a suffix is addressed
// to the bots of the chat, so it counts as mentioning this one.
func mentionsOf(text string, ents []entity, me identity) (mentions []string, mentioned bool, out string) {
	if len(ents) == 0 {
		return nil, false, text
	}
	u := utf16.Encode([]rune(text))
	var cuts []span
	for _, e := range ents {
		if e.Offset < 0 || e.Length <= 0 || e.Offset > len(u) || e.Length > len(u)-e.Offset {
			continue
		}
		seg := string(utf16.Decode(u[e.Offset : e.Offset+e.Length]))
		switch e.Type {
		case "mention":
			name := strings.TrimPrefix(seg, "@")
			if me.Username != "" && strings.EqualFold(name, me.Username) {
				mentioned = true
				mentions = append(mentions, me.key())
				cuts = append(cuts, span{e.Offset, e.Offset + e.Length})
			} else if name != "" {
				mentions = append(mentions, "@"+name)
			}
		case "text_mention":
			if e.User == nil || e.User.ID == 0 {
				continue
			}
			if me.ID != 0 && e.User.ID == me.ID {
				mentioned = true
				cuts = append(cuts, span{e.Offset, e.Offset + e.Length})
			}
			mentions = append(mentions, strconv.FormatInt(e.User.ID, 10))
		case "bot_command":
			cmd, to, found := strings.Cut(seg, "@")
			switch {
			case found && me.Username != "" && strings.EqualFold(to, me.Username):
				mentioned = true
				at := e.Offset + len(utf16.Encode([]rune(cmd)))
				cuts = append(cuts, span{at, e.Offset + e.Length})
			case !found && e.Offset == 0:
				mentioned = true
			}
		}
	}
	slices.Sort(mentions)
	mentions = slices.Compact(mentions)
	if len(cuts) == 0 {
		return mentions, mentioned, text
	}
	return mentions, mentioned, cutSpans(u, cuts)
}

// cutSpans removes spans from u (overlaps ignored) with one space of the
// gap each leaves, and decodes the rest.
func cutSpans(u []uint16, cuts []span) string {
	slices.SortFunc(cuts, func(a, b span) int { return a.from - b.from })
	out := make([]uint16, 0, len(u))
	pos := 0
	for _, c := range cuts {
		if c.from < pos {
			continue // overlaps the previous cut
		}
		out = append(out, u[pos:c.from]...)
		pos = c.to
		// "hi @bot there" → "hi there", not "hi  there".
		if pos < len(u) && u[pos] == ' ' && (len(out) == 0 || out[len(out)-1] == ' ') {
			pos++
		}
	}
	out = append(out, u[pos:]...)
	return string(utf16.Decode(out))
}

// maxDuration bounds a media duration in seconds (a year) so that it
// cannot overflow time.Duration.
const maxDuration = 365 * 24 * 3600

// mediaOf lists a message's attachments as references (file_id keys).
func mediaOf(msg *message) []channels.Media {
	var media []channels.Media
	if len(msg.Photo) > 0 {
		best := msg.Photo[0]
		for _, p := range msg.Photo[1:] {
			if p.Width*p.Height > best.Width*best.Height ||
				(p.Width*p.Height == best.Width*best.Height && p.FileSize > best.FileSize) {
				best = p
			}
		}
		if best.FileID != "" {
			media = append(media, channels.Media{Kind: channels.Image, Key: best.FileID, Size: best.FileSize})
		}
	}
	add := func(kind channels.MediaKind, f *file) {
		if f == nil || f.FileID == "" {
			return
		}
		name := f.FileName
		if name == "" && f.Title != "" {
			name = strings.TrimPrefix(f.Performer+" - "+f.Title, " - ")
		}
		media = append(media, channels.Media{
			Kind: kind, Key: f.FileID, MIME: f.MimeType, Size: f.FileSize, Name: name,
			Duration: time.Duration(min(max(f.Duration, 0), maxDuration)) * time.Second,
		})
	}
	add(channels.File, msg.Document)
	add(channels.Voice, msg.Voice)
	add(channels.File, msg.Audio) // a music or recording file, not a voice note
	add(channels.Video, msg.Video)
	add(channels.Video, msg.VideoNote)
	return media
}
