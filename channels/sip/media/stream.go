package media

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/rtp"

	"github.com/zhiyin/zhiyin/channels/voice"
)

// Log attribute keys.
const (
	logKeyLocal  = "rtp_local"
	logKeyRemote = "rtp_remote"
	logKeyErr    = "err"
)

const (
	rate = 8000 // G.711 clock and sample rate
	// playHigh samples (100 ms) queued make Play wait; playCap (200 ms)
	// is the most it queues.
	playHigh = rate / 10
	playCap  = 2 * playHigh
	// maxBehind frames late, the clock skips ahead instead of bursting
	// the missed frames out.
	maxBehind = 3
	// activeWindow: a missing frame counts as concealed (lost) only this
	// soon after the last packet; later the peer is just quiet.
	activeWindow = 100 * time.Millisecond
	// maxPacket is the largest datagram read.
	maxPacket = 1500
)

// Sink takes the caller's side of a call from a Stream's clock goroutine:
// one frame of Audio per tick (a fresh slice the sink may keep) and each
// DTMF digit once. Calls never overlap; they should return quickly, since
// the same goroutine sends our audio. voice.Handler satisfies it.
type Sink interface {
	Audio(samples []float32)
	DTMF(digit rune)
}

// Stats are a stream's figures so far.
type Stats struct {
	// RTPStats are the receive side's figures (Received counts accepted
	// packets, Lost the RFC 3550 cumulative loss over every SSRC heard).
	voice.RTPStats
	// Sent and SentOctets count RTP packets and payload octets sent.
	Sent, SentOctets uint64
	// Duplicates counts packets the jitter buffer already held.
	Duplicates uint64
	// Dropped counts packets ignored: from a foreign source, of a payload
	// type not negotiated, malformed, or while the stream was not started.
	Dropped uint64
	// Peer is the peer's last report about our stream.
	Peer PeerReport
	// PeerBye is set once the peer sent an RTCP BYE.
	PeerBye bool
}

// PeerReport is what the peer's last RTCP SR or RR said about our stream.
type PeerReport struct {
	// At is when it arrived; zero when none came yet.
	At time.Time
	// FractionLost is the share of our packets lost since its previous
	// report, 0 to 1; CumulativeLost the total.
	FractionLost   float64
	CumulativeLost uint32
	// Jitter is its interarrival jitter estimate of our stream.
	Jitter time.Duration
	// RTT is the round trip from its LSR/DLSR; 0 until it echoes one of
	// our SRs.
	RTT time.Duration
}

// Stream is one call's RTP/RTCP port pair: it receives the caller's audio
// and digits into a Sink and sends ours, one frame per ptime. Create it
// with Listen, then Start once; Close frees it. Every method is safe for
// concurrent use.
type Stream struct {
	cfg  Config
	log  *slog.Logger
	rtp  *net.UDPConn
	rtcp *net.UDPConn
	addr netip.AddrPort

	done chan struct{} // closed by Close
	wg   sync.WaitGroup
	once sync.Once

	mu      sync.Mutex
	n       Negotiated
	started bool
	closed  bool
	epoch   time.Time // for RFC 3550 arrival times
	frame   int       // samples per frame, fixed at Start

	// receive side
	latched, latchedRTCP netip.AddrPort // where the peer really sends from
	src                  rxSource
	jb                   *jitterBuffer
	dtmfRx               dtmfReceiver
	digits               []rune // received, not yet given to the sink
	lastPacket           time.Time
	st                   Stats
	lsr                  uint32    // middle 32 bits of the peer's last SR
	lsrAt                time.Time // when it arrived

	// send side
	ssrc    uint32
	seq     uint16
	ts      uint32 // timestamp of the next frame
	marker  bool
	sending bool // was sending at the last tick
	queue   []float32
	qHead   int
	qLen    int
	qGen    uint64
	wake    chan struct{} // closed when the queue shrinks; nil when nobody waits
	dtmfTx  []dtmfSend
	gap     int // audio frames still due before the next event
	cname   string

	// onSend, when set (tests), is called after each RTP send with the
	// ideal and actual send time.
	onSend func(ideal, actual time.Time)
}

