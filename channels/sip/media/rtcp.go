package media

import (
	"net/netip"
	"time"

	"github.com/pion/rtcp"
)

// RFC 3550 receive statistics (appendix A.1, A.3, A.8) and RTCP.

const (
	maxDropout  = 3000
	maxMisorder = 100
)

// rxSource tracks one SSRC's sequence numbers, loss and jitter; across
// SSRC changes the loss adds up. Not safe for concurrent use.
type rxSource struct {
	started  bool
	ssrc     uint32
	maxSeq   uint16
	cycles   uint32
	baseSeq  uint32
	badSeq   uint32
	received uint64
	// for the fraction lost of our next report
	expectedPrior, receivedPrior uint64
	lostBefore                   uint64 // over earlier SSRCs

	haveTransit bool
	transit     int64
	jitter      float64 // in timestamp units
}

// restart starts counting a new SSRC, keeping the loss so far.
func (r *rxSource) restart() {
	lost := r.totalLost()
	*r = rxSource{lostBefore: lost, jitter: r.jitter}
}

// update counts a packet; false means it is not counted (a jump in
// sequence numbers that a second packet has to confirm).
func (r *rxSource) update(ssrc uint32, seq uint16) bool {
	if !r.started {
		r.started, r.ssrc = true, ssrc
		r.maxSeq, r.baseSeq, r.badSeq = seq, uint32(seq), 1<<16+1
		r.received = 1
		return true
	}
	udelta := seq - r.maxSeq
	switch {
	case udelta < maxDropout:
		if seq < r.maxSeq {
			r.cycles += 1 << 16
		}
		r.maxSeq = seq
	case udelta <= 1<<16-maxMisorder:
		if uint32(seq) != r.badSeq {
			r.badSeq = (uint32(seq) + 1) & 0xffff
			return false
		}
		// Two sequential packets after a jump: the sender restarted.
		lost := r.totalLost()
		jitter := r.jitter
		*r = rxSource{lostBefore: lost, jitter: jitter}
		r.started, r.ssrc = true, ssrc
		r.maxSeq, r.baseSeq, r.badSeq = seq, uint32(seq), 1<<16+1
	default:
		// duplicate or reordered
	}
	r.received++
	return true
}

func (r *rxSource) extMax() uint32 { return r.cycles + uint32(r.maxSeq) }

func (r *rxSource) expected() uint64 {
	if !r.started {
		return 0
	}
	return uint64(r.extMax()-r.baseSeq) + 1
}

// totalLost is the cumulative loss (never negative: duplicates count as
// received).
func (r *rxSource) totalLost() uint64 {
	lost := r.lostBefore
	if e := r.expected(); e > r.received {
		lost += e - r.received
	}
	return lost
}

// arrival updates the interarrival jitter with a packet that arrived
// since (the stream's epoch) and carries timestamp ts.
func (r *rxSource) arrival(since time.Duration, ts uint32) {
	arrival := int64(since) * rate / int64(time.Second)
	transit := arrival - int64(ts)
	if r.haveTransit {
		d := transit - r.transit
		// Wrap of the 32-bit timestamp: keep d in range.
		d = int64(int32(d))
		if d < 0 {
			d = -d
		}
		r.jitter += (float64(d) - r.jitter) / 16
	}
	r.transit, r.haveTransit = transit, true
}

// report fills a reception report block for our next SR or RR.
func (r *rxSource) report(lsr uint32, dlsr time.Duration) rtcp.ReceptionReport {
	expected := r.expected()
	eInt := expected - r.expectedPrior
	rInt := r.received - r.receivedPrior
	r.expectedPrior, r.receivedPrior = expected, r.received
	var fraction uint8
	if eInt > 0 && eInt > rInt {
		fraction = uint8((eInt - rInt) << 8 / eInt)
	}
	lost := min(r.totalLost(), 0x7fffff)
	var delay uint32
	if lsr != 0 {
		delay = uint32(dlsr * 65536 / time.Second)
	}
	return rtcp.ReceptionReport{
		SSRC:               r.ssrc,
		FractionLost:       fraction,
		TotalLost:          uint32(lost),
		LastSequenceNumber: r.extMax(),
		Jitter:             uint32(r.jitter),
		LastSenderReport:   lsr,
		Delay:              delay,
	}
}

