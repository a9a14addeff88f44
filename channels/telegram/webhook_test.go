package telegram

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/channels/channelstest"
	"github.com/zhiyin/zhiyin/internal/config"
)

const testSecret = "s3cret_Token-1"

func webhookConfig(base string) Config {
	c := testConfig(base)
	c.Mode = ModeWebhook
	c.WebhookSecret = config.NewSecret(testSecret)
	return c
}

// post sends body to the adapter's webhook route with the given secret
// ("" leaves the header out).
func post(t *testing.T, a *Adapter, secret, body string) *httptest.ResponseRecorder {
	t.Helper()
	routes := a.Routes()
	if len(routes) != 1 || routes[0].Path != "/channels/telegram/webhook" || routes[0].Method != http.MethodPost {
		t.Fatalf("routes %+v", routes)
	}
	r := httptest.NewRequest(http.MethodPost, routes[0].Path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if secret != "" {
		r.Header.Set("X-Telegram-Bot-Api-Secret-Token", secret)
	}
	w := httptest.NewRecorder()
	routes[0].Handler.ServeHTTP(w, r)
	return w
}

func TestWebhook(t *testing.T) {
	f := newFakeAPI(t)
	cfg := webhookConfig(f.srv.URL)
	cfg.SetWebhookURL = "https://bot.example.com/channels/telegram/webhook"
	cfg.MaxBody = 4096
	a := newTestAdapter(t, cfg)

	if w := post(t, a, testSecret, updPrivate); w.Code != http.StatusServiceUnavailable {
		t.Errorf("before Start: %d, want 503", w.Code)
	}
	sink := channelstest.NewSink()
	startAdapter(t, a, sink)

	// Start registered the webhook with its secret.
	hook := f.waitCalls("setWebhook", 1)[0].params
	if strParam(hook, "url") != cfg.SetWebhookURL || strParam(hook, "secret_token") != testSecret ||
		string(hook["allowed_updates"]) != `["message","edited_message","channel_post"]` {
		t.Errorf("setWebhook %v", hook)
	}

	for _, tc := range []struct {
		name, secret, body string
		code               int
		reason             channels.Reason
	}{
		{"missing secret", "", updPrivate, 401, channels.ReasonSignature},
		{"wrong secret", "s3cret_Token-2", updPrivate, 401, channels.ReasonSignature},
		{"oversize", testSecret, `{"update_id":1,"x":"` + strings.Repeat("a", 5000) + `"}`, 413, channels.ReasonTooLarge},
		{"malformed", testSecret, `{"update_id":`, 400, channels.ReasonMalformed},
		{"no update id", testSecret, `{"message":{"message_id":1,"chat":{"id":1},"text":"x"}}`, 400, channels.ReasonMalformed},
	} {
		before := sink.Rejections(tc.reason)
		if w := post(t, a, tc.secret, tc.body); w.Code != tc.code {
			t.Errorf("%s: %d, want %d", tc.name, w.Code, tc.code)
		}
		if sink.Rejections(tc.reason) != before+1 {
			t.Errorf("%s: rejection %q not counted", tc.name, tc.reason)
		}
	}
	if n := len(sink.Messages()); n != 0 {
		t.Fatalf("refused requests delivered %d messages", n)
	}

	for _, body := range []string{updEdited, updPoll, updFromBot, updService} {
		if w := post(t, a, testSecret, body); w.Code != http.StatusOK {
			t.Errorf("ignored update answered %d, want 200", w.Code)
		}
	}
	if n := len(sink.Messages()); n != 0 {
		t.Fatalf("ignored updates delivered %d messages", n)
	}

	// Telegram retries: the same update twice is one message.
	for range 2 {
		if w := post(t, a, testSecret, updReplyToBot); w.Code != http.StatusOK {
			t.Fatalf("update answered %d: %s", w.Code, w.Body)
		}
	}
	msgs := sink.Messages()
	if len(msgs) != 1 || msgs[0].Channel != "telegram" || msgs[0].Key() != "u1005" || !msgs[0].Mentioned {
		t.Fatalf("delivered %+v", msgs)
	}
}

// errSink fails every Deliver with err.
type errSink struct {
	*channelstest.Sink
	err error
}

func (s errSink) Deliver(context.Context, *channels.Message) error { return s.err }

func TestWebhookDeliverFailure(t *testing.T) {
	f := newFakeAPI(t)
	cfg := webhookConfig(f.srv.URL)
	cfg.BotUsername = "ShopBot"
	for _, tc := range []struct {
		err  error
		code int
	}{
		{errors.New("database is locked"), http.StatusServiceUnavailable},
		{channels.ErrStopped, http.StatusServiceUnavailable},
		{channels.ErrInvalid, http.StatusBadRequest},
	} {
		a := newTestAdapter(t, cfg)
		startAdapter(t, a, errSink{channelstest.NewSink(), tc.err})
		if w := post(t, a, testSecret, updPrivate); w.Code != tc.code {
			t.Errorf("deliver error %v: %d, want %d", tc.err, w.Code, tc.code)
		}
	}
}

func TestWebhookMethod(t *testing.T) {
	a := newTestAdapter(t, webhookConfig("http://127.0.0.1:1"))
	w := httptest.NewRecorder()
	a.Routes()[0].Handler.ServeHTTP(w, httptest.NewRequest(http.MethodGet, WebhookPath, nil))
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", w.Code)
	}
	if r := newTestAdapter(t, testConfig("http://127.0.0.1:1")).Routes(); len(r) != 0 {
		t.Errorf("polling mode has routes %v", r)
	}
}

