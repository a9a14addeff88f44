package voice

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zhiyin/zhiyin/asr/audio"
	"github.com/zhiyin/zhiyin/asr/vad"
	"github.com/zhiyin/zhiyin/channels"
)

// End labels of zhiyin_voice_calls_total; the record keeps the
// transport's own reason too.
const (
	endRemote      = "remote"       // the transport ended the call (caller hung up, …)
	endNoInput     = "no_input"     // re-prompts ran out
	endMaxDuration = "max_duration" // voice.max_duration
	endTransferred = "transferred"  // handed to a person
	endShutdown    = "shutdown"     // Engine.Stop
)

// Bounds of a call's queues (the policy when full is in Audio, DTMF and
// enqueue).
const (
	frameQueue  = 50 // caller frames: 1 s of 20 ms frames
	ctlQueue    = 64 // digits and hold changes
	jobQueue    = 16 // things to say, in order
	resultQueue = 8  // recognitions back to the loop
)

// greetingResponse names the domain response whose recorded prompt or text
// greets callers.
const greetingResponse = "voice_greeting"

// call is one answered call: Handler for the transport. Its loop goroutine
// owns the speech detector and the turn state; its pipeline goroutine
// answers and speaks, one job at a time; recognitions run in their own
// goroutines so the VAD keeps running.
type call struct {
	e       *Engine
	cfg     *Config
	info    CallInfo
	media   Media
	inRate  int
	outRate int
	res     *audio.Resampler
	det     *vad.Detector
	rec     *recorder // nil without recording

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	frames  chan []float32
	ctl     chan ctlEvent
	jobs    chan *job
	reports chan *job
	results chan asrResult
	pwg     sync.WaitGroup // the pipeline
	awg     sync.WaitGroup // recognitions

	// Written by any goroutine.
	mu        sync.Mutex
	endLabel  string
	endReason string
	stats     RTPStats
	dropped   atomic.Int64
	held      atomic.Bool
	bargeIns  atomic.Int64
	digits    atomic.Int64

	// Speaking state shared by the loop (barge-in) and the pipeline.
	pmu   sync.Mutex
	epoch int64
	cur   *speaking

	// Owned by the loop goroutine.
	pcm       []float32
	evs       []vad.Event
	hist      []float32 // 16 kHz audio from histPos on
	histPos   int64
	base      int64 // absolute sample of the detector's sample 0
	seq       int
	turn      *turnState
	awaiting  map[int]*turnState
	pending   int // jobs queued or running
	dtmfBuf   string
	holding   bool
	ending    bool
	noInputs  int
	armed     bool
	noInputT  *time.Timer
	digitT    *time.Timer
	digitsOn  bool
	padS      int64
	endS      int64
	maxS      int64
	keepS     int64
	quick     bool
	startedAt time.Time

	// Owned by the pipeline goroutine (and finish, after it ended).
	row       int64 // voice_calls.id, 0 when not recorded
	sessionID string
	turns     int
}

type ctlEvent struct {
	digit rune
	hold  bool
}

// turnState is a caller turn being collected: from its first SpeechStart
// until the turn end is decided and its recognition is back.
type turnState struct {
	seq        int
	start, end int64 // absolute 16 kHz samples (padded); end -1 while speaking
	rawEnd     int64
	asrSeq     int
	asrCancel  context.CancelFunc
	asrPending bool
	text       string
	asrErr     error
	asrDur     time.Duration
	conf       float64
	decided    bool
	decidedAt  time.Time
	at         time.Time
	vadWait    time.Duration
}

type asrResult struct {
	turn, seq int
	text      string
	err       error
	dur       time.Duration
	conf      float64
}

type jobKind uint8

const (
	jobSay jobKind = iota + 1
	jobTurn
	jobGoodbye
)

// job is something the pipeline does, in order.
type job struct {
	kind      jobKind
	epoch     int64
	bargeable bool
	response  string
	text      string
	hangup    string // jobGoodbye: the end label
	// jobTurn
	seq       int
	source    string // speech, dtmf
	failed    bool   // the recognizer failed
	decidedAt time.Time
	at        time.Time
	vadWait   time.Duration
	asrDur    time.Duration
}

