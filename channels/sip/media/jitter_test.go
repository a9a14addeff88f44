package media

import (
	"math"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/asr/audio"
)

// tone is a frame of µ-law samples of a 500 Hz tone starting at sample n.
func tone(n int) ([]byte, []float32) {
	x := make([]float32, 160)
	for i := range x {
		x[i] = 0.5 * float32(math.Sin(2*math.Pi*500*float64(n+i)/8000))
	}
	b := make([]byte, 160)
	audio.EncodeMuLaw(b, x)
	audio.DecodeMuLaw(x, b)
	return b, x
}

func TestJitterBufferWrapAndOrder(t *testing.T) {
	jb := newJitterBuffer(480, 160)
	base := uint32(math.MaxUint32 - 5*160) // the timestamp wraps mid-stream
	frames := make([][]float32, 12)
	order := []int{0, 2, 1, 3, 5, 4, 6, 7, 9, 8, 10, 11}
	for _, i := range order {
		b, x := tone(i * 160)
		frames[i] = x
		if r := jb.put(base+uint32(i*160), b, false, i == 0); r != putOK {
			t.Fatalf("frame %d: %v", i, r)
		}
	}
	out := make([]float32, 160)
	for range 3 { // the playout delay
		if k := jb.pop(out); k != frameSilence {
			t.Fatalf("delay frame: %v", k)
		}
	}
	for i := range frames {
		if k := jb.pop(out); k != frameAudio {
			t.Fatalf("frame %d: kind %v", i, k)
		}
		start := 0
		if i == 0 {
			start = fadeLen
		}
		for j := start; j < 160; j++ {
			if out[j] != frames[i][j] {
				t.Fatalf("frame %d sample %d: %v, want %v", i, j, out[j], frames[i][j])
			}
		}
	}
	// A frame whose time has passed is late; a repeated one a duplicate.
	b, _ := tone(0)
	if r := jb.put(base, b, false, false); r != putLate {
		t.Errorf("late frame: %v", r)
	}
	if r := jb.put(base+12*160, b, false, false); r != putOK {
		t.Errorf("next frame: %v", r)
	}
	if r := jb.put(base+12*160, b, false, false); r != putDuplicate {
		t.Errorf("duplicate: %v", r)
	}
}

func TestConcealmentFadesToSilence(t *testing.T) {
	jb := newJitterBuffer(160, 160)
	out := make([]float32, 160)
	for i := range 4 {
		b, _ := tone(i * 160)
		jb.put(uint32(i*160), b, false, false)
	}
	jb.pop(out) // delay
	for range 4 {
		jb.pop(out)
	}
	rms := func(x []float32) float64 {
		var s float64
		for _, v := range x {
			s += float64(v) * float64(v)
		}
		return math.Sqrt(s / float64(len(x)))
	}
	full := rms(out)
	prevEnd := out[159]
	var levels []float64
	for i := range 5 {
		k := jb.pop(out)
		want := frameConcealed
		if i >= concealFrames {
			want = frameSilence
		}
		if k != want {
			t.Fatalf("gap frame %d: %v, want %v", i, k, want)
		}
		// No click: the first sample continues from the last one.
		if d := math.Abs(float64(out[0] - prevEnd)); d > 0.1 {
			t.Errorf("gap frame %d jumps by %.3f", i, d)
		}
		prevEnd = out[159]
		levels = append(levels, rms(out))
	}
	if !(levels[0] < full && levels[1] < levels[0]*0.6 && levels[2] < levels[1]*0.6 && levels[3] < 0.001 && levels[4] == 0) {
		t.Errorf("concealment levels %v (full %v)", levels, full)
	}
	// Resuming fades in: the first sample does not jump.
	b, _ := tone(9 * 160)
	jb.put(uint32(9*160), b, false, true)
	jb.pop(out)
	jb.pop(out)
	if math.Abs(float64(out[0])) > 0.1 {
		t.Errorf("resume jumps to %v", out[0])
	}
}

