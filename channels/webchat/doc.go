// Package webchat is zhiyin's own web chat channel ("webchat"): a chat page,
// an embeddable widget and the websocket they talk over, mounted on the
// daemon's fiber app by Adapter.Mount.
//
// # Routes
//
//	GET /chat             the chat page (the widget filling the window)
//	GET /chat/widget.js   the widget: <script src="https://HOST:18789/chat/widget.js" data-zhiyin-title="在线客服"></script>
//	                      adds a floating button and a chat panel to any page
//	GET /chat/widget.css  its styles (the widget links them itself)
//	GET /chat/ws          the websocket
//
// The assets are embedded, hand-written JavaScript and CSS (no framework,
// no CDN), served with an ETag (304 on If-None-Match) and Cache-Control.
// The websocket accepts pages of this very host and the sites listed in
// allowed_origins ("*": any); others get 403. Over max_connections open
// sockets the upgrade is answered 503.
//
// # Protocol
//
// JSON text frames, one object each, at most 64 KiB (a bigger frame closes
// the socket with 1009). Client → server:
//
//	{"type":"hello","visitor":"<id>","name":"张三"}   first; visitor is 8–64 of [A-Za-z0-9_-]
//	                                                  (the widget keeps a UUID in localStorage)
//	{"type":"message","id":"<id>","text":"…"}        id: 1–64 of [A-Za-z0-9_-], unique per message
//	                                                  (a UUID); text: 1–max_text runes once trimmed
//	{"type":"ping"}                                   optional application keepalive
//
// Server → client:
//
//	{"type":"ready","visitor":"<id>"}                 answer to hello; buffered replies follow
//	{"type":"ack","id":"<id>"}                        the message is stored (the widget shows ✓)
//	{"type":"reply","id":"<key>","text":"…","markdown":false}
//	                                                  a bot reply; the same id may come again
//	                                                  (a retried send): show it once
//	{"type":"error","code":"…","message":"…","id":"<id>"}
//	                                                  id: the message it is about, if any
//	{"type":"pong"}                                   answer to ping
//
// Error codes: bad_frame (binary frame), bad_json, unknown_type,
// hello_required, hello_twice, bad_visitor, bad_id, empty_text,
// text_too_long, invalid (refused for good), unavailable (not stored now:
// send the same id again later), rate_limited (more than 5 frames a second
// beyond a burst of 10: send it again later; 50 refused frames in a row
// close the socket with 1008). An error frame never closes the socket.
// The server pings every 30 s; a socket silent for 75 s is closed. A
// client that resends a message after a reconnect (same visitor, same id)
// is acknowledged again and not answered twice: the dedup key is
// visitor + ":" + id.
//
// The conversation is the visitor (a direct chat); the sender is the
// visitor with the hello's name. Replies go to every open socket of the
// visitor (several tabs); with none open they wait in a bounded
// per-visitor buffer (50 replies, 10 minutes, 10,000 visitors) that the
// next hello flushes, else they are dropped with a log line: visitors are
// ephemeral and the hub keeps the transcript.
//
// The package must not store anything, split or pace replies, nor trust
// anything a browser says beyond its visitor id (which is a bearer
// secret: whoever knows it reads that visitor's replies).
package webchat
