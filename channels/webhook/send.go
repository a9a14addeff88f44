package webhook

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

// outbound is the JSON body of a reply POST.
type outbound struct {
	Key              string `json:"key"`
	Conversation     string `json:"conversation"`
	ConversationType string `json:"conversation_type"`
	Thread           string `json:"thread"`
	ReplyTo          string `json:"reply_to"`
	Recipient        string `json:"recipient"`
	Text             string `json:"text"`
	Markdown         bool   `json:"markdown"`
	Part             int    `json:"part"`
	Parts            int    `json:"parts"`
}

// maxResponse bounds the receiver's answer we read.
const maxResponse = 64 << 10

// defaultRetryAfter is the wait after a 429 that says no Retry-After.
const defaultRetryAfter = time.Second

// Send implements channels.Adapter: one signed POST of the part to the
// message's callback_url or outbound_url. Safe for concurrent use.
func (a *Adapter) Send(ctx context.Context, out *channels.Outgoing) (channels.Receipt, error) {
	rc, err := a.send(ctx, out)
	if err != nil {
		a.setError(err)
	}
	return rc, err
}

func (a *Adapter) send(ctx context.Context, out *channels.Outgoing) (channels.Receipt, error) {
	if a.stopped.Load() {
		return channels.Receipt{}, errors.New("webhook: send: the adapter is stopped")
	}
	target := a.cfg.OutboundURL
	if out.Handle.URL != "" {
		target = out.Handle.URL
	}
	if target == "" {
		return channels.Receipt{}, channels.Permanent(errors.New("webhook: send: no outbound_url configured and the message carried no callback_url"))
	}
	ct := string(out.ConversationType)
	if ct == "" {
		ct = string(channels.Direct)
	}
	body, err := json.Marshal(outbound{
		Key:              out.Key,
		Conversation:     out.Conversation,
		ConversationType: ct,
		Thread:           out.Thread,
		ReplyTo:          out.ReplyTo,
		Recipient:        out.Recipient,
		Text:             out.Text,
		Markdown:         out.Markdown,
		Part:             out.Part,
		Parts:            out.Parts,
	})
	if err != nil {
		return channels.Receipt{}, channels.Permanent(fmt.Errorf("webhook: send: encode: %w", err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return channels.Receipt{}, channels.Permanent(fmt.Errorf("webhook: send: %w", err))
	}
	ts := strconv.FormatInt(a.now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "zhiyin-webhook/1")
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, sign(a.outKey, ts, body))
	req.Header.Set(HeaderIdempotency, out.Key)
	resp, err := a.client.Do(req)
	if err != nil {
		return channels.Receipt{}, fmt.Errorf("webhook: send to %s: %w", redactURL(target), err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse)) // reuse the connection
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		var ans struct {
			ID any `json:"id"`
		}
		if json.Unmarshal(data, &ans) == nil {
			switch id := ans.ID.(type) {
			case string:
				return channels.Receipt{PlatformID: id}, nil
			case float64:
				return channels.Receipt{PlatformID: strconv.FormatFloat(id, 'f', -1, 64)}, nil
			}
		}
		return channels.Receipt{}, nil
	}
	err = fmt.Errorf("webhook: send to %s: HTTP %d: %s", redactURL(target), resp.StatusCode, snippet(data))
	switch d, ok := retryAfter(resp.Header.Get("Retry-After"), a.now()); {
	case resp.StatusCode == http.StatusTooManyRequests:
		if !ok {
			d = defaultRetryAfter
		}
		return channels.Receipt{}, channels.RetryAfter(d, err)
	case resp.StatusCode == http.StatusServiceUnavailable && ok:
		return channels.Receipt{}, channels.RetryAfter(d, err)
	case resp.StatusCode == http.StatusRequestTimeout:
		return channels.Receipt{}, err
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		return channels.Receipt{}, channels.Permanent(err)
	}
	return channels.Receipt{}, err
}

// retryAfter parses a Retry-After header: delay seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		if n < 0 || n > 86400 {
			return 0, false
		}
		return time.Duration(n * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// redactURL drops the query (it may hold a token) from a URL for messages.
func redactURL(s string) string {
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		return s[:i]
	}
	return s
}

// snippet is the start of a response body for an error message.
func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
