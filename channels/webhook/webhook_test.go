package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/channels/channelstest"
	"github.com/zhiyin/zhiyin/internal/config"
)

const testSecret = "0123456789abcdef-test-secret"

var testNow = time.Date(2024, 6, 10, 6, 13, 20, 0, time.UTC) // unix 1718000000

func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func testConfig(outbound string) Config {
	c := DefaultConfig()
	c.Enabled = true
	c.Secret = config.NewSecret(testSecret)
	c.OutboundURL = outbound
	return c
}

// newAdapter returns a started adapter with a fixed clock.
func newAdapter(t testing.TB, cfg Config) (*Adapter, *channelstest.Sink) {
	t.Helper()
	a, err := New(cfg, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	a.now = func() time.Time { return testNow }
	sink := channelstest.NewSink()
	if err := a.Start(context.Background(), sink); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Stop(context.Background()) })
	return a, sink
}

// post sends a signed inbound request with timestamp ts; sig "" signs it
// properly.
func post(a *Adapter, body, ts, sig, key string) *httptest.ResponseRecorder {
	if sig == "" {
		sig = Sign(testSecret, ts, []byte(body))
	}
	r := httptest.NewRequest(http.MethodPost, Path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if ts != "-" {
		r.Header.Set(HeaderTimestamp, ts)
	}
	if sig != "-" {
		r.Header.Set(HeaderSignature, sig)
	}
	if key != "" {
		r.Header.Set(HeaderIdempotency, key)
	}
	w := httptest.NewRecorder()
	routes := a.Routes()
	routes[0].Handler.ServeHTTP(w, r)
	return w
}

const nowTS = "1718000000"

func TestSignVector(t *testing.T) {
	// Computed independently: python3 -c 'import hmac,hashlib;
	// print(hmac.new(b"0123456789abcdef-test-secret", b"1718000000." + body, hashlib.sha256).hexdigest())'
	body := `{"id":"m1","conversation":"c1","user":{"id":"u1"},"text":"hi"}`
	const want = "146061e0db9236c374bd3a2319f4a61bfeb4e3ef32299c09a1ec9033342b54db"
	if got := Sign(testSecret, "1718000000", []byte(body)); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	a, sink := newAdapter(t, testConfig("https://example.com/r"))
	for _, sig := range []string{want, "sha256=" + want, strings.ToUpper(want)} {
		// Each form is the same signature: the first is accepted, the
		// others are replays.
		w := post(a, body, "1718000000", sig, "k1")
		if sig == want && w.Code != http.StatusAccepted {
			t.Fatalf("vector: %d %s", w.Code, w.Body)
		}
		if sig != want && w.Code != http.StatusUnauthorized {
			t.Fatalf("replayed %q: %d %s", sig, w.Code, w.Body)
		}
	}
	if n := len(sink.Messages()); n != 1 {
		t.Fatalf("delivered %d, want 1", n)
	}
	if n := sink.Rejections(channels.ReasonReplay); n != 2 {
		t.Fatalf("replays counted %d, want 2", n)
	}
}

func TestSignaturePrefixAndCase(t *testing.T) {
	a, sink := newAdapter(t, testConfig("https://example.com/r"))
	body := `{"id":"m2","conversation":"c1","user":{"id":"u1"},"text":"hi"}`
	sig := Sign(testSecret, nowTS, []byte(body))
	if w := post(a, body, nowTS, "sha256="+strings.ToUpper(sig), "k2"); w.Code != http.StatusAccepted {
		t.Fatalf("prefixed upper-case signature: %d %s", w.Code, w.Body)
	}
	if len(sink.Messages()) != 1 {
		t.Fatal("not delivered")
	}
}

func TestInboundFull(t *testing.T) {
	a, sink := newAdapter(t, testConfig("https://example.com/r"))
	body := `{"id":"m-1","conversation":"g-9","conversation_type":"group",
	 "user":{"id":"u-7","name":" 张三 "},"text":"  我的快递到哪了？ ","thread":"t-1","reply_to":"m-0",
	 "mentioned":true,"time":1718000000123,
	 "media":[{"kind":"image","url":"https://cdn.example.com/a.png","mime":"image/png","size":1024,"name":"a.png"},
	          {"kind":"voice","key":"vk-1"}],
	 "callback_url":"https://crm.example.com/replies?x=1"}`
	w := post(a, body, nowTS, "", "idem-1")
	if w.Code != http.StatusAccepted {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if got := strings.TrimSpace(w.Body.String()); got != `{"accepted":true,"duplicate":false}` {
		t.Fatalf("body %s", got)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("content type %q", ct)
	}
	msgs := sink.Messages()
	if len(msgs) != 1 {
		t.Fatalf("delivered %d", len(msgs))
	}
	m := msgs[0]
	want := channels.Message{
		Channel: "webhook", Platform: "webhook", ID: "m-1", DedupKey: "idem-1",
		Conversation: "g-9", ConversationType: channels.Group, Thread: "t-1", ReplyTo: "m-0",
		Sender: channels.Sender{ID: "u-7", Name: "张三"}, Mentioned: true,
		Time: time.UnixMilli(1718000000123).UTC(), Text: "我的快递到哪了？",
		Media: []channels.Media{
			{Kind: channels.Image, URL: "https://cdn.example.com/a.png", MIME: "image/png", Size: 1024, Name: "a.png"},
			{Kind: channels.Voice, Key: "vk-1"},
		},
		Handle: channels.Handle{URL: "https://crm.example.com/replies?x=1"},
	}
	if string(m.Raw) != body {
		t.Errorf("raw %s", m.Raw)
	}
	m.Raw = nil
	gotJ, _ := json.Marshal(m)
	wantJ, _ := json.Marshal(want)
	if !bytes.Equal(gotJ, wantJ) {
		t.Fatalf("message\n got %s\nwant %s", gotJ, wantJ)
	}
	if m.Time.Location() != time.UTC {
		t.Fatal("time not UTC")
	}
}

func TestInboundTimeForms(t *testing.T) {
	cases := []struct {
		in   string
		want time.Time
	}{
		{`1718000000`, time.Unix(1718000000, 0)},
		{`1718000000.5`, time.Unix(1718000000, 500_000_000)},
		{`1718000000123`, time.UnixMilli(1718000000123)},
		{`"2024-06-10T14:13:20+08:00"`, time.Unix(1718000000, 0)},
		{`"2024-06-10T06:13:20.25Z"`, time.Unix(1718000000, 250_000_000)},
		{`null`, testNow},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			m, err := parseMessage([]byte(`{"id":"1","conversation":"c","user":{"id":"u"},"text":"x","time":`+c.in+`}`), testNow)
			if err != nil {
				t.Fatal(err)
			}
			if !m.Time.Equal(c.want) || m.Time.Location() != time.UTC {
				t.Fatalf("time %v, want %v UTC", m.Time, c.want)
			}
		})
	}
	m, err := parseMessage([]byte(`{"id":"1","conversation":"c","user":{"id":"u"},"text":"x"}`), testNow)
	if err != nil || !m.Time.Equal(testNow) || m.ConversationType != channels.Direct {
		t.Fatalf("defaults: %v %v", m, err)
	}
	for _, bad := range []string{`"yesterday"`, `-5`, `1e20`, `true`} {
		if _, err := parseMessage([]byte(`{"id":"1","conversation":"c","user":{"id":"u"},"text":"x","time":`+bad+`}`), testNow); err == nil {
			t.Errorf("time %s accepted", bad)
		}
	}
}