// speaking is the pipeline's current job as barge-in sees it.
type speaking struct {
	ctx       context.Context
	cancel    context.CancelFunc
	bargeable bool
	playing   atomic.Bool
	stopped   atomic.Bool
}

func newCall(e *Engine, info CallInfo, m Media, inRate int, res *audio.Resampler, det *vad.Detector) (*call, error) {
	ctx, cancel := context.WithCancel(context.Background())
	c := &call{
		e: e, cfg: &e.cfg, info: info, media: m, inRate: inRate, outRate: m.OutputRate(),
		res: res, det: det, ctx: ctx, cancel: cancel, done: make(chan struct{}),
		frames:   make(chan []float32, frameQueue),
		ctl:      make(chan ctlEvent, ctlQueue),
		jobs:     make(chan *job, jobQueue),
		reports:  make(chan *job, jobQueue),
		results:  make(chan asrResult, resultQueue),
		awaiting: map[int]*turnState{},
		padS:     samples(e.cfg.VAD.SpeechPad),
		endS:     samples(e.cfg.EndSilence),
		maxS:     samples(e.cfg.VAD.MaxSpeech),
		keepS:    samples(e.cfg.VAD.SpeechPad+e.cfg.VAD.MinSpeech) + vadRate/2,
		quick:    e.deps.Intent != nil && e.cfg.QuickConfidence > 0,
	}
	c.noInputT = time.NewTimer(time.Hour)
	c.noInputT.Stop()
	c.digitT = time.NewTimer(time.Hour)
	c.digitT.Stop()
	if e.cfg.Record {
		r, err := newRecorder(e.deps.RecordDir, e.deps.Sealer, info.ID, e.now(), inRate, c.outRate)
		if err != nil {
			cancel()
			return nil, err
		}
		c.rec = r
	}
	return c, nil
}

// discard releases a call that was made but never run (the engine
// stopped meanwhile).
func (c *call) discard() {
	c.cancel()
	if c.rec != nil {
		if p, err := c.rec.close(); err == nil {
			os.Remove(p)
		}
	}
	close(c.done)
}

func samples(d time.Duration) int64 { return int64(d) * vadRate / int64(time.Second) }

func sampleDur(n int64) time.Duration { return time.Duration(n) * time.Second / vadRate }

// Audio queues the caller's samples (copied) for the loop; when the loop
// is a second behind (CPU overload) the frame is dropped and counted.
func (c *call) Audio(s []float32) {
	if len(s) == 0 || c.ctx.Err() != nil {
		return
	}
	select {
	case c.frames <- s: // ours now (Handler.Audio's contract)
	default:
		c.dropped.Add(1)
		c.e.m.dropped.Inc()
	}
}

// DTMF queues a digit; beyond ctlQueue pending events it is dropped.
func (c *call) DTMF(d rune) {
	if c.ctx.Err() != nil {
		return
	}
	c.e.m.dtmf.Inc()
	c.digits.Add(1)
	select {
	case c.ctl <- ctlEvent{digit: d}:
	default:
	}
}

// Hold records the hold state and wakes the loop; it never blocks (the
// loop reads the latest state, so a dropped wake-up loses nothing but
// time until the next event).
func (c *call) Hold(on bool) {
	c.held.Store(on)
	select {
	case c.ctl <- ctlEvent{hold: true}:
	default:
	}
}

// Stats keeps the transport's latest receive figures.
func (c *call) Stats(s RTPStats) {
	c.mu.Lock()
	var lost uint64
	if s.Lost > c.stats.Lost {
		lost = s.Lost - c.stats.Lost
	}
	c.stats = s
	c.mu.Unlock()
	c.e.m.lost.Add(float64(lost))
	c.e.m.jitter.Observe(s.Jitter.Seconds())
}

// End ends the call from the transport's side and waits until its work
// stopped and its record is saved. Idempotent.
func (c *call) End(reason string) {
	c.setEnd(endRemote, reason)
	c.cancel()
	<-c.done
}

