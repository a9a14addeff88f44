package matrix

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeHS is an in-process homeserver speaking the parts of the
// client-server API the adapter uses. It enforces the access token,
// serves /sync from stream positions ("s<N>") with long-polling, limited
// timelines and history for newly joined rooms, deduplicates sends on
// txnId, rate-limits once on request, and answers /messages, /join,
// joined_members, whoami and the profile.
type fakeHS struct {
	t      *testing.T
	srv    *httptest.Server
	token  string
	userID string

	mu            sync.Mutex
	pos           int
	events        []hsEvent
	rooms         map[string]*hsRoom
	invites       map[string]int // room → position of the invite
	txns          map[string]string
	sends         int
	joins         []string
	pages         int // /messages requests
	limitOnce     bool
	timelineLimit int
	changed       chan struct{}
	syncs         chan string // the since of every sync request
}

type hsEvent struct {
	pos  int
	room string
	ev   map[string]any
}

type hsRoom struct {
	members   map[string]string // user → display name
	joinedAt  int               // the bot's join position; 0: before everything
	noSummary bool
}

func newFakeHS(t *testing.T) *fakeHS {
	f := &fakeHS{
		t:             t,
		token:         "syt_bot_token",
		userID:        "@zhiyin:hs.test",
		rooms:         map[string]*hsRoom{},
		invites:       map[string]int{},
		txns:          map[string]string{},
		timelineLimit: 50,
		changed:       make(chan struct{}),
		syncs:         make(chan string, 4096),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_matrix/client/v3/account/whoami", f.auth(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"user_id": f.userID, "device_id": "DEV"})
	}))
	mux.HandleFunc("GET /_matrix/client/v3/profile/{user}/displayname", f.auth(func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("user") != f.userID {
			writeJSON(w, 404, map[string]any{"errcode": "M_NOT_FOUND", "error": "Profile was not found"})
			return
		}
		writeJSON(w, 200, map[string]any{"displayname": "Zhiyin Bot"})
	}))
	mux.HandleFunc("GET /_matrix/client/v3/sync", f.auth(f.handleSync))
	mux.HandleFunc("POST /_matrix/client/v3/join/{room}", f.auth(f.handleJoin))
	mux.HandleFunc("PUT /_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}", f.auth(f.handleSend))
	mux.HandleFunc("GET /_matrix/client/v3/rooms/{room}/messages", f.auth(f.handleMessages))
	mux.HandleFunc("GET /_matrix/client/v3/rooms/{room}/joined_members", f.auth(f.handleMembers))
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func (f *fakeHS) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("Authorization") {
		case "Bearer " + f.token:
			h(w, r)
		case "":
			writeJSON(w, 401, map[string]any{"errcode": "M_MISSING_TOKEN", "error": "Missing access token"})
		default:
			writeJSON(w, 401, map[string]any{"errcode": "M_UNKNOWN_TOKEN", "error": "Invalid access token passed.", "soft_logout": false})
		}
	}
}

// notifyLocked wakes long-polls.
func (f *fakeHS) notifyLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// room creates a room the bot is in, with members (user → display name).
func (f *fakeHS) room(id string, members map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := map[string]string{f.userID: "Zhiyin Bot"}
	for k, v := range members {
		m[k] = v
	}
	f.rooms[id] = &hsRoom{members: m}
}

// addLocked appends a room event at the next position.
func (f *fakeHS) addLocked(room string, ev map[string]any) string {
	f.pos++
	id := fmt.Sprintf("$ev%d", f.pos)
	ev["event_id"] = id
	ev["origin_server_ts"] = int64(1700000000000 + f.pos*1000)
	ev["room_id"] = room
	if _, ok := ev["unsigned"]; !ok {
		ev["unsigned"] = map[string]any{"age": 10}
	}
	f.events = append(f.events, hsEvent{pos: f.pos, room: room, ev: ev})
	f.notifyLocked()
	return id
}

// message posts an m.room.message and returns its event id.
func (f *fakeHS) message(room, sender string, content map[string]any) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addLocked(room, map[string]any{"type": "m.room.message", "sender": sender, "content": content})
}

