package media

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/zhiyin/zhiyin/channels/voice"
)

// talk sets up A → relay → B, plays clip on A and returns what B's sink
// got, once the clip and some tail went through.
func talk(t *testing.T, clip []float32, impair func(p *rtp.Packet) int) (*Stream, *Stream, *sink) {
	t.Helper()
	// A generous playout delay: these tests check what arrives, not how
	// fast, on a loaded machine.
	cfg := DefaultConfig()
	cfg.Jitter = 200 * time.Millisecond
	a, b := listen(t, cfg), listen(t, cfg)
	r := newRelay(t)
	r.impair = impair
	r.start(a.LocalAddr(), b.LocalAddr())
	nb := negotiated(r.addrB())
	nb.RemoteRTCP = r.addrB()
	na := negotiated(r.addrA())
	na.RemoteRTCP = r.addrA()
	sb := &sink{}
	if err := b.Start(nb, sb); err != nil {
		t.Fatal(err)
	}
	if err := a.Start(na, &sink{}); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	if err := a.Play(ctx, clip); err != nil {
		t.Fatal(err)
	}
	if err := a.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond) // through the jitter buffer
	return a, b, sb
}

func TestStreamAudio(t *testing.T) {
	clip := speech8k(t, 8000*3/2)
	want := quantise(clip)

	t.Run("clean", func(t *testing.T) {
		t.Parallel()
		_, b, sb := talk(t, clip, nil)
		got, _ := sb.snapshot()
		off := align(got, want)
		if off < 0 {
			t.Fatal("the sent audio never arrived intact")
		}
		if !slices.Equal(got[off+160:off+len(want)], want[160:]) {
			t.Error("received audio differs from the G.711-quantised sent audio")
		}
		st := b.Stats()
		if st.Lost != 0 || st.Late != 0 || st.Concealed != 0 || st.Received < 75 {
			t.Errorf("stats %+v", st)
		}
	})

	t.Run("reorder and duplicates", func(t *testing.T) {
		t.Parallel()
		var n atomic.Int64
		_, b, sb := talk(t, clip, func(p *rtp.Packet) int {
			switch n.Add(1) % 7 {
			case 3:
				return 3 // swap with the next
			case 5:
				return 2 // twice
			}
			return 1
		})
		got, _ := sb.snapshot()
		off := align(got, want)
		if off < 0 || !slices.Equal(got[off+160:off+len(want)], want[160:]) {
			t.Fatal("reordered, duplicated packets did not come out in order")
		}
		st := b.Stats()
		if st.Lost != 0 || st.Late != 0 || st.Concealed != 0 || st.Duplicates == 0 {
			t.Errorf("stats %+v", st)
		}
	})

	t.Run("loss", func(t *testing.T) {
		t.Parallel()
		var n, dropped atomic.Int64
		_, b, sb := talk(t, clip, func(p *rtp.Packet) int {
			k := n.Add(1)
			if k > 10 && k%10 == 0 && k < 80 {
				dropped.Add(1)
				return 0
			}
			return 1
		})
		got, _ := sb.snapshot()
		st := b.Stats()
		if int64(st.Lost) != dropped.Load() || int64(st.Concealed) != dropped.Load() {
			t.Errorf("dropped %d, stats %+v", dropped.Load(), st)
		}
		// Frames around the gaps are intact, the gaps concealed (not silent
		// where the speech was loud), and most of the clip matches.
		off := align(got, want)
		if off < 0 {
			t.Fatal("no intact start")
		}
		same := 0
		for i := range want {
			if got[off+i] == want[i] {
				same++
			}
		}
		if frac := float64(same) / float64(len(want)); frac < 0.85 {
			t.Errorf("only %.2f of samples intact", frac)
		}
	})
}

