package feishu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/channels/channelstest"
	"github.com/zhiyin/zhiyin/internal/config"
)

// flakySink fails Deliver with err while set.
type flakySink struct {
	*channelstest.Sink
	err atomic.Pointer[error]
}

func (s *flakySink) Deliver(ctx context.Context, m *channels.Message) error {
	if e := s.err.Load(); e != nil {
		return *e
	}
	return s.Sink.Deliver(ctx, m)
}

// callbackEnv is a started adapter behind its route.
type callbackEnv struct {
	a    *Adapter
	sink *flakySink
	mux  *http.ServeMux
}

func newCallbackEnv(t *testing.T, cfg Config) *callbackEnv {
	t.Helper()
	a := newTestAdapter(t, cfg)
	e := &callbackEnv{a: a, sink: &flakySink{Sink: channelstest.NewSink()}, mux: http.NewServeMux()}
	for _, r := range a.Routes() {
		e.mux.Handle(r.Method+" "+r.Path, r.Handler)
	}
	if err := a.Start(t.Context(), e.sink); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Stop(context.Background()) })
	return e
}

var nonceSeq atomic.Int64

// post sends body signed with key at time ts (a fresh nonce each call
// unless nonce is given); key "" sends it unsigned.
func (e *callbackEnv) post(body []byte, key string, ts time.Time, nonce string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, EventsPath, bytes.NewReader(body))
	if key != "" {
		if nonce == "" {
			nonce = "n" + strconv.FormatInt(nonceSeq.Add(1), 10)
		}
		sec := strconv.FormatInt(ts.Unix(), 10)
		r.Header.Set(hdrLarkTimestamp, sec)
		r.Header.Set(hdrLarkNonce, nonce)
		r.Header.Set(hdrLarkSignature, signature(sec, nonce, key, body))
	}
	w := httptest.NewRecorder()
	e.mux.ServeHTTP(w, r)
	return w
}

func (e *callbackEnv) signed(plain []byte) *httptest.ResponseRecorder {
	return e.post(encryptedBody(testEncryptKey, plain), testEncryptKey, fixedNow, "")
}

func TestCallbackDeliversOnceAcrossRedeliveries(t *testing.T) {
	e := newCallbackEnv(t, testConfig())
	ev := textEvent("ev-1", "om_1", "group", "@_user_1 查订单", testBot)
	for i := range 3 { // Feishu redelivers with a new nonce
		w := e.signed(ev)
		if w.Code != 200 || strings.TrimSpace(w.Body.String()) != "{}" {
			t.Fatalf("delivery %d: %d %q", i, w.Code, w.Body)
		}
	}
	msgs := e.sink.WaitMessages(1, 5*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.Channel != "feishu" || m.Key() != "ev-1" || m.ID != "om_1" || m.Text != "查订单" || !m.Mentioned {
		t.Fatalf("message %+v", m)
	}
	if st := e.a.State(); !st.Connected {
		t.Fatalf("state %+v", st)
	}
}

func TestCallbackURLVerification(t *testing.T) {
	challenge := []byte(`{"challenge":"ch-42","token":"vtoken","type":"url_verification"}`)
	wrongToken := []byte(`{"challenge":"ch-42","token":"nope","type":"url_verification"}`)
	ok := func(t *testing.T, w *httptest.ResponseRecorder) {
		t.Helper()
		var got map[string]string
		if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &got) != nil || got["challenge"] != "ch-42" {
			t.Fatalf("got %d %q", w.Code, w.Body)
		}
	}
	t.Run("encrypted unsigned", func(t *testing.T) {
		e := newCallbackEnv(t, testConfig())
		ok(t, e.post(encryptedBody(testEncryptKey, challenge), "", fixedNow, ""))
	})
	t.Run("encrypted signed", func(t *testing.T) {
		e := newCallbackEnv(t, testConfig())
		ok(t, e.signed(challenge))
	})
	t.Run("plain without encrypt key", func(t *testing.T) {
		cfg := testConfig()
		cfg.EncryptKey = config.Secret{}
		e := newCallbackEnv(t, cfg)
		ok(t, e.post(challenge, "", fixedNow, ""))
		if w := e.post(wrongToken, "", fixedNow, ""); w.Code != 401 {
			t.Fatalf("wrong token: %d", w.Code)
		}
	})
	t.Run("plain unsigned with encrypt key", func(t *testing.T) {
		e := newCallbackEnv(t, testConfig())
		if w := e.post(challenge, "", fixedNow, ""); w.Code != 401 {
			t.Fatalf("got %d", w.Code)
		}
	})
	t.Run("wrong token", func(t *testing.T) {
		e := newCallbackEnv(t, testConfig())
		if w := e.signed(wrongToken); w.Code != 401 || e.sink.Rejections(channels.ReasonSignature) != 1 {
			t.Fatalf("got %d", w.Code)
		}
	})
}

