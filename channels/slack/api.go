package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/zhiyin/zhiyin/channels"
)

// maxReply bounds a Web API answer we read.
const maxReply = 1 << 20

// defaultRetryAfter is the wait for a 429 or "ratelimited" without a usable
// Retry-After header.
const defaultRetryAfter = time.Second

// apiStatus is the envelope of every Web API answer.
type apiStatus struct {
	OK      bool   `json:"ok"`
	Error   string `json:"error"`
	Warning string `json:"warning"`
}

func (s *apiStatus) status() *apiStatus { return s }

// apiReply is a Web API answer type embedding apiStatus.
type apiReply interface{ status() *apiStatus }

// permanentCodes are "ok": false codes that retrying cannot fix: a chat we
// cannot post to, a token that does not work, a message Slack refuses.
var permanentCodes = map[string]bool{
	"channel_not_found":       true,
	"not_in_channel":          true,
	"is_archived":             true,
	"invalid_auth":            true,
	"not_authed":              true,
	"account_inactive":        true,
	"token_revoked":           true,
	"token_expired":           true,
	"missing_scope":           true,
	"no_permission":           true,
	"not_allowed_token_type":  true,
	"restricted_action":       true,
	"team_access_not_granted": true,
	"msg_too_long":            true,
	"no_text":                 true,
	"invalid_arguments":       true,
	"invalid_arg_name":        true,
	"invalid_blocks":          true,
	"cannot_reply_to_message": true,
	"user_not_found":          true,
	"messages_tab_disabled":   true,
	"ekm_access_denied":       true,
}

// call POSTs body (JSON; nil sends an empty form) to {api_base}/{method}
// with the Bearer token and decodes the answer into out. Errors:
// channels.RetryAfter for HTTP 429 and "ratelimited", channels.Permanent
// for other 4xx and the codes in permanentCodes, plain errors (retried by
// the hub) for the network, 5xx, 408 and other codes. Blocks up to
// cfg.Timeout.
func (a *Adapter) call(ctx context.Context, method, token string, body any, out apiReply) error {
	var rd io.Reader = http.NoBody
	ctype := "application/x-www-form-urlencoded"
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return channels.Permanent(fmt.Errorf("slack %s: encode: %w", method, err))
		}
		rd = bytes.NewReader(b)
		ctype = "application/json; charset=utf-8"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base+"/"+method, rd)
	if err != nil {
		return channels.Permanent(fmt.Errorf("slack %s: %w (check api_base)", method, err))
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", ctype)
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("slack %s: %w", method, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	if err != nil {
		return fmt.Errorf("slack %s: read answer: %w", method, err)
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		return channels.RetryAfter(retryAfter(resp.Header, a.now()), fmt.Errorf("slack %s: HTTP 429", method))
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode >= 500:
		return fmt.Errorf("slack %s: HTTP %d", method, resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return channels.Permanent(fmt.Errorf("slack %s: HTTP %d", method, resp.StatusCode))
	}
	if err := json.Unmarshal(data, out); err != nil {
		// A proxy's error page, most likely: worth another try.
		return fmt.Errorf("slack %s: answer is not JSON: %w", method, err)
	}
	st := out.status()
	if st.OK {
		return nil
	}
	code := st.Error
	if code == "" {
		code = "unknown_error"
	}
	apiErr := &APIError{Method: method, Code: code}
	switch {
	case code == "ratelimited":
		return channels.RetryAfter(retryAfter(resp.Header, a.now()), apiErr)
	case permanentCodes[code]:
		return channels.Permanent(apiErr)
	default:
		return apiErr
	}
}

// retryAfter reads a Retry-After header: seconds or an HTTP date; a
// missing or unusable one means defaultRetryAfter.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return defaultRetryAfter
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return defaultRetryAfter
		}
		return time.Duration(min(n, 3600)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, time.Hour)
		}
	}
	return defaultRetryAfter
}
