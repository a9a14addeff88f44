package voice

import (
	"fmt"
	"maps"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/zhiyin/zhiyin/asr/vad"
	"github.com/zhiyin/zhiyin/internal/config"
)

// Config is the `voice:` section: how calls take turns, time out and are
// recorded. Start from DefaultConfig; New validates it.
type Config struct {
	// EndSilence is the silence that ends the caller's turn.
	EndSilence time.Duration `yaml:"end_silence"`
	// QuickSilence is the silence after which the turn ends early when the
	// utterance's intent is confident (≥ QuickConfidence). The turn's
	// audio is also recognised from this point on, so the text is ready
	// when EndSilence confirms the turn.
	QuickSilence time.Duration `yaml:"quick_silence"`
	// QuickConfidence is the intent confidence that ends a turn after
	// QuickSilence; 0 disables the early end.
	QuickConfidence float64 `yaml:"quick_confidence"`
	// VAD is the speech detector's settings.
	VAD VADConfig `yaml:"vad"`
	// BargeIn lets the caller interrupt the bot by speaking (keypad digits
	// always interrupt).
	BargeIn bool `yaml:"barge_in"`
	// NoInput is the silence after the bot finished speaking that makes it
	// re-prompt.
	NoInput time.Duration `yaml:"no_input"`
	// MaxNoInput is how many re-prompts are said in a row before the bot
	// says goodbye and hangs up.
	MaxNoInput int `yaml:"max_no_input"`
	// MaxDuration bounds a call; then the bot says goodbye and hangs up.
	MaxDuration time.Duration `yaml:"max_duration"`
	// Greeting is said when a call is answered; the domain response
	// `voice_greeting` (its recorded prompt or text) wins when it exists.
	Greeting string `yaml:"greeting"`
	// Texts are the engine's own phrases.
	Texts Texts `yaml:"texts"`
	// DTMF says how keypad digits become turns.
	DTMF DTMFConfig `yaml:"dtmf"`
	// Record records calls (both legs, sealed with the dialogue key).
	Record bool `yaml:"record"`
	// MaxCalls caps the calls the engine holds at once; Start returns
	// ErrBusy beyond.
	MaxCalls int `yaml:"max_calls"`
}

// VADConfig are the speech detector's settings for calls.
type VADConfig struct {
	// Threshold is the speech probability that counts as speech, in (0,1).
	Threshold float64 `yaml:"threshold"`
	// MinSpeech is how long speech must last to start a turn or barge in.
	MinSpeech time.Duration `yaml:"min_speech"`
	// SpeechPad is audio kept before and after the detected speech.
	SpeechPad time.Duration `yaml:"speech_pad"`
	// MaxSpeech cuts a turn that lasts longer.
	MaxSpeech time.Duration `yaml:"max_speech"`
}

// Texts are what the engine says on its own.
type Texts struct {
	Reprompt string `yaml:"reprompt"`
	Goodbye  string `yaml:"goodbye"`
	// Transfer is said before handing the call to a person when the
	// dialogue's hand-off turn gave no reply of its own.
	Transfer       string `yaml:"transfer"`
	TransferFailed string `yaml:"transfer_failed"`
	Error          string `yaml:"error"`
	// NotUnderstood is said when a turn's speech gave no text; empty says
	// nothing (the no-input timer runs again).
	NotUnderstood string `yaml:"not_understood"`
}

// DTMFConfig says how keypad digits become turns.
type DTMFConfig struct {
	// Terminator ends the digits collected so far (one key; empty: none).
	Terminator string `yaml:"terminator"`
	// InterDigit is the pause after which the digits so far become a turn.
	InterDigit time.Duration `yaml:"inter_digit"`
	// Menu maps a single digit to the text sent as the turn.
	Menu map[string]string `yaml:"menu"`
}

// DefaultConfig returns the defaults the shipped config documents.
func DefaultConfig() Config {
	return Config{
		EndSilence:      500 * time.Millisecond,
		QuickSilence:    250 * time.Millisecond,
		QuickConfidence: 0.9,
		VAD: VADConfig{
			Threshold: 0.5,
			// 120 ms (4 windows of 32 ms at 16 kHz, confirmed at 128 ms)
			// keeps speech onset → silence on the line under 200 ms.
			MinSpeech: 120 * time.Millisecond,
			SpeechPad: 100 * time.Millisecond,
			MaxSpeech: 20 * time.Second,
		},
		BargeIn:     true,
		NoInput:     8 * time.Second,
		MaxNoInput:  2,
		MaxDuration: 30 * time.Minute,
		Greeting:    "您好，这里是智能客服，请问有什么可以帮您？",
		Texts: Texts{
			Reprompt:       "您还在吗？请问有什么可以帮您？",
			Goodbye:        "感谢您的来电，再见。",
			Transfer:       "正在为您转接人工客服，请稍候。",
			TransferFailed: "抱歉，人工客服暂时无法接通，请问还有什么可以帮您？",
			Error:          "抱歉，系统出了点问题，请再说一遍。",
			NotUnderstood:  "抱歉，我没有听清，请再说一遍。",
		},
		DTMF: DTMFConfig{
			Terminator: "#",
			InterDigit: 3 * time.Second,
			Menu:       map[string]string{"0": "转人工"},
		},
		MaxCalls: 100,
	}
}