func TestRedeliveryDeduplicated(t *testing.T) {
	a, sink := newAdapter(t, testConfig("https://example.com/r"))
	body := `{"id":"m1","conversation":"c1","user":{"id":"u1"},"text":"hi"}`
	// The sender retries after a lost answer: signed afresh (a second
	// later), the same Idempotency-Key.
	for i, ts := range []string{"1718000000", "1718000001", "1718000002"} {
		if w := post(a, body, ts, "", "same-key"); w.Code != http.StatusAccepted {
			t.Fatalf("attempt %d: %d %s", i, w.Code, w.Body)
		}
	}
	if n := len(sink.Messages()); n != 1 {
		t.Fatalf("delivered %d, want 1", n)
	}
}

func TestInboundRefusals(t *testing.T) {
	body := `{"id":"m1","conversation":"c1","user":{"id":"u1"},"text":"hi"}`
	good := Sign(testSecret, nowTS, []byte(body))
	cases := []struct {
		name, ts, sig string
		reason        channels.Reason
	}{
		{"missing timestamp", "-", good, channels.ReasonSignature},
		{"malformed timestamp", "17180x0000", good, channels.ReasonSignature},
		{"negative timestamp", "-1718000000", good, channels.ReasonSignature},
		{"long timestamp", "17180000000000000000000", good, channels.ReasonSignature},
		{"missing signature", nowTS, "-", channels.ReasonSignature},
		{"empty prefixed signature", nowTS, "sha256=", channels.ReasonSignature},
		{"short signature", nowTS, good[:62], channels.ReasonSignature},
		{"not hex", nowTS, "zz" + good[2:], channels.ReasonSignature},
		{"forged", nowTS, Sign("another-secret-of-16+", nowTS, []byte(body)), channels.ReasonSignature},
		{"other timestamp", "1718000001", good, channels.ReasonSignature},
		{"stale", "1717999699", Sign(testSecret, "1717999699", []byte(body)), channels.ReasonStale},
		{"future", "1718000301", Sign(testSecret, "1718000301", []byte(body)), channels.ReasonStale},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, sink := newAdapter(t, testConfig("https://example.com/r"))
			w := post(a, body, c.ts, c.sig, "k")
			if w.Code != http.StatusUnauthorized {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			if !strings.Contains(w.Body.String(), `"code":"unauthorized"`) {
				t.Fatalf("body %s", w.Body)
			}
			if sink.Rejections(c.reason) != 1 {
				t.Fatalf("reason %s not counted", c.reason)
			}
			if len(sink.Messages()) != 0 {
				t.Fatal("delivered")
			}
		})
	}
	t.Run("edge of window", func(t *testing.T) {
		a, sink := newAdapter(t, testConfig("https://example.com/r"))
		for _, ts := range []string{"1717999700", "1718000300"} {
			if w := post(a, body, ts, "", "k-"+ts); w.Code != http.StatusAccepted {
				t.Fatalf("ts %s: %d %s", ts, w.Code, w.Body)
			}
		}
		if n := len(sink.Messages()); n != 2 { // two Idempotency-Keys: two deliveries
			t.Fatalf("delivered %d, want 2", n)
		}
	})
	t.Run("replay", func(t *testing.T) {
		a, sink := newAdapter(t, testConfig("https://example.com/r"))
		if w := post(a, body, nowTS, "", "k1"); w.Code != http.StatusAccepted {
			t.Fatalf("first: %d", w.Code)
		}
		// A captured request replayed with another Idempotency-Key.
		if w := post(a, body, nowTS, "", "k2"); w.Code != http.StatusUnauthorized {
			t.Fatalf("replay: %d", w.Code)
		}
		if sink.Rejections(channels.ReasonReplay) != 1 || len(sink.Messages()) != 1 {
			t.Fatalf("replay: rejections %d, messages %d", sink.Rejections(channels.ReasonReplay), len(sink.Messages()))
		}
	})
}

