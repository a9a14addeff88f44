package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/zhiyin/zhiyin/asr"
	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/channels/sip"
	"github.com/zhiyin/zhiyin/channels/voice"
	"github.com/zhiyin/zhiyin/dialogue"
	"github.com/zhiyin/zhiyin/dialogue/lanes"
	"github.com/zhiyin/zhiyin/dialogue/nlu"
	"github.com/zhiyin/zhiyin/dialogue/nlu/nludata"
	"github.com/zhiyin/zhiyin/dialogue/session"
	"github.com/zhiyin/zhiyin/dialogue/skill/orders"
	"github.com/zhiyin/zhiyin/inference"
	"github.com/zhiyin/zhiyin/internal/audit"
	"github.com/zhiyin/zhiyin/internal/auth"
	"github.com/zhiyin/zhiyin/internal/buildinfo"
	"github.com/zhiyin/zhiyin/internal/health"
	"github.com/zhiyin/zhiyin/internal/httpserver"
	"github.com/zhiyin/zhiyin/internal/logging"
	"github.com/zhiyin/zhiyin/internal/metrics"
	"github.com/zhiyin/zhiyin/internal/store"
	"github.com/zhiyin/zhiyin/internal/systemd"
)

// envCPUProfile names a file to write a CPU profile of the whole run to (a
// developer's tool for load tests: scripts/chat-bench.sh).
const envCPUProfile = "ZHIYIN_CPUPROFILE"

// startCPUProfile starts profiling into path; the returned func stops and
// closes it.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", envCPUProfile, err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", envCPUProfile, err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// Log attribute keys used by the daemon.
const (
	attrErr    = "err"
	attrListen = "listen"
)

