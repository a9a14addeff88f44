package mattermost

import "errors"

// Errors.
var (
	// ErrStarted is returned by Start when the adapter is already running.
	ErrStarted = errors.New("mattermost: adapter already started")
	// ErrTokenRejected is returned (wrapped) by Start, and recorded in
	// State, when the server refuses the bot token (401/403).
	ErrTokenRejected = errors.New("mattermost: token rejected (check channels.mattermost.token: a bot access token from System Console > Integrations > Bot Accounts)")
)
