package channels

import (
	"encoding/json"
	"time"
)

// ConversationType says who is in a conversation.
type ConversationType string

// Conversation types.
const (
	// Direct is a one-to-one chat between a customer and the bot.
	Direct ConversationType = "direct"
	// Group is a group chat (a DingTalk group, a Feishu group, an XMPP MUC
	// room): the bot answers only when mentioned unless configured
	// otherwise.
	Group ConversationType = "group"
	// Channel is a broadcast or team channel (Slack, Mattermost, Matrix
	// rooms with many members); treated like Group.
	Channel ConversationType = "channel"
)

// MediaKind is what a media attachment holds.
type MediaKind string

// Media kinds.
const (
	Image MediaKind = "image"
	File  MediaKind = "file"
	Voice MediaKind = "voice"
	Video MediaKind = "video"
)

// Sender is who wrote a message.
type Sender struct {
	ID    string `json:"id"`
	Name  string `json:"name,omitempty"`
	IsBot bool   `json:"is_bot,omitempty"`
}

// Media is a reference to an attachment; the bytes stay on the platform
// until something fetches them (Fetcher).
type Media struct {
	Kind MediaKind `json:"kind"`
	// Key is the platform's id for the file (a Telegram file_id, a Feishu
	// file_key, a WeCom media_id); URL is set where the platform gives one.
	Key  string `json:"key,omitempty"`
	URL  string `json:"url,omitempty"`
	MIME string `json:"mime,omitempty"`
	Size int64  `json:"size,omitempty"`
	Name string `json:"name,omitempty"`
	// Duration of a voice note or video, when the platform says.
	Duration time.Duration `json:"duration,omitempty"`
}

// Handle is what an adapter needs to answer this very message, beyond the
// conversation id: a DingTalk sessionWebhook and its expiry, a Slack
// response_url. The hub stores it with the message and hands it back on
// every Outgoing that answers it.
type Handle struct {
	URL     string            `json:"url,omitempty"`
	Expires time.Time         `json:"expires,omitzero"`
	Extra   map[string]string `json:"extra,omitempty"`
}

// Message is one inbound message in the unified form every adapter fills
// (PROTOCOLS.md, "Unified message fields").
type Message struct {
	// Channel is the adapter instance's name (Adapter.Name); the hub sets
	// it from the adapter the message came through.
	Channel string `json:"channel"`
	// Platform is the kind of platform: "telegram", "feishu", ….
	Platform string `json:"platform"`
	// Bot is the tenant / bot / app id the message was addressed to, where
	// the platform says (a Feishu app_id, a DingTalk robotCode).
	Bot string `json:"bot,omitempty"`
	// ID is the platform's message id.
	ID string `json:"id"`
	// DedupKey identifies the delivery for deduplication (a Feishu
	// event_id, a Telegram update_id); empty means ID. Two deliveries with
	// the same (Channel, DedupKey) are one message.
	DedupKey string `json:"dedup_key,omitempty"`
	// Conversation is the platform's chat / room / channel id; for a
	// one-to-one chat without one, the sender's id.
	Conversation     string           `json:"conversation"`
	ConversationType ConversationType `json:"conversation_type"`
	// Thread is the thread the message belongs to (Slack thread_ts,
	// Mattermost root_id); ReplyTo the message it quotes.
	Thread  string `json:"thread,omitempty"`
	ReplyTo string `json:"reply_to,omitempty"`
	Sender  Sender `json:"sender"`
	// Mentions are the ids of the users mentioned; Mentioned says whether
	// the bot itself was.
	Mentions  []string `json:"mentions,omitempty"`
	Mentioned bool     `json:"mentioned,omitempty"`
	// Time is when the platform says the message was sent (UTC; seconds
	// and milliseconds normalised).
	Time time.Time `json:"time"`
	// Text is the plain text, mention placeholders stripped and trimmed.
	Text  string  `json:"text,omitempty"`
	Media []Media `json:"media,omitempty"`
	// Handle answers this message (see Handle).
	Handle Handle `json:"handle,omitzero"`
	// Raw is the platform's payload as received (kept for debugging;
	// encrypted at rest like the text).
	Raw json.RawMessage `json:"raw,omitempty"`
}

// Key returns the dedup key: DedupKey, or ID when that is empty.
func (m *Message) Key() string {
	if m.DedupKey != "" {
		return m.DedupKey
	}
	return m.ID
}

// Outgoing is one reply part on its way to a platform. The hub builds it
// from the outbox; an adapter's Send must not keep it.
type Outgoing struct {
	// Key is stable across every attempt to send this part: a platform
	// idempotency key (Feishu uuid, Matrix txnId, our webhook's
	// Idempotency-Key). At most 64 bytes of [A-Za-z0-9_-].
	Key string
	// Channel is the adapter instance's name.
	Channel string
	// Conversation, ConversationType, Thread: where to answer (copied from
	// the inbound message).
	Conversation     string
	ConversationType ConversationType
	Thread           string
	// ReplyTo is the platform id of the message this answers.
	ReplyTo string
	// Recipient is the customer's id (the inbound sender), for platforms
	// that address users rather than chats (WeCom touser).
	Recipient string
	// Text is one part, already split to the adapter's Limits.MaxText.
	Text     string
	Markdown bool
	// Part and Parts number the parts of one reply, from 1.
	Part, Parts int
	// Handle is the inbound message's Handle.
	Handle Handle
	// Attempt counts the tries of this part, from 1.
	Attempt int
}

// Receipt is what a platform said about a sent message.
type Receipt struct {
	// PlatformID is the platform's id of the message we sent (recorded so
	// that a restart never sends it twice), or "" when it gives none.
	PlatformID string
}
