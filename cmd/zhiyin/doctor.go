package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/shirou/gopsutil/v3/cpu"
	"github.com/shirou/gopsutil/v3/disk"

	"github.com/zhiyin/zhiyin/asr"
	"github.com/zhiyin/zhiyin/asr/tts"
	"github.com/zhiyin/zhiyin/channels/localaudio"
	"github.com/zhiyin/zhiyin/inference"
	"github.com/zhiyin/zhiyin/internal/doctor"
	"github.com/zhiyin/zhiyin/internal/store"
)

// Disk space thresholds for the data directory.
const (
	diskFailBelow = 512 << 20 // ✗ under this many free bytes
	diskWarnBelow = 2 << 30   // ✓ but said plainly under this
)

func runDoctor(ctx context.Context, cio cmdIO, args []string) error {
	fs := newFlagSet("doctor", cio.stderr)
	configPath := fs.String("config", "", "configuration file (default: $ZHIYIN_CONFIG, else "+defaultConfigPath+" if it exists, else built-in)")
	asJSON := fs.Bool("json", false, "print the checks as a JSON array")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	var checks []doctor.Check
	lc, err := loadConfig(*configPath)
	if err != nil {
		checks = append(checks, doctor.Check{Name: "config", Detail: firstLine(err.Error()),
			Fix: "correct the file (`zhiyin check-config` lists every problem with its line)"})
		// Go on with the built-in defaults so the machine is still checked.
		if lc, err = loadConfig(builtinConfig); err != nil {
			return err
		}
	} else {
		checks = append(checks, doctor.Check{Name: "config", OK: true, Detail: lc.Source + " is valid"})
	}
	for _, c := range inference.DoctorChecks(ctx, lc.Inference, inference.SearchDirs(lc.Inference, lc.DataDir)) {
		checks = append(checks, c)
		if c.Name == "ONNX Runtime" {
			checks = append(checks, checkCPU(c.OK))
		}
	}
	checks = append(checks, checkDataDir(lc.DataDir), checkDatabase(ctx, lc.Storage.Path),
		checkListen(ctx, lc.Server.Listen), checkDisk(lc.DataDir))
	checks = append(checks, checkASR(lc.ASR, inference.SearchDirs(lc.Inference, lc.DataDir)))
	checks = append(checks, checkChannels(ctx, &lc.Config)...)
	checks = append(checks, checkVoice(lc)...)

	if *asJSON {
		enc := json.NewEncoder(cio.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(checks); err != nil {
			return err
		}
	} else if doctor.Print(cio.stdout, checks) {
		fmt.Fprintln(cio.stdout, "\nzhiyin doctor: problems found (✗ above); each has its fix.")
	}
	for _, c := range checks {
		if c.Failed() {
			return exitError{exitFailure}
		}
	}
	return nil
}

// checkCPU reports the processor the CPU execution provider runs on; it is
// usable whenever ONNX Runtime loads.
func checkCPU(ortOK bool) doctor.Check {
	c := doctor.Check{Name: "CPU", OK: ortOK}
	model := "unknown model"
	if infos, err := cpu.Info(); err == nil && len(infos) > 0 && infos[0].ModelName != "" {
		model = infos[0].ModelName
	}
	c.Detail = fmt.Sprintf("%d logical CPUs (%s); the CPU execution provider runs every model", runtime.NumCPU(), model)
	if !ortOK {
		c.Detail = "not usable: ONNX Runtime did not load"
		c.Fix = "fix the ONNX Runtime check first"
	}
	return c
}

// checkDataDir proves the data directory is writable by writing, syncing and
// removing a file. A missing directory whose parent is writable is fine: the
// daemon creates it.
func checkDataDir(dir string) doctor.Check {
	c := doctor.Check{Name: "data dir"}
	st, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		parent := nearestExisting(dir)
		if probeWritable(parent) == nil {
			c.OK, c.Detail = true, dir+" does not exist yet; zhiyin creates it on first start"
			return c
		}
		c.Detail = dir + " does not exist and " + parent + " is not writable"
		c.Fix = "create it: install -d -o zhiyin -g zhiyin -m 0750 " + dir
		return c
	}
	if err != nil {
		c.Detail, c.Fix = err.Error(), "check the path in data_dir"
		return c
	}
	if !st.IsDir() {
		c.Detail, c.Fix = dir+" is not a directory", "point data_dir at a directory"
		return c
	}
	if err := probeWritable(dir); err != nil {
		c.Detail = dir + " is not writable: " + err.Error()
		c.Fix = "chown -R zhiyin:zhiyin " + dir + " (the service runs as user zhiyin)"
		return c
	}
	c.OK, c.Detail = true, dir+" is writable"
	return c
}

func probeWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".zhiyin-doctor-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString("ok"); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func nearestExisting(p string) string {
	for {
		if _, err := os.Stat(p); err == nil {
			return p
		}
		parent := filepath.Dir(p)
		if parent == p {
			return p
		}
		p = parent
	}
}

// checkDatabase runs SQLite's integrity check on the database, which is safe
// while the daemon serves (WAL readers do not block the writer).
func checkDatabase(ctx context.Context, path string) doctor.Check {
	c := doctor.Check{Name: "database"}
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		c.OK, c.Detail = true, path+" not created yet (created on first start)"
		return c
	}
	if err != nil {
		c.Detail, c.Fix = err.Error(), "check storage.path and its permissions"
		return c
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := store.IntegrityCheck(ctx, path); err != nil {
		c.Detail = fmt.Sprintf("%s fails the integrity check: %v", path, err)
		c.Fix = "stop zhiyin and restore the latest backup: zhiyin restore FILE"
		return c
	}
	c.OK, c.Detail = true, fmt.Sprintf("%s integrity ok (%s)", path, humanBytes(uint64(st.Size())))
	return c
}

// checkListen reports whether the listen address can be bound, or is held by
// a running zhiyin (which is fine).
func checkListen(ctx context.Context, addr string) doctor.Check {
	c := doctor.Check{Name: "listen address"}
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		ln.Close()
		c.OK, c.Detail = true, addr+" is free"
		return c
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		c.Detail = fmt.Sprintf("cannot bind %s: %v", addr, err)
		c.Fix = "use an address of this machine in server.listen (ports below 1024 need extra privileges)"
		return c
	}
	if isZhiyin(ctx, addr) {
		c.OK, c.Detail = true, addr+" is in use by a running zhiyin"
		return c
	}
	c.Detail = addr + " is in use by another program"
	c.Fix = "find it with `ss -ltnp 'sport = :" + portOf(addr) + "'` and stop it, or change server.listen"
	return c
}

// isZhiyin asks whatever listens on addr for /healthz and checks that the
// answer is zhiyin's.
func isZhiyin(ctx context.Context, addr string) bool {
	host, port, _ := net.SplitHostPort(addr)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/healthz", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
	}
	return resp.Header.Get("X-Request-ID") != "" && json.NewDecoder(resp.Body).Decode(&body) == nil && body.Status != ""
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// checkDisk reports free space on the data directory's file system.
func checkDisk(dir string) doctor.Check {
	c := doctor.Check{Name: "disk space"}
	p := nearestExisting(dir)
	u, err := disk.Usage(p)
	if err != nil {
		c.Detail, c.Fix = fmt.Sprintf("cannot read free space of %s: %v", p, err), "check that data_dir is on a mounted file system"
		return c
	}
	c.Detail = fmt.Sprintf("%s free of %s on %s (%.0f%% used)", humanBytes(u.Free), humanBytes(u.Total), u.Path, u.UsedPercent)
	switch {
	case u.Free < diskFailBelow:
		c.Fix = "free space on " + u.Path + " or move data_dir: below 512MiB the database may fail to write"
	case u.Free < diskWarnBelow:
		c.OK = true
		c.Detail += "; getting low"
	default:
		c.OK = true
	}
	return c
}

// checkChannels reports each enabled channel: its live state from a running
// daemon's /readyz, or that it is configured when none runs. A channel that
// is down is optional (✗ without failing the run): the platform may be the
// one that is down.
func checkChannels(ctx context.Context, cfg *Config) []doctor.Check {
	built, err := buildAdapters(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return []doctor.Check{{Name: "channels", Detail: firstLine(err.Error()), Fix: "correct the channels: section (`zhiyin check-config`)"}}
	}
	live := map[string]string{}
	if isZhiyin(ctx, cfg.Server.Listen) {
		live = readyChannels(ctx, cfg.Server.Listen)
	}
	var out []doctor.Check
	for _, b := range built {
		name := b.a.Name()
		c := doctor.Check{Name: "channel " + name, Optional: true}
		detail, ok := live[name]
		switch {
		case !ok:
			c.OK, c.Detail = true, "enabled (no running zhiyin to ask for its state)"
		case strings.Contains(detail, "disconnected"):
			c.Detail = detail
			c.Fix = "check the platform's address and credentials in channels." + name + " and the daemon's log (journalctl -u zhiyin)"
		default:
			c.OK, c.Detail = true, detail
		}
		out = append(out, c)
	}
	return out
}

