package dingtalk

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
	"time"
	"unicode/utf8"

	"github.com/zhiyin/zhiyin/channels"
)

// OpenAPI paths (under api_base) and the custom robot path (under
// oapi_base).
const (
	tokenPath       = "/v1.0/oauth2/accessToken"
	batchSendPath   = "/v1.0/robot/oToMessages/batchSend"
	groupSendPath   = "/v1.0/robot/groupMessages/send"
	customRobotPath = "/robot/send"
)

// Send tuning.
const (
	// webhookMargin: a sessionWebhook this close to its expiry is not used
	// (the request could arrive after it).
	webhookMargin = time.Minute
	// tokenEarly: access tokens are refreshed this long before they expire.
	tokenEarly = 5 * time.Minute
	// maxResponse bounds a DingTalk answer we read.
	maxResponse = 1 << 20
	// titleRunes is the longest markdown title (shown in notifications).
	titleRunes = 20
)

// Throttling answers: custom robot and sessionWebhook errcodes, with the
// wait DingTalk imposes.
const (
	errcodeTooFast  = 130101 // more than 20 messages a minute
	errcodeTooFast2 = 130102 // the per-second variant
	errcodeLimited  = 410100 // robot throttled for 10 minutes
	errcodeBusy     = -1     // "system busy"
)

// Send implements channels.Adapter. It answers through the message's
// sessionWebhook while that has at least a minute left, and otherwise (or
// when the webhook refuses) through the robot OpenAPI: oToMessages/batchSend
// to the sender's staff id in one-to-one chats, groupMessages/send to the
// openConversationId in groups. In custom_robot mode, or for the
// conversation "custom_robot", it posts to the custom group robot. Safe for
// concurrent use.
func (a *Adapter) Send(ctx context.Context, out *channels.Outgoing) (channels.Receipt, error) {
	rc, err := a.send(ctx, out)
	if err != nil {
		a.noteError(err)
	}
	return rc, err
}

func (a *Adapter) send(ctx context.Context, out *channels.Outgoing) (channels.Receipt, error) {
	if out == nil || strings.TrimSpace(out.Text) == "" {
		return channels.Receipt{}, channels.Permanent(errors.New("dingtalk: send: empty text"))
	}
	if a.cfg.Mode == ModeCustomRobot || out.Conversation == CustomRobotConversation {
		return channels.Receipt{}, a.sendCustomRobot(ctx, out)
	}
	if a.webhookUsable(out.Handle) {
		err := a.sendWebhook(ctx, out.Handle.URL, out)
		switch {
		case err == nil:
			return channels.Receipt{}, nil
		case !errors.Is(err, errFallback):
			return channels.Receipt{}, err
		case !a.openAPIReady():
			return channels.Receipt{}, channels.Permanent(err)
		}
		a.log.Debug("dingtalk: send: sessionWebhook refused; using the robot OpenAPI", logKeyErr, err)
	}
	return a.sendOpenAPI(ctx, out)
}

// webhookUsable reports whether h holds a sessionWebhook on DingTalk's own
// host (the callback sign does not cover the body, so a webhook elsewhere is
// never trusted) with at least webhookMargin left.
func (a *Adapter) webhookUsable(h channels.Handle) bool {
	if h.URL == "" {
		return false
	}
	u, err := url.Parse(h.URL)
	if err != nil || !(sameHost(u, a.oapiURL) || sameHost(u, a.apiURL)) {
		a.log.Warn("dingtalk: send: sessionWebhook not on the DingTalk host; not used", logKeyBase, a.cfg.OAPIBase)
		return false
	}
	return h.Expires.IsZero() || a.now().Add(webhookMargin).Before(h.Expires)
}

func sameHost(u, base *url.URL) bool {
	return strings.EqualFold(u.Scheme, base.Scheme) && strings.EqualFold(u.Host, base.Host)
}

// webhookMessage is the body of a sessionWebhook or custom robot post.
func webhookMessage(out *channels.Outgoing) map[string]any {
	if out.Markdown {
		return map[string]any{"msgtype": "markdown", "markdown": map[string]string{"title": markdownTitle(out.Text), "text": out.Text}}
	}
	return map[string]any{"msgtype": "text", "text": map[string]string{"content": out.Text}}
}

