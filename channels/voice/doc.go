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

// # The engine
//
// Engine (New, Start, Stop) answers calls for every transport. Each call
// has one loop goroutine that owns the VAD and the turn state, one
// pipeline goroutine that answers and speaks one job at a time, and a
// goroutine per recognition, so the VAD keeps running while a turn is
// recognised. Handler.Audio and DTMF only enqueue (bounded; a full queue
// drops the frame and counts it in zhiyin_voice_dropped_frames_total).
//
// Turn-taking: caller audio is resampled to 16 kHz and fed to a Silero
// detector whose min_silence is quick_silence. At each end of speech the
// turn's audio is recognised at once (and, with an IntentFunc and
// quick_confidence > 0, parsed); a confident intent ends the turn there,
// otherwise the turn ends when end_silence passed after the last speech,
// and speech resuming earlier joins the same turn (its recognition is
// redone on the whole turn). Times are counted in caller audio, not the
// wall clock. A turn whose speech gives no text says texts.not_understood
// (empty: says nothing). Every turn goes to the dialogue as the call's
// conversation (Channel = CallInfo.Channel, Conversation = CallInfo.ID),
// so a call keeps one session.
//
// Barge-in: a confirmed speech start (vad.min_speech) or a digit while
// the bot speaks or thinks cancels the synthesis, calls
// Media.StopPlayback and skips answers queued before it; a turn that was
// being answered is still committed but not spoken. With barge_in off the
// caller is not heard while the bot answers (digits still interrupt).
// Goodbye and the transfer announcement cannot be interrupted.
//
// Timeouts: no_input (wall clock, from the end of the bot's speech, not
// while on hold) re-prompts, and after max_no_input re-prompts says
// goodbye and hangs up ("no_input"); max_duration does the same
// ("max_duration"). Dialogue or recognition errors say texts.error and
// keep the call.
//
// Records: a voice_calls row per call (inserted when answered, completed
// when it ends) and a voice_turns row per turn with its latencies and the
// sealed caller and bot texts. Recordings are sealed 1 s chunks (see
// recording.go), so memory does not grow with the call.
//
// The engine must not: block a transport's receive goroutine, log caller
// audio or text, keep package-level state, or call Media.Hangup or
// Media.Transfer from a goroutine that Handler.End waits for (transports
// may call End from inside them).
