package vad

// segmenter turns per-window speech probabilities into Start and End
// events (the rules are in doc.go). It knows nothing of the model: window
// i covers samples [i·ws, (i+1)·ws).
type segmenter struct {
	ws         int64 // new samples per window
	thr, neg   float64
	minSpeech  int64 // samples
	minSilence int64
	pad        int64
	maxRaw     int64 // longest unpadded segment; 0: no limit

	next      int64 // index of the next window
	triggered bool  // a segment is open (confirmed or not)
	start     int64 // its unpadded start
	confirmed bool  // its Start event was emitted
	tempEnd   int64 // the tentative end (start of the silence); -1: none
	// hist holds the probabilities of the open segment's windows from
	// histFirst on (kept only when maxRaw > 0, to find where to cut).
	hist      []float32
	histFirst int64
	pending   bool  // a kept segment ended and its End is not emitted yet
	pendEnd   int64 // its unpadded end
	lastEnd   int64 // the last End emitted (0 before any)
	open      bool  // a Start was emitted without its End
}

func newSegmenter(cfg Config, rate, ws int) segmenter {
	s := segmenter{
		ws:         int64(ws),
		thr:        cfg.Threshold,
		neg:        cfg.negThreshold(),
		minSpeech:  samples(cfg.MinSpeech, rate),
		minSilence: samples(cfg.MinSilence, rate),
		pad:        samples(cfg.SpeechPad, rate),
		tempEnd:    -1,
	}
	if cfg.MaxSpeech > 0 {
		s.maxRaw = samples(cfg.MaxSpeech, rate) - 2*s.pad - s.ws
		s.hist = make([]float32, 0, s.maxRaw/s.ws+2)
	}
	return s
}

// reset returns to the start of a stream, keeping the configuration.
func (s *segmenter) reset() {
	s.next, s.triggered, s.start, s.confirmed, s.tempEnd = 0, false, 0, false, -1
	s.hist, s.histFirst = s.hist[:0], 0
	s.pending, s.pendEnd, s.lastEnd, s.open = false, 0, 0, false
}

// window takes the next window's probability and appends the events that
// became certain.
func (s *segmenter) window(p float32, dst []Event) []Event {
	i := s.next
	s.next++
	at := i * s.ws
	prob := float64(p)
	switch {
	case !s.triggered:
		if prob >= s.thr {
			s.triggered, s.start, s.confirmed, s.tempEnd = true, at, false, -1
			s.hist, s.histFirst = s.hist[:0], i
			if s.maxRaw > 0 {
				s.hist = append(s.hist, p)
			}
		}
	default:
		if s.maxRaw > 0 {
			s.hist = append(s.hist, p)
		}
		if prob >= s.thr {
			s.tempEnd = -1
		} else if prob < s.neg {
			if s.tempEnd < 0 {
				s.tempEnd = at
			}
			if at-s.tempEnd >= s.minSilence {
				dst = s.finish(s.tempEnd, dst)
				break
			}
		}
		if s.maxRaw > 0 && (i+1)*s.ws-s.start > s.maxRaw {
			dst = s.cut(i, dst)
		}
	}
	return s.settle(dst)
}

// settle emits the Start of an open segment once it is sure to be kept,
// and the End of the last kept segment once no later segment can start
// close enough to share its padding.
func (s *segmenter) settle(dst []Event) []Event {
	if s.triggered && !s.confirmed {
		// The segment's end can be no earlier than its tentative end, or
		// the next window when there is none (a cut segment is longer).
		minEnd := s.next * s.ws
		if s.tempEnd >= 0 {
			minEnd = s.tempEnd
		}
		if minEnd-s.start > s.minSpeech {
			dst = s.confirm(dst)
		}
	}
	if s.pending && !(s.triggered && s.start < s.pendEnd+2*s.pad) && s.next*s.ws >= s.pendEnd+2*s.pad {
		dst = s.emitEnd(s.pendEnd+s.pad, dst)
	}
	return dst
}

// confirm emits the open segment's Start, first resolving the End of the
// previous kept segment: a gap under 2·pad is split in half.
func (s *segmenter) confirm(dst []Event) []Event {
	st := max(s.start-s.pad, 0)
	if s.pending {
		end := s.pendEnd + s.pad
		if gap := s.start - s.pendEnd; gap < 2*s.pad {
			end, st = s.pendEnd+gap/2, s.start-gap/2
		}
		dst = s.emitEnd(end, dst)
	}
	s.confirmed, s.open = true, true
	return append(dst, Event{Kind: SpeechStart, Sample: max(st, s.lastEnd)})
}

// finish ends the open segment at end (unpadded): kept when confirmed or
// longer than minSpeech, else dropped.
func (s *segmenter) finish(end int64, dst []Event) []Event {
	if !s.confirmed && end-s.start > s.minSpeech {
		dst = s.confirm(dst)
	}
	if s.confirmed {
		s.pending, s.pendEnd = true, end
	}
	s.triggered, s.confirmed, s.tempEnd = false, false, -1
	s.hist = s.hist[:0]
	return dst
}

// cut ends a segment that reached maxRaw at window i: at its tentative end
// when silence has begun, else in the middle of the quietest window of its
// second half (the latest of equals), where the next segment then starts.
func (s *segmenter) cut(i int64, dst []Event) []Event {
	if s.tempEnd >= 0 {
		return s.finish(s.tempEnd, dst)
	}
	from := max((s.start+s.maxRaw/2+s.ws-1)/s.ws, s.histFirst)
	q := i
	for j := i - 1; j >= from; j-- {
		if s.hist[j-s.histFirst] < s.hist[q-s.histFirst] {
			q = j
		}
	}
	c := q*s.ws + s.ws/2
	rest := s.hist[q+1-s.histFirst:]
	dst = s.finish(c, dst)
	s.hist = append(s.hist[:0], rest...)
	s.triggered, s.start, s.confirmed, s.tempEnd, s.histFirst = true, c, false, -1, q+1
	return dst
}

// flush ends the stream at pos samples: an open segment ends at its
// tentative end, or at pos when there is none.
func (s *segmenter) flush(pos int64, dst []Event) []Event {
	if s.triggered {
		end := pos
		if s.tempEnd >= 0 {
			end = s.tempEnd
		}
		dst = s.finish(end, dst)
	}
	if s.pending {
		dst = s.emitEnd(min(s.pendEnd+s.pad, pos), dst)
	}
	return dst
}

func (s *segmenter) emitEnd(e int64, dst []Event) []Event {
	s.pending, s.open, s.lastEnd = false, false, e
	return append(dst, Event{Kind: SpeechEnd, Sample: e})
}
