package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/zhiyin/zhiyin/inference"
	"github.com/zhiyin/zhiyin/models"
)

const modelsUsage = `usage:
  zhiyin models list [--json]                     installed models (live state from the daemon when it runs)
  zhiyin models verify [NAME...]                  check every file's sha256 and the graph against its contract
  zhiyin models install SRC [--name NAME] [--candidate | --replace]
                                                  SRC: a model folder or a .tar.gz/.tar.bz2 (sherpa-onnx and
                                                  FunASR releases are recognised from models/catalog.yaml)
  zhiyin models remove NAME [--candidate | --previous]
  zhiyin models shadow NAME [--start [--dir DIR] [--fraction F] [--window D] | --stop] [--json]
  zhiyin models promote NAME                      the candidate serves; the old version becomes previous
  zhiyin models rollback NAME                     the previous version serves again
  zhiyin models quantize IN.onnx OUT.onnx [--per-channel] [--eval FILE.jsonl] [--force] [--json]
                                                  dynamic int8 quantization of MatMul/Gemm weights; --eval
                                                  compares accuracy (IN in a BYO BERT folder)
flags common to all: --config FILE; list, shadow, promote and rollback also --addr URL
(default: the configured server.listen) and $ZHIYIN_API_KEY for a daemon that needs a key.`

// envAPIKey is the admin API key the CLI sends to the daemon.
const envAPIKey = "ZHIYIN_API_KEY"

