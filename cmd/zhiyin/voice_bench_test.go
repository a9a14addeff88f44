package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"

	"github.com/zhiyin/zhiyin/asr/audio"
	"github.com/zhiyin/zhiyin/channels/sip/media"
)

// benchCaller is a phone on loopback: sipgo for signalling, its own RTP
// socket (so arrival times are the packets', not a jitter buffer's).
type benchCaller struct {
	dialog *sipgo.DialogClientSession
	pc     *net.UDPConn
	remote *net.UDPAddr

	mu      sync.Mutex
	arrived []rtpPacket
	t0      time.Time
	ssrc    uint32
	seq     uint16
	ts      uint32
}

// benchPhone is one sipgo user agent placing calls to target.
type benchPhone struct {
	dua    sipgo.DialogUA
	target sipmsg.Uri
}

func newBenchPhone(tb testing.TB, sipAddr string) *benchPhone {
	tb.Helper()
	ua, err := sipgo.NewUA()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ua.Close() })
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		tb.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(sipAddr)
	p, _ := strconv.Atoi(port)
	return &benchPhone{
		dua:    sipgo.DialogUA{Client: client, ContactHDR: sipmsg.ContactHeader{Address: sipmsg.Uri{Scheme: "sip", User: "bench", Host: "127.0.0.1"}}},
		target: sipmsg.Uri{Scheme: "sip", User: "zhiyin", Host: host, Port: p},
	}
}

// call places a call and starts receiving; the caller sends nothing until
// send is called.
func (ph *benchPhone) call(ctx context.Context) (*benchCaller, error) {
	return ph.dial(ctx, true)
}

// dial places a call; without listen, what zhiyin sends is left to the
// kernel to drop (a cheap load generator).
func (ph *benchPhone) dial(ctx context.Context, listen bool) (*benchCaller, error) {
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	offer := fmt.Sprintf("v=0\r\no=bench 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=audio %d RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\na=sendrecv\r\n", port)
	d, err := ph.dua.Invite(ctx, ph.target, []byte(offer), sipmsg.NewHeader("Content-Type", "application/sdp"))
	if err != nil {
		pc.Close()
		return nil, err
	}
	if err := d.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		pc.Close()
		return nil, err
	}
	if err := d.Ack(ctx); err != nil {
		pc.Close()
		return nil, err
	}
	desc, err := media.ParseSDP(d.InviteResponse.Body())
	if err != nil {
		pc.Close()
		return nil, err
	}
	c := &benchCaller{dialog: d, pc: pc, remote: net.UDPAddrFromAddrPort(desc.Addr), ssrc: rand.Uint32(), seq: uint16(rand.Uint32()), ts: rand.Uint32()}
	if listen {
		go c.receive()
	}
	return c, nil
}

// receive records each packet with the kernel's arrival time
// (SO_TIMESTAMPNS), so that the figures are zhiyin's sending, not this
// process's scheduling on a busy machine.
func (c *benchCaller) receive() {
	if raw, err := c.pc.SyscallConn(); err == nil {
		_ = raw.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
		})
	}
	buf := make([]byte, 2048)
	oob := make([]byte, 128)
	for {
		n, oobn, _, _, err := c.pc.ReadMsgUDP(buf, oob)
		if err != nil {
			return
		}
		now := time.Now()
		if msgs, err := syscall.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, m := range msgs {
				if m.Header.Level == syscall.SOL_SOCKET && m.Header.Type == syscall.SO_TIMESTAMPNS && len(m.Data) >= 16 {
					sec := int64(binary.NativeEndian.Uint64(m.Data[0:]))
					nsec := int64(binary.NativeEndian.Uint64(m.Data[8:]))
					now = time.Unix(sec, nsec)
				}
			}
		}
		if n < 12 {
			continue
		}
		c.mu.Lock()
		if c.t0.IsZero() {
			c.t0 = now
		}
		c.arrived = append(c.arrived, rtpPacket{at: now.Sub(c.t0), pt: buf[1] & 0x7f, seq: binary.BigEndian.Uint16(buf[2:]),
			ts: binary.BigEndian.Uint32(buf[4:]), ssrc: binary.BigEndian.Uint32(buf[8:]), payload: slices.Clone(buf[12:n])})
		c.mu.Unlock()
	}
}

