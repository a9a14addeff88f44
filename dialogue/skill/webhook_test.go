package skill

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/internal/config"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

const testSecret = "webhook-secret"

// actionServer is a real HTTP action server for the tests: it verifies
// every call's signature, records the calls and answers with answer.
type actionServer struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	calls  []call
	answer func(n int, w http.ResponseWriter, r *http.Request, body map[string]any)
}

type call struct {
	body      map[string]any
	raw       []byte
	requestID string
	verifyErr error
}

func newActionServer(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request, body map[string]any)) *actionServer {
	s := &actionServer{t: t, answer: answer}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("read body: %v", err)
			return
		}
		c := call{raw: raw, requestID: r.Header.Get(HeaderRequestID)}
		c.verifyErr = Verify([]byte(testSecret), r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderSignature), raw, time.Now(), time.Minute)
		if err := json.Unmarshal(raw, &c.body); err != nil {
			t.Errorf("request is not JSON: %v", err)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" || r.Method != http.MethodPost {
			t.Errorf("got %s with Content-Type %q", r.Method, ct)
		}
		s.mu.Lock()
		s.calls = append(s.calls, c)
		n := len(s.calls)
		s.mu.Unlock()
		s.answer(n, w, r, c.body)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *actionServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

func (s *actionServer) call(i int) call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[i]
}

func newTestWebhook(t *testing.T, url string, mod func(*WebhookConfig)) *Webhook {
	t.Helper()
	c := WebhookConfig{Name: "order_lookup", URL: url, Secret: config.NewSecret(testSecret)}
	if mod != nil {
		mod(&c)
	}
	w, err := NewWebhook(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.backoff = time.Millisecond
	return w
}

func jsonAnswer(body string) func(int, http.ResponseWriter, *http.Request, map[string]any) {
	return func(_ int, w http.ResponseWriter, _ *http.Request, _ map[string]any) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	}
}

func answerReq() *Request {
	return &Request{
		Purpose: Answer, Skill: "order_lookup",
		SessionID: "s1", UserID: "u-42", Channel: "webchat", Text: "我的快递SF1234567890到哪了",
		Intent: "track_parcel", Confidence: 0.93,
		Entities: []Entity{{Type: "tracking_no", Value: "sf1234567890", Normalized: "SF1234567890"}},
		Slots:    map[string]string{"carrier": "顺丰"},
	}
}

