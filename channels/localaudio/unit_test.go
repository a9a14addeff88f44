package localaudio

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/channels/voice"
	"github.com/zhiyin/zhiyin/internal/config"
)

func TestConfigValidate(t *testing.T) {
	def := DefaultConfig()
	if err := config.Validate(&def); err != nil {
		t.Fatalf("default config: %v", err)
	}
	for _, tc := range []struct {
		key string
		mod func(*Config)
	}{
		{"sample_rate", func(c *Config) { c.SampleRate = 4000 }},
		{"frame", func(c *Config) { c.Frame = time.Second }},
		{"frame", func(c *Config) { c.SampleRate = 11025; c.Frame = 10*time.Millisecond + time.Microsecond }},
		{"echo", func(c *Config) { c.Echo = "cancel" }},
		{"gate_db", func(c *Config) { c.GateDB = 0 }},
		{"tail", func(c *Config) { c.Tail = -time.Millisecond }},
		{"restart", func(c *Config) { c.Restart = 2 * time.Hour }},
	} {
		t.Run(tc.key, func(t *testing.T) {
			c := DefaultConfig()
			tc.mod(&c)
			var es config.Errors
			if err := config.Validate(&c); !errors.As(err, &es) || len(es) != 1 || es[0].Path != tc.key {
				t.Fatalf("config.Validate = %v, want one problem at %s", err, tc.key)
			}
			_, err := New(c, answererFunc(nil), nil)
			if !errors.Is(err, ErrConfig) || !errors.As(err, &es) || !strings.Contains(err.Error(), tc.key+":") {
				t.Fatalf("New = %v, want ErrConfig naming %s", err, tc.key)
			}
		})
	}
}

// answererFunc is an Answerer made of a function.
type answererFunc func(ctx context.Context, info voice.CallInfo, m voice.Media, rate int) (voice.Handler, error)

func (f answererFunc) Start(ctx context.Context, info voice.CallInfo, m voice.Media, rate int) (voice.Handler, error) {
	return f(ctx, info, m, rate)
}

func tone(n int, amp float32) []float32 {
	s := make([]float32, n)
	for i := range s {
		if i%8 < 4 {
			s[i] = amp
		} else {
			s[i] = -amp
		}
	}
	return s
}

func TestGatePass(t *testing.T) {
	playback := power(tone(320, 0.5)) // the speaker at -6 dBFS
	echo := power(tone(320, 0.1))     // its echo, 14 dB down
	speech := power(tone(320, 0.9))   // a person right at the microphone
	ratio := 10.0                     // 10 dB
	if gatePass(echo, playback, ratio) {
		t.Errorf("the gate passed quiet echo")
	}
	if gatePass(power(tone(320, 1)), playback, ratio) {
		t.Errorf("the gate passed speech only 6 dB over the playback")
	}
	if !gatePass(speech, power(tone(320, 0.2)), ratio) {
		t.Errorf("the gate blocked speech 13 dB over the playback")
	}
	if !gatePass(power(tone(320, 0.01)), 0, ratio) {
		t.Errorf("the gate blocked capture while we play silence")
	}
}

func TestEchoFilter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	cfg := DefaultConfig()
	for _, tc := range []struct {
		mode                         string
		loudWhilePlaying, quietWhile bool // passed?
		quietInTail, quietAfterTail  bool
	}{
		{EchoNone, true, true, true, true},
		{EchoMute, false, false, false, true},
		{EchoGate, true, false, false, true},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			cfg.Echo = tc.mode
			e := newEchoFilter(cfg)
			check := func(name string, frame []float32, at time.Time, want bool) {
				t.Helper()
				f := append([]float32(nil), frame...)
				muted := e.apply(f, at)
				if muted == want {
					t.Errorf("%s: passed = %v, want %v", name, !muted, want)
				}
				if muted && power(f) != 0 {
					t.Errorf("%s: a muted frame is not silence", name)
				}
				if !muted && power(f) != power(frame) {
					t.Errorf("%s: a passed frame changed", name)
				}
			}
			loud, quiet := tone(320, 0.9), tone(320, 0.05)
			check("before playback", quiet, t0, true)
			e.played(tone(320, 0.2))
			check("loud while playing", loud, t0, tc.loudWhilePlaying)
			check("quiet while playing", quiet, t0, tc.quietWhile)
			e.stopped(t0)
			check("quiet in the tail", quiet, t0.Add(cfg.Tail/2), tc.quietInTail)
			check("quiet after the tail", quiet, t0.Add(cfg.Tail+time.Millisecond), tc.quietAfterTail)
		})
	}
}

