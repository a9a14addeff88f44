// Package webhook is zhiyin's generic JSON webhook channel ("webhook"): any
// system that can sign an HTTP request posts customer messages to
// POST /channels/webhook/messages and receives the bot's replies as signed
// JSON POSTs on its outbound_url (or a per-message callback_url).
//
// # Inbound
//
//	POST /channels/webhook/messages
//	Content-Type: application/json
//	X-Zhiyin-Timestamp: 1718000000                  (unix seconds, ±max_skew)
//	X-Zhiyin-Signature: [sha256=]hex(HMAC_SHA256(secret, timestamp + "." + raw body))
//	Idempotency-Key: order-42-msg-7                 (required, ≤ 128 bytes of printable ASCII)
//
//	{"id": "m1", "conversation": "c1", "conversation_type": "direct",
//	 "user": {"id": "u1", "name": "张三"}, "text": "我的快递到哪了",
//	 "thread": "", "reply_to": "", "mentioned": false,
//	 "time": "2024-06-10T08:00:00Z",                (or unix seconds / milliseconds)
//	 "media": [{"kind": "image", "url": "https://…", "key": "", "mime": "image/png", "size": 1024, "name": "a.png"}],
//	 "callback_url": "https://…"}                   (optional: where replies to this message go)
//
// Decoding is strict: an unknown field is a 400 that names it. Answers:
// 202 {"accepted":true,"duplicate":false} once the message is committed (a
// repeated Idempotency-Key is deduplicated by the hub and also answered
// 202); 400 {"error":{"code":"bad_request","message":…}} for a message that
// can never be accepted; 401 for a missing, forged or stale signature and
// for a replayed one (the same signature twice within the window: a retry
// must be signed afresh, with a new timestamp, and keep its
// Idempotency-Key); 413 over max_body; 503 with Retry-After when the
// message could not be stored now (retry later).
//
// # Outbound
//
// Each reply part is POSTed as JSON to outbound_url, or to the inbound
// message's callback_url, signed the same way with outbound_secret (default:
// secret), with Idempotency-Key: <key>. The body is
//
//	{"key": "…", "conversation": "c1", "conversation_type": "direct", "thread": "",
//	 "reply_to": "m1", "recipient": "u1", "text": "…", "markdown": false, "part": 1, "parts": 1}
//
// A part may be sent more than once (a retry after a timeout, a restart):
// receivers MUST deduplicate on the Idempotency-Key header (the same as the
// body's "key"). Answer 2xx when done, optionally with {"id": "…"} (the id
// is recorded); 429 or 503 with Retry-After to slow down; other 4xx refuse
// the part for good; 5xx and network errors are retried.
//
// The package verifies, parses and hands messages to the hub. It must not
// store anything, split or pace replies (the hub does, by Limits), nor
// follow callback URLs it was not given by a signed message or the
// configuration.
package webhook
