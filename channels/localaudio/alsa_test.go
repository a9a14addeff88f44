package localaudio

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/asr/audio"
	"github.com/zhiyin/zhiyin/channels/voice"
)

// The ALSA tests run PortAudio against pcms of a temporary ~/.asoundrc:
// capture reads a FIFO this process feeds in real time with a speech clip
// (the ALSA file plugin's infile over the null pcm), playback writes a FIFO
// this process reads in real time (the file plugin's file). ALSA reads
// ~/.asoundrc when PortAudio initialises, so TestALSA re-runs this test
// binary with HOME set, and the TestChild* tests do the work there.

const (
	childEnv = "ZHIYIN_LOCALAUDIO_CHILD" // the temporary HOME, set in the child only
	clipEnv  = "ZHIYIN_LOCALAUDIO_CLIP"
	speech   = "../../../shared/data/speech"
	clipName = "real_aishell1_BAC009S0764W0121.wav"
)

const asoundrc = `
pcm.zinfile { type file; slave.pcm "null"; file "/dev/null"; infile "{DIR}/capture.fifo"; format "raw" }
pcm.zcapture {
  type plug
  slave { pcm "zinfile"; format S16_LE; rate 16000; channels 1 }
  hint { show on; description "zhiyin test capture" }
}
pcm.zoutfile { type file; slave.pcm "null"; file "{DIR}/playback.fifo"; format "raw" }
pcm.zplayback {
  type plug
  slave { pcm "zoutfile"; format S16_LE; rate 16000; channels 1 }
  hint { show on; description "zhiyin test playback" }
}
`

func TestALSA(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		t.Skip("in the child")
	}
	clip := filepath.Join(speech, clipName)
	if _, err := os.Stat(clip); err != nil {
		t.Skipf("needs the speech clips in %s (the shared test data): %v", speech, err)
	}
	clip, _ = filepath.Abs(clip)
	home := t.TempDir()
	for _, f := range []string{"capture.fifo", "playback.fifo"} {
		if err := syscall.Mkfifo(filepath.Join(home, f), 0o600); err != nil {
			t.Skipf("needs FIFOs for the ALSA file plugin: %v", err)
		}
	}
	rc := strings.ReplaceAll(asoundrc, "{DIR}", home)
	if err := os.WriteFile(filepath.Join(home, ".asoundrc"), []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestChild", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "HOME="+home, childEnv+"="+home, clipEnv+"="+clip)
	out, err := cmd.CombinedOutput()
	var keep []string // PortAudio's probes of ALSA and JACK are noisy on stderr
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "ALSA lib") || strings.Contains(strings.ToLower(l), "jack") || strings.Contains(l, "Cannot connect") || l == "" {
			continue
		}
		keep = append(keep, l)
	}
	t.Log("child:\n" + strings.Join(keep, "\n"))
	if err != nil {
		t.Fatalf("the ALSA child tests failed: %v", err)
	}
	if bytes.Contains(out, []byte("--- SKIP: TestChild")) {
		t.Skip("ALSA cannot open the test pcms in this container (see the child's log)")
	}
}

// fifos holds the test side of the capture and playback FIFOs. Both are
// opened read-write so that PortAudio's probes never block on an open and
// a feeder never gets EPIPE; the pipes are shrunk to a page so that they
// pace the devices at about real time.
type fifos struct {
	capture, playback *os.File
}

func openFIFOs(t *testing.T) *fifos {
	t.Helper()
	home := os.Getenv(childEnv)
	var f fifos
	for _, p := range []struct {
		name string
		dst  **os.File
	}{{"capture.fifo", &f.capture}, {"playback.fifo", &f.playback}} {
		fd, err := os.OpenFile(filepath.Join(home, p.name), os.O_RDWR, 0)
		if err != nil {
			t.Skipf("open %s: %v", p.name, err)
		}
		if sc, err := fd.SyscallConn(); err == nil {
			_ = sc.Control(func(fd uintptr) { syscall.Syscall(syscall.SYS_FCNTL, fd, 1031 /* F_SETPIPE_SZ */, 4096) })
		}
		*p.dst = fd
		t.Cleanup(func() { fd.Close() })
	}
	return &f
}

