package xmpp

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"path"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/zhiyin/zhiyin/channels"
)

// Platform is Message.Platform for every message of this package.
const Platform = "xmpp"

// room is a multi-user chat room the bot is configured to be in.
type room struct {
	jid     string // bare room JID as configured
	nick    string // configured nick
	current string // the nick the room confirmed (status 110); "" until joined
	joined  bool
}

// ours reports whether nick is the bot's in this room.
func (r *room) ours(nick string) bool {
	return nick != "" && (nick == r.nick || nick == r.current)
}

func (r *room) nicks() []string {
	if r.current != "" && r.current != r.nick {
		return []string{r.nick, r.current}
	}
	return []string{r.nick}
}

// env is what reading a message needs to know about the bot.
type env struct {
	channel string
	mode    string
	// self is the bot's bare JID (client) or the component domain.
	self  string
	rooms map[string]*room // by lower-case bare room JID
	now   func() time.Time
}

// parseMessage turns a <message/> stanza into the unified message. It
// reports false for what is not delivered: errors and headlines, messages
// without a body, the bot's own messages and MUC echoes, MUC history
// (delayed groupchat), invitations, and messages from the room itself.
//
// Keys: ID is the stanza's id attribute (else the stanza-id, the origin-id
// or the hash below). DedupKey is, in order of preference,
//   - "sid:<by>:<id>" from a XEP-0359 <stanza-id/> whose by is the room
//     (groupchat) or the bot's bare JID / the addressed component JID
//     (one-to-one): assigned by the server, unique and stable across
//     redelivery; one with any other by is ignored (a sender could forge
//     it);
//   - "oid:<from>:<id>" from <origin-id/>, and then "id:<from>:<id>" from
//     the id attribute: chosen by the sender's client, hence scoped to the
//     sender's full JID;
//   - "h:<sha256(from, body)>" when the stanza carries no id at all: a
//     client that sends no ids and repeats the same text gets the repeat
//     dropped as a duplicate.
//
// Keys longer than maxKey are replaced by their prefix and a SHA-256.
func parseMessage(el *element, e *env) (*channels.Message, bool) {
	typ := el.attr("type")
	switch typ {
	case "error", "headline":
		return nil, false
	}
	from, to := el.attr("from"), el.attr("to")
	if checkJID(from, false, false) != nil {
		return nil, false
	}
	body := messageBody(el)
	if body == nil || strings.TrimSpace(body.Text) == "" {
		return nil, false
	}
	if x := el.child(nsMUCUser, "x"); x.child("", "invite") != nil || x.child("", "decline") != nil ||
		el.child("jabber:x:conference", "x") != nil {
		return nil, false
	}
	text := strings.TrimSpace(body.Text)
	m := &channels.Message{
		Channel:  e.channel,
		Platform: Platform,
		Bot:      e.self,
		Time:     e.now().UTC(),
	}
	r := e.rooms[strings.ToLower(bareJID(from))]
	self := e.self
	switch {
	case typ == "groupchat":
		nick := resourceOf(from)
		if nick == "" || r != nil && r.ours(nick) || el.child(nsDelay, "delay") != nil {
			return nil, false // the room's own notices, our echo, history
		}
		m.ConversationType = channels.Group
		m.Conversation = bareJID(from)
		m.Sender = channels.Sender{ID: from, Name: nick}
		self = m.Conversation
		if r != nil {
			var who string
			text, who = stripMention(text, r.nicks()...)
			if who != "" {
				m.Mentioned = true
				m.Mentions = []string{m.Conversation + "/" + who}
			}
		}
	case r != nil: // a private message from a room occupant
		nick := resourceOf(from)
		if nick == "" || r.ours(nick) {
			return nil, false
		}
		m.ConversationType = channels.Direct
		m.Conversation = from
		m.Sender = channels.Sender{ID: from, Name: nick}
	default: // chat, normal, or a type we do not know (RFC 6121 5.2.2: normal)
		if e.mode == ModeComponent {
			if _, d, _ := splitJID(from); strings.EqualFold(d, e.self) {
				return nil, false
			}
			if _, d, _ := splitJID(to); to != "" && strings.EqualFold(d, e.self) {
				m.Bot = bareJID(to)
				m.Handle.Extra = map[string]string{"from": bareJID(to)}
				self = m.Bot
			}
		} else if sameBare(from, e.self) {
			return nil, false
		}
		m.ConversationType = channels.Direct
		m.Conversation = bareJID(from)
		m.Sender = channels.Sender{ID: bareJID(from)}
		if n := el.child("http://jabber.org/protocol/nick", "nick"); n != nil {
			m.Sender.Name = strings.TrimSpace(n.Text)
		}
		if d := el.child(nsDelay, "delay"); d != nil {
			// Offline storage: a message sent while the bot was away.
			if t, err := time.Parse(time.RFC3339Nano, d.attr("stamp")); err == nil {
				m.Time = t.UTC()
			}
		}
	}
	if t := el.child("", "thread"); t != nil {
		m.Thread = strings.TrimSpace(t.Text)
	}
	if rp := el.child("urn:xmpp:reply:0", "reply"); rp != nil {
		m.ReplyTo = rp.attr("id")
	}
	for _, c := range el.Children {
		if !c.is(nsOOB, "x") {
			continue
		}
		if md, ok := oobMedia(c); ok {
			m.Media = append(m.Media, md)
			if text == md.URL {
				text = ""
			}
		}
	}
	m.Text = text
	m.ID, m.DedupKey = messageKeys(el, from, self, body.Text)
	if raw, err := json.Marshal(el.String()); err == nil {
		m.Raw = raw
	}
	return m, true
}

