package wecom

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/channels/channelstest"
	"github.com/zhiyin/zhiyin/internal/config"
)

const (
	testCorp  = vecCorpID
	testAgent = 1000002
	testNow   = 1700000000
)

func testConfig(baseURL string) Config {
	cfg := DefaultConfig()
	cfg.Enabled = true
	cfg.CorpID = testCorp
	cfg.AgentID = testAgent
	cfg.Secret = config.NewSecret("app-secret")
	cfg.Token = config.NewSecret(vecToken)
	cfg.EncodingAESKey = config.NewSecret(vecAESKey)
	cfg.BaseURL = baseURL
	cfg.MaxBody = 4096
	return cfg
}

// harness is a started adapter on a fixed clock, its sink and its routes.
type harness struct {
	a    *Adapter
	sink *channelstest.Sink
	mux  *http.ServeMux
	now  time.Time
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	a, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{a: a, sink: channelstest.NewSink(), mux: http.NewServeMux(), now: time.Unix(testNow, 0)}
	a.now = func() time.Time { return h.now }
	for _, rt := range a.Routes() {
		h.mux.Handle(rt.Method+" "+rt.Path, rt.Handler)
	}
	if err := a.Start(context.Background(), h.sink); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Stop(context.Background()) })
	return h
}

func (h *harness) do(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.mux.ServeHTTP(w, r)
	return w
}

// signedPost builds a callback POST of inner (the decrypted XML) as WeCom
// sends it, sealed and signed at ts with nonce.
func signedPost(t testing.TB, c *Crypto, inner string, ts int64, nonce string) *http.Request {
	t.Helper()
	enc, err := c.EncryptRaw([]byte(inner))
	if err != nil {
		t.Fatal(err)
	}
	stamp := strconv.FormatInt(ts, 10)
	return postEnvelope(c.Signature(stamp, nonce, enc), stamp, nonce, enc)
}

func postEnvelope(sig, ts, nonce, enc string) *http.Request {
	body := fmt.Sprintf("<xml><ToUserName><![CDATA[%s]]></ToUserName><Encrypt><![CDATA[%s]]></Encrypt><AgentID><![CDATA[%d]]></AgentID></xml>", testCorp, enc, testAgent)
	q := url.Values{"msg_signature": {sig}, "timestamp": {ts}, "nonce": {nonce}}
	r := httptest.NewRequest(http.MethodPost, CallbackPath+"?"+q.Encode(), strings.NewReader(body))
	r.Header.Set("Content-Type", "text/xml")
	return r
}

func textXML(msgID, from, text string) string {
	return fmt.Sprintf(`<xml><ToUserName><![CDATA[%s]]></ToUserName><FromUserName><![CDATA[%s]]></FromUserName><CreateTime>1699999990</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[%s]]></Content><MsgId>%s</MsgId><AgentID>%d</AgentID></xml>`,
		testCorp, from, text, msgID, testAgent)
}

func TestVerifyURL(t *testing.T) {
	h := newHarness(t, testConfig("http://127.0.0.1:1"))
	vecTS, _ := strconv.ParseInt(vecTimestamp, 10, 64)
	h.now = time.Unix(vecTS, 0).Add(30 * time.Second)
	get := func(rawQuery string) *httptest.ResponseRecorder {
		return h.do(httptest.NewRequest(http.MethodGet, CallbackPath+"?"+rawQuery, nil))
	}
	q := url.Values{"msg_signature": {vecSignature}, "timestamp": {vecTimestamp}, "nonce": {vecNonce}, "echostr": {vecEchostr}}
	w := get(q.Encode())
	if w.Code != http.StatusOK || w.Body.String() != vecMsg || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("GET = %d %q (%s), want 200 %q", w.Code, w.Body, w.Header().Get("Content-Type"), vecMsg)
	}
	// An echostr whose '+' was not escaped still verifies.
	raw := "msg_signature=" + vecSignature + "&timestamp=" + vecTimestamp + "&nonce=" + vecNonce + "&echostr=" + vecEchostr
	if w := get(raw); w.Code != http.StatusOK || w.Body.String() != vecMsg {
		t.Errorf("GET with raw '+' = %d %q", w.Code, w.Body)
	}

	bad := url.Values{"msg_signature": {strings.Repeat("0", 40)}, "timestamp": {vecTimestamp}, "nonce": {vecNonce}, "echostr": {vecEchostr}}
	if w := get(bad.Encode()); w.Code != http.StatusUnauthorized || strings.Contains(w.Body.String(), vecMsg) {
		t.Errorf("forged GET = %d %q, want 401", w.Code, w.Body)
	}
	noSig := url.Values{"timestamp": {vecTimestamp}, "nonce": {vecNonce}, "echostr": {vecEchostr}}
	if w := get(noSig.Encode()); w.Code != http.StatusUnauthorized {
		t.Errorf("unsigned GET = %d, want 401", w.Code)
	}
	if got := h.sink.Rejections(channels.ReasonSignature); got != 2 {
		t.Errorf("signature rejections = %d, want 2", got)
	}
	h.now = h.now.Add(2 * time.Hour)
	if w := get(q.Encode()); w.Code != http.StatusUnauthorized || h.sink.Rejections(channels.ReasonStale) != 1 {
		t.Errorf("stale GET = %d, stale rejections %d", w.Code, h.sink.Rejections(channels.ReasonStale))
	}
}