// readyChannels reads the channel:<name> items of a running daemon's
// /readyz.
func readyChannels(ctx context.Context, addr string) map[string]string {
	host, port, _ := net.SplitHostPort(addr)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	out := map[string]string{}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/readyz", nil)
	if err != nil {
		return out
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	var body struct {
		Components []struct {
			Name   string `json:"name"`
			Detail string `json:"detail"`
		} `json:"components"`
	}
	if json.NewDecoder(resp.Body).Decode(&body) != nil {
		return out
	}
	for _, c := range body.Components {
		if name, ok := strings.CutPrefix(c.Name, "channel:"); ok {
			out[name] = c.Detail
		}
	}
	return out
}

// checkASR reports the speech recognition model: installed, and its
// tokens, CMVN and front-end settings readable. Without one the daemon
// serves text only, so the check is optional unless asr.model names one.
func checkASR(cfg asr.Config, dirs []string) doctor.Check {
	c := doctor.Check{Name: "speech model", Optional: cfg.Model == asr.ModelAuto}
	names := []string{cfg.Model}
	if cfg.Model == asr.ModelAuto {
		names = asr.AutoModels
	}
	for _, n := range names {
		dir, err := inference.FindModel(dirs, n, inference.SlotServing)
		if err != nil {
			continue
		}
		man, err := inference.CheckModel(dir)
		if err == nil {
			var sum asr.ModelSummary
			if sum, err = asr.Check(man); err == nil {
				c.OK = true
				c.Detail = fmt.Sprintf("%s %s (%s, %d tokens, %d features per frame) in %s", sum.Name, sum.Version, sum.Kind, sum.Tokens, sum.Features, dir)
				return c
			}
		}
		c.Detail = firstLine(err.Error())
		c.Fix = "reinstall the model folder: zhiyin models install DIR --replace"
		return c
	}
	c.Detail = "none installed (" + strings.Join(names, ", ") + "); speech requests answer 503"
	c.Fix = "copy a SenseVoice-small or Paraformer folder (sherpa-onnx or FunASR export) here and run zhiyin models install DIR"
	return c
}

// checkVoice checks what phone and sound-card calls need: a voice to speak
// with (espeak-ng, a TTS model or recorded prompts), the SIP address, the
// audio devices. Optional while no voice line is enabled.
func checkVoice(lc *loadedConfig) []doctor.Check {
	on := lc.Channels.SIP.Enabled || lc.Channels.LocalAudio.Enabled
	tc := doctor.Check{Name: "speech synthesis", Optional: !on}
	tcfg := lc.TTS
	if tcfg.Prompts == "" {
		tcfg.Prompts = promptsDir(lc.DataDir)
	}
	if v, err := tts.NewVoice(tcfg, nil, nil); err != nil {
		tc.Detail = firstLine(err.Error())
		tc.Fix = "apt-get install espeak-ng (the always-available Mandarin voice), or fix tts: in the configuration"
	} else if problems := v.Check(); len(problems) > 0 {
		tc.Detail = strings.Join(problems, "; ")
		tc.Fix = "apt-get install espeak-ng, and make recorded prompts 8 kHz or better mono WAV files"
	} else {
		tc.OK, tc.Detail = true, "engine "+tcfg.Engine+"; prompts in "+tcfg.Prompts
	}
	checks := []doctor.Check{tc}
	if lc.Channels.SIP.Enabled {
		c := doctor.Check{Name: "SIP address"}
		addr := lc.Channels.SIP.Listen
		pc, err := net.ListenPacket("udp", addr)
		if err == nil {
			pc.Close()
			c.OK, c.Detail = true, addr+" (UDP) is free"
		} else if errors.Is(err, syscall.EADDRINUSE) {
			c.Detail = addr + " (UDP) is in use (a running zhiyin, or another SIP program)"
			c.Fix = "stop the other program (`ss -lunp 'sport = :" + portOf(addr) + "'`) or change channels.sip.listen"
		} else {
			c.Detail = fmt.Sprintf("cannot bind %s: %v", addr, err)
			c.Fix = "use an address of this machine in channels.sip.listen (port 5060 needs CAP_NET_BIND_SERVICE, which the unit grants)"
		}
		checks = append(checks, c)
	}
	if lc.Channels.LocalAudio.Enabled {
		c := doctor.Check{Name: "audio devices"}
		devs, err := localaudio.Devices()
		switch {
		case err != nil:
			c.Detail, c.Fix = firstLine(err.Error()), "install libportaudio2 and check the sound card with `aplay -l`"
		case len(devs) == 0:
			c.Detail, c.Fix = "no audio devices", "connect a microphone and speaker, or disable channels.localaudio"
		default:
			c.OK, c.Detail = true, fmt.Sprintf("%d devices (zhiyin voice --list-devices)", len(devs))
		}
		checks = append(checks, c)
	}
	return checks
}
