package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/dialogue/domain/builtin"
)

// do sends a request with an optional bearer key and returns status and
// body.
func do(t *testing.T, method, url, key, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type chatAnswer struct {
	SessionID string `json:"session_id"`
	Replies   []struct {
		Text string `json:"text"`
	} `json:"replies"`
	Intent struct {
		Name string `json:"name"`
	} `json:"intent"`
	Slots   map[string]string `json:"slots"`
	Lane    string            `json:"lane"`
	Handoff bool              `json:"handoff"`
}

func chatOK(t *testing.T, url, key, user, sessionID, text string) chatAnswer {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"user_id": user, "text": text, "session_id": sessionID})
	code, out := do(t, "POST", url+"/v1/chat", key, string(body))
	if code != 200 {
		t.Fatalf("chat %q: %d %s", text, code, out)
	}
	var a chatAnswer
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		t.Fatalf("chat answer: %v: %s", err, out)
	}
	return a
}

func (a chatAnswer) text() string {
	var parts []string
	for _, r := range a.Replies {
		parts = append(parts, r.Text)
	}
	return strings.Join(parts, " / ")
}

// TestChatEndToEnd serves the embedded e-commerce domain with its model
// and holds conversations over HTTP: the demo parcel lookup, bad input,
// session ownership, ordering, the Rasa REST channel, hand-off, the data
// on disk (encrypted), key rotation and data-subject requests.
func TestChatEndToEnd(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := filepath.Join(dir, "zhiyin.yaml")
	writeFile(t, cfg, fmt.Sprintf("data_dir: %s\nserver:\n  listen: %s\nauth:\n  allow_loopback: false\n", filepath.Join(dir, "var"), addr))
	d := startDaemon(t, addr, nil, "serve", "--config", cfg)
	key := func(name, role string) string {
		code, k, errOut := runCLI(t, nil, "apikey", "create", "--name", name, "--role", role, "--config", cfg)
		if code != 0 {
			t.Fatalf("apikey create: %d %s", code, errOut)
		}
		return strings.TrimSpace(k)
	}
	admin, alice, bob := key("ops", "admin"), key("shop-a", "client"), key("shop-b", "client")
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, body := get(t, d.url+"/readyz", "")
		if code == 200 {
			if !strings.Contains(body, "dialogue") {
				t.Errorf("readyz lacks dialogue: %s", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The demo parcel table behind order_lookup.
	a := chatOK(t, d.url, alice, "c1", "", "我的快递SF1234567890到哪了")
	if a.Intent.Name != "track_parcel" || !strings.Contains(a.text(), "SF1234567890") || !strings.Contains(a.text(), "杭州") {
		t.Errorf("parcel lookup: %+v", a)
	}
	sid := a.SessionID
	a = chatOK(t, d.url, alice, "c1", sid, "那SF9876543210987呢，到哪了")
	if a.SessionID != sid || !strings.Contains(a.text(), "SF9876543210987") {
		t.Errorf("unknown parcel: %+v", a)
	}

	// Bad input.
	for _, c := range []struct {
		body string
		code int
	}{
		{`{"user_id":"c1","text":""}`, 400},
		{`{"text":"你好"}`, 400},
		{"{\"user_id\":\"c1\",\"text\":\"\xff\"}", 400},
		{`{"user_id":"c1","text":"` + strings.Repeat("退", 600) + `"}`, 413},
		{`{"user_id":"c1","txt":"你好"}`, 400},
		{`[1,2]`, 400},
		{`{"user_id":"` + strings.Repeat("u", 300) + `","text":"你好"}`, 400},
	} {
		if code, body := do(t, "POST", d.url+"/v1/chat", alice, c.body); code != c.code {
			t.Errorf("%.60q: %d %s, want %d", c.body, code, body, c.code)
		}
	}
	if code, _ := do(t, "POST", d.url+"/v1/chat", "", `{"user_id":"c1","text":"你好"}`); code != 401 {
		t.Errorf("no key: %d", code)
	}

	// An unknown session id starts a new session; GET of it is 404.
	a = chatOK(t, d.url, alice, "c1", "0123456789abcdef0123456789abcdef", "你好")
	if a.SessionID == "0123456789abcdef0123456789abcdef" || a.SessionID == sid {
		t.Errorf("unknown session id: got %s", a.SessionID)
	}
	sid = a.SessionID
	if code, _ := do(t, "GET", d.url+"/v1/sessions/0123456789abcdef0123456789abcdef", alice, ""); code != 404 {
		t.Errorf("GET unknown session: %d", code)
	}
	// Only its own client (and admins) see a session.
	if code, body := do(t, "GET", d.url+"/v1/sessions/"+sid, alice, ""); code != 200 || !strings.Contains(body, `"history"`) {
		t.Errorf("owner GET: %d %s", code, body)
	}
	if code, _ := do(t, "GET", d.url+"/v1/sessions/"+sid, bob, ""); code != 404 {
		t.Errorf("other client GET: %d", code)
	}
	if code, _ := do(t, "GET", d.url+"/v1/sessions/"+sid, admin, ""); code != 200 {
		t.Errorf("admin GET: %d", code)
	}
	// The same user id under another client is another person.
	if b := chatOK(t, d.url, bob, "c1", "", "你好"); b.SessionID == sid {
		t.Errorf("two clients share a session")
	}

	// Turns of one session sent at once are all kept, in order.
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); chatOK(t, d.url, alice, "c1", sid, fmt.Sprintf("运费怎么算%d", i)) }()
	}
	wg.Wait()
	code, body := do(t, "GET", d.url+"/v1/sessions/"+sid+"?history=100", alice, "")
	var view struct {
		Turns   int `json:"turns"`
		History []struct {
			Seq int `json:"seq"`
		} `json:"history"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &view) != nil || view.Turns != 9 || len(view.History) != 9 {
		t.Fatalf("after concurrent turns: %d %s", code, body)
	}
	for i, h := range view.History {
		if h.Seq != i+1 {
			t.Errorf("history seq %v", view.History)
		}
	}

	// The Rasa REST channel.
	code, body = do(t, "POST", d.url+"/webhooks/rest/webhook", alice, `{"sender":"r1","message":"你好"}`)
	if code != 200 || !strings.Contains(body, `"recipient_id":"r1"`) || !strings.Contains(body, `"text"`) {
		t.Errorf("rasa webhook: %d %s", code, body)
	}

	// Hand-off: the bot goes quiet until an agent releases it.
	h := chatOK(t, d.url, alice, "c2", "", "转人工")
	if !h.Handoff || len(h.Replies) == 0 {
		t.Fatalf("handoff: %+v", h)
	}
	if q := chatOK(t, d.url, alice, "c2", h.SessionID, "有人吗"); len(q.Replies) != 0 || !q.Handoff {
		t.Errorf("bot spoke during hand-off: %+v", q)
	}
	code, body = do(t, "GET", d.url+"/v1/admin/handoffs", admin, "")
	if code != 200 || !strings.Contains(body, h.SessionID) || !strings.Contains(body, "转人工") {
		t.Errorf("handoff queue: %d %s", code, body)
	}
	if code, _ := do(t, "GET", d.url+"/v1/admin/handoffs", alice, ""); code != 403 {
		t.Errorf("client lists handoffs: %d", code)
	}
	if code, body := do(t, "POST", d.url+"/v1/admin/handoffs/"+h.SessionID+"/release?agent=lily", admin, ""); code != 200 {
		t.Errorf("release: %d %s", code, body)
	}
	if code, _ := do(t, "POST", d.url+"/v1/admin/handoffs/"+h.SessionID+"/release", admin, ""); code != 409 {
		t.Errorf("second release: %d", code)
	}
	if r := chatOK(t, d.url, alice, "c2", h.SessionID, "你好"); r.Handoff || len(r.Replies) == 0 {
		t.Errorf("after release: %+v", r)
	}

	// Data-subject requests through the admin API.
	code, body = do(t, "GET", d.url+"/v1/admin/sessions/export?user=c2", admin, "")
	if code != 200 || !strings.Contains(body, "转人工") {
		t.Errorf("export: %d %s", code, body)
	}
	if code, body := do(t, "DELETE", d.url+"/v1/admin/sessions?user=c2", admin, ""); code != 200 || !strings.Contains(body, `"deleted_sessions"`) {
		t.Errorf("delete: %d %s", code, body)
	}
	if code, _ := do(t, "GET", d.url+"/v1/sessions/"+h.SessionID, admin, ""); code != 404 {
		t.Errorf("deleted session still there: %d", code)
	}
	if code, body := do(t, "GET", d.url+"/v1/admin/audit", admin, ""); code != 200 || !strings.Contains(body, "sessions.delete") || !strings.Contains(body, "handoff.release") {
		t.Errorf("audit: %d %s", code, body)
	}

	d.signal(t, syscall.SIGTERM)
	d.wait(t)

	// Nothing the customers wrote (or were told about their own unknown
	// parcel) is on disk in clear. (The demo parcel table itself is not
	// customer data and holds SF1234567890 in clear.)
	for _, f := range []string{"zhiyin.db", "zhiyin.db-wal"} {
		b, err := os.ReadFile(filepath.Join(dir, "var", f))
		if err != nil {
			continue
		}
		for _, s := range []string{"SF9876543210987", "运费怎么算", "有人吗", "那SF"} {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s contains %q in clear", f, s)
			}
		}
	}

	// Key rotation re-encrypts; the export still reads.
	code, out, errOut := runCLI(t, nil, "keys", "rotate", "--retire", "--config", cfg)
	if code != 0 || !strings.Contains(out, "re-encrypted") {
		t.Fatalf("keys rotate: %d %s %s", code, out, errOut)
	}
	keyFile, _ := os.ReadFile(filepath.Join(dir, "var", "keys", "sessions.keys"))
	keysLeft := 0
	for _, line := range strings.Split(string(keyFile), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			keysLeft++
		}
	}
	if keysLeft != 1 {
		t.Errorf("after --retire the key file has %d keys:\n%s", keysLeft, keyFile)
	}
	code, out, errOut = runCLI(t, nil, "sessions", "export", "--user", "c1", "--config", cfg)
	if code != 0 || !strings.Contains(out, "SF1234567890") {
		t.Errorf("export after rotation: %d %.300s %s", code, out, errOut)
	}
	code, out, _ = runCLI(t, nil, "sessions", "delete", "--user", "c1", "--config", cfg)
	if code != 0 || !strings.Contains(out, "deleted") {
		t.Errorf("sessions delete: %d %s", code, out)
	}
	code, out, _ = runCLI(t, nil, "audit", "--config", cfg)
	if code != 0 || !strings.Contains(out, "keys.rotate") || !strings.Contains(out, "sessions.delete") || !strings.Contains(out, "apikey.create") {
		t.Errorf("audit: %d %s", code, out)
	}

	// The terminal chat.
	cmd := exec.Command(zhiyinBin, "chat", "--debug", "--config", cfg)
	cmd.Stdin = strings.NewReader("你好\n我要退货\n算了\n")
	outb, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(outb), "知音:") || !strings.Contains(string(outb), "intent greet") || !strings.Contains(string(outb), "return_goods") {
		t.Errorf("zhiyin chat: %v\n%s", err, outb)
	}
}

// TestDomainReload serves a domain folder, reloads a changed one on SIGHUP,
// keeps the running domain when the new one is broken (naming file:line),
// and refuses to start on a broken one.
func TestDomainReload(t *testing.T) {
	dir := t.TempDir()
	dom := filepath.Join(dir, "domain")
	if err := os.CopyFS(dom, builtin.Domain()); err != nil {
		t.Fatal(err)
	}
	responses := filepath.Join(dom, "responses.yml")
	orig, err := os.ReadFile(responses)
	if err != nil {
		t.Fatal(err)
	}
	greet := regexp.MustCompile(`(?s)  utter_greet:\n.*?\n  utter_`)
	withGreeting := func(text string) string {
		return greet.ReplaceAllString(string(orig), "  utter_greet:\n    - text: \""+text+"\"\n  utter_")
	}
	writeFile(t, responses, withGreeting("第一版问候"))
	addr := freeAddr(t)
	cfg := filepath.Join(dir, "zhiyin.yaml")
	writeFile(t, cfg, fmt.Sprintf("data_dir: %s\nserver:\n  listen: %s\nauth:\n  allow_loopback: true\ndialogue:\n  domain: %s\n", filepath.Join(dir, "var"), addr, dom))
	d := startDaemon(t, addr, nil, "serve", "--config", cfg)
	d.waitLog(t, "dialogue engine ready")
	if a := chatOK(t, d.url, "", "r1", "", "你好"); a.text() != "第一版问候" {
		t.Fatalf("greeting: %q", a.text())
	}
	writeFile(t, responses, withGreeting("第二版问候"))
	d.signal(t, syscall.SIGHUP)
	d.waitLog(t, "domain reloaded")
	if a := chatOK(t, d.url, "", "r1", "", "你好"); a.text() != "第二版问候" {
		t.Errorf("after reload: %q", a.text())
	}
	writeFile(t, responses, withGreeting("订单{no_such_slot}"))
	d.signal(t, syscall.SIGHUP)
	d.waitLog(t, "domain reload rejected")
	if !strings.Contains(d.logs.String(), "responses.yml:") || !strings.Contains(d.logs.String(), "no_such_slot") {
		t.Errorf("rejection does not name file:line and the slot:\n%s", d.logs.String())
	}
	if a := chatOK(t, d.url, "", "r1", "", "你好"); a.text() != "第二版问候" {
		t.Errorf("after a rejected reload: %q", a.text())
	}
	d.signal(t, syscall.SIGTERM)
	d.wait(t)

	// A broken domain at start: the daemon exits, saying where.
	code, out, errOut := runCLI(t, nil, "serve", "--config", cfg)
	if code == 0 || !strings.Contains(out+errOut, "responses.yml:") {
		t.Errorf("start on a broken domain: exit %d\n%s%s", code, out, errOut)
	}
}