func TestPostText(t *testing.T) {
	h := newHarness(t, testConfig("http://127.0.0.1:1"))
	inner := textXML("7362534401", "zhangsan", "  我想查一下订单  ")
	req := func(nonce string) *http.Request { return signedPost(t, h.a.crypto, inner, testNow-5, nonce) }
	w := h.do(req("n1"))
	if w.Code != http.StatusOK || w.Body.Len() != 0 {
		t.Fatalf("POST = %d %q, want 200 \"\"", w.Code, w.Body)
	}
	msgs := h.sink.WaitMessages(1, 5*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("delivered %d messages", len(msgs))
	}
	m := msgs[0]
	want := channels.Message{
		Channel: "wecom", Platform: "wecom", Bot: "1000002", ID: "7362534401", DedupKey: "7362534401",
		Conversation: "zhangsan", ConversationType: channels.Direct, Sender: channels.Sender{ID: "zhangsan"},
		Time: time.Unix(1699999990, 0).UTC(), Text: "我想查一下订单",
	}
	got := *m
	got.Raw = nil
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("message\n got %+v\nwant %+v", got, want)
	}
	var raw string
	if err := json.Unmarshal(m.Raw, &raw); err != nil || raw != inner {
		t.Errorf("Raw = %s (%v), want the inner XML as a JSON string", m.Raw, err)
	}

	// WeCom's retry of the same request (same signature and nonce) and a
	// re-encrypted redelivery of the same MsgId: still one message.
	for _, r := range []*http.Request{signedPost(t, h.a.crypto, inner, testNow-5, "n1"), req("n2")} {
		if w := h.do(r); w.Code != http.StatusOK {
			t.Errorf("redelivery = %d, want 200", w.Code)
		}
	}
	if n := len(h.sink.Messages()); n != 1 {
		t.Errorf("after redelivery %d messages, want 1", n)
	}
	for _, r := range []channels.Reason{channels.ReasonSignature, channels.ReasonReplay, channels.ReasonStale, channels.ReasonMalformed} {
		if n := h.sink.Rejections(r); n != 0 {
			t.Errorf("rejections %s = %d, want 0", r, n)
		}
	}
}

// A retry of a request whose Deliver failed is processed again, not
// answered from the acknowledgement cache.
func TestRetryAfterDeliverFailure(t *testing.T) {
	h := newHarness(t, testConfig("http://127.0.0.1:1"))
	inner := textXML("42", "lisi", "hi")
	h.sink.Err = errors.New("disk full")
	if w := h.do(signedPost(t, h.a.crypto, inner, testNow, "n")); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("POST with failing sink = %d, want 503", w.Code)
	}
	h.sink.Err = nil
	if w := h.do(signedPost(t, h.a.crypto, inner, testNow, "n")); w.Code != http.StatusOK {
		t.Fatalf("retry = %d, want 200", w.Code)
	}
	if n := len(h.sink.WaitMessages(1, 5*time.Second)); n != 1 {
		t.Errorf("delivered %d, want 1", n)
	}
	h.sink.Err = channels.ErrInvalid
	if w := h.do(signedPost(t, h.a.crypto, textXML("43", "lisi", "x"), testNow, "m")); w.Code != http.StatusBadRequest {
		t.Errorf("POST refused by the inbox = %d, want 400", w.Code)
	}
}

