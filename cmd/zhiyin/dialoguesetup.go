package main

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/zhiyin/zhiyin/channels/voice"
	"github.com/zhiyin/zhiyin/dialogue"
	"github.com/zhiyin/zhiyin/dialogue/domain"
	"github.com/zhiyin/zhiyin/dialogue/domain/builtin"
	"github.com/zhiyin/zhiyin/dialogue/lanes"
	"github.com/zhiyin/zhiyin/dialogue/nlu"
	"github.com/zhiyin/zhiyin/dialogue/session"
	"github.com/zhiyin/zhiyin/dialogue/skill"
	"github.com/zhiyin/zhiyin/dialogue/skill/orders"
	"github.com/zhiyin/zhiyin/internal/audit"
	"github.com/zhiyin/zhiyin/internal/store"
)

// loadDomain reads the configured domain folder, or the embedded demo.
func loadDomain(cfg dialogue.Config) (*domain.Domain, error) {
	if cfg.Domain == "" {
		return domain.LoadFS(builtin.Domain(), builtin.Source)
	}
	return domain.Load(cfg.Domain)
}

// skillRegistry registers the Go skills and the configured action webhooks.
func skillRegistry(cfg dialogue.Config, db *store.DB) (*skill.Registry, error) {
	r := skill.NewRegistry()
	if err := r.Register(orders.New(db)); err != nil {
		return nil, err
	}
	for _, a := range cfg.Actions {
		w, err := skill.NewWebhook(a, nil)
		if err != nil {
			return nil, fmt.Errorf("dialogue.actions %s: %w", a.Name, err)
		}
		if err := r.Register(w); err != nil {
			return nil, fmt.Errorf("dialogue.actions %s: %w", a.Name, err)
		}
	}
	return r, nil
}

// openSessions opens the key file (creating it on first use) and the
// session store.
func openSessions(cfg *Config, db *store.DB, create bool) (*session.Keyring, *session.Store, error) {
	keys, err := session.LoadKeyring(cfg.Dialogue.KeyFile(cfg.DataDir), create)
	if err != nil {
		return nil, nil, fmt.Errorf("session keys: %w", err)
	}
	return keys, session.New(db, keys, session.Options{HistoryLimit: cfg.Dialogue.HistoryLimit}), nil
}

// builtinNLUDir is where the embedded default NLU model is unpacked.
func builtinNLUDir(dataDir string) string { return filepath.Join(dataDir, "builtin", "nlu") }

// unpackBuiltinModel writes the embedded NLU model under the data folder
// (files already there with the same bytes are left alone) and returns the
// folder.
func unpackBuiltinModel(dataDir string) (string, error) {
	dir := builtinNLUDir(dataDir)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", fmt.Errorf("unpack the built-in NLU model: %w", err)
	}
	err := fs.WalkDir(builtin.Model(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		want, err := fs.ReadFile(builtin.Model(), path)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(path))
		if have, err := os.ReadFile(dst); err == nil && bytes.Equal(have, want) {
			return nil
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
			return err
		}
		tmp := dst + ".tmp"
		if err := os.WriteFile(tmp, want, 0o640); err != nil {
			return err
		}
		return os.Rename(tmp, dst)
	})
	if err != nil {
		return "", fmt.Errorf("unpack the built-in NLU model into %s: %w", dir, err)
	}
	return dir, nil
}

// checkDomainModel warns about intents the domain and the model do not
// share: a domain intent the model never predicts, a model intent the
// domain does not answer (it is treated as a fallback).
func checkDomainModel(log *slog.Logger, dom *domain.Domain, m *nlu.Manifest) {
	names := dom.IntentNames()
	for _, in := range names {
		if !slices.Contains(m.Intents, in) {
			log.Warn("domain intent unknown to the NLU model: it is never recognised; retrain the model on the domain's data", "intent", in, "domain", dom.Source)
		}
	}
	for _, in := range m.Intents {
		if !slices.Contains(names, in) {
			log.Warn("NLU intent not in the domain: it gets the fallback answer", "intent", in, "domain", dom.Source)
		}
	}
}