func TestInboundBadRequests(t *testing.T) {
	cases := []struct {
		name, body, key, want string
	}{
		{"no key", `{"id":"m1","conversation":"c1","user":{"id":"u1"},"text":"hi"}`, "", "missing Idempotency-Key"},
		{"long key", `{"id":"m1","conversation":"c1","user":{"id":"u1"},"text":"hi"}`, strings.Repeat("k", 129), "longer than 128"},
		{"control key", `{"id":"m1","conversation":"c1","user":{"id":"u1"},"text":"hi"}`, "a\tb", "printable ASCII"},
		{"syntax", `{"id":"m1",`, "k", "ends too early"},
		{"garbage", `hello`, "k", "syntax error"},
		{"empty", ``, "k", "body is empty"},
		{"trailing", `{"id":"m1","conversation":"c1","user":{"id":"u1"},"text":"hi"} {}`, "k", "after the object"},
		{"unknown field", `{"id":"m1","conversation":"c1","user":{"id":"u1"},"text":"hi","colour":"red"}`, "k", `unknown field \"colour\"`},
		{"unknown nested", `{"id":"m1","conversation":"c1","user":{"id":"u1","age":3},"text":"hi"}`, "k", `unknown field \"age\"`},
		{"wrong type", `{"id":7,"conversation":"c1","user":{"id":"u1"},"text":"hi"}`, "k", `field \"id\" must be a JSON string`},
		{"no id", `{"conversation":"c1","user":{"id":"u1"},"text":"hi"}`, "k", `\"id\" is required`},
		{"no conversation", `{"id":"m1","user":{"id":"u1"},"text":"hi"}`, "k", `\"conversation\" is required`},
		{"no user", `{"id":"m1","conversation":"c1","text":"hi"}`, "k", `\"user.id\" is required`},
		{"long id", `{"id":"` + strings.Repeat("x", 257) + `","conversation":"c1","user":{"id":"u1"},"text":"hi"}`, "k", "longer than 256"},
		{"bad type", `{"id":"m1","conversation":"c1","conversation_type":"room","user":{"id":"u1"},"text":"hi"}`, "k", "conversation_type"},
		{"no text", `{"id":"m1","conversation":"c1","user":{"id":"u1"},"text":"   "}`, "k", `needs \"text\" or \"media\"`},
		{"bad media kind", `{"id":"m1","conversation":"c1","user":{"id":"u1"},"media":[{"kind":"gif","url":"https://x/y"}]}`, "k", "media[0].kind"},
		{"media no ref", `{"id":"m1","conversation":"c1","user":{"id":"u1"},"media":[{"kind":"file"}]}`, "k", `needs a \"url\" or a \"key\"`},
		{"media bad url", `{"id":"m1","conversation":"c1","user":{"id":"u1"},"media":[{"kind":"file","url":"file:///etc/passwd"}]}`, "k", "media[0].url"},
		{"callback ftp", `{"id":"m1","conversation":"c1","user":{"id":"u1"},"text":"hi","callback_url":"ftp://x/y"}`, "k", "callback_url"},
		{"callback relative", `{"id":"m1","conversation":"c1","user":{"id":"u1"},"text":"hi","callback_url":"/replies"}`, "k", "callback_url"},
		{"bad time", `{"id":"m1","conversation":"c1","user":{"id":"u1"},"text":"hi","time":"soon"}`, "k", "RFC 3339"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, sink := newAdapter(t, testConfig("https://example.com/r"))
			w := post(a, c.body, nowTS, "", c.key)
			if w.Code != http.StatusBadRequest {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			var eb errorBody
			if err := json.Unmarshal(w.Body.Bytes(), &eb); err != nil || eb.Error.Code != "bad_request" {
				t.Fatalf("body %s (%v)", w.Body, err)
			}
			if !strings.Contains(w.Body.String(), c.want) {
				t.Fatalf("message %q does not say %q", eb.Error.Message, c.want)
			}
			if len(sink.Messages()) != 0 || sink.Rejections(channels.ReasonMalformed) != 1 {
				t.Fatalf("messages %d, malformed %d", len(sink.Messages()), sink.Rejections(channels.ReasonMalformed))
			}
		})
	}
}