func TestWebhookSetupRetries(t *testing.T) {
	f := newFakeAPI(t)
	f.failNext("setWebhook", fakeFail{status: 500, desc: "Internal Server Error"})
	cfg := webhookConfig(f.srv.URL)
	cfg.SetWebhookURL = "https://bot.example.com/channels/telegram/webhook"
	a := newTestAdapter(t, cfg)
	startAdapter(t, a, channelstest.NewSink())
	f.waitCalls("setWebhook", 2)
	if st := a.State(); !strings.Contains(st.LastError, "500") {
		t.Errorf("state %+v", st)
	}
	if a.identity().Username != "ShopBot" {
		t.Errorf("identity %+v", a.identity())
	}
}

// FuzzWebhook: any body with any secret. A wrong secret is always 401 with
// nothing delivered; the right one gets 200 or 400, never a 5xx.
func FuzzWebhook(f *testing.F) {
	for _, s := range []string{updPrivate, updGroupMention, updPhoto, updEdited, updPoll, `{`, ``, `{"update_id":-1}`} {
		f.Add(testSecret, []byte(s))
		f.Add("", []byte(s))
	}
	f.Add(testSecret+"x", []byte(updPrivate))
	api := newFakeAPI(f)
	cfg := webhookConfig(api.srv.URL)
	cfg.BotUsername = "ShopBot"
	cfg.MaxBody = 64 << 10
	a, err := New(cfg, nil)
	if err != nil {
		f.Fatal(err)
	}
	sink := channelstest.NewSink()
	if err := a.Start(context.Background(), sink); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = a.Stop(context.Background()) })
	h := a.Routes()[0].Handler
	f.Fuzz(func(t *testing.T, secret string, body []byte) {
		before := len(sink.Messages())
		r := httptest.NewRequest(http.MethodPost, WebhookPath, strings.NewReader(string(body)))
		if secret != "" {
			r.Header.Set("X-Telegram-Bot-Api-Secret-Token", secret)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch {
		case secret != testSecret:
			if w.Code != http.StatusUnauthorized || len(sink.Messages()) != before {
				t.Fatalf("secret %q: %d, delivered %d", secret, w.Code, len(sink.Messages())-before)
			}
		case w.Code != http.StatusOK && w.Code != http.StatusBadRequest && w.Code != http.StatusRequestEntityTooLarge:
			t.Fatalf("body %q: %d", body, w.Code)
		}
	})
}
