package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/channels/webhook"
)

const webhookSecret = "0123456789abcdef-test-secret"

// replyReceiver is the customer's system behind the generic webhook: it
// checks our signatures and records every reply POST.
type replyReceiver struct {
	t   *testing.T
	srv *httptest.Server
	// hold, when set, blocks the first POST whose text contains it until
	// release is closed (set before the daemon sends anything).
	hold    string
	holding bool
	held    chan struct{}
	release chan struct{}

	mu      sync.Mutex
	posts   []map[string]any // every POST, repeats included
	keys    map[string]int   // Idempotency-Key → POSTs
	changed chan struct{}
}

func newReplyReceiver(t *testing.T) *replyReceiver {
	r := &replyReceiver{t: t, keys: map[string]int{}, changed: make(chan struct{}), held: make(chan struct{}, 1), release: make(chan struct{})}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(func() {
		select {
		case <-r.release:
		default:
			close(r.release)
		}
		r.srv.Close()
	})
	return r
}

func (r *replyReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	ts := req.Header.Get("X-Zhiyin-Timestamp")
	sig := strings.TrimPrefix(req.Header.Get("X-Zhiyin-Signature"), "sha256=")
	if sig != webhook.Sign(webhookSecret, ts, body) {
		r.t.Errorf("reply with a bad signature: %q", sig)
		http.Error(w, "bad signature", 401)
		return
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		r.t.Errorf("reply body %q: %v", body, err)
	}
	key := req.Header.Get("Idempotency-Key")
	r.mu.Lock()
	first := r.hold != "" && !r.holding && strings.Contains(fmt.Sprint(m["text"]), r.hold)
	if first {
		r.holding = true
	}
	r.mu.Unlock()
	if first {
		select {
		case r.held <- struct{}{}:
		default:
		}
		<-r.release
		return // the sender never learns the outcome
	}
	r.mu.Lock()
	r.posts = append(r.posts, m)
	r.keys[key]++
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	w.WriteHeader(200)
	fmt.Fprintf(w, `{"id":"rcv-%s"}`, key)
}

// texts returns the reply texts to a conversation, in arrival order.
func (r *replyReceiver) texts(conv string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, p := range r.posts {
		if p["conversation"] == conv {
			out = append(out, fmt.Sprint(p["text"]))
		}
	}
	return out
}

// waitFor waits until some reply to conv contains want and returns the
// conversation's replies.
func (r *replyReceiver) waitFor(conv, want string) []string {
	r.t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		r.mu.Lock()
		ch := r.changed
		r.mu.Unlock()
		texts := r.texts(conv)
		for _, tx := range texts {
			if strings.Contains(tx, want) {
				return texts
			}
		}
		select {
		case <-ch:
		case <-deadline:
			r.t.Fatalf("no reply to %s containing %q; got %q", conv, want, texts)
		}
	}
}

