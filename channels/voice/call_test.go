package voice

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// A clip of real speech is one turn: its recognised text reaches the
// dialogue as the call's conversation, and the reply is spoken.
func TestOneClipOneTurn(t *testing.T) {
	r := newRig(t, testConfig(), nil)
	l := newLine(t)
	c := r.call("call-one", l)
	r.voice.waitSaid(t, "您好", 1)
	feed(c, concat(silence(300*time.Millisecond), clip8k(t, "espeak_cmn_02.wav", false), silence(time.Second)), 0, nil)
	turns := r.dlg.waitTurns(t, 1)
	if tr := turns[0]; tr.Text == "" || tr.Channel != "sip" || tr.Conversation != "call-one" || tr.User != "sip:1001@pbx" {
		t.Fatalf("turn %+v", tr)
	}
	r.voice.waitSaid(t, "好的："+turns[0].Text, 1)
	if r.metric("zhiyin_voice_calls_active", map[string]string{"channel": "sip"}) != 1 {
		t.Error("active calls gauge")
	}
	c.Stats(RTPStats{Received: 100, Lost: 3, Jitter: 4 * time.Millisecond})
	c.Stats(RTPStats{Received: 200, Lost: 5, Jitter: 6 * time.Millisecond, Late: 1, Concealed: 2})
	c.End("bye")
	for _, m := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"zhiyin_voice_calls_active", map[string]string{"channel": "sip"}, 0},
		{"zhiyin_voice_calls_total", map[string]string{"channel": "sip", "end": "remote"}, 1},
		{"zhiyin_voice_rtp_lost_packets_total", nil, 5},
		{"zhiyin_voice_rtp_jitter_seconds", nil, 2},
		{"zhiyin_voice_turn_seconds", map[string]string{"stage": "vad_wait"}, 1},
		{"zhiyin_voice_turn_seconds", map[string]string{"stage": "asr"}, 1},
		{"zhiyin_voice_turn_seconds", map[string]string{"stage": "dialogue"}, 1},
		{"zhiyin_voice_turn_seconds", map[string]string{"stage": "response"}, 1},
		{"zhiyin_voice_turn_seconds", map[string]string{"stage": "tts_first"}, 2}, // greeting and reply
	} {
		if got := r.metric(m.name, m.labels); got != m.want {
			t.Errorf("%s%v = %v, want %v", m.name, m.labels, got, m.want)
		}
	}
	if n := len(r.dlg.all()); n != 1 {
		t.Errorf("%d turns, want 1: %+v", n, r.dlg.all())
	}
	rec, err := GetCall(context.Background(), r.db.Read(), r.keys, "call-one")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Turns != 1 || len(rec.Transcript) != 1 || rec.Transcript[0].Caller != turns[0].Text ||
		rec.Transcript[0].Bot != "好的："+turns[0].Text || rec.SessionID != "s-call-one" || rec.EndReason != "bye" || rec.End != endRemote ||
		rec.RTP != (RTPStats{Received: 200, Lost: 5, Jitter: 6 * time.Millisecond, Late: 1, Concealed: 2}) || rec.Setup != 30*time.Millisecond {
		t.Errorf("record %+v", rec)
	}
	tr := rec.Transcript[0]
	if tr.Source != "speech" || tr.VADWait < 400*time.Millisecond || tr.VADWait > 700*time.Millisecond {
		t.Errorf("turn record %+v (vad wait should be about end_silence)", tr)
	}
}

// Two pieces of speech 300 ms apart are one turn; 800 ms apart, two.
func TestTurnGaps(t *testing.T) {
	a := clip8k(t, "espeak_cmn_01.wav", true)
	b := clip8k(t, "espeak_cmn_03.wav", true)
	for _, tc := range []struct {
		gap   time.Duration
		turns int
	}{{300 * time.Millisecond, 1}, {800 * time.Millisecond, 2}} {
		t.Run(tc.gap.String(), func(t *testing.T) {
			r := newRig(t, testConfig(), nil)
			c := r.call("call-gap", newLine(t))
			feed(c, concat(silence(200*time.Millisecond), a, silence(tc.gap), b, silence(1200*time.Millisecond)), 0, nil)
			r.dlg.waitTurns(t, tc.turns)
			c.End("bye")
			if got := r.dlg.all(); len(got) != tc.turns {
				t.Fatalf("%d turns, want %d: %+v", len(got), tc.turns, got)
			}
		})
	}
}

