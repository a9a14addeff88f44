package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zhiyin/zhiyin/dialogue"
	"github.com/zhiyin/zhiyin/dialogue/lanes"
	"github.com/zhiyin/zhiyin/dialogue/nlu"
	"github.com/zhiyin/zhiyin/dialogue/session"
	"github.com/zhiyin/zhiyin/inference"
	"github.com/zhiyin/zhiyin/internal/store"
)

// runChat is an interactive chat in the terminal against the engine, in
// this process: the configured (or built-in) domain and NLU model, the
// configured database.
func runChat(ctx context.Context, cio cmdIO, args []string) error {
	fs := newFlagSet("chat", cio.stderr)
	configPath := fs.String("config", "", "configuration file")
	debug := fs.Bool("debug", false, "show intent, entities, slots and the dialogue stack after each answer")
	userID := fs.String("user", "terminal", "the user id to chat as (its session continues across runs)")
	if pos, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usagef("unexpected argument %q (type messages after it starts)", pos[0])
	}
	lc, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(cio.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	db, err := openForCLI(ctx, lc)
	if err != nil {
		return err
	}
	defer db.Close()
	_, st, err := openSessions(&lc.Config, db, true)
	if err != nil {
		return err
	}
	rt := inference.NewRuntime(lc.Inference, log)
	defer rt.Close()
	if err := rt.Start(); err != nil {
		return fmt.Errorf("start ONNX Runtime: %w (zhiyin doctor says why)", err)
	}
	e, _, closeEngine, err := localDialogue(ctx, lc, db, st, rt, log)
	if err != nil {
		return err
	}
	defer closeEngine()
	dom := e.Domain()
	fmt.Fprintf(cio.stdout, "zhiyin chat — domain %s. Type a message; Ctrl-D quits.\n", dom.Source)
	return chatLoop(ctx, e, cio.stdin, cio.stdout, *userID, *debug)
}

func chatLoop(ctx context.Context, e *dialogue.Engine, in io.Reader, out io.Writer, userID string, debug bool) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for {
		fmt.Fprint(out, "> ")
		if !sc.Scan() {
			fmt.Fprintln(out)
			return sc.Err()
		}
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		res, err := e.Handle(ctx, dialogue.Message{Channel: "terminal", User: userID, Client: "cli", Text: text})
		if err != nil {
			fmt.Fprintf(out, "! %v\n", err)
			continue
		}
		for _, r := range res.Replies {
			fmt.Fprintf(out, "知音: %s\n", r.Text)
		}
		if res.Handoff && len(res.Replies) == 0 {
			fmt.Fprintln(out, "(a human agent has this conversation; `zhiyin handoff release "+res.SessionID+"` gives it back)")
		}
		if debug {
			ents, _ := json.Marshal(res.Entities)
			slots, _ := json.Marshal(res.Slots)
			fmt.Fprintf(out, "  [intent %s %.2f | lane %s | handoff %v | session %s]\n  [entities %s]\n  [slots %s | stack %v]\n",
				res.Intent.Name, res.Intent.Confidence, res.Lane, res.Handoff, res.SessionID, ents, slots, res.Stack)
		}
	}
}

// localDialogue builds a dialogue engine in this process (for `zhiyin chat`
// and `zhiyin voice`): the configured domain and NLU model, the given
// database and sessions. close releases it.
func localDialogue(ctx context.Context, lc *loadedConfig, db *store.DB, st *session.Store, rt *inference.Runtime, log *slog.Logger) (*dialogue.Engine, *nlu.Parser, func(), error) {
	p, err := loadNLU(ctx, &lc.Config, rt, log)
	if err != nil {
		return nil, nil, nil, err
	}
	dom, err := loadDomain(lc.Dialogue)
	if err != nil {
		p.Close()
		return nil, nil, nil, err
	}
	checkDomainModel(log, dom, p.Manifest())
	skills, err := skillRegistry(lc.Dialogue, db)
	if err != nil {
		p.Close()
		return nil, nil, nil, err
	}
	pool, err := lanes.NewPool(lanes.DefaultConfig(), prometheus.NewRegistry())
	if err != nil {
		p.Close()
		return nil, nil, nil, err
	}
	e, err := dialogue.New(lc.Dialogue, dom, dialogue.Deps{DB: db, Store: st, Skills: skills, Pool: pool, Log: log,
		NLU: func() dialogue.Parser { return p }})
	if err != nil {
		pool.Close()
		p.Close()
		return nil, nil, nil, err
	}
	return e, p, func() { pool.Close(); _ = p.Close() }, nil
}
