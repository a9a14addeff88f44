package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/zhiyin/zhiyin/asr"
	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/channels/dingtalk"
	"github.com/zhiyin/zhiyin/channels/feishu"
	"github.com/zhiyin/zhiyin/channels/localaudio"
	"github.com/zhiyin/zhiyin/channels/matrix"
	"github.com/zhiyin/zhiyin/channels/mattermost"
	"github.com/zhiyin/zhiyin/channels/sip"
	"github.com/zhiyin/zhiyin/channels/slack"
	"github.com/zhiyin/zhiyin/channels/telegram"
	"github.com/zhiyin/zhiyin/channels/webchat"
	"github.com/zhiyin/zhiyin/channels/webhook"
	"github.com/zhiyin/zhiyin/channels/wecom"
	"github.com/zhiyin/zhiyin/channels/xmpp"
	"github.com/zhiyin/zhiyin/dialogue"
	"github.com/zhiyin/zhiyin/dialogue/lanes"
	"github.com/zhiyin/zhiyin/dialogue/nlu"
	"github.com/zhiyin/zhiyin/internal/httpserver"
	"github.com/zhiyin/zhiyin/internal/store"
)

// ChannelsConfig is the channels: section: the hub's settings and one
// section per platform adapter (each disabled until `enabled: true`).
type ChannelsConfig struct {
	channels.Config `yaml:",inline"`
	Webchat         webchat.Config    `yaml:"webchat"`
	Webhook         webhook.Config    `yaml:"webhook"`
	DingTalk        dingtalk.Config   `yaml:"dingtalk"`
	Feishu          feishu.Config     `yaml:"feishu"`
	WeCom           wecom.Config      `yaml:"wecom"`
	Telegram        telegram.Config   `yaml:"telegram"`
	Slack           slack.Config      `yaml:"slack"`
	Mattermost      mattermost.Config `yaml:"mattermost"`
	Matrix          matrix.Config     `yaml:"matrix"`
	XMPP            xmpp.Config       `yaml:"xmpp"`
	SIP             sip.Config        `yaml:"sip"`
	LocalAudio      localaudio.Config `yaml:"localaudio"`
}

func defaultChannelsConfig() ChannelsConfig {
	c := ChannelsConfig{
		Config:     channels.DefaultConfig(),
		Webchat:    webchat.DefaultConfig(),
		Webhook:    webhook.DefaultConfig(),
		DingTalk:   dingtalk.DefaultConfig(),
		Feishu:     feishu.DefaultConfig(),
		WeCom:      wecom.DefaultConfig(),
		Telegram:   telegram.DefaultConfig(),
		Slack:      slack.DefaultConfig(),
		Mattermost: mattermost.DefaultConfig(),
		Matrix:     matrix.DefaultConfig(),
		XMPP:       xmpp.DefaultConfig(),
		SIP:        sip.DefaultConfig(),
		LocalAudio: localaudio.DefaultConfig(),
	}
	// The web chat (/chat) is on: it is served on the daemon's own port,
	// which is loopback unless server.listen says otherwise.
	c.Webchat.Enabled = true
	// One default for every adapter: in groups, answer when mentioned.
	for _, common := range []*channels.Common{&c.Webchat.Common, &c.Webhook.Common, &c.DingTalk.Common, &c.Feishu.Common, &c.WeCom.Common,
		&c.Telegram.Common, &c.Slack.Common, &c.Mattermost.Common, &c.Matrix.Common, &c.XMPP.Common} {
		if common.Groups == "" {
			common.Groups = "mention"
		}
	}
	return c
}

// builtAdapter is an adapter with its section's shared part.
type builtAdapter struct {
	a      channels.Adapter
	common channels.Common
}

