package media

import (
	"math/bits"

	"github.com/zhiyin/zhiyin/asr/audio"
)

// Jitter buffer and packet-loss concealment.

const (
	// lateReanchor consecutive late packets re-anchor the playout point
	// (the sender's clock is slower than ours, or it jumped back).
	lateReanchor = 4
	// driftFrames: when more than the delay plus this many frames stay
	// buffered for driftTicks ticks in a row, one frame is dropped (the
	// sender's clock is faster than ours).
	driftFrames = 2
	driftTicks  = 50
	// concealFrames frames are filled by repeating the last one, fading
	// by 6 dB per frame; silence after that.
	concealFrames = 3
	// fadeLen samples (4 ms) cross-fade wherever the output would jump.
	fadeLen = 32
)

// frameKind is what pop produced.
type frameKind uint8

const (
	frameAudio     frameKind = iota // from packets
	frameConcealed                  // repetition of the last frame
	frameSilence                    // nothing to play
)

// jitterBuffer holds received samples by RTP timestamp until their
// playout time: the first packet (and every talkspurt start that finds
// the buffer empty) anchors the playout point delay samples before its
// timestamp. It stores decoded 16-bit samples in a ring with one validity
// bit each, so packets of any length and order land where they belong.
// Not safe for concurrent use.
type jitterBuffer struct {
	ring     []int16
	valid    []uint64
	mask     uint32
	delay    uint32 // playout delay in samples
	anchored bool
	play     uint32 // timestamp of the next sample to play
	high     uint32 // end timestamp of the newest packet
	lateRun  int
	fullRun  int

	last     []float32 // the last frame played from packets
	conceal  int       // frames concealed since
	prev     float32   // the last sample output
	lastReal bool      // the previous frame came from packets
}

func newJitterBuffer(delay uint32, frame int) *jitterBuffer {
	size := uint32(1) << bits.Len32(2*delay+uint32(frame)*8+1)
	return &jitterBuffer{
		ring:  make([]int16, size),
		valid: make([]uint64, (size+63)/64),
		mask:  size - 1,
		delay: delay,
		last:  make([]float32, frame),
	}
}

// reset forgets every buffered sample; the next packet anchors anew.
func (j *jitterBuffer) reset() {
	clear(j.valid)
	j.anchored, j.lateRun, j.fullRun = false, 0, 0
}

func (j *jitterBuffer) anchor(ts uint32) {
	clear(j.valid)
	j.play, j.high = ts-j.delay, ts
	j.anchored, j.lateRun, j.fullRun = true, 0, 0
}

// empty reports whether nothing is buffered ahead of the playout point.
func (j *jitterBuffer) empty() bool { return int32(j.high-j.play) <= 0 }

// putResult says what became of a packet.
type putResult uint8

const (
	putOK putResult = iota
	putLate
	putDuplicate
)

// put stores a G.711 payload with RTP timestamp ts. marker is the RTP
// marker bit (talkspurt start).
func (j *jitterBuffer) put(ts uint32, payload []byte, alaw, marker bool) putResult {
	size := uint32(len(j.ring))
	n := uint32(len(payload))
	if n == 0 {
		return putOK
	}
	if n > size/2 {
		payload, n = payload[:size/2], size/2
	}
	if !j.anchored || (marker && j.empty()) {
		j.anchor(ts)
	}
	d := int32(ts - j.play)
	if d+int32(n) <= 0 {
		j.lateRun++
		if j.lateRun < lateReanchor && d > -int32(size) {
			return putLate
		}
		j.anchor(ts)
		d = int32(ts - j.play)
	}
	if d > 0 && uint32(d)+n > size {
		// Far ahead of what the ring holds: the sender jumped forward.
		j.anchor(ts)
		d = int32(ts - j.play)
	}
	j.lateRun = 0
	start := uint32(0)
	if d < 0 { // partly late
		start = uint32(-d)
	}
	if j.isValid(ts + start) {
		return putDuplicate
	}
	for i := start; i < n; i++ {
		k := (ts + i) & j.mask
		if alaw {
			j.ring[k] = audio.ALawToLinear(payload[i])
		} else {
			j.ring[k] = audio.MuLawToLinear(payload[i])
		}
		j.valid[k/64] |= 1 << (k % 64)
	}
	if end := ts + n; int32(end-j.high) > 0 {
		j.high = end
	}
	return putOK
}

func (j *jitterBuffer) isValid(ts uint32) bool {
	k := ts & j.mask
	return j.valid[k/64]&(1<<(k%64)) != 0
}

// pop fills dst (one frame) with the samples due now, concealing a lost
// frame, and advances the playout point.
func (j *jitterBuffer) pop(dst []float32) frameKind {
	if !j.anchored {
		j.silence(dst)
		return frameSilence
	}
	// Drift: too much buffered for too long, drop a frame.
	if int32(j.high-j.play) > int32(j.delay)+int32(driftFrames*len(dst)) {
		j.fullRun++
		if j.fullRun >= driftTicks {
			j.fullRun = 0
			j.discard(uint32(len(dst)))
		}
	} else {
		j.fullRun = 0
	}
	got := 0
	for i := range dst {
		k := (j.play + uint32(i)) & j.mask
		if j.valid[k/64]&(1<<(k%64)) != 0 {
			dst[i] = float32(j.ring[k]) * (1.0 / 32768)
			j.valid[k/64] &^= 1 << (k % 64)
			got++
		} else {
			dst[i] = 0
		}
	}
	j.play += uint32(len(dst))
	if got > 0 {
		if !j.lastReal {
			j.fadeIn(dst)
		}
		copy(j.last, dst)
		j.conceal, j.lastReal = 0, true
		j.prev = dst[len(dst)-1]
		return frameAudio
	}
	if j.lastReal || (j.conceal > 0 && j.conceal < concealFrames) {
		// Repeat the last frame, its gain falling from 2^-c to 2^-(c+1)
		// (0 for the last one) across the frame.
		g0 := float32(1) / float32(int(1)<<j.conceal)
		g1 := g0 / 2
		if j.conceal == concealFrames-1 {
			g1 = 0
		}
		n := float32(len(dst))
		for i := range dst {
			g := g0 + (g1-g0)*float32(i)/n
			dst[i] = j.last[i] * g
		}
		j.fadeIn(dst)
		j.conceal++
		j.lastReal = false
		j.prev = dst[len(dst)-1]
		return frameConcealed
	}
	j.silence(dst)
	return frameSilence
}

// discard drops n samples at the playout point.
func (j *jitterBuffer) discard(n uint32) {
	for i := uint32(0); i < n; i++ {
		k := (j.play + i) & j.mask
		j.valid[k/64] &^= 1 << (k % 64)
	}
	j.play += n
}

// silence fills dst with silence, fading out from the last sample.
func (j *jitterBuffer) silence(dst []float32) {
	clear(dst)
	j.fadeIn(dst)
	j.lastReal = false
	j.prev = 0
}

// fadeIn cross-fades from the previous output sample held constant into
// dst over fadeLen samples, so a jump between sources makes no click.
func (j *jitterBuffer) fadeIn(dst []float32) {
	if j.prev == 0 {
		if len(dst) > 0 && dst[0] != 0 {
			// From silence: ramp in.
			for i := 0; i < fadeLen && i < len(dst); i++ {
				dst[i] *= float32(i+1) / (fadeLen + 1)
			}
		}
		return
	}
	for i := 0; i < fadeLen && i < len(dst); i++ {
		w := float32(i+1) / (fadeLen + 1)
		dst[i] = j.prev*(1-w) + dst[i]*w
	}
}
