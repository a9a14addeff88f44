package dingtalk

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/internal/config"
)

const (
	testClientID     = "dingtestappkey"
	testClientSecret = "this-is-a-test-app-secret"
	testRobotCode    = "dingtestrobot"
	testCustomToken  = "custom-token-1"
	testCustomSecret = "SECcustomsecret"
)

// fakeDT is an in-process DingTalk: the stream gateway, the OAuth2 token
// endpoint, the robot OpenAPI, sessionWebhooks and the custom robot. It
// enforces the protocol (credentials, tickets, tokens, signatures) and
// fails the test on a bad request.
type fakeDT struct {
	t   *testing.T
	srv *httptest.Server

	mu      sync.Mutex
	opens   int
	tickets map[string]bool
	tokens  map[string]bool
	fetches int
	// expireNext makes the next OpenAPI send find its token expired (401
	// InvalidAuthenticationToken).
	expireNext bool
	// fail, when set, answers the next OpenAPI send / token fetch /
	// webhook post.
	failSend, failToken, failHook *fakeAnswer
	sent                          []sentReq

	conns chan *websocket.Conn
	stop  chan struct{}
}

type fakeAnswer struct {
	status int
	header map[string]string
	body   string
}

type sentReq struct {
	path  string
	token string
	body  map[string]any
}

func newFakeDT(t *testing.T) *fakeDT {
	f := &fakeDT{t: t, tickets: map[string]bool{}, tokens: map[string]bool{}, conns: make(chan *websocket.Conn, 4), stop: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+openPath, f.open)
	mux.HandleFunc("GET /gateway", f.gateway)
	mux.HandleFunc("POST "+tokenPath, f.token)
	mux.HandleFunc("POST "+batchSendPath, f.robotSend)
	mux.HandleFunc("POST "+groupSendPath, f.robotSend)
	mux.HandleFunc("POST /robot/sendBySession", f.sessionWebhook)
	mux.HandleFunc("POST "+customRobotPath, f.customRobot)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	t.Cleanup(func() { close(f.stop) }) // runs first: frees the gateway handlers
	return f
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeDT) answer(w http.ResponseWriter, a *fakeAnswer) {
	for k, v := range a.header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(a.status)
	_, _ = w.Write([]byte(a.body))
}

func (f *fakeDT) open(w http.ResponseWriter, r *http.Request) {
	var req openRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		f.t.Errorf("connections/open: bad body: %v", err)
		writeJSON(w, 400, map[string]string{"code": "InvalidParameter"})
		return
	}
	if req.ClientID != testClientID || req.ClientSecret != testClientSecret {
		writeJSON(w, 401, map[string]string{"code": "InvalidClientIdOrSecret", "message": "bad credentials"})
		return
	}
	if len(req.Subscriptions) != 1 || req.Subscriptions[0] != (subscription{Type: "CALLBACK", Topic: "/v1.0/im/bot/messages/get"}) {
		f.t.Errorf("connections/open: subscriptions %+v", req.Subscriptions)
	}
	if !strings.HasPrefix(req.UA, "zhiyin/") {
		f.t.Errorf("connections/open: ua %q", req.UA)
	}
	f.mu.Lock()
	f.opens++
	ticket := fmt.Sprintf("ticket-%d", f.opens)
	f.tickets[ticket] = true
	f.mu.Unlock()
	writeJSON(w, 200, map[string]string{"endpoint": "ws://" + r.Host + "/gateway", "ticket": ticket})
}

func (f *fakeDT) gateway(w http.ResponseWriter, r *http.Request) {
	ticket := r.URL.Query().Get("ticket")
	f.mu.Lock()
	ok := f.tickets[ticket]
	delete(f.tickets, ticket) // one connection per ticket
	f.mu.Unlock()
	if !ok {
		f.t.Errorf("gateway: unknown ticket %q", ticket)
		http.Error(w, "bad ticket", http.StatusForbidden)
		return
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		f.t.Errorf("gateway: accept: %v", err)
		return
	}
	defer c.CloseNow()
	f.conns <- c
	<-f.stop
}