// buildAdapters builds every enabled adapter (no I/O), in a fixed order.
func buildAdapters(cfg *Config, log *slog.Logger) ([]builtAdapter, error) {
	c := &cfg.Channels
	var out []builtAdapter
	add := func(enabled bool, common channels.Common, build func() (channels.Adapter, error)) error {
		if !enabled {
			return nil
		}
		a, err := build()
		if err != nil {
			return err
		}
		out = append(out, builtAdapter{a: a, common: common})
		return nil
	}
	l := func(name string) *slog.Logger { return log.With("channel", name) }
	errs := []error{
		add(c.Webchat.Enabled, c.Webchat.Common, func() (channels.Adapter, error) { return webchat.New(c.Webchat, l("webchat")) }),
		add(c.Webhook.Enabled, c.Webhook.Common, func() (channels.Adapter, error) { return webhook.New(c.Webhook, l("webhook")) }),
		add(c.DingTalk.Enabled, c.DingTalk.Common, func() (channels.Adapter, error) { return dingtalk.New(c.DingTalk, l("dingtalk")) }),
		add(c.Feishu.Enabled, c.Feishu.Common, func() (channels.Adapter, error) { return feishu.New(c.Feishu, l("feishu")) }),
		add(c.WeCom.Enabled, c.WeCom.Common, func() (channels.Adapter, error) { return wecom.New(c.WeCom, l("wecom")) }),
		add(c.Telegram.Enabled, c.Telegram.Common, func() (channels.Adapter, error) { return telegram.New(c.Telegram, l("telegram")) }),
		add(c.Slack.Enabled, c.Slack.Common, func() (channels.Adapter, error) { return slack.New(c.Slack, l("slack")) }),
		add(c.Mattermost.Enabled, c.Mattermost.Common, func() (channels.Adapter, error) { return mattermost.New(c.Mattermost, l("mattermost")) }),
		add(c.Matrix.Enabled, c.Matrix.Common, func() (channels.Adapter, error) {
			mc := c.Matrix
			if mc.SinceFile == "" {
				mc.SinceFile = filepath.Join(cfg.DataDir, "channels", "matrix.since")
			}
			if err := os.MkdirAll(filepath.Dir(mc.SinceFile), 0o750); err != nil {
				return nil, fmt.Errorf("matrix: %w", err)
			}
			return matrix.New(mc, nil, l("matrix"))
		}),
		add(c.XMPP.Enabled, c.XMPP.Common, func() (channels.Adapter, error) { return xmpp.New(c.XMPP, l("xmpp")) }),
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("channels: %w", err)
	}
	return out, nil
}

// fiberMounter is the web chat's capability: routes on the fiber app itself
// (its websocket needs the raw connection).
type fiberMounter interface {
	Mount(r fiber.Router)
}

// startChannels builds the hub and its adapters, mounts their callback
// routes (public: they verify the platforms' signatures) and starts them.
// Messages that arrive before the dialogue is ready are committed and
// answered once it is.
func (d *daemon) startChannels(ctx context.Context, srv *httpserver.Server) (*channels.Hub, error) {
	cfg := d.cfg
	built, err := buildAdapters(&cfg.Config, d.log)
	if err != nil {
		return nil, err
	}
	hub, err := channels.New(cfg.Channels.Config, channels.Deps{
		DB: d.db, Dialogue: engineDialogue{d.engine.Load}, Sealer: d.keyring, Log: d.log.With("component", "channels"), Metrics: d.reg,
		Transcriber: asrTranscriber{src: d.asr.Load},
	})
	if err != nil {
		return nil, err
	}
	public := srv.Group("", httpserver.Public)
	for _, b := range built {
		if err := hub.Register(b.a, b.common); err != nil {
			return nil, err
		}
		if r, ok := b.a.(channels.Router); ok {
			for _, rt := range r.Routes() {
				public.Add(rt.Method, rt.Path, adaptor.HTTPHandler(rt.Handler))
			}
		}
		if m, ok := b.a.(fiberMounter); ok {
			m.Mount(public)
		}
		name := b.a.Name()
		if err := d.reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "zhiyin_channel_connected", Help: "1 while the channel's platform connection is up.",
			ConstLabels: prometheus.Labels{"channel": name},
		}, func() float64 {
			for _, s := range hub.Statuses() {
				if s.Channel == name && s.Connected {
					return 1
				}
			}
			return 0
		})); err != nil {
			return nil, err
		}
	}
	if err := hub.Start(ctx); err != nil {
		return nil, err
	}
	d.updateChannelReadiness(hub)
	return hub, nil
}