func TestPick(t *testing.T) {
	devs := []Device{
		{Index: 0, Name: "hw:USB Mic", HostAPI: "ALSA", MaxInput: 1, DefaultRate: 48000, DefaultInput: true},
		{Index: 1, Name: "hw:HDMI", HostAPI: "ALSA", MaxOutput: 2, DefaultRate: 48000},
		{Index: 2, Name: "hw:USB Speaker", HostAPI: "ALSA", MaxOutput: 2, DefaultRate: 48000, DefaultOutput: true},
		{Index: 3, Name: "USB", HostAPI: "ALSA", MaxInput: 2, MaxOutput: 2, DefaultRate: 44100},
	}
	for _, tc := range []struct {
		key, name string
		want      int
		err       error
	}{
		{"input", "", 0, nil},
		{"output", "", 2, nil},
		{"input", "USB", 3, nil},     // exact beats substring
		{"input", "usb mic", 0, nil}, // unique substring, any case
		{"output", "hdmi", 1, nil},
		{"output", "usb s", 2, nil},
		{"output", "hw:", 0, ErrAmbiguousDevice},
		{"input", "HDMI", 0, ErrDeviceNotFound}, // output only
		{"input", "nosuchmic", 0, ErrDeviceNotFound},
	} {
		got, err := pick(devs, tc.key, tc.name)
		if !errors.Is(err, tc.err) || (err == nil && got != tc.want) {
			t.Errorf("pick(%s, %q) = %d, %v; want %d, %v", tc.key, tc.name, got, err, tc.want, tc.err)
		}
		if err != nil && !strings.Contains(err.Error(), "localaudio."+tc.key) {
			t.Errorf("pick(%s, %q): %v does not name the key", tc.key, tc.name, err)
		}
	}
	_, err := pick(devs[1:3], "input", "")
	if !errors.Is(err, ErrDeviceNotFound) || !strings.Contains(err.Error(), "no default input") {
		t.Errorf("no input devices: %v", err)
	}
}

func TestPlayerQueue(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := newPlayer(16000, 320)
	c := &call{p: p, rate: 16000, hung: make(chan struct{})}
	if err := c.Transfer(ctx, ""); !errors.Is(err, voice.ErrTransferUnsupported) {
		t.Fatalf("Transfer = %v", err)
	}
	// A fake device: takes frames and goes idle when dry.
	got := make(chan []float32, 100)
	go func() {
		frame := make([]float32, 320)
		for p.take(ctx, frame) {
			got <- append([]float32(nil), frame...)
			if p.dry() != dryNo {
				p.idle()
			}
		}
	}()
	if err := c.Play(ctx, tone(1000, 0.5)); err != nil {
		t.Fatal(err)
	}
	if err := c.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(got); n != 4 { // 1000 samples: 3 frames and one padded
		t.Fatalf("%d frames played, want 4", n)
	}
	c.Hangup("bye")
	c.Hangup("again")
	if err := c.Play(ctx, tone(10, 0.5)); !errors.Is(err, voice.ErrHungUp) {
		t.Fatalf("Play after Hangup = %v, want ErrHungUp", err)
	}
	if c.reason() != "bye" {
		t.Fatalf("reason %q", c.reason())
	}
	p.shutdown()
}
