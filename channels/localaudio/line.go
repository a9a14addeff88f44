package localaudio

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gordonklaus/portaudio"

	"github.com/zhiyin/zhiyin/asr/audio"
	"github.com/zhiyin/zhiyin/channels/voice"
)

// Channel is the CallInfo.Channel of every conversation on a Line.
const Channel = "localaudio"

// Log attribute keys.
const (
	logCall   = "call_id"
	logDevice = "device"
	logRate   = "rate"
	logReason = "reason"
	logError  = "error"
)

// Line is the sound-card line: one conversation at a time between the
// configured devices and an Answerer. Create it with New; Run it once at a
// time (a second concurrent Run returns an error). Stats is safe for
// concurrent use.
type Line struct {
	cfg Config
	a   voice.Answerer
	log *slog.Logger

	running atomic.Bool

	captured, muted, overruns atomic.Uint64
	played, underruns         atomic.Uint64
}

// Stats are a Line's device counters since New, in frames of Config.Frame.
type Stats struct {
	// Captured frames were read from the input device; Muted of them were
	// silenced by the echo policy.
	Captured, Muted uint64
	// Overruns counts input reads that reported lost capture (the device
	// overflowed because we read too late).
	Overruns uint64
	// Played frames were written to the output device (silence included);
	// Underruns counts writes that reported the device had run dry.
	Played, Underruns uint64
}

// New checks cfg and returns a Line that answers with a. It does no I/O;
// devices are opened by Run. A nil log discards.
func New(cfg Config, a voice.Answerer, log *slog.Logger) (*Line, error) {
	if err := validate(cfg); err != nil {
		return nil, err
	}
	if a == nil {
		return nil, errors.New("localaudio: nil answerer")
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Line{cfg: cfg, a: a, log: log}, nil
}

// Stats returns the device counters; safe for concurrent use.
func (l *Line) Stats() Stats {
	return Stats{
		Captured: l.captured.Load(), Muted: l.muted.Load(), Overruns: l.overruns.Load(),
		Played: l.played.Load(), Underruns: l.underruns.Load(),
	}
}

// Run opens the devices and holds conversations until ctx is cancelled or,
// with once, until the first conversation ends (Media.Hangup); with once
// false (the kiosk) a new conversation starts cfg.Restart after one ends.
// Each conversation is CallInfo{Channel: "localaudio", ID: a fresh id, From:
// "local:<input device name>", To: "local"}; the answerer hears
// cfg.SampleRate audio and Media.Play takes the same rate.
//
// It blocks. It returns nil when ctx is cancelled or the once conversation
// ended; an error wrapping ErrDeviceNotFound or ErrAmbiguousDevice (naming
// the devices there are and the key to set) when a device cannot be chosen;
// the device's error when one cannot be opened or fails while running; and
// with once, the answerer's error when it refuses the conversation (the
// kiosk logs it and tries again after cfg.Restart). Overruns and underruns
// are counted (Stats), not errors. The conversation is ended
// (Handler.End) before Run returns. On cancellation Run waits for the
// capture goroutine's current device read (one frame on a working device)
// before it closes the streams: PortAudio cannot close a stream under a
// blocked read.
func (l *Line) Run(ctx context.Context, once bool) error {
	if !l.running.CompareAndSwap(false, true) {
		return errors.New("localaudio: line is already running")
	}
	defer l.running.Store(false)

	d, err := l.open()
	if err != nil {
		return err
	}
	defer d.close()

	runCtx, cancel := context.WithCancel(ctx)
	echo := newEchoFilter(l.cfg)
	p := newPlayer(l.cfg.SampleRate, l.cfg.frameLen(l.cfg.SampleRate))
	var sink sinkSlot
	fail := make(chan error, 2)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := l.capture(runCtx, d, &sink, echo); err != nil {
			fail <- err
		}
	})
	wg.Go(func() {
		if err := l.playback(runCtx, d, p, echo); err != nil {
			fail <- err
		}
	})
	err = l.converse(runCtx, once, d, p, &sink, fail)
	cancel()
	p.shutdown()
	wg.Wait()
	return err
}

