// Package localaudio is the local sound-card line: a desk or kiosk
// deployment talks to the voice engine through the machine's own microphone
// and speaker instead of a phone line. It opens an input and an output
// device with PortAudio (by exact name, unique substring, or the system
// default), feeds 20 ms capture frames to a voice.Handler, and plays what
// the engine speaks through voice.Media. Our own playback is kept from
// triggering barge-in by muting capture while we play (plus a short room
// tail), by an energy gate that lets a person talk over the speaker, or not
// at all for a headset.
//
// One Line holds one conversation at a time: `zhiyin voice --local` runs one
// and returns when it ends; the always-on kiosk (the `localaudio:` config
// section) starts a new one a moment after the last ended.
//
// It must not: know anything of speech, dialogue or TTS (that is the
// answerer's job), log customer audio, transfer calls (a sound card has no
// one to hand to: Transfer returns voice.ErrTransferUnsupported), or keep
// package-level mutable state beyond the one lock that serialises the
// process-global PortAudio library.
package localaudio