func text(body string) map[string]any { return map[string]any{"msgtype": "m.text", "body": body} }

// invite invites the bot to a new room where members already talk.
func (f *fakeHS) invite(room, inviter string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rooms[room] = &hsRoom{members: map[string]string{inviter: "Inviter"}, joinedAt: -1}
	f.pos++
	f.invites[room] = f.pos
	f.notifyLocked()
}

func (f *fakeHS) position() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pos
}

// waitSync waits for a long-poll from position pos (the adapter has
// handled and saved everything before it).
func (f *fakeHS) waitSync(t *testing.T, pos int) {
	t.Helper()
	want := "s" + strconv.Itoa(pos)
	deadline := time.After(wait)
	for {
		select {
		case s := <-f.syncs:
			if s == want {
				return
			}
		case <-deadline:
			t.Fatalf("no sync from %s", want)
		}
	}
}

func memberEvent(user, name, membership string) map[string]any {
	return map[string]any{
		"type": "m.room.member", "sender": user, "state_key": user,
		"content": map[string]any{"membership": membership, "displayname": name},
	}
}

func (f *fakeHS) handleSync(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var filter map[string]any
	if err := json.Unmarshal([]byte(q.Get("filter")), &filter); err != nil || !strings.Contains(q.Get("filter"), `"m.room.message"`) {
		writeJSON(w, 400, map[string]any{"errcode": "M_INVALID_PARAM", "error": "bad filter"})
		return
	}
	timeout, err := strconv.Atoi(q.Get("timeout"))
	if err != nil {
		timeout = 0
	}
	since := -1
	if s := q.Get("since"); s != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(s, "s"))
		if err != nil || !strings.HasPrefix(s, "s") {
			writeJSON(w, 400, map[string]any{"errcode": "M_INVALID_PARAM", "error": "bad since"})
			return
		}
		since = n
	}
	select {
	case f.syncs <- q.Get("since"):
	default:
	}
	deadline := time.NewTimer(time.Duration(timeout) * time.Millisecond)
	defer deadline.Stop()
	for {
		f.mu.Lock()
		if since < 0 || f.pos > since || timeout == 0 {
			resp := f.batchLocked(since)
			f.mu.Unlock()
			writeJSON(w, 200, resp)
			return
		}
		ch := f.changed
		f.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			timeout = 0
		case <-r.Context().Done():
			return
		}
	}
}

// batchLocked builds a sync answer for the events after since (-1: an
// initial sync with the recent history of every room).
func (f *fakeHS) batchLocked(since int) map[string]any {
	join := map[string]any{}
	for id, room := range f.rooms {
		if room.joinedAt < 0 {
			continue
		}
		var evs []hsEvent
		fresh := since < 0 || room.joinedAt > since // show history
		for _, e := range f.events {
			if e.room == id && (fresh || e.pos > since) {
				evs = append(evs, e)
			}
		}
		if len(evs) == 0 && !fresh {
			continue
		}
		limited := false
		prev := "s0"
		if len(evs) > f.timelineLimit {
			evs, limited = evs[len(evs)-f.timelineLimit:], true
		}
		if len(evs) > 0 {
			prev = "s" + strconv.Itoa(evs[0].pos-1)
		}
		timeline := []any{}
		for _, e := range evs {
			timeline = append(timeline, e.ev)
		}
		state := []any{}
		for u, n := range room.members {
			state = append(state, memberEvent(u, n, "join"))
		}
		jr := map[string]any{
			"timeline": map[string]any{"events": timeline, "limited": limited, "prev_batch": prev},
			"state":    map[string]any{"events": state},
		}
		if !room.noSummary {
			jr["summary"] = map[string]any{"m.joined_member_count": len(room.members), "m.heroes": []string{}}
		}
		join[id] = jr
	}
	invite := map[string]any{}
	for id, p := range f.invites {
		if p > since && f.rooms[id].joinedAt < 0 {
			invite[id] = map[string]any{"invite_state": map[string]any{"events": []any{
				map[string]any{"type": "m.room.member", "sender": "@inviter:hs.test", "state_key": f.userID, "content": map[string]any{"membership": "invite"}},
			}}}
		}
	}
	return map[string]any{
		"next_batch": "s" + strconv.Itoa(f.pos),
		"rooms":      map[string]any{"join": join, "invite": invite, "leave": map[string]any{}},
		"presence":   map[string]any{"events": []any{}},
	}
}

