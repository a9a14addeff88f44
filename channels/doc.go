// Package channels is zhiyin's edge: the unified message, the durable
// inbox/outbox with dedup and retries, and one sub-package per platform
// (api, webchat, webhook, dingtalk, feishu, wecom, telegram, slack,
// mattermost, matrix, xmpp, sip, localaudio).
//
// It reaches package dialogue through a small interface and never the other
// way round.
package channels