// startDialogue builds the engine once NLU is loaded.
func (d *daemon) startDialogue(ctx context.Context) error {
	cfg := d.cfg
	d.readiness.Set("dialogue", false, "loading domain")
	dom, err := loadDomain(cfg.Dialogue)
	if err != nil {
		d.readiness.Set("dialogue", false, err.Error())
		return fmt.Errorf("load dialogue domain: %w", err)
	}
	if p := d.nlu.Load(); p != nil {
		checkDomainModel(d.log, dom, p.Manifest())
	}
	keys := d.keyring
	st := session.New(d.db, keys, session.Options{HistoryLimit: cfg.Dialogue.HistoryLimit})
	skills, err := skillRegistry(cfg.Dialogue, d.db)
	if err != nil {
		return err
	}
	pool, err := lanes.NewPool(cfg.Dialogue.Lanes, d.reg)
	if err != nil {
		return err
	}
	e, err := dialogue.New(cfg.Dialogue, dom, dialogue.Deps{
		DB: d.db, Store: st, Skills: skills, Pool: pool, Log: d.log, Metrics: d.reg,
		NLU: func() dialogue.Parser {
			if p := d.nlu.Load(); p != nil {
				return p
			}
			return nil
		},
	})
	if err != nil {
		pool.Close()
		d.readiness.Set("dialogue", false, err.Error())
		return err
	}
	d.sessions, d.lanePool = st, pool
	d.engine.Store(e)
	d.readiness.Set("dialogue", true, fmt.Sprintf("domain %s: %d intents, %d forms, %d FAQ entries", dom.Source, len(dom.Intents), len(dom.Forms), len(dom.FAQ)))
	d.log.Info("dialogue engine ready", "domain", dom.Source, "domain_hash", dom.Hash, "key_id", keys.ActiveID())
	return nil
}

// reloadDomain re-reads the domain on SIGHUP; a broken one is refused and
// the running domain stays.
func (d *daemon) reloadDomain(ctx context.Context) {
	e := d.engine.Load()
	if e == nil {
		return
	}
	if err := d.keyring.Reload(); err != nil {
		d.log.Error("reload session keys; the running keys stay", attrErr, err)
	}
	dom, err := loadDomain(d.cfg.Dialogue)
	if err == nil {
		err = e.SetDomain(dom)
	}
	if err != nil {
		d.log.Error("domain reload rejected; the running domain stays", attrErr, err)
		return
	}
	if p := d.nlu.Load(); p != nil {
		checkDomainModel(d.log, dom, p.Manifest())
	}
	d.audit(ctx, audit.Entry{Actor: "signal:SIGHUP", Action: "domain.reload", Target: dom.Source, Detail: map[string]string{"hash": dom.Hash}})
	d.log.Info("domain reloaded", "domain", dom.Source, "domain_hash", dom.Hash)
}

// audit records an admin action; a failure is logged.
func (d *daemon) audit(ctx context.Context, e audit.Entry) {
	if err := audit.Record(ctx, d.db, e); err != nil {
		d.log.Warn("audit log write failed", "action", e.Action, attrErr, err)
	}
}

// retentionLoop deletes sessions older than the retention period, and
// call records and recordings with them.
func (d *daemon) retentionLoop(ctx context.Context) {
	if d.sessions == nil {
		return
	}
	days := d.cfg.Dialogue.Privacy.RetentionDays
	var wg sync.WaitGroup
	if days > 0 {
		wg.Go(func() { d.callRetention(ctx, days) })
	}
	d.sessions.RunRetention(ctx, days, time.Hour, d.log)
	wg.Wait()
}

// callRetention prunes call records and recordings like transcripts:
// hourly, those older than days.
func (d *daemon) callRetention(ctx context.Context, days int) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		before := time.Now().Add(-time.Duration(days) * 24 * time.Hour)
		if n, err := voice.Prune(ctx, d.db, recordingsDir(d.cfg.DataDir), before); err != nil {
			d.log.Warn("prune call records", attrErr, err)
		} else if n > 0 {
			d.log.Info("call records past retention deleted", "calls", n, "retention_days", days)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