// Listen binds an RTP/RTCP port pair on ip: an even RTP port from ports
// (tried from a random point through the whole range) and RTCP on the
// next. It wraps ErrNoPorts when none is free. The stream receives (and
// drops) packets until Start. The logger may be nil.
func Listen(ip netip.Addr, ports PortRange, cfg Config, log *slog.Logger) (*Stream, error) {
	if err := validate(cfg); err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	if err := ports.Validate(); err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	network := "udp6"
	if ip.Is4() || ip.Is4In6() {
		ip, network = ip.Unmap(), "udp4"
	}
	var a, b *net.UDPConn
	var err error
	if ports == (PortRange{}) {
		a, b, err = bindAny(network, ip)
	} else {
		a, b, err = bindRange(network, ip, ports)
	}
	if err != nil {
		return nil, err
	}
	s := &Stream{
		cfg:  cfg,
		log:  log,
		rtp:  a,
		rtcp: b,
		addr: netip.AddrPortFrom(ip, uint16(a.LocalAddr().(*net.UDPAddr).Port)),
		done: make(chan struct{}),
	}
	s.ssrc, s.seq, s.ts = random32(), uint16(random32()), random32()
	s.cname = fmt.Sprintf("zhiyin-%08x@%s", s.ssrc, ip)
	s.log = log.With(logKeyLocal, s.addr.String())
	s.wg.Add(2)
	go s.readLoop(a, false)
	go s.readLoop(b, true)
	return s, nil
}

func random32() uint32 {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return mrand.Uint32()
	}
	return binary.BigEndian.Uint32(b[:])
}

func bindPair(network string, ip netip.Addr, port int) (*net.UDPConn, *net.UDPConn, error) {
	a, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port))))
	if err != nil {
		return nil, nil, err
	}
	p := a.LocalAddr().(*net.UDPAddr).Port
	if p%2 != 0 || p >= 65535 {
		a.Close()
		return nil, nil, fmt.Errorf("odd RTP port %d", p)
	}
	b, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(p+1))))
	if err != nil {
		a.Close()
		return nil, nil, err
	}
	return a, b, nil
}

func bindAny(network string, ip netip.Addr) (*net.UDPConn, *net.UDPConn, error) {
	var last error
	for range 64 {
		a, b, err := bindPair(network, ip, 0)
		if err == nil {
			return a, b, nil
		}
		last = err
	}
	return nil, nil, fmt.Errorf("listen on %s: %w: %w", ip, ErrNoPorts, last)
}

func bindRange(network string, ip netip.Addr, r PortRange) (*net.UDPConn, *net.UDPConn, error) {
	n := r.pairs()
	start := mrand.IntN(n)
	var last error
	for i := range n {
		port := r.first() + 2*((start+i)%n)
		a, b, err := bindPair(network, ip, port)
		if err == nil {
			return a, b, nil
		}
		last = err
	}
	return nil, nil, fmt.Errorf("listen on %s ports %d-%d: %w (last: %w)", ip, r.Min, r.Max, ErrNoPorts, last)
}

// LocalAddr is the bound RTP address (RTCP is its port+1). It does no
// I/O.
func (s *Stream) LocalAddr() netip.AddrPort { return s.addr }

// OutputRate is the sample rate Play takes: 8000.
func (s *Stream) OutputRate() int { return rate }

// Start begins the stream with n: every ptime the clock goroutine gives
// one frame to sink.Audio (from the jitter buffer, concealment or
// silence) and any digits to sink.DTMF, and sends one frame (queued
// audio, else silence, so the stream stays continuous), paced on an
// absolute schedule (t0 + k·ptime). The ptime is fixed here. It returns
// ErrStarted on a second call and ErrClosed after Close.
func (s *Stream) Start(n Negotiated, sink Sink) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.started {
		return ErrStarted
	}
	s.started = true
	s.epoch = time.Now()
	s.frame = frameSamples(n.Ptime)
	delay := uint32(s.cfg.Jitter / (time.Second / rate))
	s.jb = newJitterBuffer(delay, s.frame)
	s.apply(n)
	s.marker = true
	s.wg.Add(1)
	go s.clock(sink)
	return nil
}

