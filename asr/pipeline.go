package asr

import (
	"context"
	"fmt"
	"time"

	"github.com/zhiyin/zhiyin/asr/vad"
)

// SampleRate is the rate the recognisers and the VAD run at; other audio is
// resampled to it.
const SampleRate = 16000

// segmenter cuts a 16 kHz stream into speech segments with the VAD (or,
// without one, into fixed windows) and hands each finished segment's
// samples to onSegment. It keeps only the audio that may still belong to a
// segment: the open segment, or a short pre-roll while nobody speaks.
// Not safe for concurrent use.
type segmenter struct {
	det       *vad.Detector // nil: fixed windows
	window    int64         // without a VAD, the segment length
	preroll   int64
	buf       []float32 // samples from bufStart to pos
	bufStart  int64
	pos       int64
	segStart  int64 // -1 when no segment is open
	events    []vad.Event
	onSegment func(ctx context.Context, start, end int64, samples []float32) error
}

func newSegmenter(det *vad.Detector, vc VADConfig, onSegment func(context.Context, int64, int64, []float32) error) *segmenter {
	s := &segmenter{det: det, segStart: -1, onSegment: onSegment}
	// A segment's start is reported once MinSpeech of speech was heard,
	// and includes the pad before it: keep that much, plus two VAD
	// windows, of the past.
	s.preroll = samplesOf(vc.MinSpeech+vc.SpeechPad) + 2*576 + SampleRate/10
	s.window = samplesOf(vc.MaxSpeech)
	if s.window <= 0 {
		s.window = 20 * SampleRate
	}
	return s
}

func samplesOf(d time.Duration) int64 { return int64(d) * SampleRate / int64(time.Second) }

// feed adds samples; segments that end within them are handed on.
func (s *segmenter) feed(ctx context.Context, samples []float32) error {
	s.buf = append(s.buf, samples...)
	s.pos += int64(len(samples))
	if s.det == nil {
		for s.pos-s.bufStart >= s.window {
			if err := s.emit(ctx, s.bufStart, s.bufStart+s.window); err != nil {
				return err
			}
		}
		return nil
	}
	var err error
	s.events, err = s.det.Accept(ctx, samples, s.events[:0])
	if err != nil {
		return fmt.Errorf("vad: %w", err)
	}
	if err := s.handle(ctx); err != nil {
		return err
	}
	s.trim()
	return nil
}

// speaking returns the open segment's start, or -1.
func (s *segmenter) speaking() int64 { return s.segStart }

// current returns the open segment's samples so far (nil when none); the
// slice aliases the buffer: copy it before the next feed.
func (s *segmenter) current() []float32 {
	if s.segStart < 0 {
		return nil
	}
	return s.buf[s.segStart-s.bufStart:]
}

func (s *segmenter) handle(ctx context.Context) error {
	for _, ev := range s.events {
		switch ev.Kind {
		case vad.SpeechStart:
			s.segStart = max(ev.Sample, s.bufStart)
		case vad.SpeechEnd:
			if s.segStart < 0 {
				continue
			}
			end := min(ev.Sample, s.pos)
			if err := s.emit(ctx, s.segStart, end); err != nil {
				return err
			}
			s.segStart = -1
		}
	}
	return nil
}

// emit hands on samples [start, end) and drops what precedes end.
func (s *segmenter) emit(ctx context.Context, start, end int64) error {
	seg := make([]float32, end-start)
	copy(seg, s.buf[start-s.bufStart:end-s.bufStart])
	s.drop(end)
	if len(seg) == 0 {
		return nil
	}
	return s.onSegment(ctx, start, end, seg)
}

// drop forgets samples before at.
func (s *segmenter) drop(at int64) {
	if at <= s.bufStart {
		return
	}
	n := at - s.bufStart
	s.buf = s.buf[:copy(s.buf, s.buf[n:])]
	s.bufStart = at
}

// trim keeps the pre-roll while no segment is open.
func (s *segmenter) trim() {
	keep := s.pos - s.preroll
	if s.segStart >= 0 {
		keep = min(keep, s.segStart)
	}
	// Compact only when it frees a good share, so that copying stays
	// linear in the audio.
	if keep-s.bufStart > int64(max(len(s.buf)/2, 4096)) {
		s.drop(keep)
	}
}

// flush ends the stream: an open segment ends at the last sample.
func (s *segmenter) flush(ctx context.Context) error {
	if s.det == nil {
		if s.pos > s.bufStart {
			return s.emit(ctx, s.bufStart, s.pos)
		}
		return nil
	}
	s.events = s.det.Flush(s.events[:0])
	if err := s.handle(ctx); err != nil {
		return err
	}
	if s.segStart >= 0 && s.pos > s.segStart {
		err := s.emit(ctx, s.segStart, s.pos)
		s.segStart = -1
		return err
	}
	return nil
}