func TestInboundTooLarge(t *testing.T) {
	cfg := testConfig("https://example.com/r")
	cfg.MaxBody = 2048
	a, sink := newAdapter(t, cfg)
	big := `{"id":"m1","conversation":"c1","user":{"id":"u1"},"text":"` + strings.Repeat("x", 4096) + `"}`
	if w := post(a, big, nowTS, "", "k"); w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("with length: %d", w.Code)
	}
	// Unknown length (chunked).
	r := httptest.NewRequest(http.MethodPost, Path, io.MultiReader(strings.NewReader(big)))
	r.ContentLength = -1
	r.Header.Set(HeaderTimestamp, nowTS)
	r.Header.Set(HeaderSignature, Sign(testSecret, nowTS, []byte(big)))
	r.Header.Set(HeaderIdempotency, "k")
	w := httptest.NewRecorder()
	a.Routes()[0].Handler.ServeHTTP(w, r)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked: %d", w.Code)
	}
	if sink.Rejections(channels.ReasonTooLarge) != 2 || len(sink.Messages()) != 0 {
		t.Fatalf("too_large %d, messages %d", sink.Rejections(channels.ReasonTooLarge), len(sink.Messages()))
	}
}

func TestInboundChunkedOK(t *testing.T) {
	a, sink := newAdapter(t, testConfig("https://example.com/r"))
	body := `{"id":"m1","conversation":"c1","user":{"id":"u1"},"text":"hi"}`
	r := httptest.NewRequest(http.MethodPost, Path, io.MultiReader(strings.NewReader(body)))
	r.ContentLength = -1
	r.Header.Set(HeaderTimestamp, nowTS)
	r.Header.Set(HeaderSignature, Sign(testSecret, nowTS, []byte(body)))
	r.Header.Set(HeaderIdempotency, "k")
	w := httptest.NewRecorder()
	a.Routes()[0].Handler.ServeHTTP(w, r)
	if w.Code != http.StatusAccepted || len(sink.Messages()) != 1 {
		t.Fatalf("chunked: %d %s", w.Code, w.Body)
	}
}

