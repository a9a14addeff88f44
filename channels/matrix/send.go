package matrix

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/zhiyin/zhiyin/channels"
)

// maxAnswer bounds an API answer (a /sync batch included).
const maxAnswer = 64 << 20

// Send implements channels.Adapter: PUT
// /rooms/{roomId}/send/m.room.message/{txnId} with txnId = Outgoing.Key, so
// a repeated attempt is the same event. Markdown is sent with a minimal
// HTML form; a Thread makes it a thread reply.
func (a *Adapter) Send(ctx context.Context, out *channels.Outgoing) (channels.Receipt, error) {
	if out.Conversation == "" || out.Key == "" {
		return channels.Receipt{}, channels.Permanent(errors.New("matrix send: no room id or key"))
	}
	content := map[string]any{"msgtype": "m.text", "body": out.Text}
	if out.Markdown {
		content["format"] = "org.matrix.custom.html"
		content["formatted_body"] = markdownHTML(out.Text)
	}
	if out.Thread != "" {
		reply := out.ReplyTo
		if reply == "" {
			reply = out.Thread
		}
		content["m.relates_to"] = map[string]any{
			"rel_type":        "m.thread",
			"event_id":        out.Thread,
			"is_falling_back": true,
			"m.in_reply_to":   map[string]string{"event_id": reply},
		}
	}
	path := "/_matrix/client/v3/rooms/" + url.PathEscape(out.Conversation) + "/send/m.room.message/" + url.PathEscape(out.Key)
	var res struct {
		EventID string `json:"event_id"`
	}
	if err := a.call(ctx, http.MethodPut, path, nil, content, &res, a.cfg.Timeout); err != nil {
		err = fmt.Errorf("matrix send: %w", err)
		a.setError(err)
		return channels.Receipt{}, err
	}
	return channels.Receipt{PlatformID: res.EventID}, nil
}

// markdownHTML renders the little markdown replies use: **bold** and line
// breaks; everything else is escaped text.
func markdownHTML(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "**")
		if i < 0 {
			break
		}
		j := strings.Index(s[i+2:], "**")
		if j <= 0 {
			break
		}
		b.WriteString(html.EscapeString(s[:i]))
		b.WriteString("<strong>")
		b.WriteString(html.EscapeString(s[i+2 : i+2+j]))
		b.WriteString("</strong>")
		s = s[i+2+j+2:]
	}
	b.WriteString(html.EscapeString(s))
	return strings.ReplaceAll(b.String(), "\n", "<br>")
}

// call does one API request with the access token, bounded by timeout,
// and decodes a 2xx answer into res (when not nil). Errors are classified
// for the hub: RetryAfter for 429 / M_LIMIT_EXCEEDED, Permanent for other
// 4xx but 408 (with ErrTokenRejected for a refused token), plain for 5xx
// and network errors.
func (a *Adapter) call(ctx context.Context, method, path string, q url.Values, body, res any, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return channels.Permanent(err)
		}
		rd = bytes.NewReader(b)
	}
	u := a.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return channels.Permanent(err)
	}
	req.Header.Set("Authorization", "Bearer "+a.cfg.AccessToken.Value())
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
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
	return classify(resp, b)
}

// classify turns a non-2xx answer into an error for the hub.
func classify(resp *http.Response, body []byte) error {
	e := &apiError{Status: resp.StatusCode}
	if json.Unmarshal(body, e) != nil || (e.Errcode == "" && e.Message == "") {
		msg := strings.TrimSpace(string(body))
		if len(msg) > 200 {
			msg = msg[:200]
		}
		e.Message = msg
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || e.Errcode == "M_LIMIT_EXCEEDED":
		return channels.RetryAfter(retryAfter(e, resp.Header), e)
	case e.Errcode == "M_UNKNOWN_TOKEN" || e.Errcode == "M_MISSING_TOKEN" || resp.StatusCode == http.StatusUnauthorized:
		return channels.Permanent(fmt.Errorf("%w: %w", ErrTokenRejected, e))
	case resp.StatusCode == http.StatusRequestTimeout:
		return e
	case e.Errcode == "M_FORBIDDEN" || e.Errcode == "M_NOT_FOUND" || resp.StatusCode/100 == 4:
		return channels.Permanent(e)
	default:
		return e
	}
}

// retryAfter reads retry_after_ms, else Retry-After (seconds); one second
// when neither says.
func retryAfter(e *apiError, h http.Header) time.Duration {
	if e.RetryAfterMS > 0 && e.RetryAfterMS < 24*3600*1000 {
		return time.Duration(e.RetryAfterMS) * time.Millisecond
	}
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 && n < 24*3600 {
			return time.Duration(n) * time.Second
		}
		if t, err := http.ParseTime(v); err == nil {
			return max(time.Until(t), time.Second)
		}
	}
	return time.Second
}