func runModels(ctx context.Context, cio cmdIO, args []string) error {
	if len(args) == 0 {
		return usagef("name a subcommand: list, verify, install, remove, shadow, promote, rollback or quantize")
	}
	sub, args := args[0], args[1:]
	if sub == "quantize" { // offline file tool: its own flags, no configuration
		return runModelsQuantize(ctx, cio, args)
	}
	fs := newFlagSet("models", cio.stderr)
	configPath := fs.String("config", "", "configuration file (default: $ZHIYIN_CONFIG, else "+defaultConfigPath+" if it exists, else built-in)")
	var addr *string
	switch sub {
	case "list", "shadow", "promote", "rollback":
		addr = fs.String("addr", "", "the daemon's URL (default: http:// + the configured server.listen)")
	}
	asJSON := fs.Bool("json", false, "print JSON (list, shadow)")
	name := fs.String("name", "", "install: the catalog model a folder without model.yaml is")
	candidate := fs.Bool("candidate", false, "install/remove: the candidate version (NAME.candidate)")
	replace := fs.Bool("replace", false, "install: replace the serving version (it becomes NAME.previous)")
	previous := fs.Bool("previous", false, "remove: the previous version (NAME.previous)")
	start := fs.Bool("start", false, "shadow: load the candidate and start mirroring traffic to it")
	stop := fs.Bool("stop", false, "shadow: stop mirroring and release the candidate")
	dir := fs.String("dir", "", "shadow --start: the candidate's folder (default: NAME.candidate)")
	fraction := fs.Float64("fraction", 0, "shadow --start: share of requests mirrored (default: inference.shadow.fraction)")
	window := fs.Duration("window", 0, "shadow --start: how long to mirror (default: inference.shadow.window)")
	switch sub {
	case "list", "verify", "install", "remove", "shadow", "promote", "rollback":
	case "-h", "--help", "help":
		fmt.Fprintln(cio.stdout, modelsUsage)
		return nil
	default:
		return usagef("unknown subcommand %q: use list, verify, install, remove, shadow, promote, rollback or quantize", sub)
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	lc, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	dirs := inference.SearchDirs(lc.Inference, lc.DataDir)
	cat, err := inference.ParseCatalog(models.Catalog())
	if err != nil {
		return fmt.Errorf("built-in catalog (a bug): %w", err)
	}
	st := inference.NewStore(dirs[0], cat)
	var d *daemonClient
	if addr != nil {
		d = newDaemonClient(*addr, lc)
	}
	one := func() (string, error) {
		if len(pos) != 1 {
			return "", usagef("name one model")
		}
		return pos[0], nil
	}
	switch sub {
	case "list":
		if len(pos) > 0 {
			return usagef("unexpected argument %q", pos[0])
		}
		return modelsList(ctx, cio, d, dirs, *asJSON)
	case "verify":
		return modelsVerify(cio, dirs, pos)
	case "install":
		src, err := one()
		if err != nil {
			return err
		}
		if *candidate && *replace {
			return usagef("use --candidate or --replace, not both")
		}
		if err := os.MkdirAll(dirs[0], 0o755); err != nil {
			return fmt.Errorf("models folder: %w", err)
		}
		got, err := st.Install(ctx, src, inference.InstallOptions{Name: *name, Candidate: *candidate, Replace: *replace})
		if err != nil {
			return err
		}
		how := "its own model.yaml"
		if got.Generated {
			how = "a model.yaml written from the catalog"
		}
		role := "serving version"
		next := "restart zhiyin (or wait for the next load) to use it"
		if got.Manifest.Kind == "asr" && !*replace {
			next = "a running zhiyin uses it from the next speech request (no restart needed)"
		}
		if got.Slot == inference.SlotCandidate {
			role = "candidate"
			next = fmt.Sprintf("evaluate it with `zhiyin models shadow %s --start`, then `zhiyin models promote %s`", got.Manifest.Name, got.Manifest.Name)
		}
		fmt.Fprintf(cio.stdout, "installed %s %s as the %s: %s (sha256 of %d file(s) and the contract checked; %s)\n%s\n",
			got.Manifest.Name, got.Manifest.Version, role, got.Link, len(got.Manifest.Files), how, next)
		return nil
	case "remove":
		n, err := one()
		if err != nil {
			return err
		}
		slot := inference.SlotServing
		switch {
		case *candidate && *previous:
			return usagef("use --candidate or --previous, not both")
		case *candidate:
			slot = inference.SlotCandidate
		case *previous:
			slot = inference.SlotPrevious
		}
		if err := st.Remove(n, slot); err != nil {
			if errors.Is(err, inference.ErrModelNotFound) {
				if other, ferr := inference.FindModel(dirs[1:], n, slot); ferr == nil {
					return fmt.Errorf("%s is not in %s but in %s, which zhiyin does not manage (the package or model_dirs owns it)", n, dirs[0], other)
				}
			}
			return err
		}
		fmt.Fprintf(cio.stdout, "removed %s from %s\n", strings.TrimSuffix(n+"."+slot, "."), dirs[0])
		return nil
	case "shadow":
		n, err := one()
		if err != nil {
			return err
		}
		if *start && *stop {
			return usagef("use --start or --stop, not both")
		}
		var rep inference.ShadowReport
		switch {
		case *start:
			opts := inference.ShadowOptions{Dir: *dir, Fraction: *fraction, Window: *window}
			if opts.Dir != "" {
				if abs, err := filepath.Abs(opts.Dir); err == nil {
					opts.Dir = abs
				}
			}
			err = d.do(ctx, http.MethodPost, "/"+n+"/shadow", opts, &rep)
		case *stop:
			err = d.do(ctx, http.MethodDelete, "/"+n+"/shadow", nil, &rep)
		default:
			var full inference.ModelReport
			err = d.do(ctx, http.MethodGet, "/"+n, nil, &full)
			if err == nil && full.Shadow == nil {
				return fmt.Errorf("no shadow evaluation of %s has run since the daemon started; start one with `zhiyin models shadow %s --start` (candidate: %s)", n, n, orNone(full.Candidate))
			}
			if full.Shadow != nil {
				rep = *full.Shadow
			}
		}
		if err != nil {
			return shadowErr(err, n)
		}
		if *asJSON {
			return writeJSON(cio.stdout, rep)
		}
		printShadow(cio.stdout, n, rep)
		return nil
	case "promote", "rollback":
		n, err := one()
		if err != nil {
			return err
		}
		var ev inference.SwapEvent
		err = d.do(ctx, http.MethodPost, "/"+n+"/"+sub, nil, &ev)
		if err == nil {
			fmt.Fprintf(cio.stdout, "%s: %s %s → %s in the running daemon (no request failed; the old version is released)\n", n, sub, orNone(ev.From), ev.To)
			return nil
		}
		if !errors.Is(err, errDaemonDown) {
			return err
		}
		// No daemon: switch the folders; the next start serves the result.
		if sub == "promote" {
			err = st.Promote(n)
		} else {
			err = st.Rollback(n, dirs[1:])
		}
		if err != nil {
			return err
		}
		v := "?"
		if p, ferr := inference.FindModel(dirs, n, inference.SlotServing); ferr == nil {
			if m, merr := inference.ReadManifest(p); merr == nil {
				v = m.Version
			}
		}
		done := map[string]string{"promote": "promoted", "rollback": "rolled back"}[sub]
		fmt.Fprintf(cio.stdout, "%s: the daemon is not running (%s); %s on disk: version %s serves from the next start\n", n, d.base, done, v)
		return nil
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func shadowErr(err error, name string) error {
	if errors.Is(err, errDaemonDown) {
		return fmt.Errorf("%w: shadow evaluation mirrors live traffic, so it runs in the daemon; start zhiyin first (model %s)", err, name)
	}
	return err
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func modelsList(ctx context.Context, cio cmdIO, d *daemonClient, dirs []string, asJSON bool) error {
	var live struct {
		Models []inference.ModelStatus `json:"models"`
	}
	err := d.do(ctx, http.MethodGet, "", nil, &live)
	installed := inference.ListInstalled(dirs)
	if asJSON {
		out := map[string]any{"installed": installed}
		if err == nil {
			out["daemon"] = live.Models
		} else {
			out["daemon_error"] = err.Error()
		}
		return writeJSON(cio.stdout, out)
	}
	tw := tabwriter.NewWriter(cio.stdout, 2, 4, 2, ' ', 0)
	if err == nil {
		fmt.Fprintln(tw, "NAME\tVERSION\tSTATE\tEP\tPROVIDER\tBATCH\tMEMORY\tCANDIDATE\tDIR")
		for _, m := range live.Models {
			ep := m.EP
			if m.Fallback != "" {
				ep += " (" + m.Fallback + ")"
			}
			batch := "off"
			if m.Batching {
				batch = fmt.Sprintf("≤%d", m.MaxBatch)
			}
			mem := ""
			if m.State == inference.StateReady {
				mem = humanBytes(uint64(max(m.HostMemory, 0)))
				if m.GPUMemory > 0 {
					mem += " + GPU " + humanBytes(uint64(m.GPUMemory))
				}
			}
			state := m.State
			if m.Shadowing {
				state += ", shadowing"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Name, dash(m.Version), state, dash(ep), m.Provider, batch, dash(mem), dash(m.Candidate), dash(m.Dir))
		}
		return tw.Flush()
	}
	fmt.Fprintf(cio.stderr, "daemon not reachable (%v): showing the installed models\n", err)
	fmt.Fprintln(tw, "NAME\tSLOT\tVERSION\tKIND\tDIR\tNOTE")
	for _, im := range installed {
		v, kind, note := "-", "-", ""
		if im.Manifest != nil {
			v, kind = im.Manifest.Version, im.Manifest.Kind
		}
		if im.Err != nil {
			note = "invalid: " + im.Err.Error()
		}
		if im.Hidden {
			note = "hidden by an earlier folder"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", im.Name, dash(im.Slot), v, kind, im.Dir, note)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func modelsVerify(cio cmdIO, dirs []string, names []string) error {
	installed := inference.ListInstalled(dirs)
	failed, checked := 0, 0
	for _, n := range names {
		found := false
		for _, im := range installed {
			found = found || im.Name == n
		}
		if !found {
			fmt.Fprintf(cio.stdout, "✗ %s: not installed (looked in %s)\n", n, strings.Join(dirs, ", "))
			failed++
		}
	}
	for _, im := range installed {
		if len(names) > 0 && !contains(names, im.Name) {
			continue
		}
		checked++
		label := im.Name
		if im.Slot != "" {
			label += "." + im.Slot
		}
		m, err := inference.CheckModel(im.Dir)
		if err != nil {
			failed++
			fmt.Fprintf(cio.stdout, "✗ %s (%s): %v\n", label, im.Dir, err)
			continue
		}
		fmt.Fprintf(cio.stdout, "✓ %s %s (%s): %d file(s) sha256 ok, contract ok\n", label, m.Version, im.Dir, len(m.Files))
	}
	if checked == 0 && len(names) == 0 {
		fmt.Fprintf(cio.stdout, "no models installed in %s\n", strings.Join(dirs, ", "))
	}
	if failed > 0 {
		return exitError{exitFailure}
	}
	return nil
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

func printShadow(w io.Writer, name string, r inference.ShadowReport) {
	state := "finished"
	if r.Active {
		state = "mirroring"
	}
	fmt.Fprintf(w, "shadow evaluation of %s: candidate %s (%s) vs serving %s — %s since %s", name, r.Candidate, r.CandidateEP, r.Serving, state, r.Started.Format(time.RFC3339))
	if r.Until != nil {
		fmt.Fprintf(w, " until %s", r.Until.Format(time.RFC3339))
	}
	fmt.Fprintf(w, "\n  fraction %.0f%%, compare %s\n", r.Fraction*100, r.Compare)
	fmt.Fprintf(w, "  mirrored %d: agree %d, disagree %d, errors %d; skipped %d (busy)\n", r.Mirrored, r.Agree, r.Disagree, r.Errors, r.Skipped)
	if r.Agree+r.Disagree > 0 {
		fmt.Fprintf(w, "  agreement %.2f%%\n", r.Agreement*100)
	}
	fmt.Fprintf(w, "  latency p50/p95: serving %.2f/%.2f ms, candidate %.2f/%.2f ms\n", r.ServingP50, r.ServingP95, r.CandidateP50, r.CandidateP95)
	if r.LastError != "" {
		fmt.Fprintf(w, "  last error: %s\n", r.LastError)
	}
}

// errDaemonDown means the daemon did not answer at all.
var errDaemonDown = errors.New("the zhiyin daemon is not reachable")

// daemonClient calls the admin models API of a running daemon.
type daemonClient struct {
	base string
	key  string
	hc   *http.Client
}

func newDaemonClient(addr string, lc *loadedConfig) *daemonClient {
	if addr == "" {
		host := lc.Server.Listen
		if h, p, err := net.SplitHostPort(host); err == nil && (h == "" || h == "0.0.0.0" || h == "::") {
			host = net.JoinHostPort("127.0.0.1", p)
		}
		addr = "http://" + host
	}
	return &daemonClient{base: strings.TrimRight(addr, "/"), key: os.Getenv(envAPIKey), hc: &http.Client{Timeout: 10 * time.Minute}}
}

// do sends a request to the admin models API and decodes the JSON answer
// into out. Shadow starts and swaps load models, so the timeout is long.
func (d *daemonClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, d.base+inference.AdminModelsPath+path, rd)
	if err != nil {
		return fmt.Errorf("%w at %s: %v", errDaemonDown, d.base, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if d.key != "" {
		req.Header.Set("Authorization", "Bearer "+d.key)
	}
	resp, err := d.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%w at %s: %v", errDaemonDown, d.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("read the daemon's answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error   any    `json:"error"`
			Message string `json:"message"`
		}
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &e) == nil {
			switch v := e.Error.(type) {
			case string:
				msg = v
			case map[string]any:
				if m, ok := v["message"].(string); ok {
					msg = m
				}
			}
			if e.Message != "" {
				msg = e.Message
			}
		}
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			msg += " (set $" + envAPIKey + " to an admin key: `zhiyin apikey create --name ops --role admin`)"
		}
		return fmt.Errorf("daemon at %s: %s %s: %s", d.base, method, inference.AdminModelsPath+path, msg)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("the daemon's answer: %w", err)
		}
	}
	return nil
}