func TestDeliverErrors(t *testing.T) {
	body := `{"id":"m1","conversation":"c1","user":{"id":"u1"},"text":"hi"}`
	t.Run("invalid", func(t *testing.T) {
		a, sink := newAdapter(t, testConfig("https://example.com/r"))
		sink.Err = channels.ErrInvalid
		if w := post(a, body, nowTS, "", "k"); w.Code != http.StatusBadRequest {
			t.Fatalf("status %d", w.Code)
		}
	})
	t.Run("temporary", func(t *testing.T) {
		a, sink := newAdapter(t, testConfig("https://example.com/r"))
		sink.Err = errors.New("database is busy")
		w := post(a, body, nowTS, "", "k")
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "1" {
			t.Fatalf("status %d retry-after %q", w.Code, w.Header().Get("Retry-After"))
		}
		if strings.Contains(w.Body.String(), "busy") {
			t.Fatal("internal error shown to the sender")
		}
	})
	t.Run("stopped", func(t *testing.T) {
		a, sink := newAdapter(t, testConfig("https://example.com/r"))
		a.Stop(context.Background())
		a.Stop(context.Background()) // idempotent
		if w := post(a, body, nowTS, "", "k"); w.Code != http.StatusServiceUnavailable {
			t.Fatalf("status %d", w.Code)
		}
		if len(sink.Messages()) != 0 {
			t.Fatal("delivered after Stop")
		}
	})
}