func TestStreamDTMF(t *testing.T) {
	t.Run("clean", func(t *testing.T) {
		t.Parallel()
		a, b := listen(t, DefaultConfig()), listen(t, DefaultConfig())
		sb := &sink{}
		b.Start(negotiated(a.LocalAddr()), sb)
		a.Start(negotiated(b.LocalAddr()), &sink{})
		for _, d := range "159#*0D" {
			if err := a.SendDTMF(d, 60*time.Millisecond); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, 5*time.Second, "digits", func() bool { _, d := sb.snapshot(); return len(d) >= 7 })
		time.Sleep(100 * time.Millisecond)
		if _, d := sb.snapshot(); string(d) != "159#*0D" {
			t.Errorf("got %q", string(d))
		}
	})
	t.Run("end packets lost or repeated", func(t *testing.T) {
		t.Parallel()
		a, b := listen(t, DefaultConfig()), listen(t, DefaultConfig())
		r := newRelay(t)
		var ends atomic.Int64
		r.impair = func(p *rtp.Packet) int {
			if p.PayloadType == 101 {
				ev, _ := parseEvent(p.Payload)
				if ev.End {
					k := ends.Add(1)
					if k <= 3 {
						return 0 // every end packet of the first digit lost
					}
					return 2
				}
			}
			return 1
		}
		r.start(a.LocalAddr(), b.LocalAddr())
		sb := &sink{}
		b.Start(negotiated(r.addrB()), sb)
		a.Start(negotiated(r.addrA()), &sink{})
		a.SendDTMF('7', 80*time.Millisecond)
		time.Sleep(600 * time.Millisecond) // past the timeout
		a.SendDTMF('8', 80*time.Millisecond)
		a.SendDTMF('8', 80*time.Millisecond)
		waitFor(t, 5*time.Second, "digits", func() bool { _, d := sb.snapshot(); return len(d) >= 3 })
		time.Sleep(400 * time.Millisecond)
		if _, d := sb.snapshot(); string(d) != "788" {
			t.Errorf("got %q", string(d))
		}
	})
	t.Run("errors", func(t *testing.T) {
		t.Parallel()
		a := listen(t, DefaultConfig())
		if err := a.SendDTMF('1', 0); !errors.Is(err, ErrNotStarted) {
			t.Errorf("before start: %v", err)
		}
		n := negotiated(netip.MustParseAddrPort("127.0.0.1:9"))
		n.HasDTMF = false
		a.Start(n, &sink{})
		if err := a.SendDTMF('x', 0); !errors.Is(err, ErrDigit) {
			t.Errorf("x: %v", err)
		}
		if err := a.SendDTMF('1', 0); !errors.Is(err, ErrNoDTMF) {
			t.Errorf("no dtmf: %v", err)
		}
	})
}

func TestStreamHold(t *testing.T) {
	a, b := listen(t, DefaultConfig()), listen(t, DefaultConfig())
	r := newRelay(t)
	type seen struct {
		seq    uint16
		ts     uint32
		marker bool
		at     time.Time
	}
	var mu sync.Mutex
	var pkts []seen
	r.seen = func(p *rtp.Packet, at time.Time) {
		mu.Lock()
		pkts = append(pkts, seen{p.SequenceNumber, p.Timestamp, p.Marker, at})
		mu.Unlock()
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(pkts) }
	r.start(a.LocalAddr(), b.LocalAddr())
	b.Start(negotiated(r.addrB()), &sink{})
	na := negotiated(r.addrA())
	a.Start(na, &sink{})
	waitFor(t, 5*time.Second, "packets", func() bool { return count() >= 10 })

	hold := na
	hold.Send = false
	a.Update(hold)
	time.Sleep(60 * time.Millisecond)
	held := count()
	time.Sleep(300 * time.Millisecond)
	if n := count(); n != held {
		t.Fatalf("%d packets sent on hold", n-held)
	}
	// Play while on hold does not block forever: the queue runs out.
	ctx := ctxT(t)
	if err := a.Play(ctx, make([]float32, 1600)); err != nil {
		t.Fatal(err)
	}
	if err := a.Drain(ctx); err != nil {
		t.Fatal(err)
	}

	a.Update(na)
	waitFor(t, 5*time.Second, "packets after resume", func() bool { return count() >= held+5 })
	mu.Lock()
	defer mu.Unlock()
	if !pkts[0].marker {
		t.Error("first packet without marker")
	}
	last, first := pkts[held-1], pkts[held]
	if !first.marker {
		t.Error("no marker bit after resume")
	}
	if first.seq != last.seq+1 {
		t.Errorf("sequence jumped %d → %d", last.seq, first.seq)
	}
	// Timestamps went on with the clock: the gap in timestamp units
	// matches the time gap (within 3 frames).
	gapTS := time.Duration(first.ts-last.ts) * time.Second / 8000
	gapT := first.at.Sub(last.at)
	if d := gapTS - gapT; d > 60*time.Millisecond || d < -60*time.Millisecond || gapTS < 300*time.Millisecond {
		t.Errorf("timestamp gap %v, time gap %v", gapTS, gapT)
	}
	for i := 1; i < len(pkts); i++ {
		if i != held && (pkts[i].seq != pkts[i-1].seq+1 || pkts[i].ts != pkts[i-1].ts+160 || pkts[i].marker) {
			t.Fatalf("packet %d: seq %d ts %d marker %v after seq %d ts %d", i, pkts[i].seq, pkts[i].ts, pkts[i].marker, pkts[i-1].seq, pkts[i-1].ts)
		}
	}
}

