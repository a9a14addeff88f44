package slack

import (
	"context"
	"errors"
	"regexp"
	"strings"

	"github.com/zhiyin/zhiyin/channels"
)

// postMessage is chat.postMessage's JSON body.
type postMessage struct {
	Channel  string `json:"channel"`
	Text     string `json:"text"`
	ThreadTS string `json:"thread_ts,omitempty"`
	Mrkdwn   bool   `json:"mrkdwn"`
}

// Send implements channels.Adapter: one chat.postMessage with the bot
// token, in out.Thread when set. The receipt's PlatformID is "channel:ts".
// Errors: channels.RetryAfter for 429 and "ratelimited",
// channels.Permanent for chats we cannot post to and tokens that do not
// work, plain errors otherwise. Blocks up to the configured timeout.
func (a *Adapter) Send(ctx context.Context, out *channels.Outgoing) (channels.Receipt, error) {
	if out.Conversation == "" {
		return channels.Receipt{}, channels.Permanent(errors.New("slack send: no conversation"))
	}
	body := postMessage{
		Channel:  out.Conversation,
		Text:     formatText(out.Text, out.Markdown),
		ThreadTS: out.Thread,
		Mrkdwn:   out.Markdown,
	}
	var resp struct {
		apiStatus
		Channel string `json:"channel"`
		TS      string `json:"ts"`
	}
	if err := a.call(ctx, "chat.postMessage", a.cfg.BotToken.Value(), body, &resp); err != nil {
		a.setError(err)
		return channels.Receipt{}, err
	}
	ch := resp.Channel
	if ch == "" {
		ch = out.Conversation
	}
	if resp.TS == "" {
		return channels.Receipt{}, nil
	}
	return channels.Receipt{PlatformID: ch + ":" + resp.TS}, nil
}

var escaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// formatText escapes &, < and > (Slack reads them as markup), and with
// markdown converts the dialogue's Markdown to Slack mrkdwn: **bold** and
// __bold__ → *bold*, *italic* → _italic_, ~~strike~~ → ~strike~,
// [label](url) → <url|label>, "# Heading" → *Heading*. Code spans and
// fenced blocks are left as they are.
func formatText(s string, markdown bool) string {
	s = escaper.Replace(s)
	if !markdown {
		return s
	}
	var b strings.Builder
	for i, part := range strings.Split(s, "```") {
		if i > 0 {
			b.WriteString("```")
		}
		if i%2 == 1 { // inside a fenced block
			b.WriteString(part)
			continue
		}
		for j, span := range strings.Split(part, "`") {
			if j > 0 {
				b.WriteString("`")
			}
			if j%2 == 1 {
				b.WriteString(span)
				continue
			}
			b.WriteString(mrkdwn(span))
		}
	}
	return b.String()
}

var (
	headingRe = regexp.MustCompile(`(?m)^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$`)
	boldRe    = regexp.MustCompile(`\*\*(\S(?:[^\n]*?\S)?)\*\*`)
	boldURe   = regexp.MustCompile(`__(\S(?:[^\n]*?\S)?)__`)
	italicRe  = regexp.MustCompile(`\*(\S(?:[^*\n]*?\S)?)\*`)
	strikeRe  = regexp.MustCompile(`~~(\S(?:[^\n]*?\S)?)~~`)
	linkRe    = regexp.MustCompile(`\[([^\]\n]+)\]\(((?:https?://|mailto:)[^\s)|]+)\)`)
)

// mrkdwn converts one stretch of Markdown outside code. Bold goes through
// a placeholder (\x01) so that the italic rule does not see it.
func mrkdwn(s string) string {
	s = strings.ReplaceAll(s, "\x01", "")
	s = headingRe.ReplaceAllString(s, "\x01$1\x01")
	s = boldRe.ReplaceAllString(s, "\x01$1\x01")
	s = boldURe.ReplaceAllString(s, "\x01$1\x01")
	s = italicRe.ReplaceAllString(s, "_${1}_")
	s = strikeRe.ReplaceAllString(s, "~$1~")
	s = linkRe.ReplaceAllString(s, "<$2|$1>")
	return strings.ReplaceAll(s, "\x01", "*")
}
