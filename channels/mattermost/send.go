package mattermost

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/zhiyin/zhiyin/channels"
)

// Send implements channels.Adapter: POST /api/v4/posts. Conversation is
// the channel id, Thread the root post id. pending_post_id carries
// Outgoing.Key, but the server only remembers it briefly: sends are not
// idempotent.
func (a *Adapter) Send(ctx context.Context, out *channels.Outgoing) (channels.Receipt, error) {
	if out.Conversation == "" {
		return channels.Receipt{}, channels.Permanent(errors.New("mattermost send: no channel id"))
	}
	body := map[string]string{
		"channel_id": out.Conversation,
		"message":    out.Text,
	}
	if out.Thread != "" {
		body["root_id"] = out.Thread
	}
	if out.Key != "" {
		body["pending_post_id"] = out.Key
	}
	var res struct {
		ID string `json:"id"`
	}
	if err := a.call(ctx, http.MethodPost, "/api/v4/posts", body, &res); err != nil {
		err = fmt.Errorf("mattermost send: %w", err)
		a.setError(err)
		return channels.Receipt{}, err
	}
	return channels.Receipt{PlatformID: res.ID}, nil
}

// apiError is Mattermost's error body (model.AppError).
type apiError struct {
	ID         string `json:"id"`
	Message    string `json:"message"`
	StatusCode int    `json:"status_code"`
}

// call does one REST request with the bot token and decodes a 2xx answer
// into res (when not nil). Errors are classified for the hub: RetryAfter
// for 429, Permanent for other 4xx but 408 (ErrTokenRejected for 401),
// plain for 5xx and network errors.
func (a *Adapter) call(ctx context.Context, method, path string, body, res any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return channels.Permanent(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return channels.Permanent(err)
	}
	req.Header.Set("Authorization", "Bearer "+a.cfg.Token.Value())
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.rest.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, int64(a.cfg.MaxBody)))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode/100 == 2 {
		if res == nil {
			return nil
		}
		if err := json.Unmarshal(b, res); err != nil {
			return fmt.Errorf("decode answer: %w", err)
		}
		return nil
	}
	return statusError(resp, b)
}

// statusError classifies a non-2xx answer.
func statusError(resp *http.Response, body []byte) error {
	var ae apiError
	_ = json.Unmarshal(body, &ae)
	msg := ae.Message
	if msg == "" {
		msg = strings.TrimSpace(string(body))
		if len(msg) > 200 {
			msg = msg[:200]
		}
	}
	err := fmt.Errorf("http %d: %s", resp.StatusCode, msg)
	if ae.ID != "" {
		err = fmt.Errorf("http %d: %s (%s)", resp.StatusCode, msg, ae.ID)
	}
	switch c := resp.StatusCode; {
	case c == http.StatusTooManyRequests:
		return channels.RetryAfter(retryAfter(resp.Header), err)
	case c == http.StatusUnauthorized:
		return channels.Permanent(fmt.Errorf("%w: %w", ErrTokenRejected, err))
	case c == http.StatusRequestTimeout:
		return err
	case c >= 400 && c < 500:
		return channels.Permanent(err)
	default:
		return err
	}
}

// retryAfter reads Retry-After or Mattermost's X-Ratelimit-Reset (both in
// seconds); one second when neither says.
func retryAfter(h http.Header) time.Duration {
	for _, k := range []string{"Retry-After", "X-Ratelimit-Reset"} {
		v := strings.TrimSpace(h.Get(k))
		if v == "" {
			continue
		}
		if n, err := strconv.ParseFloat(v, 64); err == nil && n >= 0 && n < 24*3600 {
			return max(time.Duration(n*float64(time.Second)), time.Second)
		}
		if k == "Retry-After" {
			if t, err := http.ParseTime(v); err == nil {
				return max(time.Until(t), time.Second)
			}
		}
	}
	return time.Second
}
