package asr

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/zhiyin/zhiyin/asr/audio"
	"github.com/zhiyin/zhiyin/asr/features"
)

// EventKind says what a stream event carries.
type EventKind int

const (
	// Partial is the segment being spoken, recognised so far; a later
	// Partial or the Final of the same Index replaces it.
	Partial EventKind = iota
	// Final is a finished segment's result.
	Final
)

// Event is a stream's result.
type Event struct {
	Kind    EventKind
	Index   int // segment number, from 0
	Segment Segment
}

// StreamOptions configure a stream.
type StreamOptions struct {
	Options
	// SampleRate of the PCM written (8000 to 48000); resampled to 16 kHz.
	SampleRate int
	// Partials asks for Partial events every asr.partial_interval of
	// speech (the recognisers are non-streaming: the open segment is
	// recognised again, as sherpa-onnx's simulated streaming does).
	Partials bool
	// OnEvent receives the results, in order, from the stream's own
	// goroutine; it must not block for long.
	OnEvent func(Event)
}

// Stream is one live audio stream: Write PCM as it arrives; results come
// through OnEvent as segments end. Write and Finish are not safe for
// concurrent use: one goroutine owns the stream (Close too); OnEvent runs
// on the stream's own goroutine.
type Stream struct {
	e    *Engine
	rec  recognizer
	o    StreamOptions
	lang string
	itn  bool
	res  *audio.Resampler
	sg   *segmenter
	out  []float32

	jobs    chan streamJob // bounded: Write waits when recognition lags
	done    chan struct{}
	closeMu sync.Once
	cancel  context.CancelCauseFunc
	ctx     context.Context

	next        int   // index of the next segment
	lastPartial int64 // position of the last partial request
	partialBusy chan struct{}
	finished    bool
}

type streamJob struct {
	idx        int
	final      bool
	start, end int64
	samples    []float32
}

// streamQueue bounds the segments waiting for recognition in one stream.
const streamQueue = 8

// NewStream opens a stream. It fails with ErrNoModel, or ErrBusy when
// asr.max_streams streams are open. Close it.
func (e *Engine) NewStream(ctx context.Context, o StreamOptions) (*Stream, error) {
	if o.SampleRate < 8000 || o.SampleRate > 48000 {
		return nil, fmt.Errorf("%w: sample rate %d Hz; send 8000 to 48000 Hz", audio.ErrUnsupported, o.SampleRate)
	}
	select {
	case e.streams <- struct{}{}:
	default:
		return nil, fmt.Errorf("%w: %d open (asr.max_streams)", ErrBusy, cap(e.streams))
	}
	s, err := e.newStream(ctx, o)
	if err != nil {
		<-e.streams
		return nil, err
	}
	return s, nil
}

func (e *Engine) newStream(ctx context.Context, o StreamOptions) (*Stream, error) {
	rec, err := e.model(ctx)
	if err != nil {
		return nil, err
	}
	det, err := e.detector(ctx)
	if err != nil {
		return nil, err
	}
	res, err := audio.NewResampler(o.SampleRate, SampleRate)
	if err != nil {
		return nil, err
	}
	fe, err := features.NewFrontend(rec.info.front)
	if err != nil {
		return nil, err
	}
	s := &Stream{e: e, rec: rec, o: o, res: res, jobs: make(chan streamJob, streamQueue), done: make(chan struct{}), partialBusy: make(chan struct{}, 1)}
	s.lang, s.itn = e.choices(o.Options)
	s.ctx, s.cancel = context.WithCancelCause(context.Background())
	s.sg = newSegmenter(det, e.cfg.VAD, s.segment)
	go s.work(fe)
	return s, nil
}

// segment queues a finished segment (waiting when the queue is full).
func (s *Stream) segment(ctx context.Context, start, end int64, samples []float32) error {
	j := streamJob{idx: s.next, final: true, start: start, end: end, samples: samples}
	s.next++
	select {
	case s.jobs <- j:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-s.ctx.Done():
		return context.Cause(s.ctx)
	}
}

// work recognises queued segments in order.
func (s *Stream) work(fe *features.Frontend) {
	defer close(s.done)
	for j := range s.jobs {
		if s.ctx.Err() != nil {
			continue
		}
		seg, err := s.e.recognizeSegment(s.ctx, s.rec, fe, j.samples, j.start, j.end, s.lang, s.itn)
		if !j.final {
			<-s.partialBusy
		}
		if err != nil {
			s.cancel(err)
			continue
		}
		kind := Partial
		if j.final {
			kind = Final
		}
		if s.o.OnEvent != nil {
			s.o.OnEvent(Event{Kind: kind, Index: j.idx, Segment: seg})
		}
	}
}

// Write feeds PCM samples (float32 in [-1, 1] at the stream's rate). It
// returns the stream's first error (a model failure), ctx's, or ErrTooLong
// past asr.max_duration.
func (s *Stream) Write(ctx context.Context, samples []float32) error {
	if s.finished {
		return ErrClosed
	}
	if err := context.Cause(s.ctx); err != nil {
		return err
	}
	s.out = s.res.Process(s.out[:0], samples)
	if err := s.sg.feed(ctx, s.out); err != nil {
		return err
	}
	if s.sg.pos > samplesOf(s.e.cfg.MaxDuration) {
		return fmt.Errorf("%w: the stream passed asr.max_duration = %s", ErrTooLong, s.e.cfg.MaxDuration)
	}
	s.maybePartial()
	return nil
}

// maybePartial queues a recognition of the open segment when enough new
// speech arrived and no partial is already waiting (it never blocks).
func (s *Stream) maybePartial() {
	iv := samplesOf(s.e.cfg.PartialInterval)
	start := s.sg.speaking()
	if !s.o.Partials || iv <= 0 || start < 0 || s.sg.pos-max(s.lastPartial, start) < iv {
		return
	}
	select {
	case s.partialBusy <- struct{}{}:
	default:
		return // one is still being recognised
	}
	cur := s.sg.current()
	j := streamJob{idx: s.next, start: start, end: s.sg.pos, samples: append([]float32(nil), cur...)}
	select {
	case s.jobs <- j:
		s.lastPartial = s.sg.pos
	default:
		<-s.partialBusy
	}
}

// Finish ends the audio: the open segment is recognised and every result
// delivered before it returns. The stream is then closed.
func (s *Stream) Finish(ctx context.Context) error {
	if s.finished {
		return ErrClosed
	}
	s.out = s.res.Flush(s.out[:0])
	err := s.sg.feed(ctx, s.out)
	if err == nil {
		err = s.sg.flush(ctx)
	}
	s.finished = true
	close(s.jobs)
	select {
	case <-s.done:
	case <-ctx.Done():
		s.cancel(ctx.Err())
		<-s.done
	}
	s.release()
	if err != nil {
		return err
	}
	return context.Cause(s.ctx)
}

// Position returns how much audio was written, at 16 kHz.
func (s *Stream) Position() time.Duration {
	return time.Duration(s.sg.pos * int64(time.Second) / SampleRate)
}

// Close abandons the stream: pending recognitions are cancelled. Safe to
// call more than once and after Finish, from the goroutine that writes.
func (s *Stream) Close() {
	s.cancel(ErrClosed)
	if !s.finished {
		s.finished = true
		close(s.jobs)
	}
	<-s.done
	s.release()
}

func (s *Stream) release() {
	s.closeMu.Do(func() { <-s.e.streams })
}