func TestCallbackRefusals(t *testing.T) {
	ev := textEvent("ev-r", "om_r", "p2p", "hi")
	enc := encryptedBody(testEncryptKey, ev)
	for _, tc := range []struct {
		name   string
		send   func(e *callbackEnv) *httptest.ResponseRecorder
		status int
		reason channels.Reason
	}{
		{"forged signature", func(e *callbackEnv) *httptest.ResponseRecorder {
			return e.post(enc, "not the key", fixedNow, "")
		}, 401, channels.ReasonSignature},
		{"missing signature", func(e *callbackEnv) *httptest.ResponseRecorder {
			return e.post(enc, "", fixedNow, "")
		}, 401, channels.ReasonSignature},
		{"unsigned garbage", func(e *callbackEnv) *httptest.ResponseRecorder {
			return e.post([]byte(`{"encrypt":"AAAA"}`), "", fixedNow, "")
		}, 401, channels.ReasonSignature},
		{"stale timestamp", func(e *callbackEnv) *httptest.ResponseRecorder {
			return e.post(enc, testEncryptKey, fixedNow.Add(-6*time.Minute), "")
		}, 401, channels.ReasonStale},
		{"future timestamp", func(e *callbackEnv) *httptest.ResponseRecorder {
			return e.post(enc, testEncryptKey, fixedNow.Add(6*time.Minute), "")
		}, 401, channels.ReasonStale},
		{"replayed nonce", func(e *callbackEnv) *httptest.ResponseRecorder {
			if w := e.post(encryptedBody(testEncryptKey, textEvent("ev-x", "om_x", "p2p", "x")), testEncryptKey, fixedNow, "same"); w.Code != 200 {
				panic("first request refused")
			}
			return e.post(enc, testEncryptKey, fixedNow, "same")
		}, 401, channels.ReasonReplay},
		{"wrong verification token", func(e *callbackEnv) *httptest.ResponseRecorder {
			return e.signed(bytes.Replace(ev, []byte(`"token":"vtoken"`), []byte(`"token":"other"`), 1))
		}, 401, channels.ReasonSignature},
		{"oversize", func(e *callbackEnv) *httptest.ResponseRecorder {
			return e.signed([]byte(`{"pad":"` + strings.Repeat("x", 2<<20) + `"}`))
		}, 413, channels.ReasonTooLarge},
		{"malformed json", func(e *callbackEnv) *httptest.ResponseRecorder {
			return e.post([]byte(`{"encrypt":`), testEncryptKey, fixedNow, "")
		}, 400, channels.ReasonMalformed},
		{"malformed event", func(e *callbackEnv) *httptest.ResponseRecorder {
			return e.signed([]byte(`{"schema":"2.0","header":{}}`))
		}, 400, channels.ReasonMalformed},
		{"bad base64", func(e *callbackEnv) *httptest.ResponseRecorder {
			return e.post([]byte(`{"encrypt":"***"}`), testEncryptKey, fixedNow, "")
		}, 400, channels.ReasonMalformed},
		{"bad padding", func(e *callbackEnv) *httptest.ResponseRecorder {
			body, _ := json.Marshal(map[string]string{"encrypt": encryptRaw(testEncryptKey, []byte("0123456789abcd\x00\x00"))})
			return e.post(body, testEncryptKey, fixedNow, "")
		}, 400, channels.ReasonMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newCallbackEnv(t, testConfig())
			w := tc.send(e)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d (%s)", w.Code, tc.status, w.Body)
			}
			if n := e.sink.Rejections(tc.reason); n != 1 {
				t.Fatalf("%d rejections for %s", n, tc.reason)
			}
			for _, m := range e.sink.Messages() {
				if m.ID == "om_r" {
					t.Fatal("refused event delivered")
				}
			}
		})
	}
}

func TestCallbackIgnoresOtherEvents(t *testing.T) {
	e := newCallbackEnv(t, testConfig())
	for _, ev := range []string{
		`{"schema":"2.0","header":{"event_id":"e1","event_type":"im.message.message_read_v1","token":"vtoken"},"event":{}}`,
		`{"uuid":"u1","token":"vtoken","type":"event_callback","event":{"type":"add_bot"}}`,
		string(bytes.Replace(textEvent("e2", "om_2", "group", "x"), []byte(`"sender_type":"user"`), []byte(`"sender_type":"app"`), 1)),
	} {
		if w := e.signed([]byte(ev)); w.Code != 200 || strings.TrimSpace(w.Body.String()) != "{}" {
			t.Fatalf("%s: %d %q", ev, w.Code, w.Body)
		}
	}
	if n := len(e.sink.Messages()); n != 0 {
		t.Fatalf("%d messages delivered", n)
	}
}