// A confident intent ends the turn after quick_silence.
func TestQuickEnd(t *testing.T) {
	speech := concat(silence(200*time.Millisecond), clip8k(t, "espeak_cmn_02.wav", true))
	var vadWait [2]time.Duration
	for i, conf := range []float64{0.95, 0.5} {
		r := newRig(t, testConfig(), func(context.Context, string) (string, float64, error) { return "transfer", conf, nil })
		c := r.call("call-quick", newLine(t))
		// The silence at real-time pace: the quick check's recognition
		// must fit in the silence it saves.
		feed(c, speech, 0, nil)
		feed(c, silence(1200*time.Millisecond), 20*time.Millisecond, nil)
		r.dlg.waitTurns(t, 1)
		c.End("bye")
		rec, err := GetCall(context.Background(), r.db.Read(), r.keys, "call-quick")
		if err != nil || len(rec.Transcript) != 1 {
			t.Fatalf("record %+v, %v", rec, err)
		}
		vadWait[i] = rec.Transcript[0].VADWait
	}
	t.Logf("vad wait: confident %v, not %v", vadWait[0], vadWait[1])
	if vadWait[0] >= 450*time.Millisecond || vadWait[1] < 450*time.Millisecond {
		t.Errorf("vad wait: confident %v (want < end_silence), not confident %v (want ≈ end_silence)", vadWait[0], vadWait[1])
	}
}

// The caller speaking over the bot stops the playback at once.
func TestBargeIn(t *testing.T) {
	r := newRig(t, testConfig(), nil)
	r.voice.long = map[string]time.Duration{"您好": 10 * time.Second}
	l := newLine(t)
	c := r.call("call-barge", l)
	r.voice.waitSaid(t, "您好", 1)
	speech := clip8k(t, "espeak_cmn_02.wav", false)
	on, _ := speechSpan(speech)
	var onset time.Time
	feed(c, concat(silence(400*time.Millisecond), speech[:on+lineRate], silence(800*time.Millisecond)), 20*time.Millisecond, func(i int, at time.Time) {
		if i == 400*lineRate/1000+on {
			onset = at
		}
	})
	r.dlg.waitTurns(t, 1)
	l.mu.Lock()
	stops := append([]time.Time(nil), l.stops...)
	l.mu.Unlock()
	if len(stops) == 0 {
		t.Fatal("no StopPlayback")
	}
	d := stops[0].Sub(onset)
	t.Logf("speech onset → StopPlayback: %v", d)
	if d < 0 || d > 600*time.Millisecond { // 200 ms by design; generous for a loaded machine
		t.Errorf("barge-in took %v", d)
	}
	if c.bargeIns.Load() != 1 {
		t.Errorf("%d barge-ins", c.bargeIns.Load())
	}
	c.End("bye")
}

// Digits with the terminator, digits ended by the inter-digit pause, and
// a menu key; one session for the whole call; a digit stops playback.
func TestDTMF(t *testing.T) {
	cfg := testConfig()
	cfg.DTMF.InterDigit = 500 * time.Millisecond
	cfg.DTMF.Menu = map[string]string{"9": "查询订单"}
	r := newRig(t, cfg, nil)
	r.voice.long = map[string]time.Duration{"您好": 10 * time.Second}
	l := newLine(t)
	c := r.call("call-dtmf", l)
	r.voice.waitSaid(t, "您好", 1)
	for _, d := range "123#" {
		c.DTMF(d)
	}
	r.dlg.waitTurns(t, 1)
	if l.stopCount() == 0 {
		t.Error("a digit did not stop the greeting")
	}
	c.DTMF('4')
	c.DTMF('5')
	r.dlg.waitTurns(t, 2)
	c.DTMF('9')
	c.DTMF('#')
	turns := r.dlg.waitTurns(t, 3)
	r.voice.waitSaid(t, "好的：查询订单", 1)
	c.End("bye")
	var texts []string
	for _, tr := range turns {
		texts = append(texts, tr.Text)
		if tr.Channel != "sip" || tr.Conversation != "call-dtmf" {
			t.Errorf("turn left the call's session: %+v", tr)
		}
	}
	if strings.Join(texts, ",") != "123,45,查询订单" {
		t.Errorf("turns %q", texts)
	}
	rec, err := GetCall(context.Background(), r.db.Read(), r.keys, "call-dtmf")
	if err != nil {
		t.Fatal(err)
	}
	if rec.DTMFDigits != 8 || len(rec.Transcript) != 3 || rec.Transcript[0].Source != "dtmf" || rec.BargeIns < 1 {
		t.Errorf("record %+v", rec)
	}
}