func TestStreamForeignSource(t *testing.T) {
	a, b := listen(t, DefaultConfig()), listen(t, DefaultConfig())
	sb := &sink{}
	b.Start(negotiated(a.LocalAddr()), sb)
	a.Start(negotiated(b.LocalAddr()), &sink{})
	waitFor(t, 5*time.Second, "latching", func() bool { return b.Stats().Received > 3 })

	loud := make([]byte, 160) // µ-law 0x00 is full scale
	send := func(from netip.Addr) {
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(from, 0)))
		if err != nil {
			t.Skipf("cannot bind %v: %v", from, err)
		}
		defer c.Close()
		for i := range 20 {
			p := rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(i), Timestamp: uint32(i * 160), SSRC: 99}, Payload: loud}
			buf, _ := p.Marshal()
			c.WriteToUDPAddrPort(buf, b.LocalAddr())
		}
	}
	before := b.Stats()
	send(netip.MustParseAddr("127.0.0.2")) // another host
	send(loopback)                         // the right host, another port than the latched one
	waitFor(t, 5*time.Second, "drops", func() bool { return b.Stats().Dropped >= before.Dropped+40 })
	time.Sleep(150 * time.Millisecond)
	got, _ := sb.snapshot()
	for i, v := range got {
		if v > 0.5 || v < -0.5 {
			t.Fatalf("foreign audio played at sample %d", i)
		}
	}
}

func TestStreamRTCP(t *testing.T) {
	cfg := DefaultConfig()
	cfg.RTCPInterval = time.Second
	a, b := listen(t, cfg), listen(t, cfg)
	b.Start(negotiated(a.LocalAddr()), &sink{})
	a.Start(negotiated(b.LocalAddr()), &sink{})
	// The first report goes out within an interval; an RTT needs our SR
	// echoed back, which takes a second round.
	waitFor(t, 6*time.Second, "reports with RTT", func() bool {
		sa, sb := a.Stats(), b.Stats()
		return !sa.Peer.At.IsZero() && !sb.Peer.At.IsZero() && sa.Peer.RTT > 0 && sb.Peer.RTT > 0
	})
	sa := a.Stats()
	if sa.Peer.RTT > 100*time.Millisecond || sa.Peer.FractionLost != 0 || sa.Peer.CumulativeLost != 0 {
		t.Errorf("peer report %+v", sa.Peer)
	}
	a.Close()
	waitFor(t, 5*time.Second, "BYE", func() bool { return b.Stats().PeerBye })
}

