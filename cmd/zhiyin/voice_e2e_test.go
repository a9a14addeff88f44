package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/asr/audio"
)

// voicePrereqs skips unless sipp, sox and espeak-ng are installed (make
// test's setup installs them) besides what speech needs.
func voicePrereqs(t *testing.T) (speech, modelDirs string) {
	t.Helper()
	speech, modelDirs = asrPrereqs(t)
	for _, bin := range []string{"sipp", "sox", "espeak-ng"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s (scripts/setup.sh test installs it)", bin)
		}
	}
	return speech, modelDirs
}

// rtpPacket is one RTP packet the test's media port received.
type rtpPacket struct {
	at      time.Duration // since the first packet
	pt      uint8
	seq     uint16
	ts      uint32
	ssrc    uint32
	payload []byte
}

// rms is the packet's loudness (µ-law payloads), 0..1.
func (p rtpPacket) rms() float64 {
	if len(p.payload) == 0 {
		return 0
	}
	var sum float64
	for _, b := range p.payload {
		v := float64(audio.MuLawToLinear(b)) / 32768
		sum += v * v
	}
	return math.Sqrt(sum / float64(len(p.payload)))
}

// rtpCapture is the caller's media port: it records what zhiyin sends.
type rtpCapture struct {
	pc   net.PacketConn
	mu   sync.Mutex
	pkts []rtpPacket
	done chan struct{}
}

func captureRTP(t *testing.T) *rtpCapture {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &rtpCapture{pc: pc, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		buf := make([]byte, 2048)
		var t0 time.Time
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			now := time.Now()
			if n < 12 || buf[0]>>6 != 2 {
				continue
			}
			if t0.IsZero() {
				t0 = now
			}
			c.mu.Lock()
			c.pkts = append(c.pkts, rtpPacket{at: now.Sub(t0), pt: buf[1] & 0x7f, seq: binary.BigEndian.Uint16(buf[2:]),
				ts: binary.BigEndian.Uint32(buf[4:]), ssrc: binary.BigEndian.Uint32(buf[8:]), payload: bytes.Clone(buf[12:n])})
			c.mu.Unlock()
		}
	}()
	t.Cleanup(func() { pc.Close(); <-c.done })
	return c
}

func (c *rtpCapture) port() int { return c.pc.LocalAddr().(*net.UDPAddr).Port }

func (c *rtpCapture) packets() []rtpPacket {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.pkts)
}

// freeUDPPort is a UDP port nobody uses right now (even, for sipp's RTP).
func freeUDPPort(t *testing.T) int {
	t.Helper()
	for range 100 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := pc.LocalAddr().(*net.UDPAddr).Port
		pc.Close()
		if p%2 == 0 && p < 65000 {
			return p
		}
	}
	t.Fatal("no free even UDP port")
	return 0
}

// runSipp runs one call of a scenario from testdata/sipp against the SIP
// address, with its {{NAME}} placeholders filled; it returns sipp's exit
// code and output (sipp exits 0 when the scenario passed).
func runSipp(t *testing.T, scenario, sipAddr, localIP string, vars map[string]string) (int, string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "sipp", scenario))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for k, v := range vars {
		s = strings.ReplaceAll(s, "{{"+k+"}}", v)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, scenario)
	writeFile(t, path, s)
	cmd := exec.Command("sipp", sipAddr, "-sf", path, "-m", "1", "-i", localIP, "-p", fmt.Sprint(freeUDPPort(t)),
		"-mp", fmt.Sprint(freeUDPPort(t)), "-nostdin", "-timeout", "60s", "-trace_err", "-error_file", filepath.Join(dir, "errors.log"))
	cmd.Dir = dir
	out, _ := cmd.CombinedOutput()
	code := cmd.ProcessState.ExitCode()
	if code != 0 {
		errs, _ := os.ReadFile(filepath.Join(dir, "errors.log"))
		return code, string(out) + "\n" + string(errs)
	}
	return code, string(out)
}