// Done is closed once the call is over and its record saved.
func (c *call) Done() <-chan struct{} { return c.done }

// setEnd keeps the first end of the call.
func (c *call) setEnd(label, reason string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.endLabel != "" {
		return false
	}
	c.endLabel, c.endReason = label, reason
	return true
}

// hangup ends the call from our side. Media.Hangup runs in its own
// goroutine: a transport may call End from inside it.
func (c *call) hangup(label string) {
	if !c.setEnd(label, label) {
		return
	}
	c.e.wg.Add(1)
	go func() {
		defer c.e.wg.Done()
		c.media.Hangup(label)
	}()
	c.cancel()
}

// run is the call's loop.
func (c *call) run() {
	c.startedAt = time.Now()
	c.pwg.Add(1)
	go c.pipeline()
	c.enqueue(&job{kind: jobSay, bargeable: true, response: greetingResponse, text: c.cfg.Greeting})
	maxT := time.NewTimer(c.cfg.MaxDuration)
	defer maxT.Stop()
	defer c.noInputT.Stop()
	defer c.digitT.Stop()
	for {
		select {
		case <-c.ctx.Done():
			c.finish()
			return
		case f := <-c.frames:
			c.onAudio(f)
		case ev := <-c.ctl:
			c.onCtl(ev)
		case r := <-c.results:
			c.onASR(r)
		case <-c.reports:
			c.pending--
		case <-c.noInputT.C:
			c.armed = false
			c.onNoInput()
		case <-c.digitT.C:
			c.digitsOn = false
			c.flushDigits()
		case <-maxT.C:
			c.goodbye(endMaxDuration)
		}
		c.updateNoInput()
	}
}

// updateNoInput arms the no-input timer while nothing is going on: the
// bot is quiet, no turn is being collected or answered, no digits wait,
// and the call is not on hold.
func (c *call) updateNoInput() {
	idle := !c.ending && !c.holding && c.pending == 0 && c.turn == nil && len(c.awaiting) == 0 &&
		c.dtmfBuf == "" && !c.det.Speaking()
	switch {
	case idle && !c.armed:
		c.noInputT.Reset(c.cfg.NoInput)
		c.armed = true
	case !idle && c.armed:
		c.noInputT.Stop()
		c.armed = false
	}
}

func (c *call) onNoInput() {
	if c.ending {
		return
	}
	c.noInputs++
	if c.noInputs > c.cfg.MaxNoInput {
		c.goodbye(endNoInput)
		return
	}
	c.enqueue(&job{kind: jobSay, bargeable: true, text: c.cfg.Texts.Reprompt})
}

// goodbye stops whatever is said, says goodbye and hangs up.
func (c *call) goodbye(label string) {
	if c.ending {
		return
	}
	c.ending = true
	c.interrupt(true)
	c.enqueue(&job{kind: jobGoodbye, text: c.cfg.Texts.Goodbye, hangup: label})
}

func (c *call) enqueue(j *job) {
	c.pmu.Lock()
	j.epoch = c.epoch
	c.pmu.Unlock()
	select {
	case c.jobs <- j:
		c.pending++
	default:
		if j.kind == jobGoodbye { // never lost: wait for room
			select {
			case c.jobs <- j:
				c.pending++
			case <-c.ctx.Done():
			}
			return
		}
		c.e.log.Warn("voice call: too many answers queued, one dropped", logKeyCall, c.info.ID)
	}
}

// interrupt stops the bot (barge-in): what is queued for the line is
// dropped, the synthesis cancelled, and jobs queued before are skipped.
// Non-bargeable speech (goodbye, transfer) is only stopped when force.
func (c *call) interrupt(force bool) {
	c.pmu.Lock()
	c.epoch++
	cur := c.cur
	c.pmu.Unlock()
	if cur == nil || (!cur.bargeable && !force) || !cur.stopped.CompareAndSwap(false, true) {
		return
	}
	cur.cancel()
	if cur.playing.Load() {
		c.media.StopPlayback()
		if c.rec != nil {
			c.rec.discardBot()
		}
		if !force {
			c.bargeIns.Add(1)
			c.e.m.bargeIns.Inc()
		}
	}
}

