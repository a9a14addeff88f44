package telegram

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/zhiyin/zhiyin/channels"
)

// sendParams is sendMessage's request.
type sendParams struct {
	ChatID          json.RawMessage  `json:"chat_id"` // a number, or "@channelusername"
	Text            string           `json:"text"`
	MessageThreadID int64            `json:"message_thread_id,omitempty"`
	ParseMode       string           `json:"parse_mode,omitempty"`
	ReplyParameters *replyParameters `json:"reply_parameters,omitempty"`
}

type replyParameters struct {
	MessageID                int64 `json:"message_id"`
	AllowSendingWithoutReply bool  `json:"allow_sending_without_reply"`
}

// Send implements channels.Adapter with sendMessage. Markdown parts go as
// MarkdownV2 (converted and escaped); if Telegram still cannot parse them
// the part is sent once more as plain text. Only the first part of a reply
// quotes the message it answers. Errors: channels.RetryAfter for 429,
// channels.Permanent for other 4xx (chat not found, bot blocked, bad
// token), plain for 5xx and network errors. Blocks for one call or two.
func (a *Adapter) Send(ctx context.Context, out *channels.Outgoing) (channels.Receipt, error) {
	r, err := a.send(ctx, out)
	if err != nil {
		a.fail("send: " + err.Error())
	}
	return r, err
}

func (a *Adapter) send(ctx context.Context, out *channels.Outgoing) (channels.Receipt, error) {
	if strings.TrimSpace(out.Text) == "" {
		return channels.Receipt{}, channels.Permanent(fmt.Errorf("telegram sendMessage: %w", ErrEmptyText))
	}
	if out.Conversation == "" {
		return channels.Receipt{}, channels.Permanent(errors.New("telegram sendMessage: no chat id"))
	}
	p := sendParams{ChatID: chatIDJSON(out.Conversation), Text: out.Text}
	if out.Thread != "" {
		p.MessageThreadID, _ = strconv.ParseInt(out.Thread, 10, 64)
	}
	if out.ReplyTo != "" && out.Part <= 1 {
		if id := replyMessageID(out.ReplyTo); id > 0 {
			p.ReplyParameters = &replyParameters{MessageID: id, AllowSendingWithoutReply: true}
		}
	}
	if out.Markdown {
		p.ParseMode = "MarkdownV2"
		p.Text = toMarkdownV2(out.Text)
	}
	var res struct {
		MessageID int64 `json:"message_id"`
		Chat      struct {
			ID int64 `json:"id"`
		} `json:"chat"`
	}
	err := a.call(ctx, a.client, "sendMessage", p, &res)
	var ae *APIError
	if errors.As(err, &ae) && ae.Code == http.StatusBadRequest && p.ParseMode != "" &&
		strings.Contains(strings.ToLower(ae.Description), "can't parse entities") {
		a.log.Warn("telegram refused MarkdownV2; sending as plain text", logErr, err)
		p.ParseMode, p.Text = "", out.Text
		err = a.call(ctx, a.client, "sendMessage", p, &res)
	}
	if errors.As(err, &ae) && ae.MigrateTo != 0 {
		// The group became a supergroup: its messages now go to the new id.
		p.ChatID = json.RawMessage(strconv.FormatInt(ae.MigrateTo, 10))
		err = a.call(ctx, a.client, "sendMessage", p, &res)
	}
	if err != nil {
		return channels.Receipt{}, sendError(err)
	}
	chatID := out.Conversation
	if res.Chat.ID != 0 {
		chatID = strconv.FormatInt(res.Chat.ID, 10)
	}
	return channels.Receipt{PlatformID: chatID + ":" + strconv.FormatInt(res.MessageID, 10)}, nil
}

// sendError maps a sendMessage failure to the hub's retry classes.
func sendError(err error) error {
	var ae *APIError
	if !errors.As(err, &ae) {
		return err // network: retried
	}
	switch c := ae.Code; {
	case c == http.StatusTooManyRequests:
		return channels.RetryAfter(max(ae.RetryAfter, time.Second), err)
	case c == http.StatusRequestTimeout:
		return err
	case c >= 400 && c < 500:
		return channels.Permanent(err)
	default:
		return err
	}
}

// retryAfterOf is a 429's retry_after, or 0.
func retryAfterOf(err error) time.Duration {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.RetryAfter
	}
	return 0
}

// chatIDJSON writes a numeric chat id as a number and anything else
// ("@channelusername") as a string.
func chatIDJSON(id string) json.RawMessage {
	if n, err := strconv.ParseInt(id, 10, 64); err == nil {
		return json.RawMessage(strconv.FormatInt(n, 10))
	}
	b, _ := json.Marshal(id)
	return b
}

// replyMessageID takes the message_id out of a Message.ID
// ("chat_id:message_id") or a bare message id.
func replyMessageID(s string) int64 {
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		s = s[i+1:]
	}
	id, _ := strconv.ParseInt(s, 10, 64)
	return id
}