func runServe(ctx context.Context, cio cmdIO, args []string) error {
	fs := newFlagSet("serve", cio.stderr)
	configPath := fs.String("config", "", "configuration file (default: $ZHIYIN_CONFIG, else "+defaultConfigPath+" if it exists, else built-in; 'builtin' forces the built-in defaults)")
	listen := fs.String("listen", "", "listen address host:port (overrides server.listen)")
	dataDir := fs.String("data-dir", "", "data directory (overrides data_dir)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	ov := overrides{Listen: *listen, DataDir: *dataDir}
	lc, err := loadConfigWith(*configPath, ov)
	if err != nil {
		fmt.Fprintln(cio.stderr, err)
		return exitError{exitFailure}
	}
	log, level := logging.New(lc.Log, cio.stderr)
	if path := os.Getenv(envCPUProfile); path != "" {
		stop, err := startCPUProfile(path)
		if err != nil {
			return err
		}
		defer stop()
	}
	d := &daemon{configFlag: *configPath, ov: ov, cfg: lc, log: log, level: level,
		notify: systemd.NewNotifier(log), readiness: health.NewReadiness(), liveness: &health.Liveness{}}
	return d.run(ctx)
}

// daemon is one run of `zhiyin serve`: it owns every long-lived component
// and stops them in reverse order.
type daemon struct {
	configFlag string
	ov         overrides
	log        *slog.Logger
	level      *slog.LevelVar
	notify     *systemd.Notifier
	readiness  *health.Readiness
	liveness   *health.Liveness

	mu  sync.Mutex // guards cfg during reloads
	cfg *loadedConfig

	addr   net.Addr // the listener's address
	db     *store.DB
	dbPath string // storage.path; not reloadable
	dbInfo os.FileInfo
	keys   *auth.KeyStore
	authn  *auth.Authenticator
	srv    *httpserver.Server
	rt     *inference.Runtime
	models *inference.Registry
	nlu    atomic.Pointer[nlu.Parser]
	asr    atomic.Pointer[asr.Engine]
	sip    atomic.Pointer[sip.Server]
	asrWS  *asrStreams
	reg    prometheus.Registerer

	// The dialogue engine and what it owns; set once the models are loaded.
	engine   atomic.Pointer[dialogue.Engine]
	keyring  *session.Keyring
	sessions *session.Store
	lanePool *lanes.Pool
	hub      *channels.Hub
}

func (d *daemon) run(ctx context.Context) error {
	// Signals first, so that a SIGTERM during start-up is not lost.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	cfg := d.cfg
	d.log.Info("zhiyin starting", "version", buildinfo.Version, "commit", buildinfo.Commit, "config", cfg.Source, "data_dir", cfg.DataDir)
	d.notify.Notify(systemd.Status("starting"))

	var stops []func(context.Context) // run in reverse on the way out
	shutdown := func() {
		ctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout+30*time.Second)
		defer cancel()
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i](ctx)
		}
	}
	fail := func(err error) error {
		d.notify.Notify(systemd.Status("failed: %v", err))
		shutdown()
		return err
	}

	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return fail(fmt.Errorf("create data directory: %w (set data_dir to a writable directory)", err))
	}

	// Database.
	d.readiness.Set("database", false, "opening")
	reg := metrics.NewRegistry(cfg.DataDir, d.log)
	d.reg = reg
	db, err := store.Open(ctx, cfg.Storage, d.log, reg, store.Options{Exclusive: true}, migrationSets()...)
	if err != nil {
		return fail(fmt.Errorf("open database: %w", err))
	}
	d.db, d.dbPath = db, cfg.Storage.Path
	stops = append(stops, func(context.Context) {
		if err := db.Close(); err != nil {
			d.log.Error("close database", attrErr, err)
		}
	})
	if d.dbInfo, err = os.Stat(cfg.Storage.Path); err != nil {
		return fail(fmt.Errorf("stat database: %w", err))
	}
	d.readiness.Set("database", true, cfg.Storage.Path)

	// Authentication.
	d.keys = auth.NewKeyStore(db)
	jwtv, err := auth.NewJWTVerifier(cfg.Auth.JWT)
	if err != nil {
		return fail(err)
	}
	d.authn = auth.NewAuthenticator(d.keys, jwtv)

	// The keys that seal message text at rest (sessions, channel inbox and
	// outbox); created on first start.
	if d.keyring, err = session.LoadKeyring(cfg.Dialogue.KeyFile(cfg.DataDir), true); err != nil {
		return fail(fmt.Errorf("session keys: %w", err))
	}

	// HTTP.
	ln, how, err := d.listener(cfg)
	if err != nil {
		return fail(err)
	}
	d.addr = ln.Addr()
	srv, err := httpserver.New(cfg.Server, d.dynamic(cfg), httpserver.Deps{
		Log: d.log, Metrics: reg, Gatherer: reg, Readiness: d.readiness, Liveness: d.liveness,
		Auth: d.authn, MapError: mapError,
	})
	if err != nil {
		ln.Close()
		return fail(err)
	}
	d.srv = srv
	httpserver.MountAPIKeys(srv.Group("/v1/admin", httpserver.AdminOnly), srv.Group("/v1/auth", httpserver.Authenticated), d.keys,
		func(c *fiber.Ctx, action, target string) {
			p, _ := httpserver.PrincipalFrom(c)
			d.audit(c.UserContext(), audit.Entry{Actor: actorOf(p), Action: action, Target: target})
		})

	// Models: the runtime and registry do no I/O until startModels.
	d.rt = inference.NewRuntime(cfg.Inference, d.log)
	d.models = inference.NewRegistry(d.rt, cfg.Inference, inference.SearchDirs(cfg.Inference, cfg.DataDir), d.log, reg, d.readiness)
	mountModelAdmin(srv.Group(inference.AdminModelsPath, httpserver.AdminOnly), d.models)
	d.asrWS = newASRStreams(d.log)
	mountASR(srv, d.asr.Load, d.asrWS)
	mountNLU(srv.Group("/v1/nlu", httpserver.Authenticated), srv.Group("/model", httpserver.Authenticated), d.nlu.Load)
	mountChat(srv.Group("/v1/chat", httpserver.Authenticated), srv.Group("/v1/sessions", httpserver.Authenticated),
		srv.Group("/webhooks/rest", httpserver.Authenticated), d.engine.Load)
	mountHandoffAdmin(srv.Group("/v1/admin/handoffs", httpserver.AdminOnly), d.engine.Load, d.audit)
	mountSessionAdmin(srv.Group("/v1/admin/sessions", httpserver.AdminOnly), srv.Group("/v1/admin/audit", httpserver.AdminOnly), d)
	stops = append(stops, func(context.Context) {
		if err := d.rt.Close(); err != nil {
			d.log.Error("close ONNX Runtime", attrErr, err)
		}
	})
	stops = append(stops, func(ctx context.Context) {
		if err := d.models.Stop(ctx); err != nil {
			d.log.Error("release models", attrErr, err)
		}
		if err := d.nlu.Swap(nil).Close(); err != nil {
			d.log.Error("release NLU models", attrErr, err)
		}
	})
	stops = append(stops, func(ctx context.Context) {
		d.asrWS.Close(ctx) // before the models are released
	})
	stops = append(stops, func(context.Context) {
		if d.lanePool != nil { // after the HTTP drain: no new turns
			d.lanePool.Close()
		}
	})

	// Channels: callback routes are mounted before serving; adapters
	// connect now, and what arrives before the dialogue is ready is
	// committed and answered once it is. Stopped after the HTTP drain.
	hub, err := d.startChannels(ctx, srv)
	if err != nil {
		return fail(err)
	}
	d.hub = hub
	stops = append(stops, func(ctx context.Context) {
		if err := hub.Stop(ctx); err != nil {
			d.log.Warn("stop channels", attrErr, err)
		}
	})

	// Background loops, owned here: cancelled and waited for on the way out
	// (after the HTTP drain, so that the last requests' key use is flushed).
	bgCtx, bgCancel := context.WithCancel(context.Background())
	var bg sync.WaitGroup
	stops = append(stops, func(ctx context.Context) {
		bgCancel()
		bg.Wait()
		if err := d.keys.FlushUsage(ctx); err != nil {
			d.log.Warn("record API key use", attrErr, err)
		}
	})
	bg.Add(4)
	go func() { defer bg.Done(); d.watchdogLoop(bgCtx) }()
	go func() { defer bg.Done(); d.flushLoop(bgCtx) }()
	go func() { defer bg.Done(); d.channelStatusLoop(bgCtx, hub) }()
	go func() { defer bg.Done(); hub.RunPrune(bgCtx) }()

	// Stopping runs in reverse: the model loader is cancelled and awaited,
	// HTTP drains, then the loops, models, runtime and database close.
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	stops = append(stops, func(ctx context.Context) {
		dctx, cancel := context.WithTimeout(ctx, cfg.Server.ShutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(dctx); err != nil {
			d.log.Warn("HTTP drain incomplete; remaining connections closed", attrErr, err)
		}
		// Shutdown is a no-op if Serve has not registered the listener yet
		// (a start that fails at once); closing it makes such a Serve return.
		_ = ln.Close()
		<-serveErr
	})
	d.log.Info("listening", attrListen, ln.Addr().String(), "via", how, "loopback_without_credentials", d.dynamic(cfg).AllowLoopback)

	// Models load and warm while the HTTP server already answers /readyz
	// with their progress; stopping cancels the loading.
	d.notify.Notify(systemd.Status("loading models"))
	d.readiness.Set("onnxruntime", false, "loading")
	// Everything the loader will bring up is pending from now on, so that
	// /readyz never says ready in a gap between two steps.
	for _, item := range []string{"asr", "nlu", "dialogue"} {
		d.readiness.Set(item, false, "waiting for ONNX Runtime")
	}
	if cfg.Channels.SIP.Enabled || cfg.Channels.LocalAudio.Enabled {
		d.readiness.Set("voice", false, "waiting for the models")
	}
	startCtx, startCancel := context.WithCancel(context.Background())
	startErr := make(chan error, 1)
	loaderDone := make(chan struct{})
	go func() {
		defer close(loaderDone)
		startErr <- d.startModels(startCtx)
	}()
	stops = append(stops, func(context.Context) {
		startCancel()
		<-loaderDone // the loader uses the runtime until it returns
	})

	ready := false
	for {
		select {
		case err := <-startErr:
			if err != nil {
				return fail(err)
			}
			startErr = nil
			stopVoice, err := d.startVoice(bgCtx)
			if err != nil {
				return fail(err)
			}
			// Calls are hung up before the HTTP drain and the models close.
			stops = append(stops, stopVoice)
			ready = true
			bg.Add(1)
			go func() { defer bg.Done(); d.retentionLoop(bgCtx) }()
			d.notify.Notify(systemd.Ready, systemd.Status("ready; serving on %s", ln.Addr()))
			d.log.Info("ready", attrListen, ln.Addr().String())
		case err := <-serveErr:
			serveErr <- err // for the stop function
			if err == nil {
				err = errors.New("closed unexpectedly")
			}
			return fail(fmt.Errorf("HTTP server stopped: %w", err))
		case sig := <-sigs:
			switch sig {
			case syscall.SIGHUP:
				if !ready {
					d.log.Warn("SIGHUP during start-up ignored; send it again once ready")
					continue
				}
				d.reload()
				d.reloadDomain(context.Background())
			default:
				d.log.Info("stopping", "signal", sig.String())
				d.notify.Notify(systemd.Stopping, systemd.Status("stopping: draining requests"))
				shutdown()
				d.log.Info("stopped")
				return nil
			}
		}
	}
}