// markdownTitle is the first non-empty line without heading marks, cut to
// titleRunes.
func markdownTitle(text string) string {
	for line := range strings.SplitSeq(text, "\n") {
		line = strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(line), "#>*-"))
		if line == "" {
			continue
		}
		if utf8.RuneCountInString(line) > titleRunes {
			line = string([]rune(line)[:titleRunes])
		}
		return line
	}
	return "消息"
}

// sendWebhook posts to a sessionWebhook. errFallback: refused in a way the
// OpenAPI may not be.
func (a *Adapter) sendWebhook(ctx context.Context, hook string, out *channels.Outgoing) error {
	res, err := a.postJSON(ctx, hook, nil, webhookMessage(out))
	if err != nil {
		return fmt.Errorf("dingtalk: send via sessionWebhook: %w", err)
	}
	return webhookError("sessionWebhook", res)
}

// sendCustomRobot posts to the custom group robot, signed when a secret is
// configured.
func (a *Adapter) sendCustomRobot(ctx context.Context, out *channels.Outgoing) error {
	cr := a.cfg.CustomRobot
	if !cr.Configured() {
		return channels.Permanent(fmt.Errorf("%w: custom_robot.access_token is not set", ErrNoRoute))
	}
	q := "access_token=" + url.QueryEscape(cr.AccessToken.Value())
	if cr.Secret.IsSet() {
		ts := strconv.FormatInt(a.now().UnixMilli(), 10)
		q += "&timestamp=" + ts + "&sign=" + url.QueryEscape(Sign(ts, cr.Secret.Value()))
	}
	res, err := a.postJSON(ctx, a.cfg.OAPIBase+customRobotPath+"?"+q, nil, webhookMessage(out))
	if err != nil {
		return fmt.Errorf("dingtalk: send via custom robot: %w", err)
	}
	err = webhookError("custom robot", res)
	if errors.Is(err, errFallback) {
		return channels.Permanent(fmt.Errorf("%w (check custom_robot.access_token, custom_robot.secret and the robot's security settings)", err))
	}
	return err
}

// webhookError maps a sessionWebhook / custom robot answer ({errcode,
// errmsg}) to Send's error kinds.
func webhookError(what string, res *httpResult) error {
	switch {
	case res.status == http.StatusTooManyRequests:
		return channels.RetryAfter(retryAfter(res.header, time.Minute), fmt.Errorf("dingtalk: %s: %s", what, res.describe()))
	case res.status >= 500:
		return fmt.Errorf("dingtalk: %s: %s", what, res.describe())
	case res.status != http.StatusOK:
		return fmt.Errorf("%w: %s: %s", errFallback, what, res.describe())
	}
	var r struct {
		ErrCode flexInt `json:"errcode"`
		ErrMsg  string  `json:"errmsg"`
	}
	if err := json.Unmarshal(res.body, &r); err != nil {
		return fmt.Errorf("dingtalk: %s: unreadable answer: %s", what, trimForError(res.body))
	}
	err := fmt.Errorf("dingtalk: %s: errcode %d: %s", what, r.ErrCode, r.ErrMsg)
	switch r.ErrCode {
	case 0:
		return nil
	case errcodeTooFast, errcodeTooFast2:
		return channels.RetryAfter(time.Minute, err)
	case errcodeLimited:
		return channels.RetryAfter(10*time.Minute, err)
	case errcodeBusy:
		return err
	default:
		return fmt.Errorf("%w: %w", errFallback, err)
	}
}

func (a *Adapter) openAPIReady() bool {
	return a.cfg.ClientID != "" && a.cfg.ClientSecret.IsSet()
}