func childOnly(t *testing.T) {
	t.Helper()
	if os.Getenv(childEnv) == "" {
		t.Skip("run by TestALSA in a child process with a temporary ~/.asoundrc")
	}
}

// loadClip reads the speech clip at 16 kHz, scaled to a 0.5 peak.
func loadClip(t *testing.T) []float32 {
	t.Helper()
	f, err := os.Open(os.Getenv(clipEnv))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := audio.NewWAVReader(f)
	if err != nil {
		t.Fatal(err)
	}
	s, err := audio.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	var peak float32
	for _, v := range s {
		peak = max(peak, float32(math.Abs(float64(v))))
	}
	for i := range s {
		s[i] *= 0.5 / peak
	}
	return s
}

// feed writes silence until started is closed, then the clip, then
// silence, in 20 ms chunks at real time, until ctx is done.
func feed(ctx context.Context, w *os.File, clip []float32, started <-chan struct{}) {
	chunk := make([]byte, 640)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	pos := -1
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if pos < 0 {
			select {
			case <-started:
				pos = 0
			default:
			}
		}
		clear(chunk)
		for i := 0; i < 320 && pos >= 0 && pos < len(clip); i, pos = i+1, pos+1 {
			binary.LittleEndian.PutUint16(chunk[2*i:], uint16(int16(clip[pos]*32767)))
		}
		w.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := w.Write(chunk); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return
		}
	}
}

// drainOut reads the playback FIFO at real time until ctx is done and
// returns the samples.
func drainOut(ctx context.Context, f *os.File) []float32 {
	var got []float32
	buf := make([]byte, 640)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return got
		case <-tick.C:
		}
		f.SetReadDeadline(time.Now().Add(15 * time.Millisecond))
		n, _ := io.ReadFull(f, buf)
		for i := 0; i+1 < n; i += 2 {
			got = append(got, float32(int16(binary.LittleEndian.Uint16(buf[i:])))/32768)
		}
	}
}

// frameRec is one captured frame as the answerer heard it.
type frameRec struct {
	power float64
	at    time.Time
}

// talker is the test's Answerer: it records what it hears, plays a tone
// once it hears speech, and hangs up after it heard want frames.
type talker struct {
	threshold float64
	tone      []float32
	want      int
	started   chan struct{} // closed at the first frame

	mu               sync.Mutex
	infos            []voice.CallInfo
	frames           []frameRec
	playFrom, playTo time.Time
	playErr          error
	ended            []string
}

func (a *talker) Start(ctx context.Context, info voice.CallInfo, m voice.Media, rate int) (voice.Handler, error) {
	if rate != 16000 || m.OutputRate() != 16000 {
		return nil, fmt.Errorf("rates %d/%d, want 16000", rate, m.OutputRate())
	}
	a.mu.Lock()
	a.infos = append(a.infos, info)
	a.mu.Unlock()
	return &talk{a: a, m: m, done: make(chan struct{})}, nil
}

type talk struct {
	a         *talker
	m         voice.Media
	triggered bool
	n         int
	once      sync.Once
	done      chan struct{}
	wg        sync.WaitGroup
}

func (h *talk) Audio(s []float32) {
	a := h.a
	now := time.Now()
	p := power(s)
	a.mu.Lock()
	a.frames = append(a.frames, frameRec{p, now})
	a.mu.Unlock()
	h.n++
	if h.n == 1 && a.started != nil {
		close(a.started)
	}
	if !h.triggered && a.tone != nil && p > a.threshold {
		h.triggered = true
		h.wg.Go(func() {
			ctx := context.Background()
			from := time.Now()
			err := h.m.Play(ctx, a.tone)
			if err == nil {
				err = h.m.Drain(ctx)
			}
			a.mu.Lock()
			a.playFrom, a.playTo, a.playErr = from, time.Now(), err
			a.mu.Unlock()
		})
	}
	if h.n == a.want {
		go h.m.Hangup("heard enough")
	}
}
func (h *talk) DTMF(rune)             {}
func (h *talk) Hold(bool)             {}
func (h *talk) Stats(voice.RTPStats)  {}
func (h *talk) Done() <-chan struct{} { return h.done }
func (h *talk) End(reason string) {
	h.once.Do(func() {
		h.wg.Wait()
		h.a.mu.Lock()
		h.a.ended = append(h.a.ended, reason)
		h.a.mu.Unlock()
		close(h.done)
	})
}