// startModels loads ONNX Runtime, then loads and warms the preloaded
// models, reporting readiness as it goes.
func (d *daemon) startModels(ctx context.Context) error {
	if err := d.rt.Start(); err != nil {
		d.readiness.Set("onnxruntime", false, err.Error())
		return fmt.Errorf("start ONNX Runtime: %w", err)
	}
	d.readiness.Set("onnxruntime", true, fmt.Sprintf("%s (%s)", d.rt.Version(), d.rt.LibraryPath()))
	if err := d.models.Start(ctx); err != nil {
		return fmt.Errorf("load models: %w", err)
	}
	if err := d.startASR(ctx); err != nil {
		return err
	}
	if err := d.startNLU(ctx); err != nil {
		return err
	}
	return d.startDialogue(ctx)
}

// startASR creates the speech engine and loads and warms its model when
// one is installed; without one, speech requests answer 503
// asr_model_missing until a model is installed (no restart needed).
func (d *daemon) startASR(ctx context.Context) error {
	e := asr.New(d.cfg.ASR, d.models, d.log.With("component", "asr"))
	e.OnModel(func(name, version string) { d.readiness.Set("asr", true, name+" "+version) })
	d.readiness.Set("asr", false, "loading")
	name, version, err := e.Warm(ctx)
	switch {
	case errors.Is(err, asr.ErrNoModel):
		d.readiness.Set("asr", true, "no speech model installed: "+err.Error())
		d.log.Info("no speech recognition model installed; /v1/asr answers 503 until one is", "install", "zhiyin models install DIR")
	case err != nil:
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// A broken model must not keep text chat down: report it.
		d.readiness.Set("asr", true, "speech model failed to load: "+err.Error())
		d.log.Error("speech recognition model failed to load", attrErr, err)
	default:
		d.readiness.Set("asr", true, fmt.Sprintf("%s %s", name, version))
		d.log.Info("speech recognition model loaded", "model", name, "version", version)
	}
	d.asr.Store(e)
	return nil
}

