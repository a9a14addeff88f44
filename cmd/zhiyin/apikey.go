package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zhiyin/zhiyin/internal/audit"
	"github.com/zhiyin/zhiyin/internal/auth"
	"github.com/zhiyin/zhiyin/internal/store"
)

func runAPIKey(ctx context.Context, cio cmdIO, args []string) error {
	if len(args) == 0 {
		return usagef("name a subcommand: create, list or revoke")
	}
	sub, args := args[0], args[1:]
	fs := newFlagSet("apikey", cio.stderr)
	configPath := fs.String("config", "", "configuration file (default: $ZHIYIN_CONFIG, else "+defaultConfigPath+" if it exists, else built-in)")
	var name, role *string
	var all, asJSON *bool
	switch sub {
	case "create":
		name = fs.String("name", "", "a name saying who uses the key (required, unique among active keys)")
		role = fs.String("role", "client", "admin or client")
	case "list":
		all = fs.Bool("all", false, "include revoked keys")
		asJSON = fs.Bool("json", false, "print JSON")
	case "revoke":
	case "-h", "--help", "help":
		fmt.Fprintln(cio.stdout, "usage:\n  zhiyin apikey create --name NAME [--role admin|client]\n  zhiyin apikey list [--all] [--json]\n  zhiyin apikey revoke ID|NAME")
		return nil
	default:
		return usagef("unknown subcommand %q: use create, list or revoke", sub)
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	// Check the command line before touching the database.
	var newRole auth.Role
	switch sub {
	case "create":
		if len(pos) > 0 {
			return usagef("unexpected argument %q (use --name)", pos[0])
		}
		if *name == "" {
			return usagef("--name NAME is required (say who uses the key)")
		}
		if newRole, err = auth.ParseRole(*role); err != nil {
			return usagef("--role: %v", err)
		}
	case "list":
		if len(pos) > 0 {
			return usagef("unexpected argument %q", pos[0])
		}
	case "revoke":
		if len(pos) != 1 {
			return usagef("name exactly one key id or name to revoke")
		}
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
	ks := auth.NewKeyStore(db)

	switch sub {
	case "create":
		plain, k, err := ks.Create(ctx, *name, newRole)
		if err != nil {
			return err
		}
		fmt.Fprintf(cio.stdout, "%s\n", plain)
		fmt.Fprintf(cio.stderr, "created API key %s (%s, role %s); it is shown only once: store it now.\n", k.ID, k.Name, k.Role)
		return audit.Record(ctx, db, audit.Entry{Actor: cliActor(), Action: "apikey.create", Target: k.ID, Detail: map[string]string{"name": k.Name, "role": string(k.Role)}})
	case "list":
		keys, err := ks.List(ctx, *all)
		if err != nil {
			return err
		}
		if *asJSON {
			if keys == nil {
				keys = []auth.Key{}
			}
			enc := json.NewEncoder(cio.stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(keys)
		}
		printKeys(cio.stdout, keys)
		return nil
	default: // revoke
		k, err := ks.Revoke(ctx, pos[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(cio.stdout, "revoked API key %s (%s); requests with it are refused from now on\n", k.ID, k.Name)
		return audit.Record(ctx, db, audit.Entry{Actor: cliActor(), Action: "apikey.revoke", Target: k.ID})
	}
}

func printKeys(w io.Writer, keys []auth.Key) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tROLE\tCREATED\tLAST USED\tREVOKED")
	ts := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.Local().Format("2006-01-02 15:04")
	}
	for _, k := range keys {
		created := k.CreatedAt
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Role, ts(&created), ts(k.LastUsed), ts(k.RevokedAt))
	}
	tw.Flush()
}

// openForCLI opens the database beside a possibly running daemon (WAL lets
// both in). When root creates the database file, it is handed to the owner
// of the data directory so that the service (user zhiyin) can still write.
func openForCLI(ctx context.Context, lc *loadedConfig) (*store.DB, error) {
	_, statErr := os.Stat(lc.Storage.Path)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := store.Open(ctx, lc.Storage, quiet, prometheus.NewRegistry(), store.Options{}, migrationSets()...)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if os.IsNotExist(statErr) && os.Geteuid() == 0 {
		if st, err := os.Stat(filepath.Dir(lc.Storage.Path)); err == nil {
			if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Uid != 0 {
				for _, p := range []string{lc.Storage.Path, lc.Storage.Path + "-wal", lc.Storage.Path + "-shm"} {
					_ = os.Lchown(p, int(sys.Uid), int(sys.Gid))
				}
			}
		}
	}
	return db, nil
}