func TestPostRefused(t *testing.T) {
	h := newHarness(t, testConfig("http://127.0.0.1:1"))
	inner := textXML("1", "wangwu", "hello")
	other, err := NewCrypto(vecToken, "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", testCorp)
	if err != nil {
		t.Fatal(err)
	}
	good := signedPost(t, h.a.crypto, inner, testNow, "n")
	goodQ := good.URL.Query()
	forgedToken, _ := NewCrypto("another-token", vecAESKey, testCorp)
	noSig := signedPost(t, h.a.crypto, inner, testNow, "n")
	noSig.URL.RawQuery = url.Values{"timestamp": goodQ["timestamp"], "nonce": goodQ["nonce"]}.Encode()
	tests := []struct {
		name   string
		req    *http.Request
		code   int
		reason channels.Reason
	}{
		{"forged signature", signedPost(t, forgedToken, inner, testNow, "n"), 401, channels.ReasonSignature},
		{"missing signature", noSig, 401, channels.ReasonSignature},
		{"stale", signedPost(t, h.a.crypto, inner, testNow-2*3600, "n"), 401, channels.ReasonStale},
		{"future", signedPost(t, h.a.crypto, inner, testNow+2*3600, "n"), 401, channels.ReasonStale},
		{"signed but other key", signedPost(t, other, inner, testNow, "n"), 400, channels.ReasonMalformed},
		{"malformed envelope", postRaw("<xml><Encrypt>abc", goodQ), 400, channels.ReasonMalformed},
		{"no Encrypt", postRaw("<xml><ToUserName>x</ToUserName></xml>", goodQ), 400, channels.ReasonMalformed},
		{"malformed inner", signedPost(t, h.a.crypto, "<xml><MsgType>text", testNow, "n"), 400, channels.ReasonMalformed},
		{"no MsgType", signedPost(t, h.a.crypto, "<xml><Content>x</Content></xml>", testNow, "n"), 400, channels.ReasonMalformed},
		{"oversize", postRaw("<xml><Encrypt>"+strings.Repeat("A", 5000)+"</Encrypt></xml>", goodQ), 413, channels.ReasonTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.sink.Rejections(tt.reason)
			w := h.do(tt.req)
			if w.Code != tt.code {
				t.Errorf("status %d, want %d (%s)", w.Code, tt.code, strings.TrimSpace(w.Body.String()))
			}
			if got := h.sink.Rejections(tt.reason) - before; got != 1 {
				t.Errorf("%s rejections +%d, want +1", tt.reason, got)
			}
		})
	}
	if n := len(h.sink.Messages()); n != 0 {
		t.Errorf("%d messages delivered from refused requests", n)
	}
}

func postRaw(body string, q url.Values) *http.Request {
	return httptest.NewRequest(http.MethodPost, CallbackPath+"?"+q.Encode(), strings.NewReader(body))
}

func TestIgnored(t *testing.T) {
	h := newHarness(t, testConfig("http://127.0.0.1:1"))
	for i, inner := range []string{
		`<xml><ToUserName>c</ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType><Event>enter_agent</Event><AgentID>1000002</AgentID></xml>`,
		`<xml><FromUserName>u</FromUserName><MsgType>event</MsgType><Event>subscribe</Event></xml>`,
		`<xml><FromUserName>u</FromUserName><MsgType>event</MsgType><Event>some_future_event</Event></xml>`,
		`<xml><FromUserName>u</FromUserName><MsgType>hologram</MsgType><MsgId>9</MsgId></xml>`,
		`<xml><FromUserName>u</FromUserName><MsgType>text</MsgType><Content>for another app</Content><MsgId>10</MsgId><AgentID>1000099</AgentID></xml>`,
	} {
		if w := h.do(signedPost(t, h.a.crypto, inner, testNow, "n"+strconv.Itoa(i))); w.Code != http.StatusOK || w.Body.Len() != 0 {
			t.Errorf("%d: status %d %q, want 200 \"\"", i, w.Code, w.Body)
		}
	}
	if n := len(h.sink.Messages()); n != 0 {
		t.Errorf("%d messages delivered, want 0", n)
	}
}

