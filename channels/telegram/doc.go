// Package telegram connects zhiyin to a Telegram bot through the Bot API
// ({base_url}/bot<token>/<method>), on net/http without an SDK. base_url
// defaults to https://api.telegram.org; an appliance usually points it at a
// local Bot API server on the intranet.
//
// Inbound, the adapter either long-polls getUpdates (mode: polling, the
// default) or serves POST /channels/telegram/webhook (mode: webhook, checked
// with X-Telegram-Bot-Api-Secret-Token). Every update is turned into a
// channels.Message and handed to the sink; Telegram is acknowledged (the
// getUpdates offset advanced, or the webhook answered 200) only after
// Deliver returned nil, so a crash redelivers and the hub deduplicates on
// the update_id. Outbound, Send calls sendMessage, converting Markdown to
// Telegram's MarkdownV2 with every special character escaped.
//
// It must not split or pace outgoing text (the hub does, by Limits), store
// anything itself, or write the bot token or customer text to Info logs or
// error messages.
package telegram
