package tts

import (
	"context"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// needEspeak returns an espeak-ng synthesizer, or skips without the binary.
func needEspeak(t testing.TB) *Espeak {
	t.Helper()
	if _, err := exec.LookPath("espeak-ng"); err != nil {
		t.Skip("needs espeak-ng (apt-get install espeak-ng)")
	}
	e, err := NewEspeak(DefaultEspeakConfig())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func rms(s []float32) float64 {
	if len(s) == 0 {
		return 0
	}
	var sum float64
	for _, v := range s {
		sum += float64(v) * float64(v)
	}
	return math.Sqrt(sum / float64(len(s)))
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(filepath.Join("/proc", itoa(pid), "stat"))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestEspeakSpeaks(t *testing.T) {
	e := needEspeak(t)
	var got []float32
	chunks := 0
	err := e.Synthesize(context.Background(), "您好，欢迎致电知音客服。请问有什么可以帮您？", func(s []float32) error {
		got = append(got, s...)
		chunks++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	secs := float64(len(got)) / EspeakRate
	t.Logf("%d samples (%.2fs) in %d chunks, rms %.3f", len(got), secs, chunks, rms(got))
	if secs < 1 || secs > 15 {
		t.Errorf("%.2fs of audio for 20 characters", secs)
	}
	if rms(got) < 0.01 {
		t.Errorf("silent output: rms %.4f", rms(got))
	}
	for _, v := range got {
		if v < -1 || v > 1 || math.IsNaN(float64(v)) {
			t.Fatalf("sample %v out of range", v)
		}
	}
}

// The first chunk arrives while espeak-ng is still running: a long
// sentence's WAV is far larger than a pipe's buffer.
func TestEspeakStreamsBeforeExit(t *testing.T) {
	e := needEspeak(t)
	var pids []int
	e.started = func(pid int) { pids = append(pids, pid) }
	first := true
	var total int
	err := e.Synthesize(context.Background(), strings.Repeat("一二三四五六七八九十", 4), func(s []float32) error {
		if first {
			first = false
			if len(pids) != 1 || !alive(pids[0]) {
				t.Errorf("espeak-ng (pids %v) was no longer running at the first chunk", pids)
			}
		}
		total += len(s)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if total < EspeakRate*3 {
		t.Errorf("only %d samples for 40 characters", total)
	}
}

func TestEspeakCancelKills(t *testing.T) {
	e := needEspeak(t)
	var pid int
	e.started = func(p int) { pid = p }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	err := e.Synthesize(ctx, strings.Repeat("一二三四五六七八九十", 4)+"。再来一句。", func(s []float32) error {
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if pid == 0 || alive(pid) {
		t.Errorf("espeak-ng %d still running after cancel", pid)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancel took %s", d)
	}
}

func TestEspeakEmitError(t *testing.T) {
	e := needEspeak(t)
	boom := errors.New("line gone")
	err := e.Synthesize(context.Background(), "你好。再见。", func([]float32) error { return boom })
	if err != boom {
		t.Fatalf("got %v, want emit's error as it is", err)
	}
}

func TestEspeakMissing(t *testing.T) {
	_, err := NewEspeak(EspeakConfig{Binary: filepath.Join(t.TempDir(), "espeak-ng")})
	if !errors.Is(err, ErrEspeakMissing) || !strings.Contains(err.Error(), "apt-get install espeak-ng") {
		t.Fatalf("got %v", err)
	}
}

// A binary that fails: the error carries its stderr.
func TestEspeakFailure(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "espeak-ng")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho 'voice not found' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	e, err := NewEspeak(EspeakConfig{Binary: bin})
	if err != nil {
		t.Fatal(err)
	}
	err = e.Synthesize(context.Background(), "你好", func([]float32) error { return nil })
	if !errors.Is(err, ErrSynthesis) || !strings.Contains(err.Error(), "voice not found") {
		t.Fatalf("got %v", err)
	}
}

// The text goes to stdin, never on the command line.
func TestEspeakTextOnStdin(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "espeak-ng")
	script := "#!/bin/sh\necho \"$@\" > " + filepath.Join(dir, "args") + "\ncat > " + filepath.Join(dir, "stdin") + "\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	e, err := NewEspeak(EspeakConfig{Binary: bin, Voice: "cmn", Speed: 150, Pitch: 40})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Synthesize(context.Background(), "-q 秘密", func([]float32) error { return nil }); err != nil {
		t.Fatal(err)
	}
	args, _ := os.ReadFile(filepath.Join(dir, "args"))
	in, _ := os.ReadFile(filepath.Join(dir, "stdin"))
	if strings.Contains(string(args), "秘密") || string(in) != "-q 秘密\n" {
		t.Fatalf("args %q stdin %q", args, in)
	}
	if !strings.Contains(string(args), "-v cmn -s 150 -p 40") {
		t.Errorf("args %q", args)
	}
}