func TestStreamRTCPMux(t *testing.T) {
	cfg := DefaultConfig()
	cfg.RTCPInterval = time.Second
	a, b := listen(t, cfg), listen(t, cfg)
	na, nb := negotiated(b.LocalAddr()), negotiated(a.LocalAddr())
	na.RTCPMux, na.RemoteRTCP = true, b.LocalAddr()
	nb.RTCPMux, nb.RemoteRTCP = true, a.LocalAddr()
	b.Start(nb, &sink{})
	a.Start(na, &sink{})
	waitFor(t, 5*time.Second, "muxed reports", func() bool { return !a.Stats().Peer.At.IsZero() && !b.Stats().Peer.At.IsZero() })
	if d := a.Stats().Dropped; d != 0 {
		t.Errorf("%d muxed packets dropped", d)
	}
}

func TestStreamPlayback(t *testing.T) {
	a := listen(t, DefaultConfig())
	// Before Start nothing drains: Play queues 200 ms, then blocks.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := a.Play(ctx, make([]float32, 8000)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Play with a full queue: %v", err)
	}
	// StopPlayback releases a blocked Play, which returns nil.
	done := make(chan error, 1)
	go func() { done <- a.Play(context.Background(), make([]float32, 8000)) }()
	time.Sleep(50 * time.Millisecond)
	a.StopPlayback()
	if err := <-done; err != nil {
		t.Fatalf("Play after StopPlayback: %v", err)
	}
	// After Start the queue drains in real time.
	a.Start(negotiated(netip.MustParseAddrPort("127.0.0.1:9")), &sink{})
	start := time.Now()
	if err := a.Play(ctxT(t), make([]float32, 4000)); err != nil { // 500 ms
		t.Fatal(err)
	}
	if err := a.Drain(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 400*time.Millisecond || el > 3*time.Second {
		t.Errorf("500 ms of audio drained in %v", el)
	}
	if a.OutputRate() != 8000 {
		t.Error("output rate")
	}
	var _ interface {
		OutputRate() int
		Play(context.Context, []float32) error
		Drain(context.Context) error
		StopPlayback()
	} = a
}

func TestStreamClose(t *testing.T) {
	a, err := Listen(loopback, PortRange{}, DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	a.Start(negotiated(netip.MustParseAddrPort("127.0.0.1:9")), &sink{})
	blocked := make(chan error, 1)
	go func() { blocked <- a.Play(context.Background(), make([]float32, 1<<20)) }()
	time.Sleep(50 * time.Millisecond)
	port := a.LocalAddr().Port()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if err := <-blocked; !errors.Is(err, voice.ErrHungUp) {
		t.Errorf("blocked Play: %v", err)
	}
	if err := a.Play(context.Background(), []float32{0}); !errors.Is(err, voice.ErrHungUp) {
		t.Errorf("Play: %v", err)
	}
	if err := a.Drain(context.Background()); !errors.Is(err, voice.ErrHungUp) {
		t.Errorf("Drain: %v", err)
	}
	if err := a.Start(Negotiated{}, &sink{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Start: %v", err)
	}
	// Both ports are free again.
	for _, p := range []uint16{port, port + 1} {
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, p)))
		if err != nil {
			t.Fatalf("port %d still taken: %v", p, err)
		}
		c.Close()
	}
}

func TestListenRange(t *testing.T) {
	// Find a free even pair, then ask for exactly it twice.
	s := listen(t, DefaultConfig())
	p := int(s.LocalAddr().Port())
	s.Close()
	r := PortRange{Min: p, Max: p + 1}
	a, err := Listen(loopback, r, DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if int(a.LocalAddr().Port()) != p {
		t.Errorf("bound %v, want port %d", a.LocalAddr(), p)
	}
	if _, err := Listen(loopback, r, DefaultConfig(), nil); !errors.Is(err, ErrNoPorts) {
		t.Errorf("full range: %v", err)
	}
	if _, err := Listen(loopback, PortRange{}, Config{}, nil); err == nil {
		t.Error("zero Config accepted")
	}
}
