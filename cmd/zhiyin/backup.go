package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/zhiyin/zhiyin/internal/store"
)

func runBackup(ctx context.Context, cio cmdIO, args []string) error {
	fs := newFlagSet("backup", cio.stderr)
	configPath := fs.String("config", "", "configuration file (default: $ZHIYIN_CONFIG, else "+defaultConfigPath+" if it exists, else built-in)")
	out := fs.String("out", "", "file to write the backup to (required)")
	force := fs.Bool("force", false, "overwrite FILE if it exists")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q (use --out FILE)", pos[0])
	}
	if *out == "" {
		return usagef("--out FILE is required")
	}
	lc, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	if _, err := os.Stat(lc.Storage.Path); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no database at %s yet: nothing to back up (is data_dir right?)", lc.Storage.Path)
	}
	var opts []store.BackupOption
	if *force {
		opts = append(opts, store.WithOverwrite())
	}
	start := time.Now()
	if err := store.BackupFile(ctx, lc.Storage.Path, *out, opts...); err != nil {
		return err
	}
	st, err := os.Stat(*out)
	if err != nil {
		return err
	}
	fmt.Fprintf(cio.stdout, "backup of %s written to %s (%s, integrity ok, %s)\n",
		lc.Storage.Path, *out, humanBytes(uint64(st.Size())), time.Since(start).Round(time.Millisecond))
	return nil
}

func runRestore(ctx context.Context, cio cmdIO, args []string) error {
	fs := newFlagSet("restore", cio.stderr)
	configPath := fs.String("config", "", "configuration file (default: $ZHIYIN_CONFIG, else "+defaultConfigPath+" if it exists, else built-in)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("name exactly one backup FILE")
	}
	lc, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(lc.DataDir, 0o750); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	kept, err := store.Restore(ctx, pos[0], lc.Storage.Path, migrationSets()...)
	if err != nil {
		return err
	}
	fmt.Fprintf(cio.stdout, "restored %s from %s\n", lc.Storage.Path, pos[0])
	if kept != "" {
		fmt.Fprintf(cio.stdout, "the previous database is kept as %s (delete it once the restore is confirmed)\n", kept)
	}
	return nil
}
