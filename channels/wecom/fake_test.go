package wecom

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
)

// fakeAPI is an in-process WeCom API that enforces what the real one does:
// gettoken checks corpid and corpsecret; every send needs a live token
// (42001 for an expired one, 40014 for one never issued); bodies are
// checked strictly; the group bot checks its key and byte limits.
type fakeAPI struct {
	t       *testing.T
	srv     *httptest.Server
	corpID  string
	secret  string
	agentID int
	botKey  string

	mu         sync.Mutex
	issued     map[string]bool // every token ever issued
	live       map[string]bool // tokens not yet expired
	tokenCalls int
	sends      []fakeSend
	// codes are errcodes answered (in order) to the next sends instead of
	// success; status, when set, is an HTTP status for the next send.
	codes      []int
	status     int
	retryAfter string
}

type fakeSend struct {
	path  string
	token string
	body  payload
}

func newFakeAPI(t *testing.T) *fakeAPI {
	f := &fakeAPI{t: t, corpID: testCorp, secret: "app-secret", agentID: testAgent, botKey: "bot-key",
		issued: map[string]bool{}, live: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /cgi-bin/gettoken", f.gettoken)
	mux.HandleFunc("POST /cgi-bin/message/send", f.send)
	mux.HandleFunc("POST /cgi-bin/appchat/send", f.send)
	mux.HandleFunc("POST /cgi-bin/webhook/send", f.send)
	mux.HandleFunc("GET /cgi-bin/media/get", f.media)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) answer(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeAPI) gettoken(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokenCalls++
	q := r.URL.Query()
	if q.Get("corpid") != f.corpID || q.Get("corpsecret") != f.secret {
		f.answer(w, map[string]any{"errcode": 40001, "errmsg": "invalid credential"})
		return
	}
	tok := fmt.Sprintf("token-%d", f.tokenCalls)
	f.issued[tok], f.live[tok] = true, true
	f.answer(w, map[string]any{"errcode": 0, "errmsg": "ok", "access_token": tok, "expires_in": 7200})
}

// expireAll expires every live token, as WeCom does after 7200 s.
func (f *fakeAPI) expireAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.live)
}

func (f *fakeAPI) send(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := r.URL.Query()
	tok := q.Get("access_token")
	bot := r.URL.Path == "/cgi-bin/webhook/send"
	switch {
	case bot && q.Get("key") != f.botKey:
		f.answer(w, map[string]any{"errcode": 93000, "errmsg": "invalid webhook url"})
		return
	case !bot && tok == "":
		f.answer(w, map[string]any{"errcode": 41001, "errmsg": "access_token missing"})
		return
	case !bot && !f.issued[tok]:
		f.answer(w, map[string]any{"errcode": 40014, "errmsg": "invalid access_token"})
		return
	case !bot && !f.live[tok]:
		f.answer(w, map[string]any{"errcode": 42001, "errmsg": "access_token expired"})
		return
	}
	if f.status != 0 {
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		http.Error(w, "fake status", f.status)
		f.status = 0
		return
	}
	var p payload
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		f.answer(w, map[string]any{"errcode": 40058, "errmsg": "bad json: " + err.Error()})
		return
	}
	if msg := f.checkPayload(r.URL.Path, p); msg != "" {
		f.answer(w, map[string]any{"errcode": 40008, "errmsg": msg})
		return
	}
	if len(f.codes) > 0 {
		code := f.codes[0]
		f.codes = f.codes[1:]
		f.answer(w, map[string]any{"errcode": code, "errmsg": "fake error " + strconv.Itoa(code)})
		return
	}
	f.sends = append(f.sends, fakeSend{path: r.URL.Path, token: tok, body: p})
	res := map[string]any{"errcode": 0, "errmsg": "ok"}
	if r.URL.Path == "/cgi-bin/message/send" {
		res["msgid"] = fmt.Sprintf("msgid-%d", len(f.sends))
		res["invaliduser"] = ""
	}
	f.answer(w, res)
}

// checkPayload returns what is wrong with a send body, as WeCom would.
func (f *fakeAPI) checkPayload(path string, p payload) string {
	var c *content
	limit := 2048
	switch p.MsgType {
	case "text":
		c = p.Text
	case "markdown":
		c = p.Markdown
		if path == "/cgi-bin/webhook/send" {
			limit = 4096
		}
	default:
		return "invalid msgtype " + p.MsgType
	}
	if c == nil || c.Content == "" || (p.Text != nil && p.Markdown != nil) {
		return "content missing for msgtype " + p.MsgType
	}
	if len(c.Content) > limit {
		return "content exceeds " + strconv.Itoa(limit) + " bytes"
	}
	switch path {
	case "/cgi-bin/message/send":
		if p.ToUser == "" || p.AgentID != f.agentID || p.ChatID != "" {
			return "message/send needs touser and the agentid"
		}
	case "/cgi-bin/appchat/send":
		if p.ChatID == "" || p.ToUser != "" {
			return "appchat/send needs chatid"
		}
	case "/cgi-bin/webhook/send":
		if p.ChatID != "" || p.ToUser != "" || p.AgentID != 0 {
			return "webhook/send takes only msgtype and content"
		}
	}
	return ""
}

func (f *fakeAPI) snapshot() (tokenCalls int, sends []fakeSend) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokenCalls, append([]fakeSend(nil), f.sends...)
}

func (f *fakeAPI) failNext(codes ...int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.codes = append(f.codes, codes...)
}

func (f *fakeAPI) failStatus(status int, retryAfter string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status, f.retryAfter = status, retryAfter
}

// media serves the media id "m-voice" (an AMR voice note) to a live token.
func (f *fakeAPI) media(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := r.URL.Query()
	switch tok := q.Get("access_token"); {
	case !f.issued[tok]:
		f.answer(w, map[string]any{"errcode": 40014, "errmsg": "invalid access_token"})
	case !f.live[tok]:
		f.answer(w, map[string]any{"errcode": 42001, "errmsg": "access_token expired"})
	case q.Get("media_id") != "m-voice":
		f.answer(w, map[string]any{"errcode": 40007, "errmsg": "invalid media_id"})
	default:
		w.Header().Set("Content-Type", "audio/amr")
		w.Header().Set("Content-Disposition", `attachment; filename="m-voice.amr"`)
		_, _ = w.Write([]byte("#!AMR\n voice"))
	}
}