func childConfig() Config {
	cfg := DefaultConfig()
	cfg.Input, cfg.Output = "zcapture", "zplayback"
	return cfg
}

func TestChildDevices(t *testing.T) {
	childOnly(t)
	openFIFOs(t)
	devs, err := Devices()
	if err != nil {
		t.Skipf("PortAudio lists no devices here: %v", err)
	}
	var in, out bool
	for _, d := range devs {
		t.Logf("device %v", d)
		in = in || (d.Name == "zcapture" && d.MaxInput > 0 && d.HostAPI == "ALSA")
		out = out || (d.Name == "zplayback" && d.MaxOutput > 0 && d.HostAPI == "ALSA")
	}
	if !in || !out {
		t.Skipf("ALSA does not list the ~/.asoundrc pcms zcapture and zplayback here (capture %v, playback %v)", in, out)
	}
	// Twice more: PortAudio is initialised and released each time.
	for range 2 {
		if _, err := Devices(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestChildUnknownDevice(t *testing.T) {
	childOnly(t)
	openFIFOs(t)
	for _, key := range []string{"input", "output"} {
		cfg := childConfig()
		if key == "input" {
			cfg.Input = "nosuchmic"
		} else {
			cfg.Output = "nosuchspeaker"
		}
		l, err := New(cfg, &talker{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = l.Run(context.Background(), true)
		if !errors.Is(err, ErrDeviceNotFound) {
			t.Fatalf("%s: Run = %v, want ErrDeviceNotFound", key, err)
		}
		want := "zcapture"
		if key == "output" {
			want = "zplayback"
		}
		if msg := err.Error(); !strings.Contains(msg, want) || !strings.Contains(msg, "localaudio."+key) {
			t.Fatalf("%s: the error does not list the devices and the key: %v", key, err)
		}
	}
}

// converse runs one conversation with the clip on the capture side and
// returns the talker and what reached the playback FIFO.
func converse(t *testing.T, cfg Config, a *talker) []float32 {
	t.Helper()
	f := openFIFOs(t)
	clip := loadClip(t)
	a.started = make(chan struct{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	feedCtx, stopFeed := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var played []float32
	wg.Go(func() { feed(feedCtx, f.capture, clip, a.started) })
	wg.Go(func() { played = drainOut(feedCtx, f.playback) })
	l, err := New(cfg, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = l.Run(ctx, true)
	time.Sleep(200 * time.Millisecond) // let the playback FIFO empty
	stopFeed()
	wg.Wait()
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	st := l.Stats()
	t.Logf("stats %+v", st)
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.infos) != 1 || len(a.ended) != 1 {
		t.Fatalf("%d conversations started, %d ended; want 1", len(a.infos), len(a.ended))
	}
	info := a.infos[0]
	if info.Channel != "localaudio" || info.From != "local:zcapture" || info.To != "local" || !strings.HasPrefix(info.ID, "local-") {
		t.Fatalf("CallInfo %+v", info)
	}
	if a.ended[0] != "heard enough" {
		t.Fatalf("ended with %q", a.ended[0])
	}
	if a.playErr != nil {
		t.Fatalf("Play/Drain: %v", a.playErr)
	}
	return played
}

// frameProfile is the power of each 20 ms frame of s.
func frameProfile(s []float32) []float64 {
	var p []float64
	for i := 0; i+320 <= len(s); i += 320 {
		p = append(p, power(s[i:i+320]))
	}
	return p
}

// bestCorrelation is the highest Pearson correlation of the log-power of
// ref against got shifted by 0..maxLag frames.
func bestCorrelation(ref, got []float64, maxLag int) (float64, int) {
	lg := func(v float64) float64 { return math.Log10(v + 1e-8) }
	best, at := -1.0, 0
	for lag := 0; lag <= maxLag && lag+len(ref) <= len(got); lag++ {
		var sx, sy, sxx, syy, sxy float64
		n := float64(len(ref))
		for i, r := range ref {
			x, y := lg(r), lg(got[lag+i])
			sx, sy, sxx, syy, sxy = sx+x, sy+y, sxx+x*x, syy+y*y, sxy+x*y
		}
		c := (sxy - sx*sy/n) / math.Sqrt((sxx-sx*sx/n)*(syy-sy*sy/n)+1e-12)
		if c > best {
			best, at = c, lag
		}
	}
	return best, at
}

func TestChildConversation(t *testing.T) {
	childOnly(t)
	clip := loadClip(t)
	cfg := childConfig()
	cfg.Echo = EchoNone
	a := &talker{threshold: 1e-3, tone: tone(16000*3/10, 0.5), want: len(clip)/320 + 50}
	played := converse(t, cfg, a)

	ref := frameProfile(clip)
	got := make([]float64, len(a.frames))
	for i, f := range a.frames {
		got[i] = f.power
	}
	c, lag := bestCorrelation(ref, got, 40)
	t.Logf("capture: %d frames heard; correlation with the clip %.3f at a lag of %d frames", len(got), c, lag)
	if c < 0.9 {
		t.Errorf("what the answerer heard does not follow the clip: correlation %.3f", c)
	}
	var loud int
	for _, p := range frameProfile(played) {
		if p > 0.1 {
			loud++
		}
	}
	t.Logf("playback: %d samples reached the output, %d loud frames", len(played), loud)
	if loud < 12 { // the tone is 15 frames
		t.Errorf("the tone did not reach the output device: %d loud frames of 15", loud)
	}
}

func TestChildEchoMute(t *testing.T) {
	childOnly(t)
	clip := loadClip(t)
	cfg := childConfig()
	cfg.Echo = EchoMute
	a := &talker{threshold: 1e-3, tone: tone(16000, 0.5), want: len(clip)/320 + 50}
	converse(t, cfg, a)

	var during, loudDuring, after int
	for _, f := range a.frames {
		switch {
		case f.at.After(a.playFrom.Add(100*time.Millisecond)) && f.at.Before(a.playTo):
			during++
			if f.power != 0 {
				loudDuring++
			}
		case f.at.After(a.playTo.Add(cfg.Tail + 100*time.Millisecond)):
			if f.power > 1e-4 {
				after++
			}
		}
	}
	t.Logf("played %v; %d frames heard while playing, %d not silent; %d with speech after the tail",
		a.playTo.Sub(a.playFrom), during, loudDuring, after)
	if during < 20 {
		t.Fatalf("only %d frames arrived during a 1 s playback: the test proves nothing", during)
	}
	if loudDuring > 0 {
		t.Errorf("echo mute: %d of %d frames during playback were not silence", loudDuring, during)
	}
	if after < 10 {
		t.Errorf("capture stayed muted after playback and its tail: %d speech frames after", after)
	}
}

func TestChildKiosk(t *testing.T) {
	childOnly(t)
	f := openFIFOs(t)
	cfg := childConfig()
	cfg.Restart = 50 * time.Millisecond
	a := &talker{want: 5}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The feeder outlives Run: a capture read waits for its frame.
	feedCtx, stopFeed := context.WithCancel(context.Background())
	defer stopFeed()
	var wg sync.WaitGroup
	wg.Go(func() { feed(feedCtx, f.capture, nil, nil) })
	wg.Go(func() { drainOut(feedCtx, f.playback) })
	l, err := New(cfg, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	res := make(chan error, 1)
	go func() { res <- l.Run(ctx, false) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		a.mu.Lock()
		n := len(a.ended)
		a.mu.Unlock()
		if n >= 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-res; err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
	stopFeed()
	wg.Wait()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.ended) < 3 {
		t.Fatalf("%d kiosk conversations in 20 s, want 3", len(a.ended))
	}
	seen := map[string]bool{}
	for _, info := range a.infos {
		if seen[info.ID] {
			t.Fatalf("conversation id %s reused", info.ID)
		}
		seen[info.ID] = true
	}
	if len(a.infos) != len(a.ended) {
		t.Fatalf("%d started, %d ended", len(a.infos), len(a.ended))
	}
}
