package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/internal/audit"
)

// runOutbox lists, retries and drops channel replies: the operator's view of
// the dead letters.
func runOutbox(ctx context.Context, cio cmdIO, args []string) error {
	if len(args) == 0 {
		return usagef("name a subcommand: list, retry or drop")
	}
	sub, args := args[0], args[1:]
	fs := newFlagSet("outbox", cio.stderr)
	configPath := fs.String("config", "", "configuration file")
	state := fs.String("state", "", "list: queued, sending, sent, dead, retried or dropped (default: queued, sending and dead)")
	channel := fs.String("channel", "", "list: only this channel")
	limit := fs.Int("limit", 100, "list: at most this many rows, newest first")
	asJSON := fs.Bool("json", false, "list: print JSON")
	switch sub {
	case "list", "retry", "drop":
	case "-h", "--help", "help":
		fmt.Fprintln(cio.stdout, "usage:\n  zhiyin outbox list [--state dead] [--channel NAME] [--limit N] [--json]\n  zhiyin outbox retry ID...   queue dead letters again (a running daemon sends them within seconds)\n  zhiyin outbox drop ID...    give up on queued or dead replies")
		return nil
	default:
		return usagef("unknown subcommand %q: use list, retry or drop", sub)
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if (sub == "list") != (len(pos) == 0) {
		return usagef("list takes no argument; retry and drop take outbox ids (from `zhiyin outbox list`)")
	}
	var ids []int64
	for _, p := range pos {
		id, err := strconv.ParseInt(p, 10, 64)
		if err != nil || id <= 0 {
			return usagef("%q is not an outbox id (a positive number from `zhiyin outbox list`)", p)
		}
		ids = append(ids, id)
	}
	_, db, keys, _, err := cliSessions(ctx, *configPath, false)
	if err != nil {
		return err
	}
	defer db.Close()
	if sub == "list" {
		rows, err := channels.ListOutbox(ctx, db.Read(), keys, channels.OutboxFilter{State: *state, Channel: *channel, Limit: *limit})
		if err != nil {
			return usagef("%v", err)
		}
		if *asJSON {
			if rows == nil {
				rows = []channels.OutboxRow{}
			}
			return json.NewEncoder(cio.stdout).Encode(rows)
		}
		tw := tabwriter.NewWriter(cio.stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tCHANNEL\tCONVERSATION\tSTATE\tATTEMPTS\tCREATED\tTEXT\tLAST ERROR")
		for _, r := range rows {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", r.ID, r.Channel, r.Conversation, r.State, r.Attempts,
				r.CreatedAt.Local().Format(time.DateTime), clip(r.Text, 30), clip(r.LastError, 60))
		}
		return tw.Flush()
	}
	var errs []error
	for _, id := range ids {
		var detail map[string]string
		if sub == "retry" {
			newID, err := channels.RetryOutbox(ctx, db, id, time.Now())
			if err != nil {
				errs = append(errs, err)
				continue
			}
			fmt.Fprintf(cio.stdout, "outbox %d queued again as %d\n", id, newID)
			detail = map[string]string{"new_id": fmt.Sprint(newID)}
		} else {
			if err := channels.DropOutbox(ctx, db, id); err != nil {
				errs = append(errs, err)
				continue
			}
			fmt.Fprintf(cio.stdout, "outbox %d dropped\n", id)
		}
		if err := audit.Record(ctx, db, audit.Entry{Actor: cliActor(), Action: "outbox." + sub, Target: fmt.Sprint(id), Detail: detail}); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		if errors.Is(err, channels.ErrNoSuchRow) {
			return fmt.Errorf("%w (retry applies to dead letters, drop to queued or dead rows: see `zhiyin outbox list`)", err)
		}
		return err
	}
	return nil
}

// clip shortens s to n runes for a table.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