func (f *fakeDT) token(w http.ResponseWriter, r *http.Request) {
	var req struct{ AppKey, AppSecret string }
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeJSON(w, 400, map[string]string{"code": "InvalidParameter"})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if a := f.failToken; a != nil {
		f.failToken = nil
		f.answer(w, a)
		return
	}
	if req.AppKey != testClientID || req.AppSecret != testClientSecret {
		writeJSON(w, 400, map[string]string{"code": "invalidClientIdOrSecret", "message": "无效的appKey或appSecret"})
		return
	}
	f.fetches++
	tok := fmt.Sprintf("tok-%d", f.fetches)
	f.tokens[tok] = true
	writeJSON(w, 200, map[string]any{"accessToken": tok, "expireIn": 7200})
}

func (f *fakeDT) robotSend(w http.ResponseWriter, r *http.Request) {
	tok := r.Header.Get("x-acs-dingtalk-access-token")
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		f.t.Errorf("%s: bad body: %v", r.URL.Path, err)
		writeJSON(w, 400, map[string]string{"code": "InvalidParameter"})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.expireNext && f.tokens[tok] {
		f.expireNext = false
		delete(f.tokens, tok)
	}
	if !f.tokens[tok] {
		writeJSON(w, 401, map[string]string{"code": "InvalidAuthenticationToken", "message": "不合法的access_token"})
		return
	}
	if a := f.failSend; a != nil {
		f.failSend = nil
		f.answer(w, a)
		return
	}
	if body["robotCode"] == "" || body["robotCode"] == nil {
		f.t.Errorf("%s: no robotCode", r.URL.Path)
	}
	var param map[string]string
	if err := json.Unmarshal([]byte(fmt.Sprint(body["msgParam"])), &param); err != nil {
		f.t.Errorf("%s: msgParam is not a JSON string: %v", r.URL.Path, body["msgParam"])
	}
	switch body["msgKey"] {
	case "sampleText":
		if param["content"] == "" {
			f.t.Errorf("sampleText without content: %v", param)
		}
	case "sampleMarkdown":
		if param["title"] == "" || param["text"] == "" {
			f.t.Errorf("sampleMarkdown without title/text: %v", param)
		}
	default:
		f.t.Errorf("bad msgKey %v", body["msgKey"])
	}
	if r.URL.Path == batchSendPath {
		if ids, _ := body["userIds"].([]any); len(ids) != 1 {
			f.t.Errorf("batchSend userIds %v", body["userIds"])
		}
	} else if body["openConversationId"] == nil {
		f.t.Errorf("groupMessages/send without openConversationId")
	}
	f.sent = append(f.sent, sentReq{path: r.URL.Path, token: tok, body: body})
	writeJSON(w, 200, map[string]any{"processQueryKey": fmt.Sprintf("pqk-%d", len(f.sent))})
}

func (f *fakeDT) checkHookBody(path string, body map[string]any) {
	switch body["msgtype"] {
	case "text":
		if txt, _ := body["text"].(map[string]any); txt["content"] == nil {
			f.t.Errorf("%s: text without content", path)
		}
	case "markdown":
		if md, _ := body["markdown"].(map[string]any); md["title"] == nil || md["text"] == nil {
			f.t.Errorf("%s: markdown without title/text", path)
		}
	default:
		f.t.Errorf("%s: msgtype %v", path, body["msgtype"])
	}
}

func (f *fakeDT) sessionWebhook(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		f.t.Errorf("sessionWebhook: bad body: %v", err)
	}
	if r.URL.Query().Get("session") == "" {
		f.t.Errorf("sessionWebhook without session")
	}
	f.checkHookBody(r.URL.Path, body)
	f.mu.Lock()
	defer f.mu.Unlock()
	if a := f.failHook; a != nil {
		f.failHook = nil
		f.answer(w, a)
		return
	}
	f.sent = append(f.sent, sentReq{path: r.URL.Path, body: body})
	writeJSON(w, 200, map[string]any{"errcode": 0, "errmsg": "ok"})
}