// Silence re-prompts, then says goodbye and hangs up.
func TestNoInput(t *testing.T) {
	cfg := testConfig()
	cfg.NoInput = time.Second
	cfg.MaxNoInput = 1
	r := newRig(t, cfg, nil)
	l := newLine(t)
	c := r.call("call-quiet", l)
	waitDone(t, c)
	if got := strings.Join(r.voice.texts(), "|"); got != "您好|"+cfg.Texts.Reprompt+"|"+cfg.Texts.Goodbye {
		t.Errorf("said %q", got)
	}
	hung := l.hangupReason()
	if hung != endNoInput {
		t.Errorf("hangup reason %q", hung)
	}
	rec, err := GetCall(context.Background(), r.db.Read(), r.keys, "call-quiet")
	if err != nil || rec.End != endNoInput || rec.Ended.IsZero() {
		t.Errorf("record %+v, %v", rec, err)
	}
}

// A hand-off says so and transfers; a line that cannot says so and goes
// on; a dialogue error says sorry and keeps the call.
func TestHandoffAndErrors(t *testing.T) {
	cfg := testConfig()
	r := newRig(t, cfg, nil)

	l := newLine(t)
	c := r.call("call-unsupported", l)
	c.DTMF('0')
	c.DTMF('#')
	r.voice.waitSaid(t, cfg.Texts.TransferFailed, 1)
	for _, d := range "666#" {
		c.DTMF(d)
	}
	r.voice.waitSaid(t, cfg.Texts.Error, 1)
	select {
	case <-c.Done():
		t.Fatal("the call ended")
	default:
	}
	c.End("bye")

	l2 := newLine(t)
	transferred := make(chan string, 1)
	l2.transfer = func(ctx context.Context, target string) error {
		transferred <- target
		return nil
	}
	c2 := r.call("call-transfer", l2)
	c2.DTMF('0')
	c2.DTMF('#')
	waitDone(t, c2)
	if got := <-transferred; got != "" {
		t.Errorf("transfer target %q", got)
	}
	c2.End("transferred by the peer") // the transport's End after a transfer
	rec, err := GetCall(context.Background(), r.db.Read(), r.keys, "call-transfer")
	if err != nil || rec.End != endTransferred {
		t.Errorf("record %+v, %v", rec, err)
	}
}

// A full engine refuses calls; Stop hangs up the rest and refuses more.
func TestBusyAndStop(t *testing.T) {
	cfg := testConfig()
	cfg.MaxCalls = 1
	r := newRig(t, cfg, nil)
	l := newLine(t)
	c := r.call("call-a", l)
	_, err := r.eng.Start(context.Background(), CallInfo{Channel: "sip", ID: "call-b"}, newLine(t), lineRate)
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("second call: %v, want ErrBusy", err)
	}
	if r.eng.Active() != 1 {
		t.Errorf("active %d", r.eng.Active())
	}
	if err := r.eng.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitDone(t, c)
	hung := l.hangupReason()
	if hung != endShutdown || r.eng.Active() != 0 {
		t.Errorf("hangup %q, active %d", hung, r.eng.Active())
	}
	if _, err := r.eng.Start(context.Background(), CallInfo{Channel: "sip", ID: "call-c"}, newLine(t), lineRate); !errors.Is(err, ErrStopped) {
		t.Errorf("after Stop: %v", err)
	}
	c.End("bye") // idempotent after the engine ended it
}
