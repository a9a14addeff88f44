// Package slack connects zhiyin to one Slack app (one bot user in one
// workspace): inbound messages through the Events API (signed HTTP
// callbacks at /channels/slack/events) or Socket Mode (a websocket the
// adapter opens with an app-level token), and replies through
// chat.postMessage.
//
// It is written on net/http and github.com/coder/websocket; it does not use
// a Slack SDK. It verifies every callback's v0 signature, timestamp and
// freshness itself, hands messages to the hub's Sink and acknowledges Slack
// only after Sink.Deliver returned nil.
//
// It must not split, pace or retry replies (the hub does, by Limits and the
// errors Send returns), persist anything, or log customer text at Info.
package slack