// messageBody returns the <body/> without xml:lang, else the first one.
func messageBody(el *element) *element {
	var first *element
	for _, c := range el.Children {
		if c.Name.Local != "body" || c.Name.Space != el.Name.Space {
			continue
		}
		if first == nil {
			first = c
		}
		lang := false
		for _, a := range c.Attr {
			lang = lang || a.Name.Local == "lang" && (a.Name.Space == nsXML || a.Name.Space == "xml")
		}
		if !lang {
			return c
		}
	}
	return first
}

const maxKey = 200

// messageKeys returns the message id and its dedup key (see parseMessage).
func messageKeys(el *element, from, self, body string) (id, key string) {
	var sid, oid string
	for _, c := range el.Children {
		switch {
		case c.is(nsSID, "stanza-id") && sid == "" && c.attr("id") != "" && sameBare(c.attr("by"), self) && !strings.Contains(c.attr("by"), "/"):
			sid = c.attr("id")
		case c.is(nsSID, "origin-id") && oid == "" && c.attr("id") != "":
			oid = c.attr("id")
		}
	}
	attr := el.attr("id")
	switch {
	case sid != "":
		key = "sid:" + strings.ToLower(bareJID(self)) + ":" + sid
	case oid != "":
		key = "oid:" + from + ":" + oid
	case attr != "":
		key = "id:" + from + ":" + attr
	default:
		sum := sha256.Sum256([]byte(from + "\x00" + body))
		key = "h:" + hex.EncodeToString(sum[:16])
	}
	if len(key) > maxKey {
		p, _, _ := strings.Cut(key, ":")
		sum := sha256.Sum256([]byte(key))
		key = p + ":" + hex.EncodeToString(sum[:])
	}
	id = attr
	for _, v := range []string{sid, oid, key} {
		if id == "" {
			id = v
		}
	}
	if len(id) > maxKey {
		sum := sha256.Sum256([]byte(id))
		id = hex.EncodeToString(sum[:])
	}
	return id, key
}

// Media kinds by file extension.
var mediaByExt = map[string]struct {
	kind channels.MediaKind
	mime string
}{
	".jpg": {channels.Image, "image/jpeg"}, ".jpeg": {channels.Image, "image/jpeg"},
	".png": {channels.Image, "image/png"}, ".gif": {channels.Image, "image/gif"},
	".webp": {channels.Image, "image/webp"}, ".bmp": {channels.Image, "image/bmp"},
	".heic": {channels.Image, "image/heic"}, ".svg": {channels.Image, "image/svg+xml"},
	".ogg": {channels.Voice, "audio/ogg"}, ".opus": {channels.Voice, "audio/ogg"},
	".oga": {channels.Voice, "audio/ogg"}, ".m4a": {channels.Voice, "audio/mp4"},
	".mp3": {channels.Voice, "audio/mpeg"}, ".aac": {channels.Voice, "audio/aac"},
	".amr": {channels.Voice, "audio/amr"}, ".wav": {channels.Voice, "audio/wav"},
	".mp4": {channels.Video, "video/mp4"}, ".webm": {channels.Video, "video/webm"},
	".mov": {channels.Video, "video/quicktime"}, ".mkv": {channels.Video, "video/x-matroska"},
	".pdf": {channels.File, "application/pdf"}, ".txt": {channels.File, "text/plain"},
}