// startNLU loads the NLU model folder. A folder named in the configuration
// must load; without one, and no model at the default place, the daemon
// serves without NLU (the parse routes answer 503 saying how to train one).
func (d *daemon) startNLU(ctx context.Context) error {
	d.readiness.Set("nlu", false, "loading")
	p, err := loadNLU(ctx, &d.cfg.Config, d.rt, d.log)
	if err != nil {
		d.readiness.Set("nlu", false, err.Error())
		return err
	}
	if old := d.nlu.Swap(p); old != nil {
		_ = old.Close()
	}
	m := p.Manifest()
	d.readiness.Set("nlu", true, fmt.Sprintf("%s: %d intents, %d entity types", p.Dir(), len(m.Intents), len(m.EntityTypes)))
	d.log.Info("NLU model loaded", "dir", p.Dir(), "intents", len(m.Intents), "entity_types", len(m.EntityTypes), "data_hash", m.DataHash)
	return nil
}

// loadNLU loads the configured NLU model folder; with none configured and
// none trained at the default place, the embedded demo model.
func loadNLU(ctx context.Context, cfg *Config, rt *inference.Runtime, log *slog.Logger) (*nlu.Parser, error) {
	nc := cfg.NLU
	dir := nc.ModelDir(cfg.DataDir)
	if _, err := os.Stat(filepath.Join(dir, nlu.ManifestName)); err != nil && nc.Model == "" {
		// No model of the operator's own: the embedded demo's, which
		// matches the embedded domain.
		if dir, err = unpackBuiltinModel(cfg.DataDir); err != nil {
			return nil, err
		}
		log.Info("no NLU model trained here; using the built-in demo model", "dir", dir,
			"own_model", "zhiyin train --data DATA --out "+nc.ModelDir(cfg.DataDir))
	}
	opts := nc.Options()
	opts.Log = log
	if nc.Data != "" {
		data, err := nludata.Load(nc.Data)
		if err != nil {
			return nil, fmt.Errorf("nlu.data: %w", err)
		}
		opts.DataHash = data.Hash()
	}
	p, err := nlu.Load(ctx, rt, dir, opts)
	if err != nil {
		return nil, fmt.Errorf("load NLU model: %w", err)
	}
	return p, nil
}