func (c *call) onCtl(ev ctlEvent) {
	c.holding = c.held.Load()
	if ev.hold {
		return
	}
	if c.ending {
		return
	}
	c.interrupt(false)
	if t := c.cfg.DTMF.Terminator; t != "" && string(ev.digit) == t {
		c.flushDigits()
		return
	}
	c.dtmfBuf += string(ev.digit)
	c.digitT.Reset(c.cfg.DTMF.InterDigit)
	c.digitsOn = true
}

// flushDigits makes the digits so far a turn: a single menu key becomes
// its text.
func (c *call) flushDigits() {
	if c.digitsOn {
		c.digitT.Stop()
		c.digitsOn = false
	}
	d := c.dtmfBuf
	c.dtmfBuf = ""
	if d == "" || c.ending {
		return
	}
	text := d
	if m, ok := c.cfg.DTMF.Menu[d]; ok {
		text = m
	}
	c.noInputs = 0
	c.seq++
	now := time.Now()
	c.enqueue(&job{kind: jobTurn, bargeable: true, seq: c.seq, source: "dtmf", text: text, decidedAt: now, at: c.e.now()})
}

// pos is the absolute position of the audio fed to the detector.
func (c *call) pos() int64 { return c.base + c.det.Pos() }

func (c *call) onAudio(f []float32) {
	if c.rec != nil {
		c.rec.caller(f)
	}
	c.holding = c.held.Load()
	if c.holding || c.ending {
		return
	}
	c.pcm = c.res.Process(c.pcm[:0], f)
	if len(c.pcm) == 0 {
		return
	}
	if !c.cfg.BargeIn && c.pending > 0 {
		clear(c.pcm) // the caller is not heard while the bot answers
	}
	c.hist = append(c.hist, c.pcm...)
	var err error
	c.evs, err = c.det.Accept(c.ctx, c.pcm, c.evs[:0])
	for _, ev := range c.evs {
		c.onVAD(ev)
	}
	if err != nil {
		if c.ctx.Err() != nil {
			return
		}
		c.e.log.Warn("voice call: speech detector failed, starting it again", logKeyCall, c.info.ID, logKeyError, err)
		c.det.Reset()
		c.base = c.histPos + int64(len(c.hist))
		if c.turn != nil && c.turn.end >= 0 {
			c.decide(c.turn)
		}
		c.turn = nil
	}
	c.checkEnd()
	c.trim()
}

func (c *call) onVAD(ev vad.Event) {
	abs := c.base + ev.Sample
	switch ev.Kind {
	case vad.SpeechStart:
		if c.cfg.BargeIn {
			c.interrupt(false)
		}
		if t := c.turn; t != nil { // speech again within end_silence: the same turn
			t.end = -1
			if t.asrCancel != nil {
				t.asrCancel()
			}
			t.asrSeq++
			t.asrPending = false
			return
		}
		c.seq++
		c.turn = &turnState{seq: c.seq, start: max(abs, c.histPos), end: -1}
	case vad.SpeechEnd:
		t := c.turn
		if t == nil {
			return
		}
		t.end = abs
		t.rawEnd = max(abs-c.padS, t.start)
		c.recognize(t)
		if t.end-t.start >= c.maxS {
			c.decide(t)
		}
	}
}

// checkEnd ends the turn once end_silence passed after its last speech.
func (c *call) checkEnd() {
	t := c.turn
	if t == nil || t.end < 0 || c.det.Speaking() {
		return
	}
	if c.pos() >= t.rawEnd+c.endS {
		c.decide(t)
	}
}

