package main

import (
	"context"
	"fmt"

	"gopkg.in/yaml.v3"
)

func runCheckConfig(_ context.Context, cio cmdIO, args []string) error {
	fs := newFlagSet("check-config", cio.stderr)
	configPath := fs.String("config", "", "configuration file (default: $ZHIYIN_CONFIG, else "+defaultConfigPath+" if it exists, else built-in; 'builtin' forces the built-in defaults)")
	printCfg := fs.Bool("print", false, "print the effective configuration (defaults filled in, secrets redacted)")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	lc, err := loadConfig(*configPath)
	if err != nil {
		fmt.Fprintln(cio.stderr, err)
		return exitError{exitFailure}
	}
	if *printCfg {
		out, err := yaml.Marshal(lc.Config)
		if err != nil {
			return fmt.Errorf("print config: %w", err)
		}
		_, _ = cio.stdout.Write(out)
		return nil
	}
	fmt.Fprintf(cio.stdout, "%s: ok\n", lc.Source)
	return nil
}
