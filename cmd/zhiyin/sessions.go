package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"slices"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/dialogue"
	"github.com/zhiyin/zhiyin/dialogue/session"
	"github.com/zhiyin/zhiyin/internal/audit"
	"github.com/zhiyin/zhiyin/internal/httpserver"
	"github.com/zhiyin/zhiyin/internal/store"
)

// cliActor names the person running a CLI command in the audit log.
func cliActor() string {
	if u, err := user.Current(); err == nil {
		return "cli:" + u.Username
	}
	return fmt.Sprintf("cli:uid%d", os.Getuid())
}

// cliSessions opens the database and the session store for a CLI command.
func cliSessions(ctx context.Context, configPath string, createKeys bool) (*loadedConfig, *store.DB, *session.Keyring, *session.Store, error) {
	lc, err := loadConfig(configPath)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	db, err := openForCLI(ctx, lc)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	keys, st, err := openSessions(&lc.Config, db, createKeys)
	if err != nil {
		db.Close()
		return nil, nil, nil, nil, err
	}
	return lc, db, keys, st, nil
}

func runSessions(ctx context.Context, cio cmdIO, args []string) error {
	if len(args) == 0 {
		return usagef("name a subcommand: export, delete or show")
	}
	sub, args := args[0], args[1:]
	fs := newFlagSet("sessions", cio.stderr)
	configPath := fs.String("config", "", "configuration file")
	userID := fs.String("user", "", "the user id (as the channel knows the customer)")
	out := fs.String("out", "", "export: write the JSON here instead of stdout")
	switch sub {
	case "export", "delete", "show":
	case "-h", "--help", "help":
		fmt.Fprintln(cio.stdout, "usage:\n  zhiyin sessions export --user ID [--out FILE]\n  zhiyin sessions delete --user ID\n  zhiyin sessions show SESSION_ID")
		return nil
	default:
		return usagef("unknown subcommand %q: use export, delete or show", sub)
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if sub == "show" {
		if len(pos) != 1 {
			return usagef("name exactly one session id")
		}
	} else if *userID == "" || len(pos) > 0 {
		return usagef("%s needs --user ID and no other argument", sub)
	}
	_, db, _, st, err := cliSessions(ctx, *configPath, false)
	if err != nil {
		return err
	}
	defer db.Close()
	switch sub {
	case "show":
		v, err := dialogue.View(ctx, st, pos[0], 1000)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(cio.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "export":
		w := cio.stdout
		if *out != "" {
			f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return fmt.Errorf("export: %w (choose a new file name)", err)
			}
			defer f.Close()
			w = f
		}
		n, err := st.ExportUser(ctx, *userID, w)
		if err != nil {
			return err
		}
		if err := audit.Record(ctx, db, audit.Entry{Actor: cliActor(), Action: "sessions.export", Target: *userID, Detail: map[string]string{"sessions": fmt.Sprint(n)}}); err != nil {
			return err
		}
		fmt.Fprintf(cio.stderr, "exported %d sessions of user %s\n", n, *userID)
		return nil
	default: // delete
		n, err := st.DeleteUser(ctx, *userID)
		if err != nil {
			return err
		}
		if err := audit.Record(ctx, db, audit.Entry{Actor: cliActor(), Action: "sessions.delete", Target: *userID, Detail: map[string]string{"sessions": fmt.Sprint(n)}}); err != nil {
			return err
		}
		fmt.Fprintf(cio.stdout, "deleted %d sessions of user %s\n", n, *userID)
		return nil
	}
}

func runKeys(ctx context.Context, cio cmdIO, args []string) error {
	if len(args) == 0 || args[0] != "rotate" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprintln(cio.stdout, "usage:\n  zhiyin keys rotate [--retire]")
			return nil
		}
		return usagef("name a subcommand: rotate")
	}
	fs := newFlagSet("keys", cio.stderr)
	configPath := fs.String("config", "", "configuration file")
	retire := fs.Bool("retire", false, "after re-encrypting, remove the old keys from the key file")
	if pos, err := parseFlags(fs, args[1:]); err != nil {
		return err
	} else if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	lc, db, keys, st, err := cliSessions(ctx, *configPath, true)
	if err != nil {
		return err
	}
	defer db.Close()
	path := lc.Dialogue.KeyFile(lc.DataDir)
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	id, err := session.AddKey(path)
	if err != nil {
		return err
	}
	keepOwner(path, fi)
	if err := keys.Reload(); err != nil {
		return err
	}
	fmt.Fprintf(cio.stdout, "new key %s is active; re-encrypting stored sessions…\n", id)
	// A running daemon checks the key file about once a second; after
	// this pause it seals with the new key, so the passes below converge.
	time.Sleep(2 * time.Second)
	// A running daemon picks the new key up when it meets it or on
	// SIGHUP; rows it writes meanwhile with the old key are caught by
	// the next pass.
	total := 0
	for pass := 0; pass < 10; pass++ {
		n, err := reencryptAll(ctx, db, keys, st)
		if err != nil {
			return err
		}
		total += n
		inUse, err := keyIDsInUse(ctx, db, st)
		if err != nil {
			return err
		}
		if len(inUse) == 0 || (len(inUse) == 1 && inUse[0] == id) {
			break
		}
		time.Sleep(time.Second)
	}
	fmt.Fprintf(cio.stdout, "re-encrypted %d rows with key %s\n", total, id)
	detail := map[string]string{"key_id": id, "rows": fmt.Sprint(total)}
	if *retire {
		// One more pass right before retiring: nothing may be left
		// sealed with a key that is about to go.
		if _, err := reencryptAll(ctx, db, keys, st); err != nil {
			return err
		}
		inUse, err := keyIDsInUse(ctx, db, st)
		if err != nil {
			return err
		}
		removed, err := session.RetireKeys(path, func(k string) bool { return k == id || slices.Contains(inUse, k) })
		if err != nil {
			return err
		}
		keepOwner(path, fi)
		fmt.Fprintf(cio.stdout, "retired keys: %v\n", removed)
		detail["retired"] = fmt.Sprint(removed)
	}
	return audit.Record(ctx, db, audit.Entry{Actor: cliActor(), Action: "keys.rotate", Target: path, Detail: detail})
}