// recognize starts the recognition of the turn's audio so far (and the
// quick intent check); a newer one replaces it.
func (c *call) recognize(t *turnState) {
	lo := max(t.start-c.histPos, 0)
	hi := min(t.end-c.histPos, int64(len(c.hist)))
	if hi < lo {
		hi = lo
	}
	pcm := slices.Clone(c.hist[lo:hi])
	if t.asrCancel != nil {
		t.asrCancel()
	}
	ctx, cancel := context.WithCancel(c.ctx)
	t.asrSeq++
	t.asrCancel = cancel
	t.asrPending = true
	turn, seq := t.seq, t.asrSeq
	c.awg.Add(1)
	go func() {
		defer c.awg.Done()
		defer cancel()
		t0 := time.Now()
		text, err := c.e.deps.Recognizer.Recognize(ctx, pcm)
		r := asrResult{turn: turn, seq: seq, text: strings.TrimSpace(text), err: err, dur: time.Since(t0)}
		if err == nil && r.text != "" && c.quick {
			if _, conf, err := c.e.deps.Intent(ctx, r.text); err == nil {
				r.conf = conf
			}
		}
		select {
		case c.results <- r:
		case <-c.ctx.Done():
		}
	}()
}

func (c *call) onASR(r asrResult) {
	t := c.awaiting[r.turn]
	if t == nil && c.turn != nil && c.turn.seq == r.turn {
		t = c.turn
	}
	if t == nil || t.asrSeq != r.seq || !t.asrPending {
		return // replaced by a longer recognition
	}
	t.asrPending = false
	t.text, t.asrErr, t.asrDur, t.conf = r.text, r.err, r.dur, r.conf
	if t.decided {
		c.sendTurn(t)
		return
	}
	if c.quick && r.err == nil && r.conf >= c.cfg.QuickConfidence && t.end >= 0 && !c.det.Speaking() {
		c.decide(t)
	}
}

// decide ends the caller's turn; it is answered once its text is known.
func (c *call) decide(t *turnState) {
	t.decided = true
	t.decidedAt = time.Now()
	t.at = c.e.now()
	t.vadWait = sampleDur(max(c.pos()-t.rawEnd, 0))
	c.e.m.turn.WithLabelValues(stageVADWait).Observe(t.vadWait.Seconds())
	if c.turn == t {
		c.turn = nil
	}
	c.noInputs = 0
	if t.asrPending {
		c.awaiting[t.seq] = t
		return
	}
	c.sendTurn(t)
}

func (c *call) sendTurn(t *turnState) {
	delete(c.awaiting, t.seq)
	c.e.m.turn.WithLabelValues(stageASR).Observe(t.asrDur.Seconds())
	if t.asrErr != nil && c.ctx.Err() == nil {
		c.e.log.Warn("voice call: recognition failed", logKeyCall, c.info.ID, logKeyTurn, t.seq, logKeyError, t.asrErr)
	}
	if c.ending {
		return
	}
	c.enqueue(&job{kind: jobTurn, bargeable: true, seq: t.seq, source: "speech", text: t.text,
		failed: t.asrErr != nil, decidedAt: t.decidedAt, at: t.at, vadWait: t.vadWait, asrDur: t.asrDur})
}

// trim forgets audio no turn can still need.
func (c *call) trim() {
	keep := c.histPos + int64(len(c.hist)) - c.keepS
	if c.turn != nil && c.turn.start < keep {
		keep = c.turn.start
	}
	drop := keep - c.histPos
	if drop < vadRate/2 || drop < int64(len(c.hist))/2 {
		return
	}
	n := copy(c.hist, c.hist[drop:])
	c.hist = c.hist[:n]
	c.histPos += drop
}

// finish runs once the call's context ended: it waits for the call's
// goroutines and saves the record.
func (c *call) finish() {
	c.cancel()
	c.pwg.Wait()
	c.awg.Wait()
	c.mu.Lock()
	label, reason, stats := c.endLabel, c.endReason, c.stats
	c.mu.Unlock()
	if label == "" {
		label, reason = endRemote, endRemote
	}
	var recPath string
	if c.rec != nil {
		p, err := c.rec.close()
		if err != nil {
			c.e.log.Warn("voice call: recording incomplete", logKeyCall, c.info.ID, logKeyError, err)
		}
		recPath = p
	}
	c.saveEnd(label, reason, stats, recPath)
	c.e.m.calls.WithLabelValues(c.info.Channel, label).Inc()
	c.e.log.Info("voice call ended", logKeyCall, c.info.ID, logKeyChannel, c.info.Channel, logKeyReason, label)
	c.e.remove(c)
	close(c.done)
}