// sendFrame sends one 20 ms µ-law frame.
func (c *benchCaller) sendFrame(frame []byte) error {
	pkt := make([]byte, 12+len(frame))
	pkt[0] = 0x80
	binary.BigEndian.PutUint16(pkt[2:], c.seq)
	binary.BigEndian.PutUint32(pkt[4:], c.ts)
	binary.BigEndian.PutUint32(pkt[8:], c.ssrc)
	copy(pkt[12:], frame)
	c.seq++
	c.ts += 160
	_, err := c.pc.WriteToUDP(pkt, c.remote)
	return err
}

// stream sends frames paced at 20 ms on an absolute schedule from start;
// it returns when all are sent or ctx ends.
func (c *benchCaller) stream(ctx context.Context, frames [][]byte, start time.Time) error {
	for i, f := range frames {
		if d := time.Until(start.Add(time.Duration(i) * 20 * time.Millisecond)); d > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(d):
			}
		}
		if err := c.sendFrame(f); err != nil {
			return err
		}
	}
	return nil
}

// loudSince is the arrival time (on the caller's clock, since the first
// packet) of the first loud packet that arrived after `after`; ok false
// when none yet.
func (c *benchCaller) loudSince(after time.Duration) (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.arrived {
		if p.at > after && p.rms() > 0.01 {
			return p.at, true
		}
	}
	return 0, false
}

// quietFor reports whether the last d of packets were all silent (and at
// least d of packets arrived after a loud one).
func (c *benchCaller) quietFor(d time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := int(d / (20 * time.Millisecond))
	if len(c.arrived) < n {
		return false
	}
	for _, p := range c.arrived[len(c.arrived)-n:] {
		if p.rms() > 0.01 {
			return false
		}
	}
	return slices.ContainsFunc(c.arrived, func(p rtpPacket) bool { return p.rms() > 0.01 })
}

func (c *benchCaller) clock() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.t0.IsZero() {
		return 0
	}
	return time.Since(c.t0)
}

func (c *benchCaller) hangup(ctx context.Context) {
	_ = c.dialog.Bye(ctx)
	_ = c.dialog.Close()
	c.pc.Close()
}

// ulawFrames cuts 8 kHz samples into 20 ms µ-law frames (the last padded
// with silence); lastVoiced is the index of the last frame with speech.
func ulawFrames(s []float32) (frames [][]byte, lastVoiced int) {
	for i := 0; i < len(s); i += 160 {
		f := make([]float32, 160)
		copy(f, s[i:min(i+160, len(s))])
		var e float64
		for _, v := range f {
			e += float64(v) * float64(v)
		}
		if math.Sqrt(e/160) > 0.03 {
			lastVoiced = len(frames)
		}
		b := make([]byte, 160)
		audio.EncodeMuLaw(b, f)
		frames = append(frames, b)
	}
	return frames, lastVoiced
}

func silence(n int) [][]byte {
	f := make([]byte, 160)
	audio.EncodeMuLaw(f, make([]float32, 160))
	out := make([][]byte, n)
	for i := range out {
		out[i] = f
	}
	return out
}

// benchDaemon starts a daemon with the SIP line on and the contract
// speech model installed; it returns the SIP address and the process id.
func benchDaemon(b *testing.B, extraVoice string) (sipAddr string, pid int, httpURL string) {
	return benchDaemonWith(b, extraVoice, "")
}