func TestMessageKinds(t *testing.T) {
	h := newHarness(t, testConfig("http://127.0.0.1:1"))
	wrap := func(id, typ, rest string) string {
		return fmt.Sprintf(`<xml><ToUserName>%s</ToUserName><FromUserName>u1</FromUserName><CreateTime>1699999990123</CreateTime><MsgType><![CDATA[%s]]></MsgType>%s<MsgId>%s</MsgId><AgentID>1000002</AgentID></xml>`, testCorp, typ, rest, id)
	}
	tests := []struct {
		inner string
		check func(m *channels.Message) string
	}{
		{wrap("1", "image", `<PicUrl>https://p.example/1.jpg</PicUrl><MediaId>m1</MediaId>`), func(m *channels.Message) string {
			if len(m.Media) != 1 || m.Media[0] != (channels.Media{Kind: channels.Image, Key: "m1", URL: "https://p.example/1.jpg"}) {
				return fmt.Sprintf("media %+v", m.Media)
			}
			if !m.Time.Equal(time.UnixMilli(1699999990123)) {
				return "time not normalised from ms: " + m.Time.String()
			}
			return ""
		}},
		{wrap("2", "voice", `<MediaId>m2</MediaId><Format>amr</Format>`), func(m *channels.Message) string {
			if len(m.Media) != 1 || m.Media[0] != (channels.Media{Kind: channels.Voice, Key: "m2", MIME: "audio/amr"}) {
				return fmt.Sprintf("media %+v", m.Media)
			}
			return ""
		}},
		{wrap("3", "video", `<MediaId>m3</MediaId><ThumbMediaId>t3</ThumbMediaId>`), func(m *channels.Message) string {
			if len(m.Media) != 1 || m.Media[0].Kind != channels.Video || m.Media[0].Key != "m3" {
				return fmt.Sprintf("media %+v", m.Media)
			}
			return ""
		}},
		{wrap("4", "file", `<MediaId>m4</MediaId><FileName>a.pdf</FileName><FileSize>1234</FileSize>`), func(m *channels.Message) string {
			if len(m.Media) != 1 || m.Media[0] != (channels.Media{Kind: channels.File, Key: "m4", Name: "a.pdf", Size: 1234}) {
				return fmt.Sprintf("media %+v", m.Media)
			}
			return ""
		}},
		{wrap("5", "location", `<Location_X>23.134</Location_X><Location_Y>113.358</Location_Y><Scale>20</Scale><Label>广州市天河区</Label>`), func(m *channels.Message) string {
			if m.Text != "广州市天河区 (23.134, 113.358)" {
				return "text " + m.Text
			}
			return ""
		}},
		{wrap("6", "link", `<Title>标题</Title><Description>描述</Description><Url>https://l.example</Url>`), func(m *channels.Message) string {
			if m.Text != "标题\n描述\nhttps://l.example" {
				return "text " + m.Text
			}
			return ""
		}},
		{wrap("7", "text", `<Content>hi all</Content><ChatId>wrkSFfCgAAtMQKg4xqDatM5C9IDHFpTw</ChatId><ChatType>group</ChatType>`), func(m *channels.Message) string {
			if m.Conversation != "wrkSFfCgAAtMQKg4xqDatM5C9IDHFpTw" || m.ConversationType != channels.Group || !m.Mentioned ||
				m.Sender.ID != "u1" || m.Handle.Extra["chat_id"] != m.Conversation {
				return fmt.Sprintf("group message %+v", m)
			}
			return ""
		}},
		{`<xml><FromUserName>u1</FromUserName><MsgType>text</MsgType><Content>no id</Content></xml>`, func(m *channels.Message) string {
			if !strings.HasPrefix(m.ID, "sha256:") || m.Bot != "1000002" || !m.Time.Equal(time.Unix(testNow, 0)) {
				return fmt.Sprintf("message without MsgId %+v", m)
			}
			return ""
		}},
	}
	for i, tt := range tests {
		if w := h.do(signedPost(t, h.a.crypto, tt.inner, testNow, "k"+strconv.Itoa(i))); w.Code != http.StatusOK {
			t.Fatalf("%d: status %d", i, w.Code)
		}
		msgs := h.sink.WaitMessages(i+1, 5*time.Second)
		if len(msgs) != i+1 {
			t.Fatalf("%d: delivered %d", i, len(msgs))
		}
		if msg := tt.check(msgs[i]); msg != "" {
			t.Errorf("%d: %s", i, msg)
		}
	}
}

func TestNotStarted(t *testing.T) {
	a, err := New(testConfig("http://127.0.0.1:1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	a.Routes()[1].Handler.ServeHTTP(w, signedPost(t, a.crypto, textXML("1", "u", "x"), time.Now().Unix(), "n"))
	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("before Start: %d, want 503", w.Code)
	}
	if err := a.Stop(context.Background()); err != nil {
		t.Error(err)
	}
	if err := a.Stop(context.Background()); err != nil {
		t.Error(err)
	}
}

func TestConfigValidate(t *testing.T) {
	var off Config
	v := config.NewValidator("channels.wecom")
	off.Validate(v)
	if err := v.Err(); err != nil {
		t.Errorf("disabled section: %v", err)
	}
	good := testConfig(DefaultBaseURL)
	v = config.NewValidator("channels.wecom")
	good.Validate(v)
	if err := v.Err(); err != nil {
		t.Errorf("good section: %v", err)
	}
	bad := Config{Common: channels.Common{Enabled: true}, BaseURL: "ftp://x", EncodingAESKey: config.NewSecret("short"), Timeout: -1}
	v = config.NewValidator("channels.wecom")
	bad.Validate(v)
	err := v.Err()
	for _, f := range []string{"corp_id", "agent_id", "secret", "token", "encoding_aes_key", "base_url", "timeout"} {
		if err == nil || !strings.Contains(err.Error(), "channels.wecom."+f+":") {
			t.Errorf("no error for %s in %v", f, err)
		}
	}
	if _, err := New(bad, nil); err == nil {
		t.Error("New accepts a bad EncodingAESKey")
	}
}