// TestVoiceCallEndToEnd calls the real daemon with sipp over loopback: the
// caller talks over the greeting (barge-in), is recognised by the contract
// model and answered by voice through the same dialogue as chat, keys
// digits, is recorded; a caller keying 0# is transferred with REFER; an
// unknown peer is refused.
func TestVoiceCallEndToEnd(t *testing.T) {
	speech, modelDirs := voicePrereqs(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	sipPort := freeUDPPort(t)
	sipAddr := fmt.Sprintf("127.0.0.1:%d", sipPort)
	cfg := asrConfigFile(t, dir, addr, modelDirs, true, fmt.Sprintf(`voice:
  record: true
channels:
  sip:
    enabled: true
    listen: %s
    peers: [127.0.0.1]
    rtp_ports: 20000-40000
    agent: sip:agent@127.0.0.1:5999
    media:
      symmetric_rtp: false
`, sipAddr))
	d := startDaemon(t, addr, nil, "serve", "--config", cfg)
	if ready := waitReady(t, d.url); !strings.Contains(ready, `"name":"voice"`) || !strings.Contains(ready, "sip "+sipAddr) ||
		!strings.Contains(ready, `"name":"channel:sip"`) || !strings.Contains(ready, "listening on "+sipAddr+"; 0 calls") {
		t.Fatalf("/readyz lacks the voice line: %s", ready)
	}
	// No speech model yet: a call would be greeted and never understood,
	// so it is refused (503); installing one needs no restart.
	if code, out := runSipp(t, "refused.xml", sipAddr, "127.0.0.1", map[string]string{"RTPPORT": "9", "CODE": "503"}); code != 0 {
		t.Fatalf("a call without a speech model was not refused with 503 (exit %d):\n%s", code, out)
	}
	installModel(t, cfg, senseVoiceFolder)

	// The caller's speech, 8 kHz µ-law, converted with sox.
	clip := filepath.Join(speech, "espeak_cmn_02.wav")
	ulaw := filepath.Join(dir, "speech.ul")
	if out, err := exec.Command("sox", clip, "-r", "8000", "-c", "1", "-t", "raw", "-e", "u-law", ulaw).CombinedOutput(); err != nil {
		t.Fatalf("sox: %v\n%s", err, out)
	}
	samples, rate := clipSamples(t, readClip(t, speech, "espeak_cmn_02.wav"))
	onset := speechOnset(samples, rate)
	clipLen := time.Duration(len(samples)) * time.Second / time.Duration(rate)

	t.Run("call", func(t *testing.T) {
		capt := captureRTP(t)
		code, out := runSipp(t, "call.xml", sipAddr, "127.0.0.1", map[string]string{
			"RTPPORT": fmt.Sprint(capt.port()), "AUDIO": ulaw,
			"WAIT_MS": fmt.Sprint((clipLen + 6*time.Second).Milliseconds()), "TAIL_MS": "5000",
		})
		if code != 0 {
			t.Fatalf("sipp exit %d:\n%s", code, out)
		}
		checkCallAudio(t, capt.packets(), onset, clipLen)
		checkCallRecord(t, cfg, dir)
	})

	t.Run("handoff", func(t *testing.T) {
		capt := captureRTP(t)
		if code, out := runSipp(t, "handoff.xml", sipAddr, "127.0.0.1", map[string]string{"RTPPORT": fmt.Sprint(capt.port())}); code != 0 {
			t.Fatalf("sipp saw no REFER to the agent and BYE (exit %d):\n%s", code, out)
		}
		var calls []struct {
			End        string `json:"end"`
			Transcript []struct {
				Caller, Bot, Source string
			} `json:"transcript"`
		}
		_, stdout, _ := runCLI(t, nil, "calls", "list", "--json", "--config", cfg, "--limit", "1")
		if err := json.Unmarshal([]byte(stdout), &calls); err != nil || len(calls) != 1 {
			t.Fatalf("calls list: %v %s", err, stdout)
		}
		if calls[0].End != "transferred" {
			t.Errorf("the handed-off call ended %q, want transferred", calls[0].End)
		}
	})

	t.Run("unknown peer", func(t *testing.T) {
		capt := captureRTP(t)
		if code, out := runSipp(t, "refused.xml", sipAddr, "127.0.0.2", map[string]string{"RTPPORT": fmt.Sprint(capt.port()), "CODE": "403"}); code != 0 {
			t.Fatalf("a caller from 127.0.0.2 was not refused with 403 (exit %d):\n%s", code, out)
		}
		if n := len(capt.packets()); n != 0 {
			t.Errorf("a refused caller got %d RTP packets", n)
		}
	})

	_, metrics := get(t, d.url+"/metrics", "")
	for _, m := range []string{`zhiyin_voice_turn_seconds_bucket{stage="asr"`, `zhiyin_voice_turn_seconds_bucket{stage="response"`,
		`zhiyin_voice_calls_total{channel="sip",end="transferred"} 1`, `zhiyin_voice_barge_ins_total`, "zhiyin_sip_call_setup_seconds_count"} {
		if !strings.Contains(metrics, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	d.signal(t, syscall.SIGTERM)
	if code := d.wait(t); code != 0 {
		t.Errorf("exit %d after SIGTERM", code)
	}
}

// speechOnset is where the clip's speech starts: the first 10 ms louder
// than -30 dBFS.
func speechOnset(s []float32, rate int) time.Duration {
	w := rate / 100
	for i := 0; i+w <= len(s); i += w {
		var e float64
		for _, v := range s[i : i+w] {
			e += float64(v) * float64(v)
		}
		if math.Sqrt(e/float64(w)) > 0.03 {
			return time.Duration(i) * time.Second / time.Duration(rate)
		}
	}
	return 0
}

// checkCallAudio checks what zhiyin sent: well-formed, paced G.711; the
// greeting starts at once and stops soon after the caller starts talking
// over it; an answer follows the caller's turn.
func checkCallAudio(t *testing.T, pkts []rtpPacket, onset, clipLen time.Duration) {
	t.Helper()
	if len(pkts) < 200 {
		t.Fatalf("only %d RTP packets from zhiyin", len(pkts))
	}
	var gaps []time.Duration
	for i, p := range pkts {
		if p.pt != 0 || len(p.payload) != 160 || p.ssrc != pkts[0].ssrc {
			t.Fatalf("packet %d: PT %d, %d bytes, SSRC %x (first %x)", i, p.pt, len(p.payload), p.ssrc, pkts[0].ssrc)
		}
		if i == 0 {
			continue
		}
		q := pkts[i-1]
		if p.seq != q.seq+1 || p.ts != q.ts+160 {
			t.Fatalf("packet %d: seq %d after %d, timestamp %d after %d", i, p.seq, q.seq, p.ts, q.ts)
		}
		gaps = append(gaps, p.at-q.at)
	}
	slices.Sort(gaps)
	med := gaps[len(gaps)/2]
	t.Logf("%d packets over %v; inter-arrival median %v, p5 %v, p95 %v", len(pkts), pkts[len(pkts)-1].at, med, gaps[len(gaps)*5/100], gaps[len(gaps)*95/100])
	if med < 18*time.Millisecond || med > 22*time.Millisecond {
		t.Errorf("packets are not paced at 20 ms: median gap %v", med)
	}
	loud := func(p rtpPacket) bool { return p.rms() > 0.01 }
	first := slices.IndexFunc(pkts, loud)
	if first < 0 {
		t.Fatal("zhiyin sent only silence")
	}
	// The greeting's end: the first 300 ms of silence after it started.
	stop := -1
	for i := first; i+15 <= len(pkts); i++ {
		if !slices.ContainsFunc(pkts[i:i+15], loud) {
			stop = i
			break
		}
	}
	if stop < 0 {
		t.Fatal("the greeting never stopped")
	}
	t.Logf("greeting from %v to %v; the caller's speech starts %v into the call (barge-in after about %v)", pkts[first].at, pkts[stop].at, onset, pkts[stop].at-pkts[first].at-onset)
	if pkts[first].at > time.Second {
		t.Errorf("the greeting started %v into the call", pkts[first].at)
	}
	// Said whole, the greeting lasts about 3 s; the caller talks from
	// `onset` on, so playback must stop well before.
	if pkts[stop].at-pkts[first].at > onset+time.Second {
		t.Errorf("the greeting went on %v although the caller spoke from %v (no barge-in)", pkts[stop].at-pkts[first].at, onset)
	}
	answer := slices.IndexFunc(pkts[stop:], func(p rtpPacket) bool { return p.at > pkts[first].at+clipLen && loud(p) })
	if answer < 0 {
		t.Fatal("no spoken answer after the caller's turn")
	}
	t.Logf("the answer starts %v into the call (speech ends %v in)", pkts[stop+answer].at, clipLen)
}

// checkCallRecord checks the call's record, transcript, session and
// recording as the operator's tools show them.
func checkCallRecord(t *testing.T, cfg, dir string) {
	t.Helper()
	code, stdout, stderr := runCLI(t, nil, "calls", "list", "--json", "--config", cfg)
	var calls []struct {
		CallID    string `json:"call_id"`
		Channel   string `json:"channel"`
		SessionID string `json:"session_id"`
		End       string `json:"end"`
		Turns     int    `json:"turns"`
		BargeIns  int    `json:"barge_ins"`
		DTMF      int    `json:"dtmf_digits"`
		Recording string `json:"recording"`
		RTP       struct {
			Received uint64 `json:"Received"`
		} `json:"rtp"`
	}
	if err := json.Unmarshal([]byte(stdout), &calls); code != 0 || err != nil || len(calls) != 1 {
		t.Fatalf("calls list: exit %d, %v\n%s%s", code, err, stdout, stderr)
	}
	c := calls[0]
	t.Logf("call record: %+v", c)
	if c.Channel != "sip" || c.SessionID == "" || c.End != "remote" || c.Turns < 2 || c.BargeIns < 1 || c.DTMF < 2 || c.Recording == "" || c.RTP.Received < 150 {
		t.Errorf("call record %+v", c)
	}
	code, stdout, stderr = runCLI(t, nil, "calls", "show", c.CallID, "--json", "--config", cfg)
	var full struct {
		Transcript []struct {
			Source, Caller, Bot string
			Response            int64 `json:"response"`
		} `json:"transcript"`
	}
	if err := json.Unmarshal([]byte(stdout), &full); code != 0 || err != nil {
		t.Fatalf("calls show: exit %d, %v\n%s%s", code, err, stdout, stderr)
	}
	var sources []string
	for _, tr := range full.Transcript {
		sources = append(sources, tr.Source)
		if tr.Bot == "" {
			t.Errorf("turn %+v has no answer", tr)
		}
		if tr.Source == "speech" && tr.Caller == "" {
			t.Errorf("speech turn %+v has no recognised text", tr)
		}
		if tr.Source == "dtmf" && tr.Caller != "1" {
			t.Errorf("keypad turn %+v: want the digit 1", tr)
		}
	}
	if !slices.Contains(sources, "speech") || !slices.Contains(sources, "dtmf") {
		t.Errorf("transcript sources %v, want a speech and a keypad turn", sources)
	}
	// One session holds the whole call: both turns are in it.
	code, stdout, _ = runCLI(t, nil, "sessions", "show", c.SessionID, "--config", cfg)
	if code != 0 || strings.Count(stdout, "\n") < 2 {
		t.Errorf("sessions show %s: exit %d\n%s", c.SessionID, code, stdout)
	}
	// The recording decrypts to a stereo WAV with both legs speaking.
	wav := filepath.Join(dir, "call.wav")
	if code, out, errOut := runCLI(t, nil, "calls", "recording", c.CallID, "--out", wav, "--config", cfg); code != 0 {
		t.Fatalf("calls recording: exit %d\n%s%s", code, out, errOut)
	}
	b, err := os.ReadFile(wav)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 44 || binary.LittleEndian.Uint16(b[22:]) != 2 || binary.LittleEndian.Uint32(b[24:]) != 8000 {
		t.Fatalf("recording is not 8 kHz stereo WAV: % x", b[:min(len(b), 44)])
	}
	var legs [2]float64
	pcm := b[44:]
	for i := 0; i+4 <= len(pcm); i += 4 {
		for ch := range 2 {
			v := float64(int16(binary.LittleEndian.Uint16(pcm[i+2*ch:]))) / 32768
			legs[ch] = max(legs[ch], math.Abs(v))
		}
	}
	if legs[0] < 0.05 || legs[1] < 0.05 {
		t.Errorf("recording peaks: caller %.3f, bot %.3f (both should speak)", legs[0], legs[1])
	}
}

// TestVoiceCommands: `zhiyin voice` refuses to guess, lists devices as
// JSON, and names the device it cannot find with the key to set; `zhiyin
// calls` on a fresh database lists nothing and refuses an unknown call.
func TestVoiceCommands(t *testing.T) {
	_, modelDirs := voicePrereqs(t)
	dir := t.TempDir()
	cfg := asrConfigFile(t, dir, freeAddr(t), modelDirs, true, "")
	if code, _, errOut := runCLI(t, nil, "voice"); code != exitUsage || !strings.Contains(errOut, "--local") {
		t.Errorf("voice without flags: exit %d, %s", code, errOut)
	}
	code, out, errOut := runCLI(t, nil, "voice", "--list-devices", "--json")
	var devs []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &devs) != nil {
		t.Errorf("voice --list-devices --json: exit %d, %q %s", code, out, errOut)
	}
	if strings.Contains(errOut, "ALSA lib") || strings.Contains(errOut, "jack server") {
		t.Errorf("device listing leaks the audio back ends' chatter: %s", errOut)
	}
	if code, _, errOut := runCLI(t, nil, "voice", "--local", "--echo", "loud", "--config", cfg); code != exitUsage || !strings.Contains(errOut, "echo") {
		t.Errorf("--echo loud: exit %d, %s", code, errOut)
	}
	installModel(t, cfg, senseVoiceFolder)
	code, _, errOut = runCLI(t, nil, "voice", "--local", "--input", "no-such-microphone", "--config", cfg)
	if code == 0 || !strings.Contains(errOut, "no-such-microphone") || !strings.Contains(errOut, "channels.localaudio.input") {
		t.Errorf("unknown input device: exit %d, %s", code, errOut)
	}

	code, out, errOut = runCLI(t, nil, "calls", "list", "--config", cfg)
	if code != 0 || strings.Count(strings.TrimSpace(out), "\n") != 0 || !strings.HasPrefix(out, "CALL") {
		t.Errorf("calls list on a fresh database: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, nil, "calls", "show", "nope", "--config", cfg); code == 0 || !strings.Contains(errOut, "zhiyin calls list") {
		t.Errorf("calls show of an unknown call: exit %d, %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, nil, "calls", "frobnicate", "--config", cfg); code != exitUsage {
		t.Errorf("calls frobnicate: exit %d, %s", code, errOut)
	}
}
