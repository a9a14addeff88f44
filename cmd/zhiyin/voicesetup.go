package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zhiyin/zhiyin/asr"
	"github.com/zhiyin/zhiyin/asr/tts"
	"github.com/zhiyin/zhiyin/asr/vad"
	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/channels/localaudio"
	"github.com/zhiyin/zhiyin/channels/sip"
	"github.com/zhiyin/zhiyin/channels/voice"
	"github.com/zhiyin/zhiyin/dialogue"
	"github.com/zhiyin/zhiyin/dialogue/nlu"
	"github.com/zhiyin/zhiyin/internal/store"
)

// recordingsDir is where sealed call recordings go.
func recordingsDir(dataDir string) string { return filepath.Join(dataDir, "recordings") }

// promptsDir is the default recorded-prompts folder.
func promptsDir(dataDir string) string { return filepath.Join(dataDir, "prompts") }

// asrRecognizer recognises phone turns with the daemon's speech engine.
type asrRecognizer struct{ engine func() *asr.Engine }

func (r asrRecognizer) Recognize(ctx context.Context, samples []float32) (string, error) {
	e := r.engine()
	if e == nil {
		return "", errors.New("the speech engine is not ready yet (models loading)")
	}
	seg, err := e.Recognize(ctx, samples, asr.Options{})
	return seg.Text, err
}

// vadFactory gives each call its own Silero VAD from the speech engine.
func vadFactory(engine func() *asr.Engine) voice.VADFactory {
	return func(ctx context.Context, cfg vad.Config, rate int) (*vad.Detector, error) {
		e := engine()
		if e == nil {
			return nil, errors.New("the speech engine is not ready yet (models loading)")
		}
		return e.NewDetector(ctx, cfg, rate)
	}
}

// ttsSpeaker says replies with the configured voice; recorded prompts are
// looked up under the loaded domain's name. The engine's own phrases
// (voice_greeting) take the domain's response of that name when it has
// one, as the configuration promises.
type ttsSpeaker struct {
	v      *tts.Voice
	engine func() *dialogue.Engine
}

func (s ttsSpeaker) Speak(ctx context.Context, response, text string, rate int, emit func([]float32) error) error {
	name := ""
	if e := s.engine(); e != nil {
		dom := e.Domain()
		name = dom.Name
		if r := dom.Responses[response]; r != nil && response == voiceGreeting {
			if t, _ := r.Render("sip", nil, rand.IntN); strings.TrimSpace(t) != "" {
				text = t
			}
		}
	}
	return s.v.Speak(ctx, name, response, text, rate, emit)
}

// voiceGreeting is the response the voice engine greets callers with.
const voiceGreeting = "voice_greeting"

// nluIntent parses a turn's text without answering it, for the quick end
// of a turn.
func nluIntent(parser func() *nlu.Parser) voice.IntentFunc {
	return func(ctx context.Context, text string) (string, float64, error) {
		p := parser()
		if p == nil {
			return "", 0, errors.New("no NLU model loaded")
		}
		res, err := p.Parse(ctx, text)
		if err != nil {
			return "", 0, err
		}
		return res.Intent.Name, res.Intent.Confidence, nil
	}
}

// speechGate refuses calls while no speech model is installed: a caller
// would otherwise be greeted and then never understood. SIP answers 503.
type speechGate struct {
	next   voice.Answerer
	engine func() *asr.Engine
}

func (g speechGate) Start(ctx context.Context, info voice.CallInfo, m voice.Media, rate int) (voice.Handler, error) {
	e := g.engine()
	if e == nil {
		return nil, errors.New("the speech engine is not ready yet (models loading)")
	}
	if _, _, err := e.Warm(ctx); err != nil {
		return nil, fmt.Errorf("cannot take calls: %w", err)
	}
	return g.next.Start(ctx, info, m, rate)
}

// voiceParts are the pieces of the voice path one process builds.
type voiceParts struct {
	speaker     *tts.Voice
	speakerName string
	engine      *voice.Engine
}

// voiceDeps are what newVoice needs from its process (the daemon or
// `zhiyin voice`).
type voiceDeps struct {
	cfg      *loadedConfig
	asr      func() *asr.Engine
	parser   func() *nlu.Parser
	dialogue channels.Dialogue
	engine   func() *dialogue.Engine
	models   tts.Models
	db       *store.DB
	sealer   channels.Sealer
	log      *slog.Logger
	metrics  prometheus.Registerer
}