// get walks a decoded JSON value.
func get(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func TestWebhookAnswer(t *testing.T) {
	srv := newActionServer(t, jsonAnswer(`{
		"events": [
			{"event": "slot", "name": "tracking_no", "value": "SF1234567890", "timestamp": null},
			{"event": "slot", "name": "carrier", "value": null},
			{"event": "slot", "name": "requested_slot", "value": null},
			{"event": "slot", "name": "attempts", "value": 2},
			{"event": "slot", "name": "vip", "value": true},
			{"event": "slot", "name": "items", "value": ["耳机", "充电器"]},
			{"event": "bot", "text": "ignored"}
		],
		"responses": [
			{"text": "您的包裹已到达【杭州转运中心】", "buttons": [], "elements": [], "custom": {}, "template": null, "response": null, "image": null, "attachment": null},
			{"text": null, "response": "utter_from_their_domain"},
			{"text": "**预计明天送达**", "markdown": true}
		]
	}`))
	w := newTestWebhook(t, srv.srv.URL, nil)
	resp, err := w.Handle(context.Background(), answerReq())
	if err != nil {
		t.Fatal(err)
	}
	if srv.count() != 1 {
		t.Fatalf("calls = %d", srv.count())
	}
	c := srv.call(0)
	if c.verifyErr != nil {
		t.Fatalf("signature does not verify: %v", c.verifyErr)
	}
	for _, chk := range []struct {
		path []string
		want any
	}{
		{[]string{"next_action"}, "order_lookup"},
		{[]string{"sender_id"}, "u-42"},
		{[]string{"version"}, "zhiyin/1"},
		{[]string{"tracker", "sender_id"}, "u-42"},
		{[]string{"tracker", "latest_message", "text"}, "我的快递SF1234567890到哪了"},
		{[]string{"tracker", "latest_message", "intent", "name"}, "track_parcel"},
		{[]string{"tracker", "latest_message", "intent", "confidence"}, 0.93},
		{[]string{"tracker", "slots", "carrier"}, "顺丰"},
		{[]string{"tracker", "latest_action_name"}, "action_listen"},
	} {
		if got := get(c.body, chk.path...); got != chk.want {
			t.Errorf("%s = %v, want %v", strings.Join(chk.path, "."), got, chk.want)
		}
	}
	ents, _ := get(c.body, "tracker", "latest_message", "entities").([]any)
	if len(ents) != 1 || get(ents[0], "entity") != "tracking_no" || get(ents[0], "value") != "SF1234567890" {
		t.Errorf("entities = %v", ents)
	}
	if d, _ := c.body["domain"].(map[string]any); len(d) == 0 {
		t.Errorf("domain must not be empty (rasa-sdk treats {} as missing): %v", c.body["domain"])
	}

	s := func(v string) *string { return &v }
	want := &Response{
		Replies: []Reply{{Text: "您的包裹已到达【杭州转运中心】"}, {Text: "**预计明天送达**", Markdown: true}},
		Slots:   map[string]*string{"tracking_no": s("SF1234567890"), "carrier": nil, "attempts": s("2"), "vip": s("true"), "items": s(`["耳机","充电器"]`)},
	}
	assertResponse(t, resp, want)
}

func assertResponse(t *testing.T, got, want *Response) {
	t.Helper()
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if !bytes.Equal(gb, wb) {
		t.Fatalf("response\n got %s\nwant %s", gb, wb)
	}
}

func TestWebhookValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer string
		valid  *bool
		slot   *string
	}{
		{"rejected", `{"events":[{"event":"slot","name":"order_id","value":null},{"event":"slot","name":"requested_slot","value":"order_id"}],"responses":[{"text":"没有找到这个订单"}]}`, ptr(false), nil},
		{"normalized", `{"events":[{"event":"slot","name":"order_id","value":"20241234567890"}],"responses":[]}`, nil, ptr("20241234567890")},
		{"no opinion", `{"events":[],"responses":[]}`, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newActionServer(t, jsonAnswer(tc.answer))
			w := newTestWebhook(t, srv.srv.URL, nil)
			req := answerReq()
			req.Purpose, req.Form, req.Slot, req.Value = Validate, "return_goods", "order_id", " 20241234567890 "
			resp, err := w.Handle(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			c := srv.call(0)
			if get(c.body, "next_action") != "validate_return_goods" ||
				get(c.body, "tracker", "active_loop", "name") != "return_goods" ||
				get(c.body, "tracker", "slots", "requested_slot") != "order_id" ||
				get(c.body, "tracker", "slots", "order_id") != " 20241234567890 " {
				t.Fatalf("validate call = %s", c.raw)
			}
			evs, _ := get(c.body, "tracker", "events").([]any)
			if len(evs) == 0 || get(evs[len(evs)-1], "event") != "slot" || get(evs[len(evs)-1], "name") != "order_id" {
				t.Fatalf("last event must be the slot candidate: %v", evs)
			}
			req2, _ := get(c.body, "domain", "forms", "return_goods", "required_slots").([]any)
			if len(req2) != 1 || req2[0] != "order_id" {
				t.Fatalf("domain form = %v", get(c.body, "domain"))
			}
			if (resp.Valid == nil) != (tc.valid == nil) || (resp.Valid != nil && *resp.Valid != *tc.valid) {
				t.Fatalf("Valid = %v, want %v", resp.Valid, tc.valid)
			}
			if tc.slot != nil && (resp.Slots["order_id"] == nil || *resp.Slots["order_id"] != *tc.slot) {
				t.Fatalf("Slots = %v", resp.Slots)
			}
			if _, ok := resp.Slots["requested_slot"]; ok {
				t.Fatal("requested_slot leaked into the slot updates")
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestWebhookSubmitAndHandoff(t *testing.T) {
	for _, ev := range []string{
		`{"event":"action","name":"action_handoff"}`,
		`{"event":"handoff"}`,
		`{"event":"followup","name":"action_handoff"}`,
	} {
		srv := newActionServer(t, jsonAnswer(`{"events":[`+ev+`],"responses":[{"text":"已为您转接人工客服"}]}`))
		w := newTestWebhook(t, srv.srv.URL, nil)
		req := answerReq()
		req.Purpose, req.Form = Submit, "return_goods"
		req.Slots = map[string]string{"order_id": "20241234567890", "reason": "质量问题"}
		resp, err := w.Handle(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if !resp.Handoff || len(resp.Replies) != 1 {
			t.Fatalf("%s: %+v", ev, resp)
		}
		c := srv.call(0)
		if get(c.body, "next_action") != "order_lookup" || get(c.body, "tracker", "active_loop", "name") != "return_goods" {
			t.Fatalf("submit call = %s", c.raw)
		}
	}
}

func TestWebhookRetries(t *testing.T) {
	for _, tc := range []struct {
		name     string
		retries  int
		failures int // answers 503/429 before succeeding
		status   int
		calls    int
		want     error
	}{
		{"503 then ok", 0, 1, http.StatusServiceUnavailable, 2, nil},
		{"429 then ok", 0, 1, http.StatusTooManyRequests, 2, nil},
		{"503 twice, default retries", 0, 2, http.StatusBadGateway, 2, ErrUnavailable},
		{"three retries", 3, 3, http.StatusInternalServerError, 4, nil},
		{"no retries", -1, 1, http.StatusServiceUnavailable, 1, ErrUnavailable},
		{"404 not retried", 3, 99, http.StatusNotFound, 1, ErrRejected},
		{"400 not retried", 3, 99, http.StatusBadRequest, 1, ErrRejected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newActionServer(t, func(n int, w http.ResponseWriter, _ *http.Request, _ map[string]any) {
				if n <= tc.failures {
					w.WriteHeader(tc.status)
					io.WriteString(w, `{"error":"No registered action found for name 'order_lookup'.","action_name":"order_lookup"}`)
					return
				}
				io.WriteString(w, `{"events":[],"responses":[{"text":"好的"}]}`)
			})
			w := newTestWebhook(t, srv.srv.URL, func(c *WebhookConfig) { c.Retries = tc.retries })
			resp, err := w.Handle(context.Background(), answerReq())
			if srv.count() != tc.calls {
				t.Fatalf("calls = %d, want %d", srv.count(), tc.calls)
			}
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				if tc.want == ErrRejected && !strings.Contains(err.Error(), "No registered action") {
					t.Errorf("4xx error should show the server's message: %v", err)
				}
				return
			}
			if err != nil || len(resp.Replies) != 1 {
				t.Fatalf("Handle = %+v, %v", resp, err)
			}
			first := srv.call(0).requestID
			for i := range srv.count() {
				c := srv.call(i)
				if c.verifyErr != nil || c.requestID != first || first == "" {
					t.Fatalf("attempt %d: verify %v, request id %q vs %q", i, c.verifyErr, c.requestID, first)
				}
			}
		})
	}
}

func TestWebhookTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := newActionServer(t, func(_ int, w http.ResponseWriter, r *http.Request, _ map[string]any) {
		select { // never answers in time: waits for the client to give up
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	for _, retries := range []int{-1, 1} {
		before := srv.count()
		w := newTestWebhook(t, srv.srv.URL, func(c *WebhookConfig) { c.Timeout = 20 * time.Millisecond; c.Retries = retries })
		_, err := w.Handle(context.Background(), answerReq())
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("retries %d: err = %v, want ErrTimeout", retries, err)
		}
		if got, want := srv.count()-before, max(retries, 0)+1; got != want {
			t.Fatalf("retries %d: attempts = %d, want %d", retries, got, want)
		}
	}
}

func TestWebhookContextCancel(t *testing.T) {
	srv := newActionServer(t, func(_ int, w http.ResponseWriter, r *http.Request, _ map[string]any) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	w := newTestWebhook(t, srv.srv.URL, func(c *WebhookConfig) { c.Retries = 5 })
	w.backoff = time.Hour // the cancel must cut the backoff short
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := w.Handle(ctx, answerReq()); done <- err }()
	for srv.count() == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if srv.count() != 1 {
		t.Fatalf("attempts = %d", srv.count())
	}
}

func TestWebhookBadResponses(t *testing.T) {
	for _, tc := range []struct {
		name, body string
	}{
		{"not json", `<html>502 Bad Gateway</html>`},
		{"truncated", `{"events":[`},
		{"array", `[]`},
		{"null", `null`},
		{"empty", ``},
		{"events not a list", `{"events":{"event":"slot"}}`},
		{"event not an object", `{"events":["slot"]}`},
		{"text not a string", `{"responses":[{"text":5}]}`},
		{"too large", `{"responses":[{"text":"` + strings.Repeat("长", 400_000) + `"}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newActionServer(t, jsonAnswer(tc.body))
			w := newTestWebhook(t, srv.srv.URL, nil)
			_, err := w.Handle(context.Background(), answerReq())
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("err = %v, want ErrBadResponse", err)
			}
			if srv.count() != 1 {
				t.Fatalf("a malformed answer was retried: %d calls", srv.count())
			}
		})
	}
	// 204 is an empty answer.
	srv := newActionServer(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ map[string]any) {
		w.WriteHeader(http.StatusNoContent)
	})
	resp, err := newTestWebhook(t, srv.srv.URL, nil).Handle(context.Background(), answerReq())
	if err != nil || len(resp.Replies) != 0 || resp.Slots != nil {
		t.Fatalf("204: %+v %v", resp, err)
	}
}

func TestWebhookUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	w := newTestWebhook(t, url, nil)
	_, err := w.Handle(context.Background(), answerReq())
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "2 attempts") {
		t.Fatalf("err = %v", err)
	}
}

func TestWebhookUnsigned(t *testing.T) {
	var hdr http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hdr = r.Header.Clone()
		io.WriteString(w, `{"events":[],"responses":[]}`)
	}))
	defer srv.Close()
	w := newTestWebhook(t, srv.URL, func(c *WebhookConfig) { c.Secret = config.Secret{} })
	if _, err := w.Handle(context.Background(), answerReq()); err != nil {
		t.Fatal(err)
	}
	if hdr.Get(HeaderSignature) != "" || hdr.Get(HeaderTimestamp) == "" {
		t.Fatalf("headers = %v", hdr)
	}
}

func TestWebhookGolden(t *testing.T) {
	w := newTestWebhook(t, "http://127.0.0.1:5055/webhook", nil)
	val := answerReq()
	val.Purpose, val.Form, val.Slot, val.Value = Validate, "return_goods", "order_id", "20241234567890"
	for name, req := range map[string]*Request{"answer": answerReq(), "validate": val} {
		got, err := json.MarshalIndent(w.wireRequest(req), "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", "request_"+name+".golden.json")
		if *update {
			if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -update to create it)", err)
		}
		if !bytes.Equal(append(got, '\n'), want) {
			t.Errorf("%s request differs from %s:\n%s", name, path, got)
		}
	}
}

func TestWebhookConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    WebhookConfig
		want []string
	}{
		{"ok", WebhookConfig{Name: "action_check", URL: "https://actions.internal/webhook"}, nil},
		{"empty", WebhookConfig{}, []string{"actions[0].name: required", "actions[0].url: required"}},
		{"bad name", WebhookConfig{Name: "订单 查询", URL: "http://x"}, []string{"actions[0].name"}},
		{"bad url", WebhookConfig{Name: "a", URL: "ftp://u:pw@host/x"}, []string{`actions[0].url: "ftp://u:xxxxx@host/x" is not`}},
		{"no host", WebhookConfig{Name: "a", URL: "http:///x"}, []string{"actions[0].url"}},
		{"timeouts", WebhookConfig{Name: "a", URL: "http://x", Timeout: -1, Retries: 11}, []string{"actions[0].timeout", "actions[0].retries"}},
		{"retries -2", WebhookConfig{Name: "a", URL: "http://x", Retries: -2}, []string{"actions[0].retries"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := config.NewValidator("actions[0]")
			tc.c.Validate(v)
			var errs config.Errors
			errors.As(v.Err(), &errs)
			if len(errs) != len(tc.want) {
				t.Fatalf("errors = %v, want %v", v.Err(), tc.want)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(errs[i].Error(), w) {
					t.Errorf("error %q, want prefix %q", errs[i].Error(), w)
				}
			}
		})
	}
}

func TestNewWebhook(t *testing.T) {
	w, err := NewWebhook(WebhookConfig{Name: "a", URL: "http://127.0.0.1:1/webhook", Secret: config.NewSecret("s3cret")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(w.secret) != "s3cret" || w.timeout != DefaultWebhookTimeout || w.retries != DefaultWebhookRetries || w.Name() != "a" || !w.CanHandle(&Request{}) {
		t.Fatalf("webhook = %+v", w)
	}
	if w, _ := NewWebhook(WebhookConfig{Name: "a", URL: "http://x", Retries: -1, Timeout: time.Second}, nil); w.retries != 0 || w.timeout != time.Second {
		t.Fatalf("retries -1: %+v", w)
	}
	for _, c := range []WebhookConfig{
		{Name: "", URL: "http://x"},
	} {
		if _, err := NewWebhook(c, nil); err == nil {
			t.Errorf("NewWebhook(%+v) succeeded", c)
		}
	}
	if _, err := w.Handle(context.Background(), nil); err == nil {
		t.Error("nil request accepted")
	}
}

func FuzzDecodeResponse(f *testing.F) {
	for _, s := range []string{
		`{"events":[{"event":"slot","name":"order_id","value":null}],"responses":[{"text":"没有找到"}]}`,
		`{"events":[{"event":"slot","name":"n","value":1.5e3},{"event":"slot","name":"l","value":[1,{"a":null}]}],"responses":[]}`,
		`{"events":[{"event":"action","name":"action_handoff"},{"event":"handoff"}]}`,
		`{"responses":[{"text":null,"response":"utter_x"},{"text":"**md**","markdown":true}]}`,
		`{}`, `[]`, `null`, ``, `{"events":[`, `{"events":["x"]}`, "\xff", `{"events":[{"event":"slot","name":"a","value":"\ud800"}]}`,
	} {
		f.Add([]byte(s), "validate", "order_id")
		f.Add([]byte(s), "answer", "")
	}
	f.Fuzz(func(t *testing.T, data []byte, purpose, slot string) {
		resp, err := decodeResponse(data, Purpose(purpose), slot)
		if err != nil {
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("error does not wrap ErrBadResponse: %v", err)
			}
			return
		}
		if resp.Valid != nil && (Purpose(purpose) != Validate || *resp.Valid) {
			t.Fatalf("Valid set outside a validation or true: %+v", resp)
		}
		for _, r := range resp.Replies {
			if strings.TrimSpace(r.Text) == "" {
				t.Fatal("empty reply")
			}
		}
		if _, ok := resp.Slots[requestedSlot]; ok {
			t.Fatal("requested_slot in updates")
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
	})
}
