package tts

import "context"

// Synthesizer speaks text. Implementations: *Espeak and the ONNX model
// synthesizers Voice builds from installed models.
type Synthesizer interface {
	// Name says which engine speaks: "espeak-ng" or the model's name.
	Name() string
	// SampleRate is the rate of the samples given to emit.
	SampleRate() int
	// Synthesize speaks text, calling emit with consecutive chunks of mono
	// [-1,1] samples in order; the first chunk goes out as soon as the
	// first sentence is synthesised (long text is split with
	// SplitSentences). emit's slice is valid only during the call. It
	// returns ctx.Err() when cancelled and emit's error when emit fails.
	// Safe for concurrent use.
	Synthesize(ctx context.Context, text string, emit func([]float32) error) error
}

// eachSentence synthesises the pieces of text one after the other with
// one, stopping at the first error or cancellation.
func eachSentence(ctx context.Context, text string, one func(ctx context.Context, sentence string) error) error {
	for _, s := range SplitSentences(text, DefaultMaxSentence) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := one(ctx, s); err != nil {
			return err
		}
	}
	return ctx.Err()
}
