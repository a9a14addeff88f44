package wecom

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zhiyin/zhiyin/channels"
)

// WeCom errcodes that Send treats specially.
const (
	codeSystemBusy     = -1
	codeInvalidToken   = 40014
	codeExpiredToken   = 42001
	codeAPIFrequency   = 45009 // API call frequency over the limit
	codeAPIConcurrency = 45033 // too many concurrent calls
)

// Token lifetime handling.
const (
	tokenEarly      = 5 * time.Minute // refresh this long before expiry
	defaultTokenTTL = 7200 * time.Second
	maxResponse     = 1 << 20 // bytes of an API answer read at most
)

// payload is every JSON body Send posts: message/send (touser, agentid),
// appchat/send (chatid) and the group bot webhook (neither).
type payload struct {
	ToUser   string   `json:"touser,omitempty"`
	ChatID   string   `json:"chatid,omitempty"`
	MsgType  string   `json:"msgtype"`
	AgentID  int      `json:"agentid,omitempty"`
	Text     *content `json:"text,omitempty"`
	Markdown *content `json:"markdown,omitempty"`
}

type content struct {
	Content string `json:"content"`
}

// apiResult is the common shape of WeCom API answers.
type apiResult struct {
	ErrCode     int    `json:"errcode"`
	ErrMsg      string `json:"errmsg"`
	MsgID       string `json:"msgid"`
	InvalidUser string `json:"invaliduser"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
}

// Send implements channels.Adapter. Conversations of type Group (or a
// Handle naming a chat_id) go to appchat/send, GroupBotConversation to the
// group bot webhook, everything else to message/send addressed to
// Recipient (or Conversation). Errors: channels.RetryAfter for WeCom's
// frequency limits (45009: 60 s, 45033: 1 s) and HTTP 429,
// channels.Permanent for other errcodes and 4xx, plain errors for -1
// (system busy), 5xx and the network.
func (a *Adapter) Send(ctx context.Context, out *channels.Outgoing) (channels.Receipt, error) {
	r, err := a.send(ctx, out)
	if err != nil {
		a.setErr(err)
		return channels.Receipt{}, fmt.Errorf("wecom send: %w", err)
	}
	return r, nil
}

func (a *Adapter) send(ctx context.Context, out *channels.Outgoing) (channels.Receipt, error) {
	if strings.TrimSpace(out.Text) == "" {
		return channels.Receipt{}, channels.Permanent(errors.New("empty text"))
	}
	p := payload{MsgType: "text", Text: &content{out.Text}}
	if out.Markdown {
		p = payload{MsgType: "markdown", Markdown: &content{out.Text}}
	}
	if out.Conversation == GroupBotConversation {
		return a.sendGroupBot(ctx, p)
	}
	if chat := chatID(out); chat != "" {
		p.ChatID = chat
		return a.callWithToken(ctx, "/cgi-bin/appchat/send", p)
	}
	p.ToUser = out.Recipient
	if p.ToUser == "" {
		p.ToUser = out.Conversation
	}
	if p.ToUser == "" {
		return channels.Receipt{}, channels.Permanent(errors.New("no recipient"))
	}
	p.AgentID = a.cfg.AgentID
	return a.callWithToken(ctx, "/cgi-bin/message/send", p)
}

// chatID is the app group chat to answer in, if any.
func chatID(out *channels.Outgoing) string {
	if c := out.Handle.Extra["chat_id"]; c != "" {
		return c
	}
	if out.ConversationType == channels.Group || out.ConversationType == channels.Channel {
		return out.Conversation
	}
	return ""
}

// sendGroupBot posts to the group bot webhook.
func (a *Adapter) sendGroupBot(ctx context.Context, p payload) (channels.Receipt, error) {
	if !a.cfg.GroupBotKey.IsSet() {
		return channels.Receipt{}, channels.Permanent(errors.New("no group_bot_key configured for " + GroupBotConversation))
	}
	u := a.apiURL("/cgi-bin/webhook/send") + "?key=" + url.QueryEscape(a.cfg.GroupBotKey.Value())
	res, err := a.call(ctx, http.MethodPost, u, p)
	if err != nil {
		return channels.Receipt{}, err
	}
	if err := apiError(res); err != nil {
		return channels.Receipt{}, err
	}
	return channels.Receipt{}, nil
}

// callWithToken posts p to path with the access token, refreshing the
// token once when WeCom says it is invalid or expired.
func (a *Adapter) callWithToken(ctx context.Context, path string, p payload) (channels.Receipt, error) {
	stale := ""
	for attempt := 0; ; attempt++ {
		tok, err := a.tokens.get(ctx, stale)
		if err != nil {
			return channels.Receipt{}, err
		}
		res, err := a.call(ctx, http.MethodPost, a.apiURL(path)+"?access_token="+url.QueryEscape(tok), p)
		if err != nil {
			return channels.Receipt{}, err
		}
		if (res.ErrCode == codeInvalidToken || res.ErrCode == codeExpiredToken) && attempt == 0 {
			stale = tok
			continue
		}
		if err := apiError(res); err != nil {
			return channels.Receipt{}, err
		}
		if res.InvalidUser != "" {
			return channels.Receipt{}, channels.Permanent(fmt.Errorf("%w: invalid user %q", ErrAPI, res.InvalidUser))
		}
		return channels.Receipt{PlatformID: res.MsgID}, nil
	}
}

// apiError maps a nonzero errcode.
func apiError(res apiResult) error {
	if res.ErrCode == 0 {
		return nil
	}
	err := fmt.Errorf("%w %d: %s", ErrAPI, res.ErrCode, res.ErrMsg)
	switch res.ErrCode {
	case codeAPIFrequency:
		return channels.RetryAfter(time.Minute, err)
	case codeAPIConcurrency:
		return channels.RetryAfter(time.Second, err)
	case codeSystemBusy, codeInvalidToken, codeExpiredToken:
		// Busy, or a token refused right after a refresh: try again.
		return err
	default:
		return channels.Permanent(err)
	}
}

// fetchToken gets a new access token: GET /cgi-bin/gettoken.
func (a *Adapter) fetchToken(ctx context.Context) (string, time.Duration, error) {
	u := a.apiURL("/cgi-bin/gettoken") + "?corpid=" + url.QueryEscape(a.cfg.CorpID) +
		"&corpsecret=" + url.QueryEscape(a.cfg.Secret.Value())
	res, err := a.call(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", 0, fmt.Errorf("get access token: %w", err)
	}
	if err := apiError(res); err != nil {
		if errors.Is(err, channels.ErrPermanent) {
			err = fmt.Errorf("%w (check channels.wecom.corp_id and secret)", err)
		}
		return "", 0, fmt.Errorf("get access token: %w", err)
	}
	if res.AccessToken == "" {
		return "", 0, errors.New("get access token: empty access_token")
	}
	ttl := time.Duration(res.ExpiresIn) * time.Second
	if ttl <= 0 {
		ttl = defaultTokenTTL
	}
	if ttl > 2*tokenEarly {
		ttl -= tokenEarly
	} else {
		ttl /= 2
	}
	return res.AccessToken, ttl, nil
}

// call does one API request and decodes its JSON answer. HTTP errors are
// mapped: 429 → RetryAfter, other 4xx (but 408) → Permanent, the rest
// plain. Errors never contain the URL's query (tokens, keys, secrets).
func (a *Adapter) call(ctx context.Context, method, u string, body any) (apiResult, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return apiResult{}, channels.Permanent(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return apiResult{}, channels.Permanent(fmt.Errorf("build request: %w", redact(err)))
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return apiResult{}, redact(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return apiResult{}, fmt.Errorf("%s %s: read answer: %w", method, req.URL.Path, err)
	}
	if err := statusError(req, resp); err != nil {
		return apiResult{}, err
	}
	var res apiResult
	if err := json.Unmarshal(data, &res); err != nil {
		// A proxy's error page, or a truncated answer: try again.
		return apiResult{}, fmt.Errorf("%s %s: answer is not JSON: %w", method, req.URL.Path, err)
	}
	return res, nil
}

// statusError maps a non-200 answer: 429 → RetryAfter, 408 and 5xx plain,
// other 4xx Permanent.
func statusError(req *http.Request, resp *http.Response) error {
	sc := resp.StatusCode
	err := fmt.Errorf("%s %s: HTTP %d", req.Method, req.URL.Path, sc)
	switch {
	case sc == http.StatusOK:
		return nil
	case sc == http.StatusTooManyRequests:
		return channels.RetryAfter(retryAfter(resp.Header.Get("Retry-After"), time.Now()), err)
	case sc == http.StatusRequestTimeout || sc >= 500:
		return err
	case sc >= 400:
		return channels.Permanent(err)
	default:
		return err
	}
}

// retryAfter parses a Retry-After header (seconds or an HTTP date); 1 s
// when absent or unreadable.
func retryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if s, err := strconv.Atoi(h); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return time.Second
}

// redact strips the query (access_token, key, corpsecret) from the URL a
// net/http error quotes.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		u := ue.URL
		if i := strings.IndexByte(u, '?'); i >= 0 {
			u = u[:i]
		}
		return fmt.Errorf("%s %s: %w", ue.Op, u, ue.Err)
	}
	return err
}

// tokenSource caches the access token and refreshes it before expiry, one
// fetch at a time however many senders need it. Safe for concurrent use.
type tokenSource struct {
	fetch func(ctx context.Context) (token string, ttl time.Duration, err error)
	now   func() time.Time

	mu       sync.Mutex
	token    string
	expires  time.Time
	inflight *tokenCall
}

// tokenCall is one fetch in progress; done closes when it ends.
type tokenCall struct {
	done  chan struct{}
	token string
	err   error
}

// get returns a token valid for a while. stale, when set, is a token the
// API has just refused: it is not returned again. Blocks for a fetch (one
// at a time: concurrent callers wait for the same one) or until ctx ends.
func (s *tokenSource) get(ctx context.Context, stale string) (string, error) {
	s.mu.Lock()
	if s.token != "" && s.token != stale && s.now().Before(s.expires) {
		t := s.token
		s.mu.Unlock()
		return t, nil
	}
	if c := s.inflight; c != nil {
		s.mu.Unlock()
		select {
		case <-c.done:
			return c.token, c.err
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	c := &tokenCall{done: make(chan struct{})}
	s.inflight = c
	if s.token == stale {
		s.token = ""
	}
	s.mu.Unlock()

	tok, ttl, err := s.fetch(ctx)

	s.mu.Lock()
	if err == nil {
		s.token, s.expires = tok, s.now().Add(ttl)
	}
	c.token, c.err = tok, err
	s.inflight = nil
	close(c.done)
	s.mu.Unlock()
	return tok, err
}
