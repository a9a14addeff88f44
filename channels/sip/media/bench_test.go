package media

import (
	"net/netip"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
)

type discard struct{}

func (discard) Audio([]float32) {}
func (discard) DTMF(rune)       {}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkStreams100 runs 100 streams (50 pairs talking to each other)
// for 3 s and reports the deviation of each send from its ideal time
// (p50, p99, max) and the CPU each stream costs (% of one core).
func BenchmarkStreams100(b *testing.B) {
	const streams, run, warm = 100, 3 * time.Second, 10
	for range b.N {
		all := make([]*Stream, streams)
		devs := make([][]time.Duration, streams)
		for i := range all {
			all[i] = listen(b, DefaultConfig())
			devs[i] = make([]time.Duration, 0, 200)
			d := &devs[i]
			all[i].onSend = func(ideal, actual time.Time) { *d = append(*d, actual.Sub(ideal)) }
		}
		tone := make([]float32, 8000*4)
		for i := range tone {
			tone[i] = 0.1 * float32(i%40-20) / 20
		}
		cpu0, t0 := cpuTime(), time.Now()
		for i := 0; i < streams; i += 2 {
			all[i].Start(negotiated(all[i+1].LocalAddr()), discard{})
			all[i+1].Start(negotiated(all[i].LocalAddr()), discard{})
		}
		for _, s := range all {
			go s.Play(b.Context(), tone) // audio out, not just silence
		}
		time.Sleep(run)
		cpu, wall := cpuTime()-cpu0, time.Since(t0)
		for _, s := range all {
			s.Close()
		}
		var d []time.Duration
		var lost, late uint64
		for i, s := range all {
			if len(devs[i]) > warm {
				d = append(d, devs[i][warm:]...)
			}
			st := s.Stats()
			lost += st.Lost
			late += st.Late
		}
		slices.Sort(d)
		if len(d) == 0 {
			b.Fatal("nothing sent")
		}
		pct := func(p float64) float64 { return float64(d[int(p*float64(len(d)-1))]) / 1e6 }
		b.ReportMetric(pct(0.5), "p50-jitter-ms")
		b.ReportMetric(pct(0.99), "p99-jitter-ms")
		b.ReportMetric(float64(d[len(d)-1])/1e6, "max-jitter-ms")
		b.ReportMetric(100*float64(cpu)/float64(wall)/streams, "cpu%/stream")
		b.ReportMetric(float64(len(d))/float64(streams)/wall.Seconds(), "pkts/s/stream")
		b.ReportMetric(float64(lost+late), "lost+late")
	}
}

// BenchmarkReceivePacket is the cost of one RTP packet into a started
// stream (parse, checks, counters, jitter buffer).
func BenchmarkReceivePacket(b *testing.B) {
	s := listen(b, DefaultConfig())
	remote := netip.MustParseAddrPort("127.0.0.1:9")
	s.Start(negotiated(remote), discard{})
	p := rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 5}, Payload: make([]byte, 160)}
	buf := make([]byte, 0, 200)
	now := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p.SequenceNumber = uint16(i)
		p.Timestamp = uint32(i * 160)
		p.Header.MarshalTo(buf[:12])
		pkt := append(buf[:12], p.Payload...)
		s.handleRTP(pkt, remote, now.Add(time.Duration(i)*20*time.Millisecond))
	}
}

// BenchmarkIdleStreamMemory reports the heap and stack one started, idle
// stream holds (Listen + Start, no traffic).
func BenchmarkIdleStreamMemory(b *testing.B) {
	const n = 100
	for range b.N {
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		all := make([]*Stream, n)
		for i := range all {
			s, err := Listen(loopback, PortRange{}, DefaultConfig(), nil)
			if err != nil {
				b.Fatal(err)
			}
			s.Start(negotiated(netip.MustParseAddrPort("127.0.0.1:9")), discard{})
			all[i] = s
		}
		time.Sleep(100 * time.Millisecond)
		runtime.GC()
		runtime.ReadMemStats(&m1)
		heap := float64(m1.HeapInuse) - float64(m0.HeapInuse)
		stack := float64(m1.StackInuse) - float64(m0.StackInuse)
		b.ReportMetric(heap/n, "heap-B/stream")
		b.ReportMetric(stack/n, "stack-B/stream")
		b.ReportMetric((heap+stack)/n, "B/stream")
		for _, s := range all {
			s.Close()
		}
	}
}
