package sip

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/zhiyin/zhiyin/channels/voice"
	"github.com/zhiyin/zhiyin/internal/config"
)

const speechDir = "../../../shared/data/speech"

// testAnswerer is the voice engine stand-in: it records what each call
// hears and can play a tone, hang up or transfer.
type testAnswerer struct {
	startDelay time.Duration
	// onStart runs in its own goroutine once a call is answered.
	onStart func(h *testHandler)
	calls   chan *testHandler
}

func newTestAnswerer() *testAnswerer { return &testAnswerer{calls: make(chan *testHandler, 16)} }

func (a *testAnswerer) Start(ctx context.Context, info voice.CallInfo, m voice.Media, rate int) (voice.Handler, error) {
	if a.startDelay > 0 {
		select {
		case <-time.After(a.startDelay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	h := &testHandler{info: info, m: m, rate: rate, done: make(chan struct{}), ended: make(chan string, 1)}
	a.calls <- h
	if a.onStart != nil {
		go a.onStart(h)
	}
	return h, nil
}

type testHandler struct {
	info voice.CallInfo
	m    voice.Media
	rate int

	mu      sync.Mutex
	samples int
	sumSq   float64
	loud    int // 20 ms frames with RMS above 0.004 (the AISHELL clip peaks at 0.05)
	digits  []rune
	holds   []bool
	stats   voice.RTPStats
	once    sync.Once
	done    chan struct{}
	ended   chan string
}

func (h *testHandler) Audio(s []float32) {
	h.mu.Lock()
	h.samples += len(s)
	var sq float64
	for _, v := range s {
		sq += float64(v) * float64(v)
	}
	h.sumSq += sq
	if len(s) > 0 && math.Sqrt(sq/float64(len(s))) > 0.004 {
		h.loud++
	}
	h.mu.Unlock()
}
func (h *testHandler) DTMF(d rune) { h.mu.Lock(); h.digits = append(h.digits, d); h.mu.Unlock() }
func (h *testHandler) Hold(on bool) {
	h.mu.Lock()
	h.holds = append(h.holds, on)
	h.mu.Unlock()
}
func (h *testHandler) Stats(s voice.RTPStats) { h.mu.Lock(); h.stats = s; h.mu.Unlock() }
func (h *testHandler) End(reason string) {
	h.once.Do(func() { h.ended <- reason; close(h.done) })
}
func (h *testHandler) Done() <-chan struct{} { return h.done }

// playTone plays d of a 440 Hz tone at half scale.
func playTone(ctx context.Context, m voice.Media, d time.Duration) error {
	n := int(d.Seconds() * 8000)
	buf := make([]float32, 160)
	for i := 0; i < n; i += 160 {
		for j := range buf {
			buf[j] = float32(0.5 * math.Sin(2*math.Pi*440*float64(i+j)/8000))
		}
		if err := m.Play(ctx, buf); err != nil {
			return err
		}
	}
	return m.Drain(ctx)
}

func testLog(t testing.TB) *slog.Logger {
	if os.Getenv("ZHIYIN_TEST_SIP_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func startServer(t testing.TB, a voice.Answerer, mutate func(*Config), tweak ...func(*Server)) *Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Enabled = true
	cfg.Listen = "127.0.0.1:0"
	cfg.RTPPorts = "20000-29999"
	// sipp sends RTP from other ports than it advertises: the test checks
	// our RTP at the advertised port, so no latching.
	cfg.Media.Symmetric = false
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := New(cfg, Deps{Answerer: a, Log: testLog(t), Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range tweak {
		f(s)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return s
}

func needSipp(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("sipp"); err != nil {
		t.Skip("needs sipp (Debian package sip-tester) for a real SIP peer")
	}
}

func freeUDPPort(t testing.TB, ip string) int {
	t.Helper()
	c, err := net.ListenPacket("udp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// sipp runs one scenario from testdata against s, with {{KEY}}s replaced,
// and returns its error (non-nil when the scenario failed) and output.
type sippRun struct {
	scenario string
	vars     map[string]string
	localIP  string
	args     []string
	timeout  time.Duration
	// uas runs sipp as the called side on port (no remote address).
	uas  bool
	port int
}

func runSipp(t testing.TB, s *Server, r sippRun) (string, error) {
	t.Helper()
	needSipp(t)
	path := r.scenario
	if !filepath.IsAbs(path) {
		path = filepath.Join("testdata", path)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	if _, ok := r.vars["RTPPORT"]; !ok {
		if r.vars == nil {
			r.vars = map[string]string{}
		}
		r.vars["RTPPORT"] = strconv.Itoa(freeUDPPort(t, "127.0.0.1"))
	}
	for k, v := range r.vars {
		text = strings.ReplaceAll(text, "{{"+k+"}}", v)
	}
	dir := t.TempDir()
	sf := filepath.Join(dir, filepath.Base(r.scenario))
	if err := os.WriteFile(sf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	ip := r.localIP
	if ip == "" {
		ip = "127.0.0.1"
	}
	if r.timeout == 0 {
		r.timeout = 25 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout+5*time.Second)
	defer cancel()
	port := r.port
	if port == 0 {
		port = freeUDPPort(t, ip)
	}
	var args []string
	if !r.uas {
		args = append(args, s.Addr().String())
	}
	args = append(args, "-sf", sf, "-m", "1", "-l", "1", "-i", ip, "-mi", ip,
		"-p", strconv.Itoa(port), "-mp", strconv.Itoa(freeUDPPort(t, ip)),
		"-nostdin", "-timeout", fmt.Sprintf("%ds", int(r.timeout.Seconds())), "-timeout_error",
		"-trace_err", "-error_file", filepath.Join(dir, "err.log"), "-recv_timeout", "15000")
	args = append(args, r.args...)
	cmd := exec.CommandContext(ctx, "sipp", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		errLog, _ := os.ReadFile(filepath.Join(dir, "err.log"))
		return string(out) + "\n--- sipp errors ---\n" + string(errLog), err
	}
	return string(out), nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func waitHandler(t testing.TB, a *testAnswerer) *testHandler {
	t.Helper()
	select {
	case h := <-a.calls:
		return h
	case <-time.After(15 * time.Second):
		t.Fatal("no call reached the answerer")
	}
	return nil
}

func waitEnd(t testing.TB, h *testHandler) string {
	t.Helper()
	select {
	case r := <-h.ended:
		return r
	case <-time.After(15 * time.Second):
		t.Fatal("handler never got End")
	}
	return ""
}

func waitCalls(t testing.TB, s *Server, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.Calls() != n {
		if time.Now().After(deadline) {
			t.Fatalf("calls = %d, want %d", s.Calls(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// speechULaw converts a real speech clip to raw 8 kHz µ-law for sipp's
// rtp_stream and returns the file and its length.
func speechULaw(t testing.TB) (string, time.Duration) {
	t.Helper()
	src := filepath.Join(speechDir, "real_aishell1_BAC009S0764W0121.wav")
	if _, err := os.Stat(src); err != nil {
		t.Skipf("needs the speech clips in %s (real_aishell1_BAC009S0764W0121.wav)", speechDir)
	}
	if _, err := exec.LookPath("sox"); err != nil {
		t.Skip("needs sox to convert the clip to 8 kHz µ-law")
	}
	dst := filepath.Join(t.TempDir(), "speech.ulaw")
	if out, err := exec.Command("sox", src, "-r", "8000", "-c", "1", "-t", "ul", dst).CombinedOutput(); err != nil {
		t.Fatalf("sox: %v: %s", err, out)
	}
	st, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	return dst, time.Duration(st.Size()) * time.Second / 8000
}

// capturedRTP is what the test's socket at the caller's advertised media
// port received.
type capturedRTP struct {
	pkts []rtp.Packet
	at   []time.Time
}

func captureRTP(t testing.TB) (port int, stop func() capturedRTP) {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	var got capturedRTP
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, _, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			var p rtp.Packet
			if p.Unmarshal(buf[:n]) == nil {
				p.Payload = slices.Clone(p.Payload)
				got.pkts = append(got.pkts, p)
				got.at = append(got.at, time.Now())
			}
		}
	}()
	return c.LocalAddr().(*net.UDPAddr).Port, func() capturedRTP {
		c.Close()
		<-done
		return got
	}
}

func TestSippCall(t *testing.T) {
	needSipp(t)
	audio, dur := speechULaw(t)
	a := newTestAnswerer()
	a.onStart = func(h *testHandler) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = playTone(ctx, h.m, 2*time.Second)
	}
	s := startServer(t, a, nil)
	port, stop := captureRTP(t)
	out, err := runSipp(t, s, sippRun{scenario: "uac_call.xml", vars: map[string]string{
		"RTPPORT": strconv.Itoa(port), "AUDIO": audio, "AUDIO_MS": strconv.Itoa(int(dur.Milliseconds()) + 500),
	}})
	got := stop()
	if err != nil {
		t.Fatalf("sipp: %v\n%s", err, tail(out, 3000))
	}
	h := waitHandler(t, a)
	if r := waitEnd(t, h); r != "caller hung up" {
		t.Errorf("end reason %q", r)
	}
	h.mu.Lock()
	samples, rms, loud, digits, st := h.samples, math.Sqrt(h.sumSq/float64(max(h.samples, 1))), h.loud, string(h.digits), h.stats
	h.mu.Unlock()
	heard := time.Duration(samples) * time.Second / 8000
	t.Logf("heard %v of caller audio (clip %v), rms %.3f, %d loud frames, digits %q, stats %+v", heard, dur, rms, loud, digits, st)
	// The stream delivers a frame every 20 ms from answer to BYE, so at
	// least the clip's length, and no more than the whole call.
	if heard < dur || heard > dur+5*time.Second {
		t.Errorf("heard %v of audio for a %v clip", heard, dur)
	}
	if loud < 50 {
		t.Errorf("caller audio is nearly silent: %d frames of speech level (rms %.4f)", loud, rms)
	}
	if digits != "1" {
		t.Errorf("digits %q, want \"1\" once", digits)
	}
	if st.Received < uint64(dur/(20*time.Millisecond))*9/10 {
		t.Errorf("stats received %d packets for a %v clip", st.Received, dur)
	}
	if h.info.Channel != "sip" || h.info.ID == "" || !strings.Contains(h.info.From, "caller@") || h.rate != 8000 {
		t.Errorf("call info %+v rate %d", h.info, h.rate)
	}
	checkOurRTP(t, got)
	waitCalls(t, s, 0)
	fams, err := s.deps.Metrics.(prometheus.Gatherer).Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			switch {
			case f.GetName() == "zhiyin_sip_requests_total" && m.GetLabel()[0].GetValue() == "200" && m.GetLabel()[1].GetValue() == "INVITE": // labels sorted: code, method
				seen[f.GetName()] = fmt.Sprint(m.GetCounter().GetValue())
			case f.GetName() == "zhiyin_sip_call_setup_seconds", f.GetName() == "zhiyin_sip_rtp_jitter_seconds":
				seen[f.GetName()] = fmt.Sprint(m.GetHistogram().GetSampleCount())
			case f.GetName() == "zhiyin_sip_calls_active":
				seen[f.GetName()] = fmt.Sprint(m.GetGauge().GetValue())
			}
		}
	}
	want := map[string]string{"zhiyin_sip_requests_total": "1", "zhiyin_sip_call_setup_seconds": "1",
		"zhiyin_sip_rtp_jitter_seconds": "1", "zhiyin_sip_calls_active": "0"}
	for k, v := range want {
		if seen[k] != v {
			t.Errorf("%s = %q, want %s", k, seen[k], v)
		}
	}
}

// checkOurRTP checks what our stream sent to the caller's advertised port:
// PCMU, 160-byte frames paced at 20 ms, consecutive sequence numbers and
// timestamps, one SSRC, and the tone audible.
func checkOurRTP(t *testing.T, got capturedRTP) {
	t.Helper()
	if len(got.pkts) < 100 {
		t.Fatalf("captured %d RTP packets from zhiyin, want a call's worth", len(got.pkts))
	}
	ssrc := got.pkts[0].SSRC
	loud, skips := 0, 0
	var gaps []time.Duration
	for i, p := range got.pkts {
		if p.PayloadType != 0 || len(p.Payload) != 160 {
			t.Fatalf("packet %d: PT %d, %d bytes; want PCMU 160", i, p.PayloadType, len(p.Payload))
		}
		if p.SSRC != ssrc {
			t.Fatalf("packet %d: SSRC %x, want one SSRC %x", i, p.SSRC, ssrc)
		}
		if i > 0 {
			q := got.pkts[i-1]
			// A stream that fell behind its clock may skip frames: the
			// timestamp then tells the real time (a multiple of 160).
			dts := p.Timestamp - q.Timestamp
			if p.SequenceNumber != q.SequenceNumber+1 || dts == 0 || dts%160 != 0 || dts > 160*50 {
				t.Fatalf("packet %d: seq %d ts %d after seq %d ts %d", i, p.SequenceNumber, p.Timestamp, q.SequenceNumber, q.Timestamp)
			}
			if dts != 160 {
				skips++
			}
			gaps = append(gaps, got.at[i].Sub(got.at[i-1]))
		}
		// µ-law silence is 0xFF/0x7F; the half-scale tone has bytes far from it.
		far := 0
		for _, b := range p.Payload {
			if b&0x7F < 0x50 {
				far++
			}
		}
		if far > 40 {
			loud++
		}
	}
	slices.Sort(gaps)
	med := gaps[len(gaps)/2]
	t.Logf("zhiyin sent %d packets, %d with the tone, inter-arrival median %v p95 %v, %d timestamp skips", len(got.pkts), loud, med, gaps[len(gaps)*95/100], skips)
	if skips > len(got.pkts)/20 {
		t.Errorf("%d of %d packets skipped timestamps", skips, len(got.pkts))
	}
	if med < 15*time.Millisecond || med > 25*time.Millisecond {
		t.Errorf("inter-arrival median %v, want about 20 ms", med)
	}
	if loud < 50 {
		t.Errorf("only %d packets carry the tone played for 2 s", loud)
	}
}

func TestSippUnknownPeerForbidden(t *testing.T) {
	needSipp(t)
	a := newTestAnswerer()
	s := startServer(t, a, func(c *Config) { c.Peers = []string{"127.0.0.1"} })
	if c, err := net.ListenPacket("udp", "127.0.0.2:0"); err != nil {
		t.Skipf("needs 127.0.0.2 on loopback: %v", err)
	} else {
		c.Close()
	}
	out, err := runSipp(t, s, sippRun{scenario: "uac_refused.xml", localIP: "127.0.0.2", vars: map[string]string{"CODE": "403"}})
	if err != nil {
		t.Fatalf("sipp from 127.0.0.2: %v\n%s", err, tail(out, 3000))
	}
	if len(a.calls) != 0 {
		t.Error("a refused peer's call reached the answerer")
	}
}

func TestSippDigestAuth(t *testing.T) {
	needSipp(t)
	a := newTestAnswerer()
	a.onStart = func(h *testHandler) {}
	s := startServer(t, a, func(c *Config) {
		c.Auth = AuthConfig{Username: "pbx", Password: config.NewSecret("s3cret"), Realm: "zhiyin"}
	})
	bye := strings.Join([]string{
		"  <send>\n    <![CDATA[\n      ACK [next_url] SIP/2.0\n      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n      From: sipp <sip:caller@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]\n      To: <sip:zhiyin@[remote_ip]:[remote_port]>[peer_tag_param]\n      Call-ID: [call_id]\n      CSeq: 2 ACK\n      Max-Forwards: 70\n      Content-Length: 0\n\n    ]]>\n  </send>",
		"  <pause milliseconds=\"300\"/>",
		"  <send retrans=\"500\">\n    <![CDATA[\n      BYE [next_url] SIP/2.0\n      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n      From: sipp <sip:caller@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]\n      To: <sip:zhiyin@[remote_ip]:[remote_port]>[peer_tag_param]\n      Call-ID: [call_id]\n      CSeq: 3 BYE\n      Max-Forwards: 70\n      Content-Length: 0\n\n    ]]>\n  </send>",
		"  <recv response=\"200\" crlf=\"true\"/>",
	}, "\n")
	ack := "  <send>\n    <![CDATA[\n      ACK sip:zhiyin@[remote_ip]:[remote_port] SIP/2.0\n      [last_Via:]\n      From: sipp <sip:caller@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]\n      To: <sip:zhiyin@[remote_ip]:[remote_port]>[peer_tag_param]\n      Call-ID: [call_id]\n      CSeq: 2 ACK\n      Max-Forwards: 70\n      Content-Length: 0\n\n    ]]>\n  </send>"

	t.Run("good", func(t *testing.T) {
		out, err := runSipp(t, s, sippRun{scenario: "uac_auth.xml", vars: map[string]string{"CODE": "200", "AFTER": bye},
			args: []string{"-au", "pbx", "-ap", "s3cret"}})
		if err != nil {
			t.Fatalf("sipp: %v\n%s", err, tail(out, 3000))
		}
		h := waitHandler(t, a)
		waitEnd(t, h)
	})
	t.Run("wrong password", func(t *testing.T) {
		out, err := runSipp(t, s, sippRun{scenario: "uac_auth.xml", vars: map[string]string{"CODE": "403", "AFTER": ack},
			args: []string{"-au", "pbx", "-ap", "wrong"}})
		if err != nil {
			t.Fatalf("sipp: %v\n%s", err, tail(out, 3000))
		}
		if len(a.calls) != 0 {
			t.Error("a call with a wrong password reached the answerer")
		}
	})
	waitCalls(t, s, 0)
}

func TestSippBusy(t *testing.T) {
	needSipp(t)
	a := newTestAnswerer()
	a.onStart = func(h *testHandler) {
		time.Sleep(1500 * time.Millisecond)
		h.m.Hangup("done")
	}
	s := startServer(t, a, func(c *Config) { c.MaxCalls = 1 })
	first := make(chan error, 1)
	var firstOut string
	go func() {
		var err error
		firstOut, err = runSipp(t, s, sippRun{scenario: "uac_wait_bye.xml"})
		first <- err
	}()
	waitCalls(t, s, 1)
	out, err := runSipp(t, s, sippRun{scenario: "uac_refused.xml", vars: map[string]string{"CODE": "486"}})
	if err != nil {
		t.Fatalf("second call: %v\n%s", err, tail(out, 3000))
	}
	if err := <-first; err != nil {
		t.Fatalf("first call: %v\n%s", err, tail(firstOut, 3000))
	}
	waitCalls(t, s, 0)
}

func TestSippNoCommonCodec(t *testing.T) {
	needSipp(t)
	a := newTestAnswerer()
	s := startServer(t, a, nil)
	raw, err := os.ReadFile("testdata/uac_refused.xml")
	if err != nil {
		t.Fatal(err)
	}
	// Offer only G.729 (18).
	text := strings.Replace(string(raw), "RTP/AVP 0 8 101", "RTP/AVP 18 101", 1)
	text = strings.Replace(text, "      a=rtpmap:0 PCMU/8000\n      a=rtpmap:8 PCMA/8000\n", "      a=rtpmap:18 G729/8000\n", 1)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "g729.xml"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runSipp(t, s, sippRun{scenario: filepath.Join(dir, "g729.xml"), vars: map[string]string{"CODE": "488"}})
	if err != nil {
		t.Fatalf("sipp: %v\n%s", err, tail(out, 3000))
	}
	waitCalls(t, s, 0)
}

func TestSippCancel(t *testing.T) {
	needSipp(t)
	a := newTestAnswerer()
	a.startDelay = 3 * time.Second
	s := startServer(t, a, nil)
	out, err := runSipp(t, s, sippRun{scenario: "uac_cancel.xml"})
	if err != nil {
		t.Fatalf("sipp: %v\n%s", err, tail(out, 3000))
	}
	waitCalls(t, s, 0)
	s.mu.Lock()
	n := len(s.calls)
	s.mu.Unlock()
	if n != 0 || len(a.calls) != 0 {
		t.Errorf("after CANCEL: %d dialogs kept, %d calls answered", n, len(a.calls))
	}
}

func TestSippHangupFromZhiyin(t *testing.T) {
	needSipp(t)
	a := newTestAnswerer()
	a.onStart = func(h *testHandler) {
		time.Sleep(500 * time.Millisecond)
		h.m.Hangup("goodbye")
	}
	s := startServer(t, a, nil)
	out, err := runSipp(t, s, sippRun{scenario: "uac_wait_bye.xml"})
	if err != nil {
		t.Fatalf("sipp: %v\n%s", err, tail(out, 3000))
	}
	h := waitHandler(t, a)
	if r := waitEnd(t, h); r != "goodbye" {
		t.Errorf("end reason %q", r)
	}
	if err := h.m.Play(context.Background(), make([]float32, 160)); !errors.Is(err, voice.ErrHungUp) {
		t.Errorf("Play after hangup: %v, want ErrHungUp", err)
	}
	waitCalls(t, s, 0)
}

func TestSippRefer(t *testing.T) {
	needSipp(t)
	a := newTestAnswerer()
	result := make(chan error, 1)
	a.onStart = func(h *testHandler) {
		time.Sleep(300 * time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		result <- h.m.Transfer(ctx, "")
	}
	s := startServer(t, a, func(c *Config) { c.Agent = "sip:agent@127.0.0.1:5999" })
	out, err := runSipp(t, s, sippRun{scenario: "uac_refer.xml"})
	if err != nil {
		t.Fatalf("sipp: %v\n%s", err, tail(out, 3000))
	}
	if err := <-result; err != nil {
		t.Errorf("Transfer: %v", err)
	}
	h := waitHandler(t, a)
	if r := waitEnd(t, h); r != "transferred" {
		t.Errorf("end reason %q", r)
	}
	waitCalls(t, s, 0)
}

func TestSippHoldResume(t *testing.T) {
	needSipp(t)
	a := newTestAnswerer()
	s := startServer(t, a, nil)
	out, err := runSipp(t, s, sippRun{scenario: "uac_hold.xml", vars: map[string]string{"PAUSE_MS": "400"}})
	if err != nil {
		t.Fatalf("sipp: %v\n%s", err, tail(out, 3000))
	}
	h := waitHandler(t, a)
	waitEnd(t, h)
	h.mu.Lock()
	holds := slices.Clone(h.holds)
	h.mu.Unlock()
	if !slices.Equal(holds, []bool{true, false}) {
		t.Errorf("Hold calls %v, want [true false]", holds)
	}
	waitCalls(t, s, 0)
}

// scenarioWith copies a testdata scenario with some text replaced, for the
// variants that differ in a header.
func scenarioWith(t testing.TB, name string, repl ...string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	for i := 0; i+1 < len(repl); i += 2 {
		if !strings.Contains(text, repl[i]) {
			t.Fatalf("%s has no %q", name, repl[i])
		}
		text = strings.ReplaceAll(text, repl[i], repl[i+1])
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSippSessionExpiresWithoutRefresh(t *testing.T) {
	needSipp(t)
	a := newTestAnswerer()
	s := startServer(t, a, nil, func(s *Server) { s.minSE = time.Second })
	sc := scenarioWith(t, "uac_wait_bye.xml", "Session-Expires: 1800;refresher=uac", "Session-Expires: 2;refresher=uac")
	start := time.Now()
	out, err := runSipp(t, s, sippRun{scenario: sc})
	if err != nil {
		t.Fatalf("sipp: %v\n%s", err, tail(out, 3000))
	}
	h := waitHandler(t, a)
	if r := waitEnd(t, h); r != "session expired" {
		t.Errorf("end reason %q", r)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("session of 2 s ended after %v", d)
	}
	waitCalls(t, s, 0)
}

func TestSippSessionRefreshByUs(t *testing.T) {
	needSipp(t)
	a := newTestAnswerer()
	s := startServer(t, a, nil, func(s *Server) { s.minSE = time.Second })
	out, err := runSipp(t, s, sippRun{scenario: "uac_refresh.xml"})
	if err != nil {
		t.Fatalf("sipp: %v\n%s", err, tail(out, 3000))
	}
	h := waitHandler(t, a)
	if r := waitEnd(t, h); r != "caller hung up" {
		t.Errorf("end reason %q", r)
	}
	waitCalls(t, s, 0)
}

func TestSippSessionTooSmall(t *testing.T) {
	needSipp(t)
	a := newTestAnswerer()
	s := startServer(t, a, nil)
	sc := scenarioWith(t, "uac_refused.xml", "Session-Expires: 1800;refresher=uac", "Session-Expires: 30;refresher=uac")
	out, err := runSipp(t, s, sippRun{scenario: sc, vars: map[string]string{"CODE": "422"}})
	if err != nil {
		t.Fatalf("sipp: %v\n%s", err, tail(out, 3000))
	}
	waitCalls(t, s, 0)
}

func TestSippInfoDTMF(t *testing.T) {
	needSipp(t)
	a := newTestAnswerer()
	s := startServer(t, a, nil)
	out, err := runSipp(t, s, sippRun{scenario: "uac_info.xml"})
	if err != nil {
		t.Fatalf("sipp: %v\n%s", err, tail(out, 3000))
	}
	h := waitHandler(t, a)
	waitEnd(t, h)
	h.mu.Lock()
	digits := string(h.digits)
	h.mu.Unlock()
	if digits != "5#" {
		t.Errorf("digits %q, want \"5#\"", digits)
	}
}

func TestSippBridgeTransfer(t *testing.T) {
	needSipp(t)
	agentPort := freeUDPPort(t, "127.0.0.1")
	a := newTestAnswerer()
	result := make(chan error, 1)
	a.onStart = func(h *testHandler) {
		time.Sleep(300 * time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		result <- h.m.Transfer(ctx, "")
	}
	s := startServer(t, a, func(c *Config) {
		c.Transfer = TransferBridge
		c.Agent = "sip:agent@127.0.0.1:" + strconv.Itoa(agentPort)
	})
	agentErr := make(chan error, 1)
	var agentOut string
	go func() {
		var err error
		agentOut, err = runSipp(t, s, sippRun{scenario: "uas_agent.xml", uas: true, port: agentPort})
		agentErr <- err
	}()
	time.Sleep(300 * time.Millisecond) // let the agent's sipp bind
	out, err := runSipp(t, s, sippRun{scenario: "uac_wait_bye.xml"})
	if err != nil {
		t.Fatalf("caller: %v\n%s", err, tail(out, 3000))
	}
	if err := <-agentErr; err != nil {
		t.Fatalf("agent: %v\n%s", err, tail(agentOut, 3000))
	}
	if err := <-result; err != nil {
		t.Errorf("Transfer: %v", err)
	}
	h := waitHandler(t, a)
	if r := waitEnd(t, h); r != "transferred" {
		t.Errorf("end reason %q", r)
	}
	waitCalls(t, s, 0)
	s.mu.Lock()
	n := len(s.agents)
	s.mu.Unlock()
	if n != 0 {
		t.Errorf("%d agent legs left", n)
	}
}

func TestSippCallTCP(t *testing.T) {
	needSipp(t)
	a := newTestAnswerer()
	a.onStart = func(h *testHandler) {
		time.Sleep(300 * time.Millisecond)
		h.m.Hangup("done")
	}
	s := startServer(t, a, nil)
	out, err := runSipp(t, s, sippRun{scenario: "uac_wait_bye.xml", args: []string{"-t", "t1"}})
	if err != nil {
		t.Fatalf("sipp over TCP: %v\n%s", err, tail(out, 3000))
	}
	waitEnd(t, waitHandler(t, a))
	waitCalls(t, s, 0)
}

func TestStopHangsUpCalls(t *testing.T) {
	needSipp(t)
	a := newTestAnswerer()
	s := startServer(t, a, nil)
	res := make(chan error, 1)
	var out string
	go func() {
		var err error
		out, err = runSipp(t, s, sippRun{scenario: "uac_wait_bye.xml"})
		res <- err
	}()
	h := waitHandler(t, a)
	waitCalls(t, s, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-res; err != nil {
		t.Fatalf("sipp never got our BYE: %v\n%s", err, tail(out, 3000))
	}
	if r := waitEnd(t, h); r != "server shutting down" {
		t.Errorf("end reason %q", r)
	}
	if st := s.Status(); st.Listening || st.Calls != 0 {
		t.Errorf("status after Stop: %+v", st)
	}
	if err := s.Stop(ctx); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestSippNoAck(t *testing.T) {
	needSipp(t)
	a := newTestAnswerer()
	s := startServer(t, a, nil, func(s *Server) { s.ackTimeout = 1500 * time.Millisecond })
	out, err := runSipp(t, s, sippRun{scenario: "uac_no_ack.xml"})
	if err != nil {
		t.Fatalf("sipp: %v\n%s", err, tail(out, 3000))
	}
	if r := waitEnd(t, waitHandler(t, a)); r != "no ACK" {
		t.Errorf("end reason %q", r)
	}
	waitCalls(t, s, 0)
}
