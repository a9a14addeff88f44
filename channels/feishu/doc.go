// Package feishu is the Feishu / Lark adapter: it receives messages from a
// Feishu (or Lark, with base_url https://open.larksuite.com) self-built app
// either through the signed, encrypted event callback
// (POST /channels/feishu/events) or through the long connection ("mode:
// websocket", protobuf frames over a websocket the adapter dials), turns
// im.message.receive_v1 events into channels.Message, and sends replies with
// the app's tenant_access_token (im/v1 messages, deduplicated by uuid) or,
// outbound only, through a custom group bot webhook.
//
// It must not store anything itself (the hub owns the inbox and outbox),
// split or pace outbound text (the hub does, by Limits), acknowledge an event
// before the sink committed it, or log customer text at Info.
package feishu
