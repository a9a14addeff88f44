package mattermost

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// fakeMM is an in-process Mattermost server: GET /api/v4/users/me, POST
// /api/v4/posts and the websocket, with bearer tokens checked, event
// sequence numbers, a dead queue for resumption (connection_id +
// sequence_number) and a rate limit.
type fakeMM struct {
	t     *testing.T
	srv   *httptest.Server
	token string
	bot   botIdentity

	mu         sync.Mutex
	connID     string
	seq        int64    // the seq of the next event
	sent       [][]byte // every event frame of this connection id, by seq
	cur        chan []byte
	curConn    *websocket.Conn
	dials      []url.Values
	headerless int  // connections authenticated by challenge only
	stallNext  bool // the next connection never reads (no pongs)
	forget     bool // the next resume is refused (server restart)
	limitOnce  bool // the next post answers 429
	posts      []map[string]string
	conns      chan struct{} // one value per authenticated connection
}

func newFakeMM(t *testing.T) *fakeMM {
	f := &fakeMM{
		t:     t,
		token: "bot-token-1",
		bot:   botIdentity{ID: "botuserid0000000000000000a", Username: "helper"},
		conns: make(chan struct{}, 64),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v4/users/me", func(w http.ResponseWriter, r *http.Request) {
		if !f.authorized(r) {
			apiErr(w, http.StatusUnauthorized, "api.context.session_expired.app_error", "Invalid or expired session, please login again.")
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"id": f.bot.ID, "username": f.bot.Username})
	})
	mux.HandleFunc("POST /api/v4/posts", f.handlePost)
	mux.HandleFunc("GET /api/v4/websocket", f.handleWS)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		f.mu.Lock()
		if f.curConn != nil {
			f.curConn.CloseNow()
		}
		f.mu.Unlock()
		f.srv.Close()
	})
	return f
}

func (f *fakeMM) authorized(r *http.Request) bool {
	return r.Header.Get("Authorization") == "Bearer "+f.token
}

func apiErr(w http.ResponseWriter, code int, id, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"id": id, "message": msg, "status_code": code})
}

func (f *fakeMM) handlePost(w http.ResponseWriter, r *http.Request) {
	if !f.authorized(r) {
		apiErr(w, http.StatusUnauthorized, "api.context.session_expired.app_error", "Invalid or expired session")
		return
	}
	var p map[string]string
	if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
		apiErr(w, http.StatusBadRequest, "api.context.invalid_body_param.app_error", "Invalid or missing post in request body.")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.limitOnce {
		f.limitOnce = false
		w.Header().Set("X-Ratelimit-Limit", "10")
		w.Header().Set("X-Ratelimit-Remaining", "0")
		w.Header().Set("X-Ratelimit-Reset", "3")
		apiErr(w, http.StatusTooManyRequests, "api.context.rate_limit_exceeded.app_error", "Too many requests")
		return
	}
	if p["channel_id"] == "" || p["channel_id"] == "nochannel" {
		apiErr(w, http.StatusForbidden, "api.context.permissions.app_error", "You do not have the appropriate permissions.")
		return
	}
	f.posts = append(f.posts, p)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(map[string]any{"id": "post" + strconv.Itoa(len(f.posts)), "channel_id": p["channel_id"], "message": p["message"]})
}