// listener returns the socket-activated listener, if systemd passed one, or
// a new one on server.listen.
func (d *daemon) listener(cfg *loadedConfig) (net.Listener, string, error) {
	lns, err := systemd.Listeners()
	if err != nil {
		return nil, "", err
	}
	if len(lns) > 0 {
		for _, extra := range lns[1:] {
			d.log.Warn("ignoring extra socket-activated listener", attrListen, extra.Addr().String())
			extra.Close()
		}
		return lns[0], "socket activation", nil
	}
	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, "", fmt.Errorf("listen on %s: the address is in use (is zhiyin already running? `zhiyin doctor` shows what holds it; or change server.listen)", cfg.Server.Listen)
		}
		return nil, "", fmt.Errorf("listen on %s: %w", cfg.Server.Listen, err)
	}
	return ln, "server.listen", nil
}

// dynamic derives the reloadable HTTP settings. Loopback requests are let in
// without credentials only while the listener itself is on loopback.
func (d *daemon) dynamic(cfg *loadedConfig) httpserver.Dynamic {
	allow := cfg.Auth.AllowLoopback
	if allow {
		if ta, ok := d.addr.(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
			allow = false
		}
	}
	return httpserver.Dynamic{AllowLoopback: allow, Limits: cfg.Limits}
}

// selfCheck is the health check behind /healthz and the watchdog: the
// database writer answers and the database file is still the one opened.
func (d *daemon) selfCheck(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := d.db.Ping(ctx); err != nil {
		return fmt.Errorf("database writer not responding: %w", err)
	}
	st, err := os.Stat(d.dbPath)
	if err != nil || !os.SameFile(st, d.dbInfo) {
		return fmt.Errorf("database file %s was removed or replaced while in use: restart zhiyin (restore a backup with `zhiyin restore`)", d.dbPath)
	}
	return nil
}

// watchdogLoop runs the self-check and pings systemd's watchdog only while
// it passes, so that a wedged daemon is restarted.
func (d *daemon) watchdogLoop(ctx context.Context) {
	interval := 10 * time.Second
	wd, enabled := systemd.WatchdogInterval()
	if enabled {
		interval = wd / 2
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	healthy := true
	for {
		err := d.selfCheck(ctx)
		if ctx.Err() != nil {
			return
		}
		d.liveness.Set(err)
		switch {
		case err == nil && enabled:
			d.notify.Notify(systemd.Watchdog)
		case err != nil && healthy:
			d.log.Error("health check failing; watchdog pings stopped", attrErr, err)
			d.notify.Notify(systemd.Status("unhealthy: %v", err))
		}
		if err == nil && !healthy {
			d.log.Info("health check passing again")
		}
		healthy = err == nil
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// flushLoop records API key use every 30 s.
func (d *daemon) flushLoop(ctx context.Context) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := d.keys.FlushUsage(ctx); err != nil && ctx.Err() == nil {
				d.log.Warn("record API key use", attrErr, err)
			}
		}
	}
}

