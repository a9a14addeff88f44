// Package voice holds spoken conversations: the turn-taking loop shared by
// the SIP and local sound-card channels. Caller audio goes through a
// streaming VAD; a turn ends after a configurable silence; the utterance is
// recognised, answered by the same dialogue as chat (the call is the
// session's conversation), and the reply is spoken back through a TTS or a
// recorded prompt. The caller speaking over the reply stops it (barge-in);
// keypad digits arrive as text; silence re-prompts and finally hangs up.
//
// Transports implement Media and feed Handler; they know nothing of speech.
package voice
