// Package matrix connects zhiyin to a self-hosted Matrix homeserver
// (Synapse, Conduit, Dendrite) as a bot user through the client-server API
// v3: a /sync long-poll loop for inbound messages, PUT
// /rooms/{roomId}/send/m.room.message/{txnId} for replies (idempotent: the
// homeserver deduplicates on the access token and txnId).
//
// The sync position (next_batch) is persisted through a TokenStore, and
// saved only after every message of a batch was delivered to the hub, so a
// crash or a failing hub means the batch is synced again (the hub dedups on
// the event id), never skipped. The very first sync records the position
// without answering history.
//
// It must not split or pace replies (the hub does, by Limits), persist
// anything but the sync token, or read encrypted rooms: end-to-end
// encryption is not supported (m.room.encrypted events are not requested).
package matrix