// frameSamples is the frame length for a ptime.
func frameSamples(ptime int) int {
	if ptime < 10 || ptime > 60 || ptime%10 != 0 {
		ptime = 20
	}
	return ptime * rate / 1000
}

// Update applies a re-INVITE's outcome: a new remote address, codec,
// DTMF payload type or direction. Stopping to send (hold) keeps the clock
// and timestamps running; sending again resumes with a marker bit. A new
// remote address drops the symmetric-RTP latch. The ptime stays as at
// Start. Before Start it only records n.
func (s *Stream) Update(n Negotiated) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.apply(n)
}

// apply sets n; s.mu is held.
func (s *Stream) apply(n Negotiated) {
	if n.Remote.Addr() != s.n.Remote.Addr() || n.Remote.Port() != s.n.Remote.Port() {
		s.latched = netip.AddrPort{}
	}
	if n.RemoteRTCP != s.n.RemoteRTCP {
		s.latchedRTCP = netip.AddrPort{}
	}
	if n.Send && !s.canSend() {
		s.marker = true
	}
	s.n = n
	if !s.canSend() {
		s.dtmfTx = s.dtmfTx[:0]
	}
}

// canSend reports whether audio goes out; s.mu is held.
func (s *Stream) canSend() bool { return s.n.Send && sendable(s.n.Remote) }

// sendable reports whether a is somewhere to send to.
func sendable(a netip.AddrPort) bool {
	return a.Port() != 0 && a.Addr().IsValid() && !a.Addr().IsUnspecified()
}

// dest is where RTP goes: the latched source with symmetric RTP, else the
// negotiated address; s.mu is held.
func (s *Stream) dest() netip.AddrPort {
	if s.cfg.Symmetric && s.latched.IsValid() {
		return s.latched
	}
	return s.n.Remote
}

// destRTCP is where RTCP goes; s.mu is held.
func (s *Stream) destRTCP() netip.AddrPort {
	if s.n.RTCPMux {
		return s.dest()
	}
	if s.cfg.Symmetric && s.latchedRTCP.IsValid() {
		return s.latchedRTCP
	}
	return s.n.RemoteRTCP
}