// isDigit reports whether r is a DTMF key.
func isDigit(r rune) bool {
	return (r >= '0' && r <= '9') || r == '*' || r == '#' || (r >= 'A' && r <= 'D')
}

// Validate implements config.Validatable: it records every invalid
// setting on v, keys relative to the section (config.Validate(&cfg) gives
// them as one error, as New does).
func (c *Config) Validate(v *config.Validator) {
	if c.EndSilence < 100*time.Millisecond || c.EndSilence > 10*time.Second {
		v.Errorf("end_silence", "%v is outside 100ms..10s", c.EndSilence)
	}
	if c.QuickSilence < 64*time.Millisecond || c.QuickSilence > c.EndSilence {
		v.Errorf("quick_silence", "%v must be at least 64ms and not above end_silence (%v)", c.QuickSilence, c.EndSilence)
	}
	if c.QuickConfidence < 0 || c.QuickConfidence > 1 {
		v.Errorf("quick_confidence", "%v is outside 0..1 (0 disables the quick end)", c.QuickConfidence)
	}
	vv := v.Sub("vad")
	if c.VAD.Threshold <= 0 || c.VAD.Threshold >= 1 {
		vv.Errorf("threshold", "%v is outside (0,1)", c.VAD.Threshold)
	}
	if c.VAD.MinSpeech < 32*time.Millisecond || c.VAD.MinSpeech > 2*time.Second {
		vv.Errorf("min_speech", "%v is outside 32ms..2s", c.VAD.MinSpeech)
	}
	if c.VAD.SpeechPad < 0 || 2*c.VAD.SpeechPad > c.QuickSilence {
		vv.Errorf("speech_pad", "%v must be at least 0 and at most half of quick_silence (%v)", c.VAD.SpeechPad, c.QuickSilence)
	}
	if c.VAD.MaxSpeech < 5*time.Second || c.VAD.MaxSpeech > 2*time.Minute {
		vv.Errorf("max_speech", "%v is outside 5s..2m", c.VAD.MaxSpeech)
	}
	if c.NoInput < time.Second {
		v.Errorf("no_input", "%v is below 1s", c.NoInput)
	}
	if c.MaxNoInput < 0 || c.MaxNoInput > 10 {
		v.Errorf("max_no_input", "%d is outside 0..10", c.MaxNoInput)
	}
	if c.MaxDuration < time.Minute {
		v.Errorf("max_duration", "%v is below 1m", c.MaxDuration)
	}
	texts := v.Sub("texts")
	if c.Texts.Goodbye == "" {
		texts.Errorf("goodbye", "required (said before the bot hangs up)")
	}
	if c.Texts.Error == "" {
		texts.Errorf("error", "required (a failed turn must never leave the caller in silence)")
	}
	if c.Texts.Transfer == "" || c.Texts.TransferFailed == "" {
		texts.Errorf("transfer", "texts.transfer and texts.transfer_failed are required")
	}
	if c.MaxNoInput > 0 && c.Texts.Reprompt == "" {
		texts.Errorf("reprompt", "required while max_no_input is above 0")
	}
	dtmf := v.Sub("dtmf")
	if t := c.DTMF.Terminator; t != "" {
		r, n := utf8.DecodeRuneInString(t)
		if n != len(t) || !isDigit(r) {
			dtmf.Errorf("terminator", "%q is not one keypad key (0-9, *, #, A-D) or empty", t)
		}
	}
	if c.DTMF.InterDigit < 500*time.Millisecond || c.DTMF.InterDigit > 30*time.Second {
		dtmf.Errorf("inter_digit", "%v is outside 500ms..30s", c.DTMF.InterDigit)
	}
	for _, k := range slices.Sorted(maps.Keys(c.DTMF.Menu)) { // sorted: the same report every time
		r, n := utf8.DecodeRuneInString(k)
		if n != len(k) || !isDigit(r) {
			dtmf.Errorf("menu", "key %q is not one keypad key (0-9, *, #, A-D)", k)
		} else if k == c.DTMF.Terminator {
			dtmf.Errorf("menu", "key %q is the terminator", k)
		} else if c.DTMF.Menu[k] == "" {
			dtmf.Errorf("menu", "key %q has no text", k)
		}
	}
	if c.MaxCalls < 1 || c.MaxCalls > 10_000 {
		v.Errorf("max_calls", "%d is outside 1..10000", c.MaxCalls)
	}
}

// validate checks cfg as the daemon's configuration check does, every
// problem in one error (for New).
func validate(cfg Config) error {
	if err := config.Validate(&cfg); err != nil {
		return fmt.Errorf("voice config: %w", err)
	}
	return nil
}

// vadConfig is the detector's config: it ends segments after QuickSilence;
// the engine merges pieces closer than EndSilence into one turn.
func (c Config) vadConfig() vad.Config {
	v := vad.DefaultConfig()
	v.Threshold = c.VAD.Threshold
	v.MinSpeech = c.VAD.MinSpeech
	v.MinSilence = c.QuickSilence
	v.SpeechPad = c.VAD.SpeechPad
	v.MaxSpeech = c.VAD.MaxSpeech
	return v
}
