// Package dingtalk connects zhiyin to a DingTalk (钉钉) robot.
//
// Inbound, it receives robot messages either over DingTalk's Stream mode (a
// websocket the adapter opens itself: no public address needed; the default)
// or as HTTP robot callbacks signed with the app secret
// (POST /channels/dingtalk/callback). Every message becomes a
// channels.Message and is acknowledged only after the hub committed it.
//
// Outbound, it answers through the message's sessionWebhook while that is
// valid, and otherwise through the robot OpenAPI (oToMessages/batchSend for
// one-to-one chats, groupMessages/send for groups) with a cached access
// token. A custom group robot (outbound only, signed webhook) is supported as
// a mode of its own or as an extra target.
//
// It must not split or pace replies (the hub does, by Limits), persist
// anything, or log customer text at Info. Every base URL is configurable for
// private deployments.
package dingtalk