// postWebhook sends one signed inbound message.
func postWebhook(t *testing.T, base, key string, body []byte, mutate func(h http.Header)) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/channels/webhook/messages", bytes.NewReader(body))
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Zhiyin-Timestamp", ts)
	req.Header.Set("X-Zhiyin-Signature", webhook.Sign(webhookSecret, ts, body))
	req.Header.Set("Idempotency-Key", key)
	if mutate != nil {
		mutate(req.Header)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func inbound(id, conv, text string) []byte {
	b, _ := json.Marshal(map[string]any{"id": id, "conversation": conv, "user": map[string]string{"id": "u-" + conv, "name": "客户"}, "text": text})
	return b
}

func webhookConfig(t *testing.T, dir, addr, outbound string) string {
	cfg := filepath.Join(dir, "zhiyin.yaml")
	writeFile(t, cfg, fmt.Sprintf(`data_dir: %s
server:
  listen: %s
auth:
  allow_loopback: false
channels:
  outbox:
    backoff_min: 50ms
    backoff_max: 1s
  webhook:
    enabled: true
    secret: %s
    outbound_url: %s
    max_body: 64KiB
`, filepath.Join(dir, "var"), addr, webhookSecret, outbound))
	return cfg
}

func waitReady(t *testing.T, url string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, body := get(t, url+"/readyz", "")
		if code == 200 {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestWebhookChannelEndToEnd(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	rcv := newReplyReceiver(t)
	cfg := webhookConfig(t, dir, addr, rcv.srv.URL)
	d := startDaemon(t, addr, nil, "serve", "--config", cfg)
	ready := waitReady(t, d.url)
	if !strings.Contains(ready, "channel:webhook") {
		t.Errorf("/readyz lacks the webhook channel: %s", ready)
	}

	// A customer asks; the demo domain answers through the outbox.
	if code, body := postWebhook(t, d.url, "k1", inbound("m1", "c1", "我的快递SF1234567890到哪了"), nil); code != 202 {
		t.Fatalf("inbound: %d %s", code, body)
	}
	rcv.waitFor("c1", "杭州")
	// The platform redelivers (same Idempotency-Key, fresh signature):
	// acknowledged, not answered again. A later message's reply arrives
	// after any duplicate would have (answers are in order per
	// conversation).
	redo := inbound("m1", "c1", "我的快递SF1234567890到哪了")
	if code, body := postWebhook(t, d.url, "k1", redo, func(h http.Header) {
		ts := strconv.FormatInt(time.Now().Unix()+1, 10) // signed afresh
		h.Set("X-Zhiyin-Timestamp", ts)
		h.Set("X-Zhiyin-Signature", webhook.Sign(webhookSecret, ts, redo))
	}); code != 202 {
		t.Fatalf("redelivery: %d %s", code, body)
	}
	if code, _ := postWebhook(t, d.url, "k2", inbound("m2", "c1", "谢谢"), nil); code != 202 {
		t.Fatal("second message refused")
	}
	texts := rcv.waitFor("c1", "")
	for len(texts) < 2 {
		texts = rcv.waitFor("c1", "")
		time.Sleep(20 * time.Millisecond)
	}
	parcel := 0
	for _, tx := range rcv.texts("c1") {
		if strings.Contains(tx, "杭州") {
			parcel++
		}
	}
	if parcel != 1 {
		t.Fatalf("the parcel answer came %d times: %q", parcel, rcv.texts("c1"))
	}

	// Refused requests: nothing stored, a metric.
	body := inbound("m9", "c9", "你好")
	for _, c := range []struct {
		name   string
		body   []byte
		mutate func(h http.Header)
		code   int
	}{
		{"forged", body, func(h http.Header) { h.Set("X-Zhiyin-Signature", strings.Repeat("ab", 32)) }, 401},
		{"missing signature", body, func(h http.Header) { h.Del("X-Zhiyin-Signature") }, 401},
		{"stale", body, func(h http.Header) {
			ts := strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10)
			h.Set("X-Zhiyin-Timestamp", ts)
			h.Set("X-Zhiyin-Signature", webhook.Sign(webhookSecret, ts, body))
		}, 401},
		{"malformed", []byte(`{"id":`), nil, 400},
		{"unknown field", []byte(`{"id":"1","conversation":"c","user":{"id":"u"},"txt":"x"}`), nil, 400},
		{"oversize", bytes.Repeat([]byte("x"), 200<<10), nil, 413}, // over channels.webhook.max_body
	} {
		if code, resp := postWebhook(t, d.url, "bad-"+c.name, c.body, c.mutate); code != c.code {
			t.Errorf("%s: %d %s, want %d", c.name, code, resp, c.code)
		}
	}
	// A captured request replayed as is.
	req, _ := http.NewRequest("POST", d.url+"/channels/webhook/messages", bytes.NewReader(body))
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("X-Zhiyin-Timestamp", ts)
	req.Header.Set("X-Zhiyin-Signature", webhook.Sign(webhookSecret, ts, body))
	req.Header.Set("Idempotency-Key", "replayed")
	first, _ := http.DefaultClient.Do(req.Clone(req.Context()))
	first.Body.Close()
	req2, _ := http.NewRequest("POST", d.url+"/channels/webhook/messages", bytes.NewReader(body))
	req2.Header = req.Header.Clone()
	second, _ := http.DefaultClient.Do(req2)
	second.Body.Close()
	if first.StatusCode != 202 || second.StatusCode != 401 {
		t.Errorf("replay: first %d, second %d; want 202, 401", first.StatusCode, second.StatusCode)
	}
	code, key, errOut := runCLI(t, nil, "apikey", "create", "--name", "ops", "--role", "admin", "--config", cfg)
	if code != 0 {
		t.Fatalf("apikey create: %d %s", code, errOut)
	}
	_, metrics := get(t, d.url+"/metrics", strings.TrimSpace(key))
	for _, want := range []string{`zhiyin_channel_rejected_total{channel="webhook",reason="signature"}`, `zhiyin_channel_rejected_total{channel="webhook",reason="stale"}`,
		`zhiyin_channel_rejected_total{channel="webhook",reason="replay"}`, `zhiyin_channel_messages_in_total{channel="webhook",result="duplicate"} 1`,
		`zhiyin_channel_connected{channel="webhook"} 1`, `zhiyin_channel_receipt_to_reply_seconds_count{channel="webhook"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// The signed-but-unknown conversation c9 was answered once (the replay
	// was refused).
	rcv.waitFor("c9", "")
	code, out, errOut2 := runCLI(t, nil, "outbox", "list", "--state", "sent", "--json", "--config", cfg)
	if code != 0 || !strings.Contains(out, `"channel":"webhook"`) {
		t.Errorf("outbox list: %d %s %s", code, out, errOut2)
	}
	// doctor shows the live channel state.
	_, checks := doctorChecks(t, nil, "--config", cfg)
	if c := checks["channel webhook"]; !c.OK || !strings.Contains(c.Detail, "connected") {
		t.Errorf("doctor's webhook check: %+v", c)
	}
	if code, _, errOut := runCLI(t, nil, "outbox", "retry", "999999", "--config", cfg); code == 0 || !strings.Contains(errOut, "outbox list") {
		t.Errorf("retry of an unknown row: %d %s", code, errOut)
	}
}

// SIGKILL after the inbox commit and before the answer: the restart
// answers once. SIGKILL while a reply is on the wire: the restart sends it
// again with the same Idempotency-Key (the receiver keeps one).
func TestChannelCrashRecovery(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	rcv := newReplyReceiver(t)
	cfg := webhookConfig(t, dir, addr, rcv.srv.URL)

	d := startDaemon(t, addr, []string{holdTurnsEnv + "=1"}, "serve", "--config", cfg)
	waitReady(t, d.url)
	if code, body := postWebhook(t, d.url, "crash-1", inbound("m1", "c1", "你好"), nil); code != 202 {
		t.Fatalf("inbound: %d %s", code, body)
	}
	d.signal(t, syscall.SIGKILL)
	d.wait(t)
	if n := len(rcv.texts("c1")); n != 0 {
		t.Fatalf("answered before the crash: %d", n)
	}

	rcv.mu.Lock()
	rcv.hold = "订单号" // hold the reply to the next message on the wire
	rcv.mu.Unlock()
	d = startDaemon(t, addr, nil, "serve", "--config", cfg)
	waitReady(t, d.url)
	rcv.waitFor("c1", "")
	if code, _ := postWebhook(t, d.url, "crash-2", inbound("m2", "c2", "我要退货"), nil); code != 202 {
		t.Fatal("second message refused")
	}
	select {
	case <-rcv.held:
	case <-time.After(60 * time.Second):
		t.Fatalf("the reply to c2 never reached the receiver; c2 got %q", rcv.texts("c2"))
	}
	d.signal(t, syscall.SIGKILL)
	d.wait(t)
	close(rcv.release)

	d = startDaemon(t, addr, nil, "serve", "--config", cfg)
	waitReady(t, d.url)
	rcv.waitFor("c2", "订单号")
	// A sentinel in c1: by the time it is answered, a duplicate of c1's
	// first answer would have arrived.
	postWebhook(t, d.url, "crash-3", inbound("m3", "c1", "谢谢"), nil)
	for len(rcv.texts("c1")) < 2 {
		rcv.waitFor("c1", "")
		time.Sleep(20 * time.Millisecond)
	}
	if got := rcv.texts("c1"); len(got) != 2 {
		t.Fatalf("c1 replies %q: want exactly one answer per message", got)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	for k, n := range rcv.keys {
		if n != 1 {
			t.Errorf("key %s delivered %d times to the receiver's ledger", k, n)
		}
	}
}