// Play queues samples (8 kHz, [-1,1]) for sending and returns once they
// are queued; the caller keeps samples. It blocks while 100 ms or more is
// queued, so a producer runs in real time. A StopPlayback while it blocks
// discards the rest and it returns nil. It returns ErrClosed (which is
// voice.ErrHungUp) after Close, or ctx's error.
func (s *Stream) Play(ctx context.Context, samples []float32) error {
	s.mu.Lock()
	gen := s.qGen
	s.mu.Unlock()
	for len(samples) > 0 {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return ErrClosed
		}
		if s.qGen != gen {
			s.mu.Unlock()
			return nil
		}
		if s.qLen < playHigh {
			if s.queue == nil {
				s.queue = make([]float32, playCap)
			}
			k := min(len(samples), playCap-s.qLen)
			for i := range k {
				s.queue[(s.qHead+s.qLen+i)%playCap] = samples[i]
			}
			s.qLen += k
			samples = samples[k:]
			s.mu.Unlock()
			continue
		}
		ch := s.waitLocked()
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// waitLocked returns a channel closed at the next change of the queue;
// s.mu is held.
func (s *Stream) waitLocked() chan struct{} {
	if s.wake == nil {
		s.wake = make(chan struct{})
	}
	return s.wake
}

// wakeLocked wakes Play and Drain waiters; s.mu is held.
func (s *Stream) wakeLocked() {
	if s.wake != nil {
		close(s.wake)
		s.wake = nil
	}
}

// Drain waits until everything queued has been sent (or discarded while
// the call is on hold). It returns ErrClosed after Close, or ctx's error.
func (s *Stream) Drain(ctx context.Context) error {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return ErrClosed
		}
		if s.qLen == 0 {
			s.mu.Unlock()
			return nil
		}
		ch := s.waitLocked()
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// StopPlayback discards everything queued and not yet sent, including the
// rest of a Play call blocked now (barge-in): the next frame is silence.
// It does not block.
func (s *Stream) StopPlayback() {
	s.mu.Lock()
	s.qHead, s.qLen = 0, 0
	s.qGen++
	s.wakeLocked()
	s.mu.Unlock()
}

// SendDTMF queues one RFC 4733 event of duration d (<= 0 means 100 ms; at
// most 5 s): a first packet with the marker bit, updates every frame, and
// three end packets; queued audio waits meanwhile. It returns ErrDigit,
// ErrNoDTMF (not negotiated), ErrNotStarted, ErrDTMFBusy (32 queued),
// or ErrClosed. While the call is on hold the digit is dropped. It does
// not block.
func (s *Stream) SendDTMF(digit rune, d time.Duration) error {
	ev, ok := digitEvent(digit)
	if !ok {
		return fmt.Errorf("send dtmf %q: %w", digit, ErrDigit)
	}
	if d <= 0 {
		d = defaultDTMFDuration
	}
	d = min(d, maxDTMFDuration)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrClosed
	case !s.started:
		return ErrNotStarted
	case !s.n.HasDTMF:
		return ErrNoDTMF
	case len(s.dtmfTx) >= dtmfQueue:
		return ErrDTMFBusy
	case !s.canSend():
		return nil
	}
	dur := uint32(d / (time.Second / rate))
	s.dtmfTx = append(s.dtmfTx, dtmfSend{event: ev, duration: max(dur, uint32(s.frame))})
	return nil
}

// Stats returns the figures so far. It does no I/O.
func (s *Stream) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.Lost = s.src.totalLost()
	st.Jitter = time.Duration(s.src.jitter / rate * float64(time.Second))
	return st
}

// Close ends the stream: an RTCP BYE goes out (when started with a remote
// address), the goroutines stop, Play and Drain return ErrClosed, and the
// ports are free when it returns. Idempotent; it returns the first
// close's socket error, if any.
func (s *Stream) Close() error {
	var err error
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.wakeLocked()
		var bye []byte
		var to netip.AddrPort
		conn := s.rtcp
		if s.started {
			bye, to = s.rtcpPacket(time.Now(), true), s.destRTCP()
			if s.n.RTCPMux {
				conn = s.rtp
			}
		}
		s.mu.Unlock()
		if bye != nil && sendable(to) {
			if _, werr := conn.WriteToUDPAddrPort(bye, to); werr != nil {
				s.log.Debug("rtcp bye", logKeyErr, werr)
			}
		}
		close(s.done)
		err = errors.Join(s.rtp.Close(), s.rtcp.Close())
		s.wg.Wait()
	})
	return err
}

// readLoop reads one socket until Close.
func (s *Stream) readLoop(c *net.UDPConn, isRTCP bool) {
	defer s.wg.Done()
	buf := make([]byte, maxPacket)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Debug("rtp read", logKeyErr, err)
			continue
		}
		now := time.Now()
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		if isRTCP || isRTCPPacket(buf[:n]) {
			s.handleRTCP(buf[:n], from, now)
		} else {
			s.handleRTP(buf[:n], from, now)
		}
	}
}

// isRTCPPacket tells RTCP from RTP on a muxed port (RFC 5761 §4).
func isRTCPPacket(b []byte) bool {
	return len(b) >= 2 && b[1] >= 192 && b[1] <= 223
}