// ntpTime is t as a 64-bit NTP timestamp.
func ntpTime(t time.Time) uint64 {
	const ntpEpochOffset = 2208988800 // 1900 to 1970
	sec := uint64(t.Unix()) + ntpEpochOffset
	frac := uint64(t.Nanosecond()) << 32 / uint64(time.Second)
	return sec<<32 | frac
}

// ntpMiddle is the middle 32 bits of an NTP timestamp (LSR's format).
func ntpMiddle(t time.Time) uint32 { return uint32(ntpTime(t) >> 16) }

// rtcpPacket builds our compound report: SR while we send (else RR), a
// report block when we hear the peer, SDES CNAME, and BYE when bye. s.mu
// is held.
func (s *Stream) rtcpPacket(now time.Time, bye bool) []byte {
	var reports []rtcp.ReceptionReport
	if s.src.started {
		reports = append(reports, s.src.report(s.lsr, now.Sub(s.lsrAt)))
	}
	var pkts []rtcp.Packet
	if s.st.Sent > 0 && s.canSend() {
		pkts = append(pkts, &rtcp.SenderReport{
			SSRC:        s.ssrc,
			NTPTime:     ntpTime(now),
			RTPTime:     s.ts,
			PacketCount: uint32(s.st.Sent),
			OctetCount:  uint32(s.st.SentOctets),
			Reports:     reports,
		})
	} else {
		pkts = append(pkts, &rtcp.ReceiverReport{SSRC: s.ssrc, Reports: reports})
	}
	pkts = append(pkts, &rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{
		Source: s.ssrc,
		Items:  []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: s.cname}},
	}}})
	if bye {
		pkts = append(pkts, &rtcp.Goodbye{Sources: []uint32{s.ssrc}})
	}
	b, err := rtcp.Marshal(pkts)
	if err != nil {
		s.log.Debug("rtcp marshal", logKeyErr, err)
		return nil
	}
	return b
}

// handleRTCP takes one datagram from the RTCP port (or an RTCP packet on
// a muxed RTP port). Any bytes are safe.
func (s *Stream) handleRTCP(b []byte, from netip.AddrPort, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started || s.closed {
		return
	}
	latch, want := &s.latchedRTCP, s.n.RemoteRTCP
	if s.n.RTCPMux || want.Port() == s.n.Remote.Port() {
		latch, want = &s.latched, s.n.Remote
	}
	if !s.accept(from, latch, want) {
		return
	}
	pkts, err := rtcp.Unmarshal(b)
	if err != nil {
		return
	}
	for _, p := range pkts {
		switch p := p.(type) {
		case *rtcp.SenderReport:
			s.lsr, s.lsrAt = uint32(p.NTPTime>>16), now
			s.peerReports(p.Reports, now)
		case *rtcp.ReceiverReport:
			s.peerReports(p.Reports, now)
		case *rtcp.Goodbye:
			s.st.PeerBye = true
		}
	}
}

// peerReports takes the report blocks about our SSRC; s.mu is held.
func (s *Stream) peerReports(rs []rtcp.ReceptionReport, now time.Time) {
	for _, r := range rs {
		if r.SSRC != s.ssrc {
			continue
		}
		pr := PeerReport{
			At:             now,
			FractionLost:   float64(r.FractionLost) / 256,
			CumulativeLost: r.TotalLost,
			Jitter:         time.Duration(r.Jitter) * time.Second / rate,
		}
		if r.LastSenderReport != 0 {
			rtt := int64(ntpMiddle(now)) - int64(r.LastSenderReport) - int64(r.Delay)
			if rtt = int64(int32(rtt)); rtt > 0 {
				pr.RTT = time.Duration(rtt) * time.Second / 65536
			}
		}
		s.st.Peer = pr
	}
}