// newVoice builds the TTS voice and the call engine.
func newVoice(ctx context.Context, d voiceDeps) (*voiceParts, error) {
	tcfg := d.cfg.TTS
	if tcfg.Prompts == "" {
		tcfg.Prompts = promptsDir(d.cfg.DataDir)
	}
	sp, err := tts.NewVoice(tcfg, d.models, d.log.With("component", "tts"))
	if err != nil {
		return nil, err
	}
	name, err := sp.Warm(ctx)
	if err != nil {
		return nil, fmt.Errorf("speech synthesis: %w", err)
	}
	d.log.Info("speech synthesis ready", "voice", name)
	eng, err := voice.New(d.cfg.Voice, voice.Deps{
		Dialogue:   d.dialogue,
		Recognizer: asrRecognizer{d.asr},
		VAD:        vadFactory(d.asr),
		Speaker:    ttsSpeaker{sp, d.engine},
		Intent:     nluIntent(d.parser),
		DB:         d.db,
		Sealer:     d.sealer,
		RecordDir:  recordingsDir(d.cfg.DataDir),
		Log:        d.log.With("component", "voice"),
		Metrics:    d.metrics,
	})
	if err != nil {
		return nil, err
	}
	return &voiceParts{speaker: sp, speakerName: name, engine: eng}, nil
}

// startVoice starts the phone line and the kiosk line when they are
// enabled; the models and the dialogue are ready by then. The returned
// function hangs up every call and stops the lines.
func (d *daemon) startVoice(ctx context.Context) (func(context.Context), error) {
	cfg := d.cfg
	sipOn, localOn := cfg.Channels.SIP.Enabled, cfg.Channels.LocalAudio.Enabled
	if !sipOn && !localOn {
		return func(context.Context) {}, nil
	}
	d.readiness.Set("voice", false, "starting")
	vp, err := newVoice(ctx, voiceDeps{
		cfg: cfg, asr: d.asr.Load, parser: d.nlu.Load, dialogue: engineDialogue{d.engine.Load}, engine: d.engine.Load,
		models: d.models, db: d.db, sealer: d.keyring, log: d.log, metrics: d.reg,
	})
	if err != nil {
		d.readiness.Set("voice", false, err.Error())
		return nil, err
	}
	gate := speechGate{next: vp.engine, engine: d.asr.Load}
	var stops []func(context.Context)
	stop := func(ctx context.Context) {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i](ctx)
		}
	}
	stops = append(stops, func(ctx context.Context) {
		if err := vp.engine.Stop(ctx); err != nil {
			d.log.Warn("stop voice engine", attrErr, err)
		}
	})
	var lines []string
	if sipOn {
		srv, err := sip.New(cfg.Channels.SIP, sip.Deps{Answerer: gate, Log: d.log.With("component", "sip"), Metrics: d.reg})
		if err == nil {
			err = srv.Start(ctx)
		}
		if err != nil {
			stop(ctx)
			d.readiness.Set("voice", false, err.Error())
			return nil, fmt.Errorf("SIP line: %w", err)
		}
		d.sip.Store(srv)
		d.readiness.Set("channel:sip", true, sipDetail(srv.Status()))
		stops = append(stops, func(ctx context.Context) {
			if err := srv.Stop(ctx); err != nil {
				d.log.Warn("stop SIP line", attrErr, err)
			}
		})
		lines = append(lines, "sip "+srv.Addr().String())
		d.log.Info("SIP line listening", "addr", srv.Addr().String(), "max_calls", cfg.Channels.SIP.MaxCalls)
	}
	if localOn {
		line, err := localaudio.New(cfg.Channels.LocalAudio, gate, d.log.With("component", "localaudio"))
		if err != nil {
			stop(ctx)
			d.readiness.Set("voice", false, err.Error())
			return nil, fmt.Errorf("sound-card line: %w", err)
		}
		lctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			// A missing device is an operator's fix, not a crash: logged
			// and shown in /readyz; the other channels go on serving.
			if err := line.Run(lctx, false); err != nil && lctx.Err() == nil {
				d.log.Error("sound-card line stopped", attrErr, err)
				d.readiness.Set("voice", true, "sound-card line stopped: "+err.Error())
			}
		}()
		stops = append(stops, func(context.Context) { cancel(); <-done })
		lines = append(lines, "sound card")
	}
	d.readiness.Set("voice", true, fmt.Sprintf("%s; voice %s", strings.Join(lines, ", "), vp.speakerName))
	return stop, nil
}