// benchDaemonWith is benchDaemon with extra inference: keys.
func benchDaemonWith(b *testing.B, extraVoice, extraInference string) (sipAddr string, pid int, httpURL string) {
	if extraInference != "" && !strings.HasSuffix(extraInference, "\n") {
		extraInference += "\n"
	}
	b.Helper()
	speechDir, _ := filepath.Abs(speechData)
	modelDirs, _ := filepath.Abs("../../third_party/models")
	if os.Getenv("ZHIYIN_ORT_LIB") == "" {
		b.Skip("needs ONNX Runtime: run scripts/fetch-deps.sh")
	}
	if _, err := os.Stat(filepath.Join(speechDir, "espeak_cmn_02.wav")); err != nil {
		b.Skip("needs the shared speech clips")
	}
	dir := b.TempDir()
	addr := freeAddrB(b)
	sipAddr = freeAddrB(b)
	cfgPath := filepath.Join(dir, "zhiyin.yaml")
	cfg := fmt.Sprintf("data_dir: %s\nserver:\n  listen: %s\nauth:\n  allow_loopback: true\ninference:\n  model_dirs: [%s]\n%svoice:\n  greeting: 您好。\n%s"+
		"channels:\n  sip:\n    enabled: true\n    listen: %s\n    peers: [127.0.0.1]\n    rtp_ports: 20000-40000\n",
		filepath.Join(dir, "var"), addr, modelDirs, extraInference, extraVoice, sipAddr)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	folder, _ := filepath.Abs(senseVoiceFolder)
	if out, err := execZhiyin("models", "install", folder, "--config", cfgPath).CombinedOutput(); err != nil {
		b.Fatalf("models install: %v\n%s", err, out)
	}
	cmd := execZhiyin("serve", "--config", cfgPath)
	logs := &lockedBuf{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		// SIGTERM first: the daemon hangs up and flushes (ZHIYIN_CPUPROFILE).
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(logs.String(), "msg=ready") {
		if time.Now().After(deadline) {
			b.Fatalf("daemon not ready:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return sipAddr, cmd.Process.Pid, "http://" + addr
}

func freeAddrB(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// benchSpeech is the caller's utterance: espeak_cmn_02 at 8 kHz.
func benchSpeech(b *testing.B) (frames [][]byte, lastVoiced int) {
	b.Helper()
	wav, err := os.ReadFile(filepath.Join(speechData, "espeak_cmn_02.wav"))
	if err != nil {
		b.Skip("needs the shared speech clips")
	}
	r, err := audio.NewReader(strings.NewReader(string(wav)), "audio/wav", 0)
	if err != nil {
		b.Fatal(err)
	}
	s, err := audio.ReadAll(r)
	if err != nil {
		b.Fatal(err)
	}
	s8, err := audio.Resample(s, r.Format().SampleRate, 8000)
	if err != nil {
		b.Fatal(err)
	}
	return ulawFrames(s8)
}

// BenchmarkVoiceTurnLatency measures, through the real daemon over SIP
// and RTP on loopback, the time from the caller's last voiced 20 ms frame
// leaving the phone to the first loud packet of zhiyin's answer arriving:
// VAD end-of-turn wait (voice.end_silence) + recognition (contract model)
// + dialogue + synthesis (espeak-ng) + RTP. It reports p50/p95, with the
// default 500 ms end_silence and with 200 ms.
func BenchmarkVoiceTurnLatency(b *testing.B) {
	for _, tc := range []struct{ name, voice string }{
		{"end_silence=500ms", ""},
		{"end_silence=200ms", "  end_silence: 200ms\n  quick_silence: 150ms\n  vad:\n    speech_pad: 60ms\n"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			sipAddr, _, _ := benchDaemon(b, tc.voice)
			speech, lastVoiced := benchSpeech(b)
			phone := newBenchPhone(b, sipAddr)
			var lat []time.Duration
			b.ResetTimer()
			for range b.N {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				c, err := phone.call(ctx)
				if err != nil {
					b.Fatal(err)
				}
				// Silence until the greeting is over, like a polite caller.
				start := time.Now()
				for i := 0; !c.quietFor(400*time.Millisecond) || c.clock() < time.Second; i++ {
					if err := c.stream(ctx, silence(1), start.Add(time.Duration(i)*20*time.Millisecond)); err != nil {
						b.Fatal(err)
					}
				}
				// The utterance, then silence until the answer arrives.
				frames := append(slices.Clone(speech), silence(250)...)
				var sentLast time.Duration
				done := make(chan error, 1)
				go func() {
					t0 := time.Now()
					for i, f := range frames {
						if d := time.Until(t0.Add(time.Duration(i) * 20 * time.Millisecond)); d > 0 {
							time.Sleep(d)
						}
						if err := c.sendFrame(f); err != nil {
							done <- err
							return
						}
						if i == lastVoiced {
							c.mu.Lock()
							sentLast = time.Since(c.t0) + 20*time.Millisecond // the frame's end
							c.mu.Unlock()
						}
						if i > lastVoiced {
							c.mu.Lock()
							sl := sentLast
							c.mu.Unlock()
							if _, ok := c.loudSince(sl); ok {
								done <- nil
								return
							}
						}
					}
					done <- fmt.Errorf("no answer within %d frames of silence", 250)
				}()
				if err := <-done; err != nil {
					b.Fatal(err)
				}
				c.mu.Lock()
				sl := sentLast
				c.mu.Unlock()
				at, _ := c.loudSince(sl)
				lat = append(lat, at-sl)
				c.hangup(ctx)
				cancel()
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*95/100)].Microseconds())/1000, "p95-ms")
		})
	}
}

// procStat is a process's CPU time and resident memory from /proc.
func procStat(b *testing.B, pid int) (cpu time.Duration, rss int64) {
	b.Helper()
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	stt, _ := strconv.ParseInt(f[12], 10, 64)
	pages, _ := strconv.ParseInt(f[21], 10, 64)
	return time.Duration(ut+stt) * 10 * time.Millisecond, pages * int64(os.Getpagesize())
}

// BenchmarkVoiceConcurrentCalls holds 100 calls on the real daemon at
// once. Each caller is first silent (idle calls: the resident memory per
// call), then talks in a loop (VAD, recognition, dialogue and synthesis
// all running). It reports zhiyin's RTP send jitter as the callers see it
// (RFC 3550's D between consecutive packets: arrival spacing, from kernel
// timestamps, against RTP timestamp spacing; p50/p99/max over all calls,
// while idle and while talking), the daemon's CPU share of the 2 cores,
// and memory per idle call.
func BenchmarkVoiceConcurrentCalls(b *testing.B) {
	const calls = 100
	// The first `measured` calls record what zhiyin sends; the others'
	// packets are left to the kernel (the generator stays light).
	const measured = 20
	sipAddr, pid, url := benchDaemonWith(b, "  max_calls: 100\n  no_input: 60s\n", os.Getenv("ZHIYIN_BENCH_INFERENCE"))
	speech, _ := benchSpeech(b)
	phone := newBenchPhone(b, sipAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// The callers stand in for a PBX on another machine: their 200
	// goroutines must not take the CPU before zhiyin's.
	niceSelf(b, 10)
	// One call first, so that recognition and synthesis are warm and the
	// baseline holds what every call shares.
	warm, err := phone.call(ctx)
	if err != nil {
		b.Fatal(err)
	}
	_ = warm.stream(ctx, append(slices.Clone(speech), silence(100)...), time.Now())
	warm.hangup(ctx)
	time.Sleep(time.Second)
	for range b.N {
		_, rss0 := procStat(b, pid)
		heap0 := heapInuse(b, url)
		cs := make([]*benchCaller, 0, calls)
		for i := range calls {
			c, err := phone.dial(ctx, i < measured)
			if err != nil {
				b.Fatalf("call %d: %v", len(cs)+1, err)
			}
			cs = append(cs, c)
		}
		// Idle: silence for 3 s each (the greetings play meanwhile).
		streamAll(ctx, cs, silence(150), 0)
		_, rssIdle := procStat(b, pid)
		heapIdle := heapInuse(b, url)
		// Talking: the clip, 1 s of silence, again, for about 15 s.
		cpu0, _ := procStat(b, pid)
		t0 := time.Now()
		var frames [][]byte
		for len(frames) < 750 {
			frames = append(frames, speech...)
			frames = append(frames, silence(50)...)
		}
		// Callers are staggered over a second, like real traffic.
		streamAll(ctx, cs, frames, 10*time.Millisecond)
		cpu1, rssTalk := procStat(b, pid)
		wall := time.Since(t0)
		talkFrom := make([]time.Duration, len(cs))
		for i, c := range cs {
			c.mu.Lock()
			talkFrom[i] = t0.Sub(c.t0)
			c.mu.Unlock()
		}
		// Send jitter, RFC 3550's D: for consecutive packets of a call,
		// the difference between their arrival (kernel timestamps) and
		// their RTP timestamps' spacing.
		var dev, idleDev []time.Duration
		var pkts int
		for ci, c := range cs[:measured] {
			c.mu.Lock()
			ps := slices.Clone(c.arrived)
			c.mu.Unlock()
			pkts += len(ps)
			if len(ps) < 100 {
				b.Fatalf("a call got only %d packets", len(ps))
			}
			for k := 1; k < len(ps); k++ {
				p, q := ps[k], ps[k-1]
				d := (p.at - q.at) - time.Duration(int32(p.ts-q.ts))*time.Second/8000
				if d < 0 {
					d = -d
				}
				if p.at < talkFrom[ci] {
					idleDev = append(idleDev, d)
				} else {
					dev = append(dev, d)
				}
			}
		}
		slices.Sort(dev)
		slices.Sort(idleDev)
		if len(idleDev) > 0 {
			b.ReportMetric(float64(idleDev[len(idleDev)*99/100].Microseconds())/1000, "idle-jitter-p99-ms")
			b.ReportMetric(float64(idleDev[len(idleDev)-1].Microseconds())/1000, "idle-jitter-max-ms")
		}
		for _, c := range cs {
			c.hangup(ctx)
		}
		b.ReportMetric(float64(dev[len(dev)/2].Microseconds())/1000, "jitter-p50-ms")
		b.ReportMetric(float64(dev[len(dev)*99/100].Microseconds())/1000, "jitter-p99-ms")
		b.ReportMetric(float64(dev[len(dev)-1].Microseconds())/1000, "jitter-max-ms")
		b.ReportMetric(float64(rssIdle-rss0)/calls/(1<<20), "RSS-MB/idle-call")
		b.ReportMetric(float64(heapIdle-heap0)/calls/(1<<20), "heap-MB/idle-call")
		b.ReportMetric(float64(rssTalk)/(1<<20), "RSS-MB")
		b.ReportMetric((cpu1-cpu0).Seconds()/wall.Seconds()/2*100, "%CPU-of-2-cores")
		b.ReportMetric(float64(pkts), "packets")
	}
}

// heapInuse is the daemon's Go heap in use, from its /metrics.
func heapInuse(b *testing.B, url string) float64 {
	b.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "go_memstats_heap_inuse_bytes "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	b.Fatal("no go_memstats_heap_inuse_bytes in /metrics")
	return 0
}

// niceSelf lowers the priority of every thread of this process (on Linux
// niceness is per thread; threads created later inherit it).
func niceSelf(b *testing.B, n int) {
	b.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		b.Logf("cannot renice the callers: %v", err)
		return
	}
	for _, t := range tasks {
		if tid, err := strconv.Atoi(t.Name()); err == nil {
			_ = syscall.Setpriority(syscall.PRIO_PROCESS, tid, n)
		}
	}
}

// streamAll sends frames on every call from one goroutine, 20 ms apart on
// an absolute schedule, call i starting i·stagger after the others: like a
// PBX, one loop for all lines, not a thread per line.
func streamAll(ctx context.Context, cs []*benchCaller, frames [][]byte, stagger time.Duration) {
	start := time.Now()
	next := make([]int, len(cs))
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		now := time.Now()
		done := true
		for i, c := range cs {
			for next[i] < len(frames) && !start.Add(time.Duration(i)*stagger+time.Duration(next[i])*20*time.Millisecond).After(now) {
				_ = c.sendFrame(frames[next[i]])
				next[i]++
			}
			if next[i] < len(frames) {
				done = false
			}
		}
		if done {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