// updateChannelReadiness shows each channel in /readyz. A platform that is
// down does not make the appliance unready (the other channels and the API
// still work); its detail says so.
func (d *daemon) updateChannelReadiness(hub *channels.Hub) {
	for _, s := range hub.Statuses() {
		detail := fmt.Sprintf("connected; %d in, %d out", s.In, s.Out)
		if !s.Connected {
			detail = fmt.Sprintf("disconnected; %d in, %d out", s.In, s.Out)
		}
		if s.Detail != "" {
			detail = s.Detail + "; " + detail
		}
		if s.Backlog > 0 {
			detail += fmt.Sprintf("; %d replies waiting", s.Backlog)
		}
		if s.Dead > 0 {
			detail += fmt.Sprintf("; %d dead letters (zhiyin outbox list)", s.Dead)
		}
		if s.LastError != "" {
			detail += "; last error " + s.LastErrorAt.UTC().Format(time.RFC3339) + ": " + firstLine(s.LastError)
		}
		d.readiness.Set("channel:"+s.Channel, true, detail)
	}
	if srv := d.sip.Load(); srv != nil {
		d.readiness.Set("channel:sip", true, sipDetail(srv.Status()))
	}
}

// sipDetail is the SIP line's /readyz detail: like the chat channels, a
// line that is down is reported, not made a reason to pull the daemon.
func sipDetail(st sip.Status) string {
	detail := fmt.Sprintf("listening on %s; %d calls", st.Addr, st.Calls)
	if !st.Listening {
		detail = "not listening"
	}
	switch {
	case st.Registering && st.Registered:
		detail += "; registered until " + st.RegisteredUntil.UTC().Format(time.RFC3339)
	case st.Registering:
		detail += "; not registered"
	}
	if st.LastError != "" {
		detail += "; last error: " + firstLine(st.LastError)
	}
	return detail
}

// channelStatusLoop refreshes the channels' /readyz details.
func (d *daemon) channelStatusLoop(ctx context.Context, hub *channels.Hub) {
	for channels.Sleep(ctx, 5*time.Second) {
		d.updateChannelReadiness(hub)
	}
}

// engineDialogue is the hub's view of the dialogue engine, which is only
// there once the models are loaded.
type engineDialogue struct{ engine func() *dialogue.Engine }

// holdTurnsEnv, set to 1, makes channel turns wait forever: the crash test
// kills the daemon while a committed message is unanswered.
const holdTurnsEnv = "ZHIYIN_TEST_HOLD_CHANNEL_TURNS"

func (e engineDialogue) Respond(ctx context.Context, t *channels.Turn, commit func(*sql.Tx, *channels.Answer) error) error {
	if os.Getenv(holdTurnsEnv) == "1" {
		<-ctx.Done()
		return ctx.Err()
	}
	eng := e.engine()
	if eng == nil {
		return errors.New("the dialogue engine is not ready yet (models loading)")
	}
	_, err := eng.Handle(ctx, dialogue.Message{
		Channel: t.Channel, Conversation: t.Conversation, User: t.User, Client: "channel:" + t.Channel, Text: t.Text,
		Commit: func(tx *sql.Tx, res *dialogue.Result) error {
			a := &channels.Answer{SessionID: res.SessionID, Handoff: res.Handoff}
			for _, r := range res.Replies {
				a.Replies = append(a.Replies, channels.Reply{Text: r.Text, Markdown: r.Markdown, Response: r.Response})
			}
			return commit(tx, a)
		},
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, dialogue.ErrBadMessage), errors.Is(err, nlu.ErrEmpty), errors.Is(err, nlu.ErrInvalidUTF8), errors.Is(err, nlu.ErrTooLong):
		return fmt.Errorf("%w: %w", channels.ErrInvalid, err)
	case errors.Is(err, lanes.ErrQueueFull), errors.Is(err, store.ErrBusy), errors.Is(err, store.ErrFull), errors.Is(err, dialogue.ErrNoNLU):
		return err // temporary: the hub retries
	}
	return err
}

// asrTranscriber gives the channels' voice notes to the speech engine.
type asrTranscriber struct{ src asrSource }

// Transcribe implements channels.Transcriber.
func (t asrTranscriber) Transcribe(ctx context.Context, r io.Reader, m channels.Media) (string, error) {
	e := t.src()
	if e == nil {
		return "", fmt.Errorf("%w: the speech engine is starting", channels.ErrNoASR)
	}
	res, err := e.TranscribeReader(ctx, r, m.MIME, 0, asr.Options{})
	if errors.Is(err, asr.ErrNoModel) {
		return "", fmt.Errorf("%w: %v", channels.ErrNoASR, err)
	}
	if err != nil {
		return "", err
	}
	return res.Text, nil
}