// pipeline answers and speaks, one job at a time.
func (c *call) pipeline() {
	defer c.pwg.Done()
	c.saveStart()
	for {
		select {
		case <-c.ctx.Done():
			return
		case j := <-c.jobs:
			c.do(j)
			select {
			case c.reports <- j:
			case <-c.ctx.Done():
				return
			}
		}
	}
}

type utterance struct{ response, text string }

func (c *call) do(j *job) {
	switch j.kind {
	case jobSay:
		s := c.begin(j)
		c.speak(s, []utterance{{j.response, j.text}})
		c.endSpeaking(s)
	case jobGoodbye:
		s := c.begin(j)
		c.speak(s, []utterance{{"", j.text}})
		c.endSpeaking(s)
		c.hangup(j.hangup)
	case jobTurn:
		c.doTurn(j)
	}
}

// begin registers the job as what barge-in stops; a bargeable job queued
// before a barge-in starts stopped.
func (c *call) begin(j *job) *speaking {
	ctx, cancel := context.WithCancel(c.ctx)
	s := &speaking{ctx: ctx, cancel: cancel, bargeable: j.bargeable}
	c.pmu.Lock()
	if j.bargeable && j.epoch != c.epoch {
		cancel()
	}
	c.cur = s
	c.pmu.Unlock()
	return s
}

func (c *call) endSpeaking(s *speaking) {
	c.pmu.Lock()
	if c.cur == s {
		c.cur = nil
	}
	c.pmu.Unlock()
	s.cancel()
}

// speak says the utterances and waits until they are out on the line. It
// returns when the first audio was queued (zero when none was) and the
// synthesis time to it.
func (c *call) speak(s *speaking, us []utterance) (first time.Time, ttsFirst time.Duration) {
	for _, u := range us {
		if s.ctx.Err() != nil {
			break
		}
		if strings.TrimSpace(u.text) == "" && u.response == "" {
			continue
		}
		t0 := time.Now()
		err := c.e.deps.Speaker.Speak(s.ctx, u.response, u.text, c.outRate, func(chunk []float32) error {
			if err := s.ctx.Err(); err != nil {
				return err
			}
			if len(chunk) == 0 {
				return nil
			}
			if c.rec != nil {
				c.rec.bot(chunk)
			}
			s.playing.Store(true)
			if err := c.media.Play(s.ctx, chunk); err != nil {
				return err
			}
			if first.IsZero() {
				first = time.Now()
				ttsFirst = first.Sub(t0)
				c.e.m.turn.WithLabelValues(stageTTSFirst).Observe(ttsFirst.Seconds())
			}
			return nil
		})
		if err != nil {
			if s.ctx.Err() == nil && !errors.Is(err, ErrHungUp) {
				c.e.log.Warn("voice call: speech synthesis failed", logKeyCall, c.info.ID, logKeyError, err)
			}
			break
		}
	}
	if s.ctx.Err() == nil && s.playing.Load() {
		if err := c.media.Drain(s.ctx); err != nil && s.ctx.Err() == nil && !errors.Is(err, ErrHungUp) {
			c.e.log.Warn("voice call: line drain failed", logKeyCall, c.info.ID, logKeyError, err)
		}
	}
	if s.ctx.Err() != nil && c.ctx.Err() == nil && s.playing.Load() {
		c.media.StopPlayback() // a barge-in: nothing queued after it goes out
	}
	return first, ttsFirst
}