// receiver is a fake reply endpoint that enforces the protocol: a valid
// signature within the window, an Idempotency-Key equal to the body's key,
// deduplication on it. Its answer can be scripted per request.
type receiver struct {
	t      *testing.T
	secret string
	mu     sync.Mutex
	seen   map[string]int
	got    []outbound
	answer func(n int, w http.ResponseWriter) // nil: 200 {"id":…}
	n      int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	ts := r.Header.Get(HeaderTimestamp)
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sec != testNow.Unix() {
		http.Error(w, "bad timestamp", http.StatusUnauthorized)
		return
	}
	if r.Header.Get(HeaderSignature) != Sign(rc.secret, ts, body) {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "bad content type", http.StatusUnsupportedMediaType)
		return
	}
	var o outbound
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if k := r.Header.Get(HeaderIdempotency); k == "" || k != o.Key {
		http.Error(w, "idempotency key", http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	rc.n++
	n := rc.n
	answer := rc.answer
	rc.mu.Unlock()
	if answer != nil {
		answer(n, w)
		return
	}
	rc.mu.Lock()
	if rc.seen[o.Key] == 0 {
		rc.got = append(rc.got, o)
	}
	rc.seen[o.Key]++
	rc.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"id":"out-`+o.Key+`"}`)
}

func newReceiver(t *testing.T, secret string) (*receiver, *httptest.Server) {
	rc := &receiver{t: t, secret: secret, seen: map[string]int{}}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	return rc, srv
}

func TestSend(t *testing.T) {
	rc, srv := newReceiver(t, "outbound-secret-0123456789")
	cfg := testConfig(srv.URL + "/replies")
	cfg.OutboundSecret = config.NewSecret("outbound-secret-0123456789")
	a, _ := newAdapter(t, cfg)
	out := &channels.Outgoing{
		Key: "k1", Channel: "webhook", Conversation: "c1", ConversationType: channels.Group,
		Thread: "t1", ReplyTo: "m1", Recipient: "u1", Text: "您好，包裹已发出", Markdown: true, Part: 1, Parts: 2, Attempt: 1,
	}
	for range 2 { // a repeated part: the receiver dedups on the key
		rcpt, err := a.Send(context.Background(), out)
		if err != nil {
			t.Fatal(err)
		}
		if rcpt.PlatformID != "out-k1" {
			t.Fatalf("receipt %+v", rcpt)
		}
	}
	want := outbound{Key: "k1", Conversation: "c1", ConversationType: "group", Thread: "t1", ReplyTo: "m1",
		Recipient: "u1", Text: "您好，包裹已发出", Markdown: true, Part: 1, Parts: 2}
	if len(rc.got) != 1 || rc.got[0] != want || rc.seen["k1"] != 2 {
		t.Fatalf("received %+v (seen %v)", rc.got, rc.seen)
	}
	if st := a.State(); !st.Connected || st.LastError != "" {
		t.Fatalf("state %+v", st)
	}
}

func TestSendSignsWithSecretByDefault(t *testing.T) {
	rc, srv := newReceiver(t, testSecret)
	a, _ := newAdapter(t, testConfig(srv.URL))
	if _, err := a.Send(context.Background(), &channels.Outgoing{Key: "k", Conversation: "c", Text: "hi", Part: 1, Parts: 1}); err != nil {
		t.Fatal(err)
	}
	if len(rc.got) != 1 || rc.got[0].ConversationType != "direct" {
		t.Fatalf("got %+v", rc.got)
	}
}

func TestSendCallbackURL(t *testing.T) {
	rc, srv := newReceiver(t, testSecret)
	a, sink := newAdapter(t, testConfig("http://127.0.0.1:1/never"))
	body := `{"id":"m1","conversation":"c1","user":{"id":"u1"},"text":"hi","callback_url":"` + srv.URL + `/cb"}`
	if w := post(a, body, nowTS, "", "k"); w.Code != http.StatusAccepted {
		t.Fatalf("inbound %d", w.Code)
	}
	m := sink.Messages()[0]
	_, err := a.Send(context.Background(), &channels.Outgoing{Key: "r1", Conversation: m.Conversation, Text: "ok", Handle: m.Handle, Part: 1, Parts: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(rc.got) != 1 {
		t.Fatal("callback_url not used")
	}
}

func TestSendErrors(t *testing.T) {
	cases := []struct {
		name      string
		answer    func(w http.ResponseWriter)
		retry     time.Duration // > 0: a RetryAfterError of this length
		permanent bool
	}{
		{"429 seconds", func(w http.ResponseWriter) { w.Header().Set("Retry-After", "7"); w.WriteHeader(429) }, 7 * time.Second, false},
		{"429 date", func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", testNow.Add(30*time.Second).Format(http.TimeFormat))
			w.WriteHeader(429)
		}, 30 * time.Second, false},
		{"429 bare", func(w http.ResponseWriter) { w.WriteHeader(429) }, time.Second, false},
		{"503 retry-after", func(w http.ResponseWriter) { w.Header().Set("Retry-After", "2"); w.WriteHeader(503) }, 2 * time.Second, false},
		{"503 bare", func(w http.ResponseWriter) { w.WriteHeader(503) }, 0, false},
		{"500", func(w http.ResponseWriter) { w.WriteHeader(500) }, 0, false},
		{"502", func(w http.ResponseWriter) { w.WriteHeader(502) }, 0, false},
		{"408", func(w http.ResponseWriter) { w.WriteHeader(408) }, 0, false},
		{"400", func(w http.ResponseWriter) { http.Error(w, "unknown conversation", 400) }, 0, true},
		{"401", func(w http.ResponseWriter) { w.WriteHeader(401) }, 0, true},
		{"404", func(w http.ResponseWriter) { w.WriteHeader(404) }, 0, true},
		{"410", func(w http.ResponseWriter) { w.WriteHeader(410) }, 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rc, srv := newReceiver(t, testSecret)
			rc.answer = func(_ int, w http.ResponseWriter) { c.answer(w) }
			a, _ := newAdapter(t, testConfig(srv.URL))
			_, err := a.Send(context.Background(), &channels.Outgoing{Key: "k", Conversation: "c", Text: "hi", Part: 1, Parts: 1})
			if err == nil {
				t.Fatal("no error")
			}
			var ra *channels.RetryAfterError
			isRA := errors.As(err, &ra)
			if c.retry > 0 != isRA || (isRA && ra.After != c.retry) {
				t.Fatalf("error %v: retry-after %v, want %v", err, isRA, c.retry)
			}
			if errors.Is(err, channels.ErrPermanent) != c.permanent {
				t.Fatalf("error %v: permanent %v, want %v", err, !c.permanent, c.permanent)
			}
			if st := a.State(); st.LastError == "" || st.LastErrorAt.IsZero() {
				t.Fatalf("state %+v", st)
			}
		})
	}
	t.Run("network", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		a, _ := newAdapter(t, testConfig(url))
		_, err := a.Send(context.Background(), &channels.Outgoing{Key: "k", Conversation: "c", Text: "hi"})
		var ra *channels.RetryAfterError
		if err == nil || errors.Is(err, channels.ErrPermanent) || errors.As(err, &ra) {
			t.Fatalf("network error %v", err)
		}
	})
	t.Run("stopped", func(t *testing.T) {
		_, srv := newReceiver(t, testSecret)
		a, _ := newAdapter(t, testConfig(srv.URL))
		a.Stop(context.Background())
		if _, err := a.Send(context.Background(), &channels.Outgoing{Key: "k", Conversation: "c", Text: "hi"}); err == nil {
			t.Fatal("sent after Stop")
		}
	})
	t.Run("query redacted", func(t *testing.T) {
		rc, srv := newReceiver(t, testSecret)
		rc.answer = func(_ int, w http.ResponseWriter) { w.WriteHeader(500) }
		a, _ := newAdapter(t, testConfig(srv.URL+"/r?token=s3cr3t"))
		_, err := a.Send(context.Background(), &channels.Outgoing{Key: "k", Conversation: "c", Text: "hi"})
		if err == nil || strings.Contains(err.Error(), "s3cr3t") {
			t.Fatalf("error %v", err)
		}
	})
}

func TestCapabilities(t *testing.T) {
	cfg := testConfig("https://example.com/r")
	a, _ := newAdapter(t, cfg)
	if a.Name() != "webhook" || !a.IdempotentSend() {
		t.Fatal("name or idempotent")
	}
	if l := a.Limits(); l.MaxText != 4000 || l.Unit != channels.Runes || l.Global != (channels.Rate{}) {
		t.Fatalf("limits %+v", l)
	}
	cfg.RatePerSecond = 20
	cfg.MaxText = 500
	b, _ := newAdapter(t, cfg)
	if l := b.Limits(); l.MaxText != 500 || l.Global != (channels.Rate{N: 20, Per: time.Second}) {
		t.Fatalf("limits %+v", l)
	}
	r := a.Routes()
	if len(r) != 1 || r[0].Method != http.MethodPost || r[0].Path != "/channels/webhook/messages" {
		t.Fatalf("routes %+v", r)
	}
}

func TestConfig(t *testing.T) {
	type file struct {
		Webhook Config `yaml:"webhook"`
	}
	decode := func(y string) (Config, error) {
		f := file{Webhook: DefaultConfig()}
		err := config.Decode("zhiyin.yaml", []byte(y), &f, config.DecodeOptions{
			LookupEnv: func(k string) (string, bool) {
				if k == "WEBHOOK_SECRET" {
					return "env-secret-0123456789", true
				}
				return "", false
			},
		})
		return f.Webhook, err
	}
	// Disabled: nothing checked.
	if _, err := decode("webhook:\n  enabled: false\n"); err != nil {
		t.Fatal(err)
	}
	c, err := decode(`webhook:
  enabled: true
  secret: ${WEBHOOK_SECRET}
  outbound_url: https://crm.example.com/zhiyin/replies
  max_skew: 2m
  max_body: 256KiB
  timeout: 3s
  max_text: 1000
  rate_per_second: 50
`)
	if err != nil {
		t.Fatal(err)
	}
	if c.Secret.Value() != "env-secret-0123456789" || c.MaxSkew != 2*time.Minute || c.MaxBody != 256<<10 ||
		c.Timeout != 3*time.Second || c.MaxText != 1000 || c.RatePerSecond != 50 {
		t.Fatalf("decoded %+v", c)
	}
	if _, err := New(c, testLog(t)); err != nil {
		t.Fatal(err)
	}
	_, err = decode(`webhook:
  enabled: true
  secret: short
  outbound_secret: tiny
  outbound_url: ftp://x
  max_skew: 0s
  max_body: 10
  timeout: 1ms
  max_text: 0
  rate_per_second: -1
`)
	for _, f := range []string{"webhook.secret", "webhook.outbound_secret", "webhook.outbound_url", "webhook.max_skew",
		"webhook.max_body", "webhook.timeout", "webhook.max_text", "webhook.rate_per_second"} {
		if err == nil || !strings.Contains(err.Error(), f+":") {
			t.Errorf("no error for %s in %v", f, err)
		}
	}
	_, err = decode("webhook:\n  enabled: true\n")
	if err == nil || !strings.Contains(err.Error(), "webhook.secret: required") || !strings.Contains(err.Error(), "webhook.outbound_url: required") {
		t.Fatalf("missing required: %v", err)
	}
	_, err = decode("webhook:\n  enabled: true\n  secrett: x\n")
	if err == nil || !strings.Contains(err.Error(), "unknown key") {
		t.Fatalf("unknown key: %v", err)
	}
	if _, err := New(DefaultConfig(), testLog(t)); err == nil {
		t.Fatal("New without a secret")
	}
}
