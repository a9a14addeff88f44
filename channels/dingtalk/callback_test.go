package dingtalk

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/channels/channelstest"
)

func startHTTP(t *testing.T, sink channels.Sink) (*Adapter, http.Handler) {
	t.Helper()
	f := newFakeDT(t)
	a := newTestAdapter(t, f, ModeHTTP)
	if err := a.Start(context.Background(), sink); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopAdapter(t, a) })
	routes := a.Routes()
	if len(routes) != 1 || routes[0].Path != "/channels/dingtalk/callback" || routes[0].Method != http.MethodPost {
		t.Fatalf("routes %+v", routes)
	}
	return a, routes[0].Handler
}

// post sends a callback; ts 0 means now, sign "-" means the right one, ""
// means none.
func post(h http.Handler, body string, ts int64, sign string) *httptest.ResponseRecorder {
	if ts == 0 {
		ts = time.Now().UnixMilli()
	}
	tss := strconv.FormatInt(ts, 10)
	if sign == "-" {
		sign = Sign(tss, testClientSecret)
	}
	r := httptest.NewRequest(http.MethodPost, "/channels/dingtalk/callback", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("timestamp", tss)
	if sign != "" {
		r.Header.Set("sign", sign)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestCallback(t *testing.T) {
	sink := channelstest.NewSink()
	a, h := startHTTP(t, sink)
	if st := a.State(); !st.Connected {
		t.Errorf("state %+v", st)
	}
	body := botJSON("msg-1", "2", "hello", "https://oapi.dingtalk.com")
	if w := post(h, body, 0, "-"); w.Code != 200 {
		t.Fatalf("valid: %d %s", w.Code, w.Body)
	}
	if msgs := sink.Messages(); len(msgs) != 1 || msgs[0].Text != "hello" || msgs[0].Channel != "dingtalk" {
		t.Fatalf("messages %+v", msgs)
	}

	ts := time.Now().Add(-time.Second).UnixMilli()
	for _, tc := range []struct {
		name   string
		ts     int64
		sign   string
		body   string
		code   int
		reason channels.Reason
	}{
		{"forged", 0, Sign(strconv.FormatInt(time.Now().UnixMilli(), 10), "other-secret"), body, 401, channels.ReasonSignature},
		{"missing", 0, "", body, 401, channels.ReasonSignature},
		{"stale", time.Now().Add(-2 * time.Hour).UnixMilli(), "-", body, 401, channels.ReasonStale},
		{"future", time.Now().Add(2 * time.Hour).UnixMilli(), "-", body, 401, channels.ReasonStale},
		{"malformed", 0, "-", `{"msgId":`, 400, channels.ReasonMalformed},
		{"no msgId", 0, "-", `{"conversationId":"c","msgtype":"text"}`, 400, channels.ReasonMalformed},
		{"oversize", 0, "-", `{"pad":"` + strings.Repeat("x", 2<<20) + `"}`, 413, channels.ReasonTooLarge},
		{"first", ts, "-", botJSON("msg-2", "2", "x", "https://oapi.dingtalk.com"), 200, ""},
		{"replayed", ts, "-", botJSON("msg-3", "2", "forged body", "https://evil.example"), 401, channels.ReasonReplay},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := 0
			if tc.reason != "" {
				before = sink.Rejections(tc.reason)
			}
			n := len(sink.Messages())
			if w := post(h, tc.body, tc.ts, tc.sign); w.Code != tc.code {
				t.Fatalf("code %d, want %d (%s)", w.Code, tc.code, w.Body)
			}
			if tc.reason == "" {
				return
			}
			if got := sink.Rejections(tc.reason); got != before+1 {
				t.Errorf("rejections(%s) = %d, want %d", tc.reason, got, before+1)
			}
			if len(sink.Messages()) != n {
				t.Errorf("a refused request delivered a message")
			}
		})
	}

	// Unknown message types are acknowledged and ignored.
	odd := strings.Replace(botJSON("msg-4", "1", "", ""), `"msgtype":"text"`, `"msgtype":"interactiveCardCallback"`, 1)
	n := len(sink.Messages())
	if w := post(h, odd, 0, "-"); w.Code != 200 || len(sink.Messages()) != n {
		t.Fatalf("unknown msgtype: %d, %d messages", w.Code, len(sink.Messages()))
	}
}

func TestCallbackDeliverFailure(t *testing.T) {
	sink := &failingSink{Sink: channelstest.NewSink()}
	sink.n.Store(1)
	_, h := startHTTP(t, sink)
	ts := time.Now().UnixMilli()
	body := botJSON("msg-1", "1", "hi", "https://oapi.dingtalk.com")
	if w := post(h, body, ts, "-"); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("code %d, want 503", w.Code)
	}
	// DingTalk's retry with the same headers is not a replay.
	if w := post(h, body, ts, "-"); w.Code != 200 {
		t.Fatalf("retry: code %d, want 200", w.Code)
	}
	// A third use is.
	if w := post(h, body, ts, "-"); w.Code != 401 {
		t.Fatalf("replay: code %d, want 401", w.Code)
	}
	if n := len(sink.Messages()); n != 1 {
		t.Fatalf("%d messages, want 1", n)
	}
}

func TestCallbackInvalid(t *testing.T) {
	// The hub refusing a message for good answers 400 (no retry).
	sink := channelstest.NewSink()
	sink.Err = channels.ErrInvalid
	_, h := startHTTP(t, sink)
	if w := post(h, botJSON("m", "1", "x", ""), 0, "-"); w.Code != 400 {
		t.Fatalf("code %d, want 400", w.Code)
	}
}

func TestNoRoutesOutsideHTTPMode(t *testing.T) {
	f := newFakeDT(t)
	for _, mode := range []string{ModeStream, ModeCustomRobot} {
		if r := newTestAdapter(t, f, mode).Routes(); r != nil {
			t.Errorf("%s: routes %+v", mode, r)
		}
	}
}