// accept checks a datagram's source against the negotiated address,
// latching with symmetric RTP; s.mu is held.
func (s *Stream) accept(from netip.AddrPort, latch *netip.AddrPort, want netip.AddrPort) bool {
	ip := want.Addr()
	if !ip.IsValid() || ip.IsUnspecified() || from.Addr() != ip.Unmap() {
		return false
	}
	if !s.cfg.Symmetric {
		return true
	}
	if !latch.IsValid() {
		*latch = from
		if from != want {
			s.log.Debug("rtp latched", logKeyRemote, from.String())
		}
		return true
	}
	return *latch == from
}

// handleRTP takes one datagram from the RTP port. Any bytes are safe.
func (s *Stream) handleRTP(b []byte, from netip.AddrPort, now time.Time) {
	var p rtp.Packet
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started || s.closed {
		s.st.Dropped++
		return
	}
	if !s.accept(from, &s.latched, s.n.Remote) {
		s.st.Dropped++
		return
	}
	if err := p.Unmarshal(b); err != nil || p.Version != 2 {
		s.st.Dropped++
		return
	}
	isDTMF := s.n.HasDTMF && p.PayloadType == s.n.DTMF
	if !isDTMF && p.PayloadType != s.n.Codec.PayloadType && p.PayloadType != 13 {
		s.st.Dropped++
		return
	}
	if s.src.started && p.SSRC != s.src.ssrc {
		s.log.Debug("rtp ssrc changed")
		s.jb.reset()
		s.digits = s.dtmfRx.reset(now, s.digits)
		s.src.restart()
	}
	if !s.src.update(p.SSRC, p.SequenceNumber) {
		s.st.Dropped++
		return
	}
	s.st.Received++
	s.lastPacket = now
	switch {
	case isDTMF:
		if ev, err := parseEvent(p.Payload); err == nil && len(s.digits) < dtmfQueue {
			s.digits = s.dtmfRx.packet(p.Timestamp, ev, now, s.digits)
		}
	case p.PayloadType == 13: // comfort noise: the peer is quiet
	default:
		s.src.arrival(now.Sub(s.epoch), p.Timestamp)
		switch s.jb.put(p.Timestamp, p.Payload, s.n.Codec.alaw(), p.Marker) {
		case putLate:
			s.st.Late++
		case putDuplicate:
			s.st.Duplicates++
		}
	}
}

// clock is the stream's 20 ms loop: receive a frame, send a frame, and
// RTCP when due, on the schedule t0 + k·ptime.
func (s *Stream) clock(sink Sink) {
	defer s.wg.Done()
	s.mu.Lock()
	frame := s.frame
	s.mu.Unlock()
	ptime := time.Duration(frame) * time.Second / rate
	t0 := time.Now()
	nextRTCP := t0.Add(s.cfg.RTCPInterval/2 + time.Duration(mrand.Int64N(int64(s.cfg.RTCPInterval/2))))
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	pkt := make([]byte, 0, 12+frame)
	pcm := make([]float32, frame)
	var digits []rune
	for k := int64(0); ; k++ {
		ideal := t0.Add(time.Duration(k) * ptime)
		if wait := time.Until(ideal); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-s.done:
				return
			}
		} else {
			select {
			case <-s.done:
				return
			default:
			}
		}
		now := time.Now()
		if behind := now.Sub(ideal) / ptime; behind > maxBehind {
			// Stalled (suspended, overloaded): skip rather than burst.
			k += int64(behind)
			ideal = t0.Add(time.Duration(k) * ptime)
			s.mu.Lock()
			s.ts += uint32(behind) * uint32(frame)
			s.mu.Unlock()
		}

		in := make([]float32, frame)
		s.mu.Lock()
		s.receiveFrame(in, now)
		digits = append(digits[:0], s.digits...)
		s.digits = s.digits[:0]
		pkt, dest := s.sendFrame(pkt[:0], pcm)
		var rtcpPkt []byte
		var rtcpDest netip.AddrPort
		rtcpConn := s.rtcp
		if !now.Before(nextRTCP) {
			nextRTCP = now.Add(s.cfg.RTCPInterval)
			rtcpPkt, rtcpDest = s.rtcpPacket(now, false), s.destRTCP()
			if s.n.RTCPMux {
				rtcpConn = s.rtp
			}
		}
		s.mu.Unlock()

		// Send first: the packet's timing must not wait for the sink.
		if len(pkt) > 0 {
			if _, err := s.rtp.WriteToUDPAddrPort(pkt, dest); err != nil {
				s.log.Debug("rtp send", logKeyErr, err)
			}
			if s.onSend != nil {
				s.onSend(ideal, time.Now())
			}
		}
		sink.Audio(in)
		for _, d := range digits {
			sink.DTMF(d)
		}
		if rtcpPkt != nil && sendable(rtcpDest) {
			if _, err := rtcpConn.WriteToUDPAddrPort(rtcpPkt, rtcpDest); err != nil {
				s.log.Debug("rtcp send", logKeyErr, err)
			}
		}
	}
}

