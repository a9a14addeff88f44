package localaudio

import (
	"math"
	"sync"
	"time"
)

// echoRefFrames is how many recent playback frames the gate's reference
// spans: the loudest of them is what the microphone may still be hearing
// (output latency plus the room), about 160 ms at 20 ms frames.
const echoRefFrames = 8

// echoFilter keeps our own playback from reaching the answerer as the
// caller's speech. The player tells it what it plays; the capture loop asks
// it about each frame. Safe for concurrent use.
type echoFilter struct {
	mode  string
	ratio float64 // the gate as a power ratio, 10^(GateDB/10)
	tail  time.Duration

	mu      sync.Mutex
	playing bool
	until   time.Time // end of the tail after playback stopped
	recent  [echoRefFrames]float64
	next    int
}

func newEchoFilter(cfg Config) *echoFilter {
	return &echoFilter{mode: cfg.Echo, ratio: math.Pow(10, cfg.GateDB/10), tail: cfg.Tail}
}

// played records one frame handed to the output device.
func (e *echoFilter) played(frame []float32) {
	p := power(frame)
	e.mu.Lock()
	e.playing = true
	e.recent[e.next] = p
	e.next = (e.next + 1) % echoRefFrames
	e.mu.Unlock()
}

// stopped records that everything played has left the device at now.
func (e *echoFilter) stopped(now time.Time) {
	e.mu.Lock()
	if e.playing {
		e.playing = false
		e.until = now.Add(e.tail)
	}
	e.mu.Unlock()
}

// apply zeroes frame in place when the policy blocks it (captured at now)
// and says whether it did.
func (e *echoFilter) apply(frame []float32, now time.Time) bool {
	if e.mode == EchoNone {
		return false
	}
	e.mu.Lock()
	active := e.playing || now.Before(e.until)
	ref := 0.0
	for _, p := range e.recent {
		ref = max(ref, p)
	}
	if !active {
		e.recent = [echoRefFrames]float64{}
	}
	e.mu.Unlock()
	if !active {
		return false
	}
	if e.mode == EchoGate && gatePass(power(frame), ref, e.ratio) {
		return false
	}
	clear(frame)
	return true
}

// gatePass says whether a capture frame of mean power capture passes the
// echo gate while the speaker plays at mean power playback: it must be
// louder by the gate's power ratio.
func gatePass(capture, playback, ratio float64) bool {
	return capture > playback*ratio
}

// power is the mean square of frame (0 for an empty one).
func power(frame []float32) float64 {
	if len(frame) == 0 {
		return 0
	}
	var s float64
	for _, v := range frame {
		s += float64(v) * float64(v)
	}
	return s / float64(len(frame))
}
