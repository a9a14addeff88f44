package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zhiyin/zhiyin/asr"
	"github.com/zhiyin/zhiyin/channels/localaudio"
	"github.com/zhiyin/zhiyin/channels/voice"
	"github.com/zhiyin/zhiyin/dialogue"
	"github.com/zhiyin/zhiyin/dialogue/nlu"
	"github.com/zhiyin/zhiyin/internal/config"
)

// runVoice is `zhiyin voice --local | --list-devices`: a spoken conversation
// through this machine's microphone and speaker, in this process.
func runVoice(ctx context.Context, cio cmdIO, args []string) error {
	fs := newFlagSet("voice", cio.stderr)
	configPath := fs.String("config", "", "configuration file")
	local := fs.Bool("local", false, "talk through this machine's sound card (channels.localaudio settings)")
	list := fs.Bool("list-devices", false, "list the audio devices and exit")
	asJSON := fs.Bool("json", false, "with --list-devices: JSON output")
	input := fs.String("input", "", "capture device (name or unique part of it); default channels.localaudio.input")
	output := fs.String("output", "", "playback device; default channels.localaudio.output")
	echo := fs.String("echo", "", "echo policy while speaking: mute, gate or none (headset); default channels.localaudio.echo")
	if pos, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if *list {
		return listDevices(cio.stdout, *asJSON)
	}
	if !*local {
		return usagef("say --local to talk through the sound card, or --list-devices (phone calls are served by `zhiyin serve` with channels.sip.enabled)")
	}
	lc, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	lcfg := lc.Channels.LocalAudio
	if *input != "" {
		lcfg.Input = *input
	}
	if *output != "" {
		lcfg.Output = *output
	}
	if *echo != "" {
		lcfg.Echo = *echo
	}
	if err := config.Validate(&lcfg); err != nil {
		return usagef("channels.localaudio with --input, --output and --echo: %v", err)
	}
	log := slog.New(slog.NewTextHandler(cio.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	db, err := openForCLI(ctx, lc)
	if err != nil {
		return err
	}
	defer db.Close()
	keyring, st, err := openSessions(&lc.Config, db, true)
	if err != nil {
		return err
	}
	rt, reg, closeModels, err := openModels(lc, log)
	if err != nil {
		return err
	}
	defer closeModels()
	eng, parser, closeEngine, err := localDialogue(ctx, lc, db, st, rt, log)
	if err != nil {
		return err
	}
	defer closeEngine()
	speech := asr.New(lc.ASR, reg, log)
	if _, _, err := speech.Warm(ctx); err != nil {
		return fmt.Errorf("speech recognition: %w", err)
	}
	vp, err := newVoice(ctx, voiceDeps{
		cfg: lc, asr: func() *asr.Engine { return speech }, parser: func() *nlu.Parser { return parser },
		dialogue: engineDialogue{func() *dialogue.Engine { return eng }}, engine: func() *dialogue.Engine { return eng },
		models: reg, db: db, sealer: keyring, log: log, metrics: prometheus.NewRegistry(),
	})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = vp.engine.Stop(sctx)
	}()
	line, err := localaudio.New(lcfg, vp.engine, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(cio.stdout, "zhiyin voice — domain %s, voice %s; opening the sound card. Speak after the greeting; Ctrl-C ends.\n", eng.Domain().Source, vp.speakerName)
	err = line.Run(ctx, true)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// listDevices prints the audio devices PortAudio sees.
func listDevices(w io.Writer, asJSON bool) error {
	devs, err := localaudio.Devices()
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(devs)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tAPI\tIN\tOUT\tRATE\tDEFAULT")
	for _, d := range devs {
		var def []string
		if d.DefaultInput {
			def = append(def, "input")
		}
		if d.DefaultOutput {
			def = append(def, "output")
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.0f\t%s\n", d.Name, d.HostAPI, d.MaxInput, d.MaxOutput, d.DefaultRate, strings.Join(def, ","))
	}
	if len(devs) == 0 {
		fmt.Fprintln(tw, "(no audio devices)")
	}
	return tw.Flush()
}

// runCalls is `zhiyin calls`: the call records, transcripts and recordings.
func runCalls(ctx context.Context, cio cmdIO, args []string) error {
	if len(args) == 0 {
		return usagef("calls needs a subcommand: list, show or recording")
	}
	sub, args := args[0], args[1:]
	fs := newFlagSet("calls "+sub, cio.stderr)
	configPath := fs.String("config", "", "configuration file")
	asJSON := fs.Bool("json", false, "JSON output")
	limit := fs.Int("limit", 50, "list: at most this many calls, newest first")
	since := fs.Duration("since", 0, "list: only calls started within this long")
	out := fs.String("out", "", "recording: the WAV file to write (- for standard output)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	lc, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	db, err := openForCLI(ctx, lc)
	if err != nil {
		return err
	}
	defer db.Close()
	keyring, _, err := openSessions(&lc.Config, db, false)
	if err != nil {
		return err
	}
	switch sub {
	case "list":
		if len(pos) > 0 {
			return usagef("unexpected argument %q", pos[0])
		}
		if *limit < 1 || *limit > 10000 {
			return usagef("--limit must be 1…10000")
		}
		f := voice.CallFilter{Limit: *limit}
		if *since > 0 {
			f.Since = time.Now().Add(-*since)
		}
		calls, err := voice.ListCalls(ctx, db.Read(), keyring, f)
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(cio.stdout).Encode(calls)
		}
		tw := tabwriter.NewWriter(cio.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CALL\tCHANNEL\tFROM\tSTARTED\tDURATION\tTURNS\tEND\tSESSION")
		for _, c := range calls {
			dur := "live"
			if !c.Ended.IsZero() {
				dur = c.Ended.Sub(c.Started).Round(time.Second).String()
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", c.CallID, c.Channel, c.From, c.Started.Local().Format(time.DateTime), dur, c.Turns, c.End, c.SessionID)
		}
		return tw.Flush()
	case "show", "recording":
		if len(pos) != 1 {
			return usagef("calls %s needs one CALL id (zhiyin calls list shows them)", sub)
		}
		c, err := voice.GetCall(ctx, db.Read(), keyring, pos[0])
		if errors.Is(err, voice.ErrNoSuchCall) {
			return fmt.Errorf("no call %q (zhiyin calls list shows the calls kept)", pos[0])
		}
		if err != nil {
			return err
		}
		if sub == "show" {
			if *asJSON {
				return json.NewEncoder(cio.stdout).Encode(c)
			}
			return printCall(cio.stdout, c)
		}
		if c.Recording == "" {
			return fmt.Errorf("call %s was not recorded (voice.record is off, or it was pruned)", pos[0])
		}
		if *out == "" {
			return usagef("calls recording needs --out FILE.wav (- for standard output)")
		}
		w := cio.stdout
		if *out != "-" {
			f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
			if err != nil {
				return err
			}
			defer f.Close()
			w = f
		}
		return voice.OpenRecording(c.Recording, keyring, w)
	default:
		return usagef("unknown calls subcommand %q: list, show or recording", sub)
	}
}

// printCall writes one call and its transcript for a person.
func printCall(w io.Writer, c *voice.CallRecord) error {
	fmt.Fprintf(w, "call %s (%s) from %s to %s, session %s\n", c.CallID, c.Channel, c.From, c.To, c.SessionID)
	fmt.Fprintf(w, "started %s, setup %s", c.Started.Local().Format(time.DateTime), c.Setup)
	if !c.Ended.IsZero() {
		fmt.Fprintf(w, ", ended %s (%s %s)", c.Ended.Local().Format(time.DateTime), c.End, c.EndReason)
	}
	fmt.Fprintf(w, "\n%d turns, %d barge-ins, %d keypad digits; RTP %d received, %d lost, jitter %s\n",
		c.Turns, c.BargeIns, c.DTMFDigits, c.RTP.Received, c.RTP.Lost, c.RTP.Jitter)
	for _, t := range c.Transcript {
		b, _ := json.Marshal(t)
		fmt.Fprintf(w, "  %s\n", b)
	}
	return nil
}