// reload re-reads the configuration on SIGHUP. An invalid file is rejected
// and the running configuration stays; settings that need a restart are
// named in the log and keep their running values.
func (d *daemon) reload() {
	d.notify.Notify(systemd.Reloading, systemd.MonotonicNow(), systemd.Status("reloading configuration"))
	d.mu.Lock()
	defer d.mu.Unlock()
	old := d.cfg
	lc, err := loadConfigWith(d.configFlag, d.ov)
	if err == nil && lc.Path != old.Path {
		err = fmt.Errorf("the configuration file changed from %q to %q; restart zhiyin to switch files", old.Source, lc.Source)
	}
	var jwtv *auth.JWTVerifier
	if err == nil {
		jwtv, err = auth.NewJWTVerifier(lc.Auth.JWT)
	}
	if err != nil {
		d.log.Error("configuration reload rejected; the running configuration stays", attrErr, err)
		d.notify.Notify(systemd.Ready, systemd.Status("ready; last reload rejected: %s", firstLine(err.Error())))
		return
	}
	for _, name := range restartNeeded(&old.Config, &lc.Config) {
		d.log.Warn("setting changed but needs a restart; keeping the running value", "setting", name)
	}
	// Apply what reloads; keep the rest as running.
	applied := *old
	applied.Log.Level = lc.Log.Level
	applied.Auth = lc.Auth
	applied.Limits = lc.Limits
	applied.Dialogue.Domain = lc.Dialogue.Domain
	lvl, _ := logging.ParseLevel(lc.Log.Level)
	d.level.Set(lvl)
	d.authn.SetJWT(jwtv)
	d.srv.Apply(d.dynamic(&applied))
	d.cfg = &applied
	d.log.Info("configuration reloaded", "config", lc.Source)
	d.notify.Notify(systemd.Ready, systemd.Status("ready; configuration reloaded at %s", time.Now().Format(time.RFC3339)))
}

// restartNeeded names the sections whose changes a reload cannot apply.
func restartNeeded(old, new *Config) []string {
	var out []string
	if old.DataDir != new.DataDir {
		out = append(out, "data_dir")
	}
	if old.Log.Format != new.Log.Format {
		out = append(out, "log.format")
	}
	for _, sec := range []struct {
		name     string
		old, new any
	}{{"server", old.Server, new.Server}, {"storage", old.Storage, new.Storage}, {"inference", old.Inference, new.Inference}, {"nlu", old.NLU, new.NLU}, {"dialogue (except dialogue.domain)", dialogueRestart(old.Dialogue), dialogueRestart(new.Dialogue)}, {"channels", old.Channels, new.Channels}, {"tts", old.TTS, new.TTS}, {"voice", old.Voice, new.Voice}} {
		if !reflect.DeepEqual(sec.old, sec.new) {
			out = append(out, sec.name)
		}
	}
	return out
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// migrationSets lists every component's schema.
func migrationSets() []store.MigrationSet {
	return []store.MigrationSet{
		{Component: auth.MigrationComponent, FS: auth.Migrations()},
		{Component: audit.MigrationComponent, FS: audit.Migrations()},
		{Component: session.MigrationComponent, FS: session.Migrations()},
		{Component: orders.MigrationComponent, FS: orders.Migrations()},
		{Component: channels.MigrationComponent, FS: channels.Migrations()},
		{Component: voice.MigrationComponent, FS: voice.Migrations()},
	}
}

// mapError turns component errors into HTTP answers.
func mapError(err error) *httpserver.Error {
	switch {
	case errors.Is(err, store.ErrBusy):
		return &httpserver.Error{Status: 503, Code: httpserver.CodeUnavailable, Message: "the database is busy; retry shortly", RetryAfter: time.Second}
	case asrError(err) != nil:
		return asrError(err)
	case errors.Is(err, store.ErrFull):
		return &httpserver.Error{Status: 503, Code: httpserver.CodeUnavailable, Message: "the database disk is full; the operator must free space", RetryAfter: 30 * time.Second}
	}
	return nil
}

// dialogueRestart is the dialogue section without what SIGHUP reloads.
func dialogueRestart(c dialogue.Config) dialogue.Config {
	c.Domain = ""
	return c
}
