package tts

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/zhiyin/zhiyin/asr/audio"
	"github.com/zhiyin/zhiyin/internal/config"
)

// EspeakRate is the sample rate espeak-ng writes (and Espeak emits).
const EspeakRate = 22050

// espeakNice is the niceness espeak-ng processes run at.
const espeakNice = 10

// EspeakConfig is tts.espeak: how the espeak-ng binary is run.
type EspeakConfig struct {
	// Binary is the espeak-ng executable; empty looks espeak-ng up in PATH.
	Binary string `yaml:"binary"`
	// Voice is the espeak-ng voice (-v): cmn is Mandarin.
	Voice string `yaml:"voice"`
	// Speed is words per minute (-s), 80 to 450.
	Speed int `yaml:"speed"`
	// Pitch is 0 to 99 (-p).
	Pitch int `yaml:"pitch"`
}

// DefaultEspeakConfig returns the defaults: voice cmn, 165 wpm, pitch 50.
func DefaultEspeakConfig() EspeakConfig {
	return EspeakConfig{Voice: "cmn", Speed: 165, Pitch: 50}
}

// Validate implements config.Validatable.
func (c *EspeakConfig) Validate(v *config.Validator) {
	if c.Voice == "" || len(c.Voice) > 64 || strings.ContainsAny(c.Voice, " \t\n/\\") || strings.HasPrefix(c.Voice, "-") {
		v.Errorf("voice", "must be an espeak-ng voice name such as cmn (`espeak-ng --voices=cmn` lists them), got %q", c.Voice)
	}
	if c.Speed < 80 || c.Speed > 450 {
		v.Errorf("speed", "must be 80 to 450 words per minute, got %d", c.Speed)
	}
	if c.Pitch < 0 || c.Pitch > 99 {
		v.Errorf("pitch", "must be 0 to 99, got %d", c.Pitch)
	}
}

// Espeak speaks through the espeak-ng binary: one process per sentence, the
// text on its stdin (never on the command line), the WAV it writes on
// stdout streamed to emit as it arrives. Safe for concurrent use; each
// Synthesize runs its own processes.
type Espeak struct {
	bin  string
	args []string
	// started, when set (tests), is called with each process's pid.
	started func(pid int)
}

var _ Synthesizer = (*Espeak)(nil)

// NewEspeak returns an espeak-ng synthesizer. It looks the binary up (a
// stat, no process is started); a missing binary gives an error wrapping
// ErrEspeakMissing that says how to install it.
func NewEspeak(cfg EspeakConfig) (*Espeak, error) {
	d := DefaultEspeakConfig()
	if cfg.Voice == "" {
		cfg.Voice = d.Voice
	}
	if cfg.Speed == 0 {
		cfg.Speed = d.Speed
	}
	name := cfg.Binary
	if name == "" {
		name = "espeak-ng"
	}
	bin, err := exec.LookPath(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v (install it: apt-get install espeak-ng, or dnf install espeak-ng; or set tts.espeak.binary)", ErrEspeakMissing, name, err)
	}
	return &Espeak{bin: bin, args: []string{"-v", cfg.Voice, "-s", strconv.Itoa(cfg.Speed), "-p", strconv.Itoa(cfg.Pitch), "-b", "1", "--stdout"}}, nil
}

// Name returns "espeak-ng".
func (e *Espeak) Name() string { return "espeak-ng" }

// SampleRate returns EspeakRate.
func (e *Espeak) SampleRate() int { return EspeakRate }

// Synthesize implements Synthesizer: one espeak-ng process per sentence,
// killed when ctx is cancelled or emit fails.
func (e *Espeak) Synthesize(ctx context.Context, text string, emit func([]float32) error) error {
	return eachSentence(ctx, text, func(ctx context.Context, s string) error { return e.sentence(ctx, s, emit) })
}

// errEmit marks emit's error so that it is returned as it is.
type errEmit struct{ err error }

func (e errEmit) Error() string { return e.err.Error() }
func (e errEmit) Unwrap() error { return e.err }

// sentence runs one espeak-ng process on s and streams its samples.
func (e *Espeak) sentence(parent context.Context, s string, emit func([]float32) error) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.bin, e.args...)
	// One line of text: espeak-ng would pause at a newline anyway.
	cmd.Stdin = strings.NewReader(strings.ReplaceAll(s, "\n", " ") + "\n")
	stderr := &limitedBuffer{max: 4096}
	cmd.Stderr = stderr
	cmd.WaitDelay = time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("espeak-ng: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%w: start %s: %v (install it: apt-get install espeak-ng)", ErrEspeakMissing, e.bin, err)
	}
	// Below the daemon's own threads: synthesis runs ~50× faster than real
	// time, while RTP pacing of every call must not wait behind it.
	_ = syscall.Setpriority(syscall.PRIO_PROCESS, cmd.Process.Pid, espeakNice)
	if e.started != nil {
		e.started(cmd.Process.Pid)
	}
	streamErr := e.stream(out, emit)
	if streamErr != nil {
		cancel() // kill espeak-ng: nobody reads the rest
	}
	waitErr := cmd.Wait()
	var em errEmit
	if errors.As(streamErr, &em) {
		return em.err
	}
	if err := parent.Err(); err != nil {
		return err
	}
	if streamErr != nil {
		return fmt.Errorf("%w: espeak-ng output: %v%s", ErrSynthesis, streamErr, stderr.suffix())
	}
	if waitErr != nil {
		return fmt.Errorf("%w: espeak-ng: %v%s", ErrSynthesis, waitErr, stderr.suffix())
	}
	return nil
}

// stream decodes espeak-ng's WAV (its header has a placeholder size) and
// emits the samples as they arrive, resampled to EspeakRate if the header
// says otherwise.
func (e *Espeak) stream(out io.Reader, emit func([]float32) error) error {
	br := bufio.NewReaderSize(out, 8192)
	if _, err := br.Peek(1); errors.Is(err, io.EOF) {
		return nil // no output at all: the exit status tells why
	}
	r, err := audio.NewWAVReader(br)
	if err != nil {
		return err
	}
	var rs *audio.Resampler
	if rate := r.Format().SampleRate; rate != EspeakRate {
		if rs, err = audio.NewResampler(rate, EspeakRate); err != nil {
			return err
		}
	}
	buf := make([]float32, 2048)
	var conv []float32
	for {
		n, err := r.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			if rs != nil {
				conv = rs.Process(conv[:0], chunk)
				chunk = conv
			}
			if len(chunk) > 0 {
				if err := emit(chunk); err != nil {
					return errEmit{err}
				}
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	if rs != nil {
		if tail := rs.Flush(conv[:0]); len(tail) > 0 {
			if err := emit(tail); err != nil {
				return errEmit{err}
			}
		}
	}
	return nil
}

// limitedBuffer keeps the first max bytes written to it (espeak-ng's
// stderr, for the error message). Safe for concurrent use.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// suffix returns ": <stderr>" or "".
func (b *limitedBuffer) suffix() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := strings.TrimSpace(b.buf.String())
	if s == "" {
		return ""
	}
	return ": " + s
}