func TestCallbackDeliveryFailure(t *testing.T) {
	e := newCallbackEnv(t, testConfig())
	errDown := errors.New("inbox down")
	e.sink.err.Store(&errDown)
	body := encryptedBody(testEncryptKey, textEvent("ev-f", "om_f", "p2p", "hi"))
	if w := e.post(body, testEncryptKey, fixedNow, "n-f"); w.Code != 503 {
		t.Fatalf("failed delivery answered %d", w.Code)
	}
	if len(e.sink.Messages()) != 0 {
		t.Fatal("delivered")
	}
	// Feishu redelivers the same signed request: accepted once, not a
	// replay.
	e.sink.err.Store(nil)
	if w := e.post(body, testEncryptKey, fixedNow, "n-f"); w.Code != 200 {
		t.Fatalf("redelivery answered %d", w.Code)
	}
	if msgs := e.sink.WaitMessages(1, 5*time.Second); len(msgs) != 1 || msgs[0].Key() != "ev-f" {
		t.Fatalf("messages %+v", msgs)
	}
	if w := e.post(body, testEncryptKey, fixedNow, "n-f"); w.Code != 401 {
		t.Fatalf("replay after success answered %d", w.Code)
	}
	// An invalid message is a 400, not retried.
	e.sink.err.Store(&channels.ErrInvalid)
	if w := e.signed(textEvent("ev-i", "om_i", "p2p", "x")); w.Code != 400 {
		t.Fatalf("invalid answered %d", w.Code)
	}
}

func TestCallbackTokenOnlyAndNotStarted(t *testing.T) {
	cfg := testConfig()
	cfg.EncryptKey = config.Secret{}
	a := newTestAdapter(t, cfg)
	w := httptest.NewRecorder()
	a.Routes()[0].Handler.ServeHTTP(w, httptest.NewRequest(http.MethodPost, EventsPath, strings.NewReader("{}")))
	if w.Code != 503 {
		t.Fatalf("before Start: %d", w.Code)
	}
	e := newCallbackEnv(t, cfg)
	if w := e.post(textEvent("ev-t", "om_t", "p2p", "hi"), "", fixedNow, ""); w.Code != 200 {
		t.Fatalf("plain event: %d", w.Code)
	}
	bad := bytes.Replace(textEvent("ev-u", "om_u", "p2p", "hi"), []byte(`"token":"vtoken"`), []byte(`"token":"x"`), 1)
	if w := e.post(bad, "", fixedNow, ""); w.Code != 401 {
		t.Fatalf("bad token: %d", w.Code)
	}
	if w := e.post(encryptedBody("k", []byte("{}")), "", fixedNow, ""); w.Code != 400 {
		t.Fatalf("encrypted without key: %d", w.Code)
	}
	if msgs := e.sink.Messages(); len(msgs) != 1 || msgs[0].ID != "om_t" {
		t.Fatalf("messages %+v", msgs)
	}
}

func FuzzCallback(f *testing.F) {
	ev := textEvent("ev-z", "om_z", "group", "@_user_1 hi", testBot)
	f.Add(encryptedBody(testEncryptKey, ev), "1714550400", "n", "")
	f.Add(encryptedBody(testEncryptKey, []byte(`{"type":"url_verification","challenge":"c","token":"vtoken"}`)), "", "", "")
	f.Add([]byte(`{"encrypt":"AAAA"}`), "1714550400", "n", "00")
	cfg := testConfig()
	f.Fuzz(func(t *testing.T, body []byte, ts, nonce, sig string) {
		a := newTestAdapter(t, cfg)
		sink := channelstest.NewSink()
		if err := a.Start(context.Background(), sink); err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodPost, EventsPath, bytes.NewReader(body))
		r.Header.Set(hdrLarkTimestamp, ts)
		r.Header.Set(hdrLarkNonce, nonce)
		r.Header.Set(hdrLarkSignature, sig)
		w := httptest.NewRecorder()
		a.serveEvents(w, r)
		if len(sink.Messages()) > 0 && !verifySignature(ts, nonce, testEncryptKey, body, sig) {
			t.Fatalf("unsigned body delivered (status %d)", w.Code)
		}
		if w.Code == 200 && !verifySignature(ts, nonce, testEncryptKey, body, sig) && !strings.Contains(w.Body.String(), "challenge") {
			t.Fatalf("unsigned body accepted: %s", w.Body)
		}
	})
}
