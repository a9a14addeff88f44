// Package wecom connects zhiyin to a WeCom (企业微信) self-built app: it
// receives the app's encrypted message callbacks on /channels/wecom/callback,
// turns them into channels.Message, and sends replies through the app
// message API (message/send, appchat/send) or an optional group bot webhook.
// Fetch downloads inbound media (voice notes for the ASR) by media id.
//
// Crypto is the WXBizMsgCrypt scheme on its own (signature, AES-256-CBC with
// 32-byte PKCS#7 blocks, receive id check); it is exported because DingTalk's
// event-subscription callbacks use the same scheme.
//
// The package must not split or pace replies (the hub does, from Limits),
// store anything (the hub owns the inbox), or acknowledge a callback before
// the sink has committed its message. It never logs message text, the app
// secret, the callback token, the AES key or an access token.
package wecom