func (f *fakeMM) handleWS(w http.ResponseWriter, r *http.Request) {
	headerOK := f.authorized(r)
	if r.Header.Get("Authorization") != "" && !headerOK {
		apiErr(w, http.StatusUnauthorized, "api.web_socket.connect.upgrade.app_error", "Invalid or expired session")
		return
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	ctx := r.Context()
	if !headerOK {
		// As behind a proxy that drops the header: the challenge must do.
		_, b, err := c.Read(ctx)
		if err != nil {
			return
		}
		var req struct {
			Seq    int64             `json:"seq"`
			Action string            `json:"action"`
			Data   map[string]string `json:"data"`
		}
		json.Unmarshal(b, &req)
		if req.Action != "authentication_challenge" || req.Data["token"] != f.token {
			reply, _ := json.Marshal(map[string]any{"status": "FAIL", "seq_reply": req.Seq, "error": map[string]string{"id": "api.web_socket_router.not_authenticated.app_error"}})
			c.Write(ctx, websocket.MessageText, reply)
			return
		}
		reply, _ := json.Marshal(map[string]any{"status": "OK", "seq_reply": req.Seq})
		c.Write(ctx, websocket.MessageText, reply)
		f.mu.Lock()
		f.headerless++
		f.mu.Unlock()
	}

	q := r.URL.Query()
	out := make(chan []byte, 256)
	f.mu.Lock()
	f.dials = append(f.dials, q)
	stall := f.stallNext
	f.stallNext = false
	var replay [][]byte
	n, perr := strconv.ParseInt(q.Get("sequence_number"), 10, 64)
	resume := q.Get("connection_id") != "" && q.Get("connection_id") == f.connID && perr == nil && n >= 0 && n <= f.seq && !f.forget
	if resume {
		replay = append(replay, f.sent[n:]...)
	} else {
		// A fresh stream: new connection id, seq from 0, hello first.
		f.forget = false
		f.connID = "conn" + strconv.Itoa(len(f.dials))
		f.seq, f.sent = 0, nil
		replay = append(replay, f.frameLocked("hello", map[string]any{"server_version": "10.5.0.test", "connection_id": f.connID}, broadcast{UserID: f.bot.ID}))
	}
	if f.curConn != nil {
		f.curConn.CloseNow()
	}
	f.cur, f.curConn = out, c
	f.mu.Unlock()
	f.conns <- struct{}{}

	if !stall {
		go func() {
			// Read so that pings are answered; a header-authenticated
			// connection ignores the challenge, like the real server.
			for {
				if _, _, err := c.Read(ctx); err != nil {
					return
				}
			}
		}()
	}
	for _, b := range replay {
		if c.Write(ctx, websocket.MessageText, b) != nil {
			return
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case b := <-out:
			if c.Write(ctx, websocket.MessageText, b) != nil {
				return
			}
		}
	}
}

// frameLocked numbers an event and keeps it for resumption.
func (f *fakeMM) frameLocked(event string, data map[string]any, bc broadcast) []byte {
	b, err := json.Marshal(map[string]any{"event": event, "data": data, "broadcast": bc, "seq": f.seq})
	if err != nil {
		f.t.Fatal(err)
	}
	f.seq++
	f.sent = append(f.sent, b)
	return b
}

// emit sends an event on the current connection, or keeps it for the next
// resumption when there is none.
func (f *fakeMM) emit(event string, data map[string]any, bc broadcast) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.frameLocked(event, data, bc)
	if f.cur != nil {
		f.cur <- b
	}
}

// drop closes the current connection from the server side.
func (f *fakeMM) drop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.curConn != nil {
		f.curConn.CloseNow()
	}
	f.cur, f.curConn = nil, nil
}

// posted emits a "posted" event the way the server does: post and
// mentions are JSON text inside the data.
func (f *fakeMM) posted(p map[string]any, channelType, sender string, mentions ...string) {
	pb, err := json.Marshal(p)
	if err != nil {
		f.t.Fatal(err)
	}
	data := map[string]any{
		"channel_display_name": "Support",
		"channel_name":         "support",
		"channel_type":         channelType,
		"post":                 string(pb),
		"sender_name":          "@" + sender,
		"set_online":           true,
		"team_id":              "team1",
	}
	if len(mentions) > 0 {
		mb, _ := json.Marshal(mentions)
		data["mentions"] = string(mb)
	}
	ch, _ := p["channel_id"].(string)
	f.emit("posted", data, broadcast{ChannelID: ch})
}

func (f *fakeMM) waitConn(t *testing.T) {
	t.Helper()
	select {
	case <-f.conns:
	case <-time.After(wait):
		t.Fatal("no websocket connection")
	}
}