func TestJitterBufferDriftAndJumps(t *testing.T) {
	jb := newJitterBuffer(480, 160)
	b, _ := tone(0)
	out := make([]float32, 160)
	jb.put(1000, b, false, true)
	// A sender that stalls then bursts: frames far ahead re-anchor instead
	// of overflowing the ring.
	if r := jb.put(1000+1<<20, b, false, false); r != putOK {
		t.Fatalf("jump ahead: %v", r)
	}
	if jb.play != 1000+1<<20-480 {
		t.Errorf("not re-anchored: play %d", jb.play)
	}
	// Consecutive late packets (the sender jumped back) re-anchor too.
	jb = newJitterBuffer(480, 160)
	jb.put(1000, b, false, true)
	for range 5 {
		jb.pop(out)
	}
	for i := range lateReanchor {
		r := jb.put(1000-uint32(i*160), b, false, false)
		if (i < lateReanchor-1) != (r == putLate) {
			t.Errorf("late packet %d: %v", i, r)
		}
	}
	// Too much buffered for too long: a frame is dropped now and then.
	jb = newJitterBuffer(160, 160)
	ts := uint32(0)
	for range 10 {
		jb.put(ts, b, false, false)
		ts += 160
	}
	start := jb.play
	for range driftTicks + 1 {
		jb.put(ts, b, false, false)
		ts += 160
		jb.pop(out)
	}
	if got := (jb.play - start) / 160; got != driftTicks+2 {
		t.Errorf("played %d frames in %d ticks, want one dropped", got, driftTicks+1)
	}
}

func TestRxSource(t *testing.T) {
	var r rxSource
	seq := uint16(65530)
	for i := range 20 {
		if i == 7 || i == 8 {
			seq++
			continue // lost across the wrap
		}
		r.update(1, seq)
		seq++
	}
	if r.cycles != 1<<16 || r.totalLost() != 2 || r.received != 18 {
		t.Errorf("cycles %d lost %d received %d", r.cycles, r.totalLost(), r.received)
	}
	if got := r.extMax(); got != 1<<16+uint32(seq-1) {
		t.Errorf("extended max %d", got)
	}
	rep := r.report(0, 0)
	if rep.FractionLost != uint8(2*256/20) || rep.TotalLost != 2 {
		t.Errorf("report %+v", rep)
	}
	// A jump needs a second packet to be believed.
	if r.update(1, seq+10000) {
		t.Error("a single jump was counted")
	}
	if !r.update(1, seq+10001) || r.totalLost() != 2 {
		t.Errorf("restart: lost %d", r.totalLost())
	}
	// Jitter: packets 20 ms apart in time and timestamp have none; 10 ms
	// of variation grows it.
	var j rxSource
	for i := range 50 {
		j.arrival(time.Duration(i)*20*time.Millisecond, uint32(i*160))
	}
	if j.jitter != 0 {
		t.Errorf("jitter %v", j.jitter)
	}
	for i := 50; i < 100; i++ {
		d := time.Duration(i) * 20 * time.Millisecond
		if i%2 == 0 {
			d += 10 * time.Millisecond
		}
		j.arrival(d, uint32(i*160))
	}
	if j.jitter < 60 || j.jitter > 80 { // 80 units of variation each packet
		t.Errorf("jitter %v timestamp units", j.jitter)
	}
}

func TestDTMFReceiver(t *testing.T) {
	now := time.Unix(0, 0)
	var r dtmfReceiver
	var out []rune
	ev := func(code uint8, end bool) dtmfEvent { return dtmfEvent{Event: code, End: end, Duration: 800} }
	// '5' with three end packets: once.
	for range 3 {
		out = r.packet(100, ev(5, false), now, out)
	}
	for range 3 {
		out = r.packet(100, ev(5, true), now, out)
	}
	// '#' whose end packets were lost: at the next event...
	out = r.packet(900, ev(11, false), now, out)
	out = r.packet(1700, ev(1, true), now, out)
	// ...or after the timeout.
	out = r.packet(2500, ev(12, false), now, out)
	out = r.poll(now.Add(dtmfTimeout/2), out)
	out = r.poll(now.Add(2*dtmfTimeout), out)
	out = r.poll(now.Add(3*dtmfTimeout), out)
	// A straggler of an old event and a non-digit event do nothing.
	out = r.packet(100, ev(5, true), now, out)
	out = r.packet(3300, ev(16, true), now, out)
	if string(out) != "5#1A" {
		t.Errorf("got %q", string(out))
	}
	for _, d := range "0123456789*#ABCDabcd" {
		code, ok := digitEvent(d)
		back, ok2 := eventDigit(code)
		if !ok || !ok2 || (back != d && back != d-('a'-'A')) {
			t.Errorf("%q → %d → %q", d, code, back)
		}
	}
	b := dtmfEvent{Event: 11, End: true, Volume: 10, Duration: 1234}.append(nil)
	if e, err := parseEvent(b); err != nil || e != (dtmfEvent{11, true, 10, 1234}) {
		t.Errorf("round trip %+v %v", e, err)
	}
}