// converse runs conversations one after the other; see Run.
func (l *Line) converse(ctx context.Context, once bool, d *devices, p *player, sink *sinkSlot, fail <-chan error) error {
	for {
		err := l.conversation(ctx, d, p, sink, fail)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, errDevice):
			return err
		case err != nil && once:
			return err
		case err != nil:
			l.log.Warn("localaudio: the answerer refused a conversation; trying again", logError, err)
		case once:
			return nil
		}
		wait := l.cfg.Restart
		if err != nil {
			wait = max(wait, time.Second) // no busy loop on a refusing answerer
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case err := <-fail:
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// errDevice marks an error of the devices themselves (ends Run).
var errDevice = errors.New("audio device failed")

// conversation holds one conversation from Answerer.Start to Handler.End.
// It returns nil when it ended (hung up, or ctx cancelled), the answerer's
// error when it refused, or a device error (wrapping errDevice).
func (l *Line) conversation(ctx context.Context, d *devices, p *player, sink *sinkSlot, fail <-chan error) error {
	info := voice.CallInfo{
		Channel: Channel,
		ID:      "local-" + rand.Text(),
		From:    "local:" + d.inName,
		To:      "local",
		Started: time.Now(),
	}
	c := &call{p: p, rate: l.cfg.SampleRate, hung: make(chan struct{})}
	p.reset()
	h, err := l.a.Start(ctx, info, c, l.cfg.SampleRate)
	if err != nil {
		c.end()
		return fmt.Errorf("start conversation: %w", err)
	}
	info.Setup = time.Since(info.Started)
	log := l.log.With(logCall, info.ID)
	log.Info("localaudio: conversation started", logDevice, d.inName, logRate, l.cfg.SampleRate)
	captured0, overruns0 := l.captured.Load(), l.overruns.Load()
	sink.set(h)

	reason := ""
	var devErr error
	select {
	case <-ctx.Done():
		reason = "shutdown"
	case <-c.hung:
		reason = c.reason()
	case <-h.Done():
		reason = "ended by the answerer"
	case devErr = <-fail:
		reason = "audio device failed"
	}
	sink.set(nil)
	c.end()
	p.flush()
	h.Stats(voice.RTPStats{Received: l.captured.Load() - captured0, Lost: l.overruns.Load() - overruns0})
	h.End(reason)
	log.Info("localaudio: conversation ended", logReason, reason)
	return devErr
}

// sinkSlot holds the handler capture feeds, nil between conversations.
type sinkSlot struct{ h atomic.Pointer[voice.Handler] }

func (s *sinkSlot) set(h voice.Handler) {
	if h == nil {
		s.h.Store(nil)
		return
	}
	s.h.Store(&h)
}

func (s *sinkSlot) get() voice.Handler {
	if p := s.h.Load(); p != nil {
		return *p
	}
	return nil
}

// capture reads the input device until ctx is done and hands each frame,
// after the echo policy, to the current handler (a fresh slice each time:
// the handler owns it).
func (l *Line) capture(ctx context.Context, d *devices, sink *sinkSlot, echo *echoFilter) error {
	n := l.cfg.frameLen(l.cfg.SampleRate)
	var rs *audio.Resampler
	if d.inRate != l.cfg.SampleRate {
		var err error
		if rs, err = audio.NewResampler(d.inRate, l.cfg.SampleRate); err != nil {
			return fmt.Errorf("%w: input device %q at %d Hz: %w", errDevice, d.inName, d.inRate, err)
		}
	}
	acc := make([]float32, 0, 4*n)
	for ctx.Err() == nil {
		err := d.in.Read()
		switch {
		case errors.Is(err, portaudio.InputOverflowed):
			l.overruns.Add(1) // the buffer still holds audio: use it
		case err != nil:
			return fmt.Errorf("%w: read from input device %q: %w (check that it is still connected)", errDevice, d.inName, err)
		}
		if rs != nil {
			acc = rs.Process(acc, d.inBuf)
		} else {
			acc = append(acc, d.inBuf...)
		}
		now := time.Now()
		for len(acc) >= n {
			frame := make([]float32, n)
			copy(frame, acc)
			acc = acc[:copy(acc, acc[n:])]
			l.captured.Add(1)
			if echo.apply(frame, now) {
				l.muted.Add(1)
			}
			if h := sink.get(); h != nil {
				h.Audio(frame)
			}
		}
	}
	return nil
}

// graceFrames is how many frames of silence the player writes after its
// queue ran dry before it stops the output stream: a producer slower than
// real time for a moment does not restart the device each time.
const graceFrames = 5

// playback writes what the player queues to the output device, starting
// the stream when audio arrives and stopping it (which lets the device
// play out) when the queue stays empty, or aborting it on StopPlayback.
func (l *Line) playback(ctx context.Context, d *devices, p *player, echo *echoFilter) error {
	n := p.frameLen
	var rs *audio.Resampler
	if d.outRate != p.rate {
		var err error
		if rs, err = audio.NewResampler(p.rate, d.outRate); err != nil {
			return fmt.Errorf("%w: output device %q at %d Hz: %w", errDevice, d.outName, d.outRate, err)
		}
	}
	frame := make([]float32, n)
	var acc []float32
	started := false
	write := func(f []float32) error {
		if rs != nil {
			acc = rs.Process(acc, f)
		} else {
			acc = append(acc, f...)
		}
		for len(acc) >= len(d.outBuf) {
			copy(d.outBuf, acc)
			acc = acc[:copy(acc, acc[len(d.outBuf):])]
			err := d.out.Write()
			switch {
			case errors.Is(err, portaudio.OutputUnderflowed):
				l.underruns.Add(1)
			case err != nil:
				return fmt.Errorf("%w: write to output device %q: %w (check that it is still connected)", errDevice, d.outName, err)
			}
			l.played.Add(1)
		}
		echo.played(f)
		return nil
	}
	stop := func(abort bool) error {
		acc = acc[:0]
		if rs != nil {
			rs.Flush(nil)
		}
		if started {
			started = false
			var err error
			if abort {
				err = d.out.Abort()
			} else {
				err = d.out.Stop()
			}
			if err != nil {
				return fmt.Errorf("%w: stop output device %q: %w", errDevice, d.outName, err)
			}
		}
		echo.stopped(time.Now())
		p.idle()
		return nil
	}
	for {
		if !p.take(ctx, frame) {
			return stop(true)
		}
		if !started {
			if err := d.out.Start(); err != nil {
				return fmt.Errorf("%w: start output device %q: %w", errDevice, d.outName, err)
			}
			started = true
		}
		if err := write(frame); err != nil {
			return err
		}
		// The queue ran dry: a little silence while the producer catches
		// up, then let the device play out.
		for i := 0; p.dry() == dryWait && i < graceFrames; i++ {
			clear(frame)
			if err := write(frame); err != nil {
				return err
			}
		}
		switch p.dry() {
		case dryAbort:
			if err := stop(true); err != nil {
				return err
			}
		case dryWait:
			if err := stop(false); err != nil {
				return err
			}
		}
	}
}
