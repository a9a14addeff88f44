package media

import (
	"encoding/binary"
	"fmt"
	"time"
)

// RFC 4733 telephone-event handling.

const (
	// dtmfTimeout is how long after an event's last packet a digit whose
	// end packets were all lost is reported anyway.
	dtmfTimeout = 300 * time.Millisecond
	// dtmfEndRepeats is how many end packets go out per event (RFC 4733
	// §2.5.1.4 recommends three).
	dtmfEndRepeats = 3
	// dtmfVolume is the power level we send: -10 dBm0.
	dtmfVolume = 10
	// dtmfQueue bounds the digits SendDTMF may queue.
	dtmfQueue = 32
	// dtmfGapFrames is the audio frames between two sent events.
	dtmfGapFrames = 3
	// maxDTMFDuration bounds one sent event (longer ones would need the
	// RFC 4733 §2.5.2.3 segmentation).
	maxDTMFDuration = 5 * time.Second
	// defaultDTMFDuration is sent for a duration <= 0.
	defaultDTMFDuration = 100 * time.Millisecond
)

// dtmfEvent is one RFC 4733 telephone-event payload.
type dtmfEvent struct {
	Event    uint8
	End      bool
	Volume   uint8
	Duration uint16 // in timestamp units
}

// parseEvent decodes a telephone-event payload; only its first 4 bytes
// count (several events in one payload are not used for DTMF).
func parseEvent(b []byte) (dtmfEvent, error) {
	if len(b) < 4 {
		return dtmfEvent{}, fmt.Errorf("telephone-event payload of %d bytes, want 4", len(b))
	}
	return dtmfEvent{
		Event:    b[0],
		End:      b[1]&0x80 != 0,
		Volume:   b[1] & 0x3f,
		Duration: binary.BigEndian.Uint16(b[2:4]),
	}, nil
}

// append encodes e after dst.
func (e dtmfEvent) append(dst []byte) []byte {
	f := e.Volume & 0x3f
	if e.End {
		f |= 0x80
	}
	return append(dst, e.Event, f, byte(e.Duration>>8), byte(e.Duration))
}

const dtmfDigits = "0123456789*#ABCD"

// eventDigit maps an event code to its keypad digit (0-9, *, #, A-D).
func eventDigit(ev uint8) (rune, bool) {
	if int(ev) < len(dtmfDigits) {
		return rune(dtmfDigits[ev]), true
	}
	return 0, false
}

// digitEvent maps a keypad digit to its event code (lower-case a-d too).
func digitEvent(r rune) (uint8, bool) {
	if r >= 'a' && r <= 'd' {
		r -= 'a' - 'A'
	}
	for i := 0; i < len(dtmfDigits); i++ {
		if rune(dtmfDigits[i]) == r {
			return uint8(i), true
		}
	}
	return 0, false
}

// dtmfReceiver turns telephone-event packets into digits, each once: an
// event is identified by its RTP timestamp, reported at its first end
// packet, or dtmfTimeout after its last packet when every end packet was
// lost. Not safe for concurrent use.
type dtmfReceiver struct {
	ts       uint32
	active   bool // ts names an event
	digit    rune
	reported bool
	lastSeen time.Time
}

// packet takes one event packet and appends the digits it completes to
// out.
func (r *dtmfReceiver) packet(ts uint32, ev dtmfEvent, now time.Time, out []rune) []rune {
	d, ok := eventDigit(ev.Event)
	if !ok {
		return out
	}
	if r.active {
		if delta := int32(ts - r.ts); delta == 0 {
			r.lastSeen = now
			if ev.End && !r.reported {
				r.reported = true
				out = append(out, r.digit)
			}
			return out
		} else if delta < 0 {
			return out // a straggler of an older event
		}
		if !r.reported { // the previous event's end packets were all lost
			out = append(out, r.digit)
		}
	}
	r.ts, r.active, r.digit, r.reported, r.lastSeen = ts, true, d, ev.End, now
	if ev.End {
		out = append(out, d)
	}
	return out
}

// poll reports an event whose end never came, dtmfTimeout after its last
// packet.
func (r *dtmfReceiver) poll(now time.Time, out []rune) []rune {
	if r.active && !r.reported && now.Sub(r.lastSeen) > dtmfTimeout {
		r.reported = true
		out = append(out, r.digit)
	}
	return out
}

// reset forgets the current event (a new SSRC).
func (r *dtmfReceiver) reset(now time.Time, out []rune) []rune {
	if r.active && !r.reported {
		out = append(out, r.digit)
	}
	*r = dtmfReceiver{}
	return out
}

// dtmfSend is one digit waiting or being sent.
type dtmfSend struct {
	event    uint8
	duration uint32 // wanted, timestamp units
	// filled in while sending
	started bool
	ts      uint32 // the event's RTP timestamp
	sent    uint32 // duration so far
	ends    int    // end packets sent
}