// customRobot checks access_token, and timestamp/sign computed here with
// crypto/hmac directly.
func (f *fakeDT) customRobot(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		f.t.Errorf("robot/send: bad body: %v", err)
	}
	f.checkHookBody(r.URL.Path, body)
	if q.Get("access_token") != testCustomToken {
		writeJSON(w, 200, map[string]any{"errcode": 300001, "errmsg": "token is not exist"})
		return
	}
	ts := q.Get("timestamp")
	ms, err := strconv.ParseInt(ts, 10, 64)
	mac := hmac.New(sha256.New, []byte(testCustomSecret))
	mac.Write([]byte(ts + "\n" + testCustomSecret))
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if err != nil || time.Since(time.UnixMilli(ms)).Abs() > time.Hour || q.Get("sign") != want {
		writeJSON(w, 200, map[string]any{"errcode": 310000, "errmsg": "sign not match"})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if a := f.failHook; a != nil {
		f.failHook = nil
		f.answer(w, a)
		return
	}
	f.sent = append(f.sent, sentReq{path: r.URL.Path, body: body})
	writeJSON(w, 200, map[string]any{"errcode": 0, "errmsg": "ok"})
}

func (f *fakeDT) sends() []sentReq {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sentReq(nil), f.sent...)
}

func (f *fakeDT) tokenFetches() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fetches
}

func (f *fakeDT) openCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.opens
}

// nextConn waits for the adapter's next websocket.
func (f *fakeDT) nextConn(t *testing.T) *websocket.Conn {
	t.Helper()
	select {
	case c := <-f.conns:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no websocket connection from the adapter")
		return nil
	}
}

// newTestAdapter builds an adapter against f in mode.
func newTestAdapter(t *testing.T, f *fakeDT, mode string) *Adapter {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Enabled = true
	cfg.Mode = mode
	cfg.ClientID = testClientID
	cfg.ClientSecret = config.NewSecret(testClientSecret)
	cfg.RobotCode = testRobotCode
	cfg.APIBase = f.srv.URL
	cfg.OAPIBase = f.srv.URL
	cfg.CustomRobot = CustomRobot{AccessToken: config.NewSecret(testCustomToken), Secret: config.NewSecret(testCustomSecret)}
	v := config.NewValidator("channels.dingtalk")
	cfg.Validate(v)
	if err := v.Err(); err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.backoff = channels.Backoff{Min: time.Millisecond, Max: 10 * time.Millisecond}
	return a
}

func stopAdapter(t *testing.T, a *Adapter) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Stop(ctx); err != nil {
		t.Errorf("stop: %v", err)
	}
}

// botJSON is a robot message as DingTalk sends it; hook is the
// sessionWebhook base.
func botJSON(msgID, conversationType, text, hook string) string {
	m := map[string]any{
		"conversationId":            "cidGROUP==",
		"atUsers":                   []map[string]string{{"dingtalkId": "$:LWCP_v1:$bot"}},
		"chatbotCorpId":             "dingcorp",
		"chatbotUserId":             "$:LWCP_v1:$bot",
		"msgId":                     msgID,
		"senderNick":                "张三",
		"isAdmin":                   false,
		"senderStaffId":             "staff-1",
		"sessionWebhookExpiredTime": time.Now().Add(90 * time.Minute).UnixMilli(),
		"createAt":                  int64(1700000000123),
		"senderCorpId":              "dingcorp",
		"conversationType":          conversationType,
		"senderId":                  "$:LWCP_v1:$sender",
		"conversationTitle":         "客服群",
		"isInAtList":                true,
		"sessionWebhook":            hook + "/robot/sendBySession?session=s-" + msgID,
		"text":                      map[string]string{"content": text},
		"robotCode":                 testRobotCode,
		"msgtype":                   "text",
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func channelsSecret(s string) config.Secret { return config.NewSecret(s) }
