package media

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/zhiyin/zhiyin/asr/audio"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// sink records what a stream delivers.
type sink struct {
	mu     sync.Mutex
	audio  []float32
	digits []rune
	frames int
}

func (s *sink) Audio(x []float32) {
	s.mu.Lock()
	s.audio = append(s.audio, x...)
	s.frames++
	s.mu.Unlock()
}

func (s *sink) DTMF(d rune) {
	s.mu.Lock()
	s.digits = append(s.digits, d)
	s.mu.Unlock()
}

func (s *sink) snapshot() ([]float32, []rune) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]float32(nil), s.audio...), append([]rune(nil), s.digits...)
}

func listen(t testing.TB, cfg Config) *Stream {
	t.Helper()
	s, err := Listen(loopback, PortRange{}, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func negotiated(remote netip.AddrPort) Negotiated {
	return Negotiated{
		Remote: remote, RemoteRTCP: netip.AddrPortFrom(remote.Addr(), remote.Port()+1),
		Codec: PCMU, DTMF: 101, HasDTMF: true, Ptime: 20, Send: true, Receive: true,
	}
}

// relay sits between two streams: what arrives on a (from stream A) goes
// out of b to B, and back. impair decides for each RTP packet A→B: 0 drop,
// 1 pass, 2 duplicate, 3 hold back until after the next one (reorder).
type relay struct {
	a, b   *net.UDPConn
	toB    netip.AddrPort // B's address
	toA    netip.AddrPort
	impair func(p *rtp.Packet) int
	seen   func(p *rtp.Packet, at time.Time) // every RTP packet A→B, before impairment
	wg     sync.WaitGroup
}

func newRelay(t testing.TB) *relay {
	t.Helper()
	r := &relay{}
	var err error
	if r.a, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
		t.Fatal(err)
	}
	if r.b, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.a.Close(); r.b.Close(); r.wg.Wait() })
	return r
}

func (r *relay) addrA() netip.AddrPort { return r.a.LocalAddr().(*net.UDPAddr).AddrPort() }
func (r *relay) addrB() netip.AddrPort { return r.b.LocalAddr().(*net.UDPAddr).AddrPort() }

func (r *relay) start(toA, toB netip.AddrPort) {
	r.toA, r.toB = toA, toB
	r.wg.Add(2)
	go func() { // A → B
		defer r.wg.Done()
		buf := make([]byte, 2000)
		var held []byte
		for {
			n, err := r.a.Read(buf)
			if err != nil {
				return
			}
			pkt := append([]byte(nil), buf[:n]...)
			var p rtp.Packet
			if isRTCPPacket(pkt) || p.Unmarshal(pkt) != nil {
				r.b.WriteToUDPAddrPort(pkt, r.toB)
				continue
			}
			if r.seen != nil {
				r.seen(&p, time.Now())
			}
			how := 1
			if r.impair != nil {
				how = r.impair(&p)
			}
			switch how {
			case 0:
				continue
			case 2:
				r.b.WriteToUDPAddrPort(pkt, r.toB)
			case 3:
				held = pkt
				continue
			}
			r.b.WriteToUDPAddrPort(pkt, r.toB)
			if held != nil {
				r.b.WriteToUDPAddrPort(held, r.toB)
				held = nil
			}
		}
	}()
	go func() { // B → A
		defer r.wg.Done()
		buf := make([]byte, 2000)
		for {
			n, err := r.b.Read(buf)
			if err != nil {
				return
			}
			r.a.WriteToUDPAddrPort(buf[:n], r.toA)
		}
	}()
}

// speech8k loads a real Mandarin clip at 8 kHz, at most max samples.
func speech8k(t testing.TB, max int) []float32 {
	t.Helper()
	dir := "../../../../shared/data/speech"
	f, err := os.Open(filepath.Join(dir, "real_aishell2_IT0011W0001.wav"))
	if err != nil {
		t.Skipf("speech clips not found (%v): they live in shared/data/speech next to the repository", err)
	}
	defer f.Close()
	r, err := audio.NewWAVReader(f)
	if err != nil {
		t.Fatal(err)
	}
	x, err := audio.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	y, err := audio.Resample(x, 16000, 8000)
	if err != nil {
		t.Fatal(err)
	}
	if len(y) > max {
		y = y[:max]
	}
	return y
}

// quantise is what G.711 µ-law makes of x.
func quantise(x []float32) []float32 {
	b := make([]byte, len(x))
	audio.EncodeMuLaw(b, x)
	y := make([]float32, len(x))
	audio.DecodeMuLaw(y, b)
	return y
}

// align finds where want starts in got: the first offset at which 400
// samples of want from its second frame on match exactly (the very first
// frame may be faded in from silence).
func align(got, want []float32) int {
	first := 160
	n := min(400, len(want)-first)
outer:
	for off := 0; off+first+n <= len(got); off++ {
		for i := range n {
			if got[off+first+i] != want[first+i] {
				continue outer
			}
		}
		return off
	}
	return -1
}

func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}
