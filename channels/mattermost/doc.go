// Package mattermost connects zhiyin to a self-hosted Mattermost server as a
// bot account: inbound posts arrive over the server's websocket
// ({base_url}/api/v4/websocket), replies go out through the REST API
// (POST {base_url}/api/v4/posts).
//
// The websocket is a push stream without acknowledgements: Mattermost does
// not redeliver a post the adapter failed to hand to the hub. The adapter
// therefore retries Sink.Deliver a few times (bounded, with backoff) and
// then logs the post as lost; after a dropped connection it resumes with the
// server's connection_id and sequence_number so that the server replays
// what it still buffers (Mattermost 5.36+), and logs when it could not.
//
// It must not split or pace replies (the hub does, by Limits), persist
// anything, or claim idempotent sends: pending_post_id is only a short-lived
// server-side cache.
package mattermost