// receiveFrame fills in with the frame due now; s.mu is held.
func (s *Stream) receiveFrame(in []float32, now time.Time) {
	switch s.jb.pop(in) {
	case frameConcealed:
		if now.Sub(s.lastPacket) < activeWindow {
			s.st.Concealed++
		}
	}
	s.digits = s.dtmfRx.poll(now, s.digits)
}

// sendFrame builds this tick's RTP packet into pkt (empty when nothing
// goes out) and advances the timestamp; pcm is scratch. s.mu is held.
func (s *Stream) sendFrame(pkt []byte, pcm []float32) ([]byte, netip.AddrPort) {
	frame := len(pcm)
	ts := s.ts
	s.ts += uint32(frame)
	send := s.canSend()
	if !send {
		s.sending = false
	} else if !s.sending {
		s.sending, s.marker = true, true
	}

	// A DTMF event takes the frame.
	if send && len(s.dtmfTx) > 0 && s.gap == 0 {
		e := &s.dtmfTx[0]
		if !e.started {
			e.started, e.ts, s.marker = true, ts, true
		}
		e.sent = min(e.sent+uint32(frame), 0xffff)
		end := e.sent >= e.duration
		if end {
			e.ends++
		}
		pkt = s.header(pkt, s.n.DTMF, e.ts)
		pkt = dtmfEvent{Event: e.event, End: end, Volume: dtmfVolume, Duration: uint16(e.sent)}.append(pkt)
		if e.ends >= dtmfEndRepeats {
			s.dtmfTx = s.dtmfTx[:copy(s.dtmfTx, s.dtmfTx[1:])]
			s.gap = dtmfGapFrames
		}
		s.st.Sent++
		s.st.SentOctets += 4
		return pkt, s.dest()
	}
	if s.gap > 0 {
		s.gap--
	}

	// Audio: queued samples, else silence.
	k := min(s.qLen, frame)
	for i := range k {
		pcm[i] = s.queue[(s.qHead+i)%playCap]
	}
	clear(pcm[k:])
	if k > 0 {
		s.qHead = (s.qHead + k) % playCap
		s.qLen -= k
		s.wakeLocked()
	}
	if !send {
		return pkt, netip.AddrPort{}
	}
	pkt = s.header(pkt, s.n.Codec.PayloadType, ts)
	n := len(pkt)
	pkt = pkt[:n+frame]
	s.n.Codec.encode(pkt[n:], pcm)
	s.st.Sent++
	s.st.SentOctets += uint64(frame)
	return pkt, s.dest()
}

// header appends an RTP header and advances the sequence number; s.mu is
// held.
func (s *Stream) header(pkt []byte, pt uint8, ts uint32) []byte {
	h := rtp.Header{
		Version:        2,
		Marker:         s.marker,
		PayloadType:    pt,
		SequenceNumber: s.seq,
		Timestamp:      ts,
		SSRC:           s.ssrc,
	}
	s.marker = false
	s.seq++
	n := len(pkt)
	pkt = pkt[:n+h.MarshalSize()]
	if _, err := h.MarshalTo(pkt[n:]); err != nil {
		return pkt[:n] // cannot happen: the buffer is sized for it
	}
	return pkt
}