func (f *fakeHS) handleJoin(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("room")
	f.mu.Lock()
	defer f.mu.Unlock()
	room, ok := f.rooms[id]
	if !ok {
		writeJSON(w, 404, map[string]any{"errcode": "M_NOT_FOUND", "error": "No known servers"})
		return
	}
	f.joins = append(f.joins, id)
	if room.joinedAt < 0 {
		room.members[f.userID] = "Zhiyin Bot"
		f.addLocked(id, memberEvent(f.userID, "Zhiyin Bot", "join"))
		room.joinedAt = f.pos
	}
	writeJSON(w, 200, map[string]any{"room_id": id})
}

func (f *fakeHS) handleSend(w http.ResponseWriter, r *http.Request) {
	id, txn := r.PathValue("room"), r.PathValue("txn")
	var content map[string]any
	if err := json.NewDecoder(r.Body).Decode(&content); err != nil {
		writeJSON(w, 400, map[string]any{"errcode": "M_NOT_JSON", "error": "Content not JSON."})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.limitOnce {
		f.limitOnce = false
		writeJSON(w, 429, map[string]any{"errcode": "M_LIMIT_EXCEEDED", "error": "Too Many Requests", "retry_after_ms": 1500})
		return
	}
	room, ok := f.rooms[id]
	if !ok || room.joinedAt < 0 {
		writeJSON(w, 403, map[string]any{"errcode": "M_FORBIDDEN", "error": "User not in room"})
		return
	}
	key := f.token + "\x00" + txn
	if ev, ok := f.txns[key]; ok {
		writeJSON(w, 200, map[string]any{"event_id": ev})
		return
	}
	f.sends++
	ev := f.addLocked(id, map[string]any{"type": "m.room.message", "sender": f.userID, "content": content, "unsigned": map[string]any{"transaction_id": txn}})
	f.txns[key] = ev
	writeJSON(w, 200, map[string]any{"event_id": ev})
}

func (f *fakeHS) handleMessages(w http.ResponseWriter, r *http.Request) {
	id, q := r.PathValue("room"), r.URL.Query()
	from, err1 := strconv.Atoi(strings.TrimPrefix(q.Get("from"), "s"))
	to, err2 := strconv.Atoi(strings.TrimPrefix(q.Get("to"), "s"))
	limit, err3 := strconv.Atoi(q.Get("limit"))
	if q.Get("dir") != "b" || err1 != nil || err2 != nil || err3 != nil || limit <= 0 {
		writeJSON(w, 400, map[string]any{"errcode": "M_INVALID_PARAM", "error": "bad pagination"})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pages++
	chunk := []any{}
	last := -1
	more := false
	for i := len(f.events) - 1; i >= 0; i-- {
		e := f.events[i]
		if e.room != id || e.pos > from || e.pos <= to {
			continue
		}
		if len(chunk) == limit {
			more = true
			break
		}
		chunk = append(chunk, e.ev)
		last = e.pos
	}
	resp := map[string]any{"chunk": chunk, "start": q.Get("from")}
	if more {
		resp["end"] = "s" + strconv.Itoa(last-1)
	}
	writeJSON(w, 200, resp)
}

func (f *fakeHS) handleMembers(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	room, ok := f.rooms[r.PathValue("room")]
	if !ok {
		writeJSON(w, 403, map[string]any{"errcode": "M_FORBIDDEN", "error": "not in room"})
		return
	}
	joined := map[string]any{}
	for u, n := range room.members {
		joined[u] = map[string]any{"display_name": n}
	}
	writeJSON(w, 200, map[string]any{"joined": joined})
}