// sendOpenAPI sends through the robot OpenAPI; the receipt holds the
// processQueryKey.
func (a *Adapter) sendOpenAPI(ctx context.Context, out *channels.Outgoing) (channels.Receipt, error) {
	if !a.openAPIReady() {
		return channels.Receipt{}, channels.Permanent(fmt.Errorf("%w: no valid sessionWebhook and no client_id/client_secret for the robot OpenAPI", ErrNoRoute))
	}
	robot := a.cfg.RobotCode
	if robot == "" {
		robot = out.Handle.Extra[ExtraRobotCode]
	}
	if robot == "" {
		robot = a.cfg.ClientID
	}
	msgKey, param := "sampleText", map[string]string{"content": out.Text}
	if out.Markdown {
		msgKey, param = "sampleMarkdown", map[string]string{"title": markdownTitle(out.Text), "text": out.Text}
	}
	msgParam, err := json.Marshal(param)
	if err != nil {
		return channels.Receipt{}, channels.Permanent(err)
	}
	direct := out.ConversationType == channels.Direct ||
		(out.ConversationType == "" && out.Handle.Extra[ExtraConversationType] == "1")
	var path string
	var body any
	if direct {
		staff := out.Handle.Extra[ExtraSenderStaffID]
		if staff == "" {
			staff = out.Recipient
		}
		if staff == "" {
			return channels.Receipt{}, channels.Permanent(fmt.Errorf("%w: no staff id to send a one-to-one message to", ErrNoRoute))
		}
		path = batchSendPath
		body = map[string]any{"robotCode": robot, "userIds": []string{staff}, "msgKey": msgKey, "msgParam": string(msgParam)}
	} else {
		if out.Conversation == "" {
			return channels.Receipt{}, channels.Permanent(fmt.Errorf("%w: no openConversationId", ErrNoRoute))
		}
		path = groupSendPath
		body = map[string]any{"robotCode": robot, "openConversationId": out.Conversation, "msgKey": msgKey, "msgParam": string(msgParam)}
	}
	res, err := a.callOpenAPI(ctx, "send", path, body)
	if err != nil {
		return channels.Receipt{}, err
	}
	var r struct {
		ProcessQueryKey           string   `json:"processQueryKey"`
		InvalidStaffIDList        []string `json:"invalidStaffIdList"`
		FlowControlledStaffIDList []string `json:"flowControlledStaffIdList"`
	}
	if err := json.Unmarshal(res.body, &r); err != nil {
		return channels.Receipt{}, fmt.Errorf("dingtalk: send: unreadable answer: %s", trimForError(res.body))
	}
	switch {
	case len(r.InvalidStaffIDList) > 0:
		return channels.Receipt{}, channels.Permanent(fmt.Errorf("dingtalk: send: unknown staff id %q", r.InvalidStaffIDList[0]))
	case len(r.FlowControlledStaffIDList) > 0:
		return channels.Receipt{}, channels.RetryAfter(time.Minute, errors.New("dingtalk: send: recipient flow-controlled"))
	}
	return channels.Receipt{PlatformID: r.ProcessQueryKey}, nil
}

// callOpenAPI posts body to an OpenAPI path with the access token,
// refreshing the token once when DingTalk says it is invalid. It returns
// the 200 answer, or the mapped error.
func (a *Adapter) callOpenAPI(ctx context.Context, what, path string, body any) (*httpResult, error) {
	var stale string
	for try := 0; ; try++ {
		tok, err := a.accessToken(ctx, stale)
		if err != nil {
			return nil, err
		}
		res, err := a.postJSON(ctx, a.cfg.APIBase+path, map[string]string{"x-acs-dingtalk-access-token": tok}, body)
		if err != nil {
			return nil, fmt.Errorf("dingtalk: %s: %w", what, err)
		}
		if res.status == http.StatusOK {
			return res, nil
		}
		code := res.code()
		if (res.status == http.StatusUnauthorized || code == "InvalidAuthenticationToken") && try == 0 {
			stale = tok
			continue
		}
		return nil, openAPIError(what, res)
	}
}

// openAPIError maps a non-200 OpenAPI answer ({code, message}).
func openAPIError(what string, res *httpResult) error {
	err := fmt.Errorf("dingtalk: %s: %s", what, res.describe())
	switch {
	case res.status == http.StatusTooManyRequests || isThrottle(res.code()):
		return channels.RetryAfter(retryAfter(res.header, time.Second), err)
	case res.status >= 500, res.status == http.StatusRequestTimeout:
		return err
	default:
		return channels.Permanent(err)
	}
}