// reencryptAll re-seals sessions and the channels' inbox and outbox with
// the active key.
func reencryptAll(ctx context.Context, db *store.DB, keys *session.Keyring, st *session.Store) (int, error) {
	n, err := st.Reencrypt(ctx)
	if err != nil {
		return n, err
	}
	m, err := channels.Reencrypt(ctx, db, keys)
	return n + m, err
}

// keyIDsInUse unions the keys sessions and the channels' rows are sealed
// with.
func keyIDsInUse(ctx context.Context, db *store.DB, st *session.Store) ([]string, error) {
	a, err := st.KeyIDsInUse(ctx)
	if err != nil {
		return nil, err
	}
	b, err := channels.KeyIDsInUse(ctx, db.Read())
	if err != nil {
		return nil, err
	}
	out := append(a, b...)
	slices.Sort(out)
	return slices.Compact(out), nil
}

// keepOwner gives a rewritten file the owner the old one had (root running
// the CLI must not take the key file away from the zhiyin user).
func keepOwner(path string, old os.FileInfo) {
	if sys, ok := old.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 {
		_ = os.Lchown(path, int(sys.Uid), int(sys.Gid))
	}
}

func runHandoff(ctx context.Context, cio cmdIO, args []string) error {
	if len(args) == 0 {
		return usagef("name a subcommand: list, take or release")
	}
	sub, args := args[0], args[1:]
	fs := newFlagSet("handoff", cio.stderr)
	configPath := fs.String("config", "", "configuration file")
	agent := fs.String("agent", "", "the agent's name (default: your user name)")
	asJSON := fs.Bool("json", false, "list: print JSON")
	switch sub {
	case "list", "take", "release":
	case "-h", "--help", "help":
		fmt.Fprintln(cio.stdout, "usage:\n  zhiyin handoff list [--json]\n  zhiyin handoff take SESSION_ID [--agent NAME]\n  zhiyin handoff release SESSION_ID [--agent NAME]")
		return nil
	default:
		return usagef("unknown subcommand %q: use list, take or release", sub)
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if (sub == "list") != (len(pos) == 0) || len(pos) > 1 {
		return usagef("list takes no argument; take and release take one session id")
	}
	lc, db, _, st, err := cliSessions(ctx, *configPath, false)
	if err != nil {
		return err
	}
	defer db.Close()
	if sub == "list" {
		hs, err := dialogue.Handoffs(ctx, st, "", 1000)
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(cio.stdout).Encode(hs)
		}
		tw := tabwriter.NewWriter(cio.stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SESSION\tCHANNEL\tUSER\tSTATUS\tREASON\tSINCE")
		for _, h := range hs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", h.SessionID, h.Channel, h.User, h.Status, h.Reason, h.CreatedAt.Format(time.DateTime))
		}
		return tw.Flush()
	}
	who := *agent
	if who == "" {
		who = cliActor()
	}
	released := ""
	if sub == dialogue.ActionRelease {
		if dom, err := loadDomain(lc.Dialogue); err == nil {
			if r := dom.Responses[dom.Handoff.Released]; r != nil {
				released, _ = r.Render("", nil, func(int) int { return 0 })
			}
		}
	}
	err = dialogue.ChangeHandoff(ctx, db, st, pos[0], sub, who, released, time.Now())
	if errors.Is(err, session.ErrNotFound) {
		return fmt.Errorf("no session %s", pos[0])
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(cio.stdout, "%s: %s by %s\n", pos[0], sub, who)
	return audit.Record(ctx, db, audit.Entry{Actor: cliActor(), Action: "handoff." + sub, Target: pos[0], Detail: map[string]string{"agent": who}})
}

func runAudit(ctx context.Context, cio cmdIO, args []string) error {
	fs := newFlagSet("audit", cio.stderr)
	configPath := fs.String("config", "", "configuration file")
	since := fs.Duration("since", 30*24*time.Hour, "how far back")
	limit := fs.Int("limit", 100, "most entries")
	if pos, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
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
	es, err := audit.List(ctx, db, time.Now().Add(-*since), *limit)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(cio.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AT\tACTOR\tACTION\tTARGET\tDETAIL")
	for _, e := range es {
		d, _ := json.Marshal(e.Detail)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.At.Format(time.RFC3339), e.Actor, e.Action, e.Target, d)
	}
	return tw.Flush()
}

// mountSessionAdmin adds the data-subject routes under /v1/admin/sessions:
// GET /export?user=ID and DELETE /?user=ID, and GET /v1/admin/audit.
func mountSessionAdmin(r, auditR fiber.Router, d *daemon) {
	userParam := func(c *fiber.Ctx) (string, error) {
		u := c.Query("user")
		if u == "" {
			return "", httpserver.Errorf(400, httpserver.CodeBadRequest, "name the user: ?user=ID")
		}
		if d.sessions == nil {
			return "", errNotReady
		}
		return u, nil
	}
	r.Get("/export", func(c *fiber.Ctx) error {
		u, err := userParam(c)
		if err != nil {
			return err
		}
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
		n, err := d.sessions.ExportUser(c.UserContext(), u, c.Response().BodyWriter())
		if err != nil {
			return err
		}
		p, _ := httpserver.PrincipalFrom(c)
		d.audit(c.UserContext(), audit.Entry{Actor: actorOf(p), Action: "sessions.export", Target: u, Detail: map[string]string{"sessions": fmt.Sprint(n)}})
		return nil
	})
	r.Delete("", func(c *fiber.Ctx) error {
		u, err := userParam(c)
		if err != nil {
			return err
		}
		n, err := d.sessions.DeleteUser(c.UserContext(), u)
		if err != nil {
			return err
		}
		if e := d.engine.Load(); e != nil {
			e.Forget()
		}
		p, _ := httpserver.PrincipalFrom(c)
		d.audit(c.UserContext(), audit.Entry{Actor: actorOf(p), Action: "sessions.delete", Target: u, Detail: map[string]string{"sessions": fmt.Sprint(n)}})
		return c.JSON(fiber.Map{"user_id": u, "deleted_sessions": n})
	})
	auditR.Get("", func(c *fiber.Ctx) error {
		limit, err := queryInt(c, "limit", 100, 10_000)
		if err != nil {
			return err
		}
		es, err := audit.List(c.UserContext(), d.db, time.Now().Add(-365*24*time.Hour), limit)
		if err != nil {
			return err
		}
		return c.JSON(fiber.Map{"entries": es})
	})
}
