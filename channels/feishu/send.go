package feishu

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/zhiyin/zhiyin/channels"
)

// GroupBotConversation as Outgoing.Conversation sends through the custom
// group bot (channels.feishu.group_bot) instead of the app.
const GroupBotConversation = "group_bot"

// Rate limit codes: 99991400 (app or tenant over its QPS), 230020 (too
// many messages to one chat).
const (
	codeRateLimited     = 99991400
	codeChatRateLimited = 230020
	// codeBotRateLimited: a custom group bot over 100/min or 5/s.
	codeBotRateLimited = 11232
)

// maxResponse bounds the API responses read.
const maxResponse = 1 << 20

// apiResult is what postJSON saw besides the decoded body.
type apiResult struct {
	status int
	header http.Header
}

// postJSON posts body as JSON (with a bearer token when tok is set) and
// decodes the answer into out when it is JSON. Network errors are returned;
// HTTP statuses are left to the caller.
func (a *Adapter) postJSON(ctx context.Context, u, tok string, body, out any) (apiResult, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return apiResult{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		return apiResult{}, err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return apiResult{}, err
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	res := apiResult{status: resp.StatusCode, header: resp.Header}
	if err != nil {
		return res, fmt.Errorf("read response: %w", err)
	}
	if json.Unmarshal(rb, out) != nil && resp.StatusCode < 300 {
		return res, fmt.Errorf("HTTP %d: response is not JSON", resp.StatusCode)
	}
	return res, nil
}

// rateLimited reports whether a response says "slow down", and for how
// long: x-ogw-ratelimit-reset seconds when given, else 1 s.
func rateLimited(res apiResult, code int) (time.Duration, bool) {
	if res.status != http.StatusTooManyRequests && code != codeRateLimited && code != codeChatRateLimited {
		return 0, false
	}
	d := time.Second
	if res.header != nil {
		if s, err := strconv.ParseFloat(res.header.Get("x-ogw-ratelimit-reset"), 64); err == nil && s > 0 && s < 24*3600 {
			d = time.Duration(s * float64(time.Second))
		}
	}
	return d, true
}

// permanent reports whether a failed API call cannot succeed by retrying:
// a 4xx other than 408/429, or a 230xxx message error (bad receive_id, the
// bot is not in the chat, no permission) or a missing permission scope.
func permanent(status, code int) bool {
	switch {
	case status >= 400 && status < 500 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests:
		return true
	case code >= 230000 && code < 240000 && code != codeChatRateLimited:
		return true
	case code == 99991672 || code == 99991679: // the app lacks a scope / user authorisation
		return true
	}
	return false
}

// idemKey turns Outgoing.Key into Feishu's uuid (at most 50 characters):
// the key itself when short enough, else a hash of it.
func idemKey(k string) string {
	if len(k) <= 50 {
		return k
	}
	h := sha256.Sum256([]byte(k))
	return hex.EncodeToString(h[:])[:48]
}

// content builds msg_type and content: text, or for Markdown a post with
// one md element.
func content(out *channels.Outgoing) (string, string) {
	if out.Markdown {
		b, _ := json.Marshal(map[string]any{"zh_cn": map[string]any{
			"content": [][]map[string]string{{{"tag": "md", "text": out.Text}}},
		}})
		return "post", string(b)
	}
	b, _ := json.Marshal(map[string]string{"text": out.Text})
	return "text", string(b)
}

// Send implements channels.Adapter: a reply to Outgoing.ReplyTo when set,
// else a message to the chat (Conversation, or the Recipient's open_id when
// there is no chat). The uuid is Outgoing.Key: Feishu sends one message per
// uuid within 1 hour. Errors: RetryAfter on 429 / rate limit codes,
// Permanent on 4xx-class errors, plain otherwise.
func (a *Adapter) Send(ctx context.Context, out *channels.Outgoing) (channels.Receipt, error) {
	var rc channels.Receipt
	var err error
	if a.cfg.AppID == "" || out.Conversation == GroupBotConversation {
		err = a.sendGroupBot(ctx, out)
	} else {
		rc, err = a.sendApp(ctx, out)
	}
	if err != nil {
		a.setError(err)
	}
	return rc, err
}

func (a *Adapter) sendApp(ctx context.Context, out *channels.Outgoing) (channels.Receipt, error) {
	msgType, cont := content(out)
	body := map[string]string{"msg_type": msgType, "content": cont, "uuid": idemKey(out.Key)}
	var u, op string
	switch {
	case out.ReplyTo != "":
		u = a.cfg.BaseURL + "/open-apis/im/v1/messages/" + url.PathEscape(out.ReplyTo) + "/reply"
		op = "reply " + out.ReplyTo
	case out.Conversation != "":
		u = a.cfg.BaseURL + "/open-apis/im/v1/messages?receive_id_type=chat_id"
		body["receive_id"] = out.Conversation
		op = "send to " + out.Conversation
	case out.Recipient != "":
		u = a.cfg.BaseURL + "/open-apis/im/v1/messages?receive_id_type=open_id"
		body["receive_id"] = out.Recipient
		op = "send to " + out.Recipient
	default:
		return channels.Receipt{}, channels.Permanent(errors.New("feishu: send: no conversation, recipient or message to reply to"))
	}
	for retried := false; ; retried = true {
		tok, err := a.token(ctx)
		if err != nil {
			return channels.Receipt{}, fmt.Errorf("feishu: %s: %w", op, err)
		}
		var resp struct {
			Code int    `json:"code"`
			Msg  string `json:"msg"`
			Data struct {
				MessageID string `json:"message_id"`
			} `json:"data"`
		}
		res, err := a.postJSON(ctx, u, tok, body, &resp)
		if err != nil {
			return channels.Receipt{}, fmt.Errorf("feishu: %s: %w", op, err)
		}
		if (resp.Code == codeTokenInvalid || resp.Code == codeTokenExpired) && !retried {
			a.invalidate(tok)
			continue
		}
		fail := fmt.Errorf("feishu: %s: HTTP %d code %d: %s", op, res.status, resp.Code, resp.Msg)
		if d, ok := rateLimited(res, resp.Code); ok {
			return channels.Receipt{}, channels.RetryAfter(d, fail)
		}
		if res.status >= 300 || resp.Code != 0 {
			if permanent(res.status, resp.Code) {
				return channels.Receipt{}, channels.Permanent(fail)
			}
			return channels.Receipt{}, fail
		}
		return channels.Receipt{PlatformID: resp.Data.MessageID}, nil
	}
}

// sendGroupBot posts to the custom group bot webhook. It has no idempotency
// key: a repeated attempt posts twice.
func (a *Adapter) sendGroupBot(ctx context.Context, out *channels.Outgoing) error {
	gb := a.cfg.GroupBot
	if !gb.WebhookURL.IsSet() {
		return channels.Permanent(errors.New("feishu: group bot: channels.feishu.group_bot.webhook_url is not set"))
	}
	ts := a.now().Unix()
	body := map[string]any{"msg_type": "text", "content": map[string]string{"text": out.Text}}
	if gb.Secret.IsSet() {
		body["timestamp"] = strconv.FormatInt(ts, 10)
		body["sign"] = groupBotSign(ts, gb.Secret.Value())
	}
	var resp struct {
		Code       int    `json:"code"`
		Msg        string `json:"msg"`
		StatusCode int    `json:"StatusCode"` // older answers
	}
	res, err := a.postJSON(ctx, gb.WebhookURL.Value(), "", body, &resp)
	if err != nil {
		// The URL holds the bot's token: never in the error.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("feishu: group bot: %w", err)
	}
	code := resp.Code
	if code == 0 {
		code = resp.StatusCode
	}
	fail := fmt.Errorf("feishu: group bot: HTTP %d code %d: %s", res.status, code, resp.Msg)
	if res.status == http.StatusTooManyRequests || code == codeBotRateLimited {
		d, _ := rateLimited(apiResult{status: http.StatusTooManyRequests, header: res.header}, code)
		return channels.RetryAfter(d, fail)
	}
	switch {
	case res.status >= 500 || res.status == http.StatusRequestTimeout:
		return fail
	case res.status >= 300 || code != 0:
		// Bad signature (19021), IP not allowed (19022), keyword missing
		// (19024), bad request: configuration, not luck.
		return channels.Permanent(fail)
	}
	return nil
}