// isThrottle recognises DingTalk's flow-control codes
// ("Forbidden.AccessDenied.QpsLimitForApi", "…QpsLimitForAppkeyAndApi",
// "Throttling…").
func isThrottle(code string) bool {
	return strings.Contains(code, "QpsLimit") || strings.HasPrefix(code, "Throttling") ||
		strings.Contains(code, "FlowControl") || strings.Contains(code, "LimitFor")
}

// accessToken returns a cached access token, fetching one when there is
// none, it is within tokenEarly of expiry, or it is stale (the one DingTalk
// just refused). One fetch at a time: concurrent callers wait for it and
// share the result.
func (a *Adapter) accessToken(ctx context.Context, stale string) (string, error) {
	select {
	case a.tokSem <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-a.tokSem }()
	if a.tok != "" && a.tok != stale && a.now().Before(a.tokExp) {
		return a.tok, nil
	}
	req := map[string]string{"appKey": a.cfg.ClientID, "appSecret": a.cfg.ClientSecret.Value()}
	res, err := a.postJSON(ctx, a.cfg.APIBase+tokenPath, nil, req)
	if err != nil {
		return "", fmt.Errorf("dingtalk: access token: %w", err)
	}
	if res.status != http.StatusOK {
		err := openAPIError("access token", res)
		if errors.Is(err, channels.ErrPermanent) {
			err = fmt.Errorf("%w (check client_id and client_secret)", err)
		}
		return "", err
	}
	var r struct {
		AccessToken string  `json:"accessToken"`
		ExpireIn    flexInt `json:"expireIn"`
	}
	if err := json.Unmarshal(res.body, &r); err != nil || r.AccessToken == "" {
		return "", fmt.Errorf("dingtalk: access token: no accessToken in the answer")
	}
	life := time.Duration(r.ExpireIn) * time.Second
	if life <= 0 {
		life = 2 * time.Hour
	}
	a.tok, a.tokExp = r.AccessToken, a.now().Add(max(life-tokenEarly, life/2))
	return a.tok, nil
}

// httpResult is a DingTalk answer.
type httpResult struct {
	status int
	header http.Header
	body   []byte
}

// code is the OpenAPI error code ({"code": …}), or "".
func (r *httpResult) code() string {
	var e struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(r.body, &e)
	return e.Code
}

// describe summarises an error answer for a message.
func (r *httpResult) describe() string {
	var e struct {
		Code    string  `json:"code"`
		Message string  `json:"message"`
		ErrCode flexInt `json:"errcode"`
		ErrMsg  string  `json:"errmsg"`
	}
	if json.Unmarshal(r.body, &e) == nil {
		switch {
		case e.Code != "" || e.Message != "":
			return fmt.Sprintf("HTTP %d: %s: %s", r.status, e.Code, e.Message)
		case e.ErrCode != 0 || e.ErrMsg != "":
			return fmt.Sprintf("HTTP %d: errcode %d: %s", r.status, e.ErrCode, e.ErrMsg)
		}
	}
	return fmt.Sprintf("HTTP %d: %s", r.status, trimForError(r.body))
}

// postJSON posts v as JSON. Transport errors never carry the URL's query
// (access tokens, session keys).
func (a *Adapter) postJSON(ctx context.Context, target string, hdr map[string]string, v any) (*httpResult, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("bad URL %s", redactURL(target))
	}
	req.Header.Set("Content-Type", contentJSON)
	req.Header.Set("Accept", contentJSON)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("POST %s: %w", redactURL(target), unwrapURLError(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, fmt.Errorf("POST %s: read answer: %w", redactURL(target), err)
	}
	return &httpResult{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// unwrapURLError drops the *url.Error wrapper, whose message holds the
// whole URL (tokens in the query).
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// redactURL drops the query.
func redactURL(s string) string {
	if i := strings.IndexByte(s, '?'); i >= 0 {
		return s[:i]
	}
	return s
}

// retryAfter reads Retry-After (seconds or an HTTP date), else def; at
// least a second, at most an hour.
func retryAfter(h http.Header, def time.Duration) time.Duration {
	d := def
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if s, err := strconv.Atoi(v); err == nil {
			d = time.Duration(s) * time.Second
		} else if t, err := http.ParseTime(v); err == nil {
			d = time.Until(t)
		}
	}
	return min(max(d, time.Second), time.Hour)
}