func (c *call) doTurn(j *job) {
	s := c.begin(j)
	tr := turnRow{seq: j.seq, source: j.source, at: j.at, caller: j.text, vadWait: j.vadWait, asr: j.asrDur}
	var us []utterance
	handoff := false
	switch {
	case j.failed:
		us = []utterance{{"", c.cfg.Texts.Error}}
		tr.err = "recognition failed"
	case j.text == "":
		if c.cfg.Texts.NotUnderstood != "" {
			us = []utterance{{"", c.cfg.Texts.NotUnderstood}}
		}
	default:
		t0 := time.Now()
		ans, err := c.respond(j.text)
		tr.dialogue = time.Since(t0)
		c.e.m.turn.WithLabelValues(stageDialogue).Observe(tr.dialogue.Seconds())
		if err != nil {
			if c.ctx.Err() != nil {
				c.endSpeaking(s)
				return
			}
			c.e.log.Warn("voice call: dialogue failed", logKeyCall, c.info.ID, logKeyTurn, j.seq, logKeyError, err)
			us = []utterance{{"", c.cfg.Texts.Error}}
			tr.err = "dialogue failed"
			break
		}
		c.sessionID = ans.SessionID
		handoff = ans.Handoff
		for _, r := range ans.Replies {
			if strings.TrimSpace(r.Text) != "" || r.Response != "" {
				us = append(us, utterance{r.Response, r.Text})
			}
		}
	}
	var bot []string
	for _, u := range us {
		bot = append(bot, u.text)
	}
	tr.bot = strings.Join(bot, "\n")
	first, ttsFirst := c.speak(s, us)
	if !first.IsZero() {
		tr.ttsFirst = ttsFirst
		tr.response = first.Sub(j.decidedAt)
		c.e.m.turn.WithLabelValues(stageResponse).Observe(tr.response.Seconds())
	}
	tr.barged = s.ctx.Err() != nil && c.ctx.Err() == nil
	c.endSpeaking(s)
	c.turns++
	c.e.m.turnsDone.Inc()
	c.saveTurn(tr)
	if handoff && c.ctx.Err() == nil {
		c.transfer(len(us) == 0)
	}
}

// respond runs the dialogue turn; the call is the session's conversation.
func (c *call) respond(text string) (channels.Answer, error) {
	var ans channels.Answer
	t := &channels.Turn{Channel: c.info.Channel, Conversation: c.info.ID, User: c.info.From, Text: text}
	err := c.e.deps.Dialogue.Respond(c.ctx, t, func(_ *sql.Tx, a *channels.Answer) error {
		ans = *a
		ans.Replies = slices.Clone(a.Replies)
		return nil
	})
	return ans, err
}

// transfer hands the call to a person, first saying texts.transfer when
// announce is set (the dialogue's own hand-off reply, when it gave one, was
// already said). Media.Transfer runs in its own goroutine: a transport may
// call End from inside it.
func (c *call) transfer(announce bool) {
	if announce {
		s := c.begin(&job{})
		c.speak(s, []utterance{{"", c.cfg.Texts.Transfer}})
		c.endSpeaking(s)
	}
	if c.ctx.Err() != nil {
		return
	}
	errc := make(chan error, 1)
	c.e.wg.Add(1)
	go func() {
		defer c.e.wg.Done()
		errc <- c.media.Transfer(c.ctx, "")
	}()
	var err error
	select {
	case err = <-errc:
	case <-c.ctx.Done():
		return // ended meanwhile (maybe by the transport from inside Transfer)
	}
	if err == nil {
		c.mu.Lock()
		if c.endLabel == "" || c.endLabel == endRemote {
			c.endLabel, c.endReason = endTransferred, endTransferred
		}
		c.mu.Unlock()
		c.cancel()
		return
	}
	if c.ctx.Err() != nil {
		return
	}
	if !errors.Is(err, ErrTransferUnsupported) {
		c.e.log.Warn("voice call: transfer failed", logKeyCall, c.info.ID, logKeyError, err)
	}
	s := c.begin(&job{bargeable: true, epoch: c.curEpoch()})
	c.speak(s, []utterance{{"", c.cfg.Texts.TransferFailed}})
	c.endSpeaking(s)
}

func (c *call) curEpoch() int64 {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	return c.epoch
}