// oobMedia reads a XEP-0066 <x xmlns="jabber:x:oob"><url/></x>: an http(s)
// URL, its kind and type guessed from the extension (File when unknown).
func oobMedia(x *element) (channels.Media, bool) {
	u := x.child("", "url")
	if u == nil {
		return channels.Media{}, false
	}
	raw := strings.TrimSpace(u.Text)
	pu, err := url.Parse(raw)
	if err != nil || pu.Scheme != "https" && pu.Scheme != "http" || pu.Host == "" {
		return channels.Media{}, false
	}
	m := channels.Media{Kind: channels.File, URL: raw}
	if name := path.Base(pu.Path); name != "/" && name != "." {
		m.Name = name
	}
	if k, ok := mediaByExt[strings.ToLower(path.Ext(pu.Path))]; ok {
		m.Kind, m.MIME = k.kind, k.mime
	}
	return m, true
}

// stripMention looks for one of the bot's nicks in a groupchat body. An
// address at the start ("知音: …", "知音，…", "@知音 …") and "@nick"
// anywhere are removed; the nick elsewhere as a word counts as a mention
// but stays in the text. It returns the text and the nick found ("" for
// none). Case-insensitive; in scripts written without spaces (Han, kana)
// the nick needs no word boundary.
func stripMention(text string, nicks ...string) (string, string) {
	for _, nick := range nicks {
		if nick == "" {
			continue
		}
		found := false
		// An address at the start.
		s := strings.TrimLeftFunc(text, unicode.IsSpace)
		s = strings.TrimPrefix(s, "@")
		if hasPrefixFold(s, nick) && boundaryAfter(s, len(nick), nick) {
			s = s[len(nick):]
			s = strings.TrimLeftFunc(s, unicode.IsSpace)
			s = strings.TrimLeft(s, ":：,，")
			text, found = strings.TrimSpace(s), true
		}
		// "@nick" anywhere.
		var b strings.Builder
		for i := 0; i < len(text); {
			if text[i] == '@' && hasPrefixFold(text[i+1:], nick) && boundaryAfter(text[i+1:], len(nick), nick) {
				i += 1 + len(nick)
				found = true
				// "a @nick b" becomes "a b", not "a  b".
				if out := b.String(); (out == "" || strings.HasSuffix(out, " ")) && i < len(text) && text[i] == ' ' {
					i++
				}
				continue
			}
			_, w := utf8.DecodeRuneInString(text[i:])
			b.WriteString(text[i : i+w])
			i += w
		}
		if found {
			return strings.TrimSpace(b.String()), nick
		}
		// The nick as a word.
		for i := 0; i < len(text); {
			if hasPrefixFold(text[i:], nick) && boundaryBefore(text, i, nick) && boundaryAfter(text[i:], len(nick), nick) {
				return text, nick
			}
			_, w := utf8.DecodeRuneInString(text[i:])
			i += w
		}
	}
	return text, ""
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// boundaryAfter reports whether s[n:] does not continue the word nick
// ends with.
func boundaryAfter(s string, n int, nick string) bool {
	if n >= len(s) {
		return true
	}
	next, _ := utf8.DecodeRuneInString(s[n:])
	last, _ := utf8.DecodeLastRuneInString(nick)
	return !joins(last, next)
}

// boundaryBefore reports whether s[:i] does not end in a word the nick
// would continue.
func boundaryBefore(s string, i int, nick string) bool {
	if i == 0 {
		return true
	}
	prev, _ := utf8.DecodeLastRuneInString(s[:i])
	first, _ := utf8.DecodeRuneInString(nick)
	return !joins(prev, first)
}

// joins reports whether two adjacent runes belong to one word: both
// letters or digits of a script written with spaces.
func joins(a, b rune) bool {
	return wordRune(a) && wordRune(b)
}

func wordRune(r rune) bool {
	if unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana) {
		return false
	}
	return unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_'
}
