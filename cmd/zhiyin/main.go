// Command zhiyin is the offline customer-service appliance: the daemon
// (`zhiyin serve`) and the operator's tools. main only parses flags, loads
// and validates the configuration, wires the components together and turns
// errors into exit codes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and failed
	exitUsage   = 2 // bad command line
)

// command is one `zhiyin <name>` subcommand.
type command struct {
	name    string
	args    string // synopsis of the arguments, for help
	summary string
	run     func(ctx context.Context, io cmdIO, args []string) error
}

// cmdIO is where a command reads and writes; tests replace it.
type cmdIO struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

// usageError is a bad command line: printed with the usage, exit code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// exitError carries a specific exit code for a failure that has already been
// reported (doctor's ✗ lines).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func commands() []command {
	return []command{
		{"serve", "[--config FILE] [--listen ADDR] [--data-dir DIR]", "run the daemon (HTTP API, channels, models)", runServe},
		{"check-config", "[--config FILE] [--print]", "validate the configuration and exit", runCheckConfig},
		{"doctor", "[--config FILE] [--json]", "check this machine: ONNX Runtime, CUDA, models, data dir, database, port, disk", runDoctor},
		{"version", "[--json]", "print versions: zhiyin, commit, Go, ONNX Runtime library", runVersion},
		{"backup", "--out FILE [--force] [--config FILE]", "write a consistent copy of the database (safe while serving)", runBackup},
		{"restore", "FILE [--config FILE]", "replace the database with a backup (zhiyin must be stopped)", runRestore},
		{"apikey", "create --name NAME [--role admin|client] | list [--all] [--json] | revoke ID|NAME", "manage API keys (works while serving)", runAPIKey},
		{"train", "--data FILE|DIR --out DIR [--seed N] [--quiet]", "train the NLU intent and entity models (ONNX, int8) from Rasa-style YAML or JSON Lines", runTrain},
		{"nlu", "eval --data FILE [--model DIR] [--json] | parse TEXT... [--model DIR]", "evaluate an NLU model on labelled data, or parse texts with it", runNLU},
		{"chat", "[--debug] [--user ID] [--config FILE]", "chat with the dialogue engine in the terminal (--debug shows intent, entities, slots, stack)", runChat},
		{"sessions", "export --user ID [--out FILE] | delete --user ID | show SESSION_ID", "data-subject requests: export or delete a user's conversations (works while serving)", runSessions},
		{"handoff", "list [--json] | take SESSION_ID | release SESSION_ID [--agent NAME]", "the human queue: list hand-offs, take one, give it back to the bot", runHandoff},
		{"outbox", "list [--state S] [--channel NAME] [--json] | retry ID... | drop ID...", "channel replies waiting or dead-lettered: list them, send again, give up (works while serving)", runOutbox},
		{"keys", "rotate [--retire]", "add a new session encryption key and re-encrypt stored conversations with it", runKeys},
		{"audit", "[--since DUR] [--limit N]", "show the audit log of admin actions", runAudit},
		{"transcribe", "FILE... [--json] [--language L] [--itn true|false] [--model NAME] [--rate HZ] [--progress auto|always|never]", "transcribe audio files (WAV; - is standard input) with the installed speech model, in this process", runTranscribe},
		{"asr", "features --stage fbank|lfr|cmvn [--cmvn am.mvn] IN.wav OUT.bin | vad IN.wav [--json]", "speech front-end tools: write Kaldi fbank/LFR/CMVN features (float32 LE, [frames, dim]); print VAD segments", runASR},
		{"voice", "--local [--input DEV] [--output DEV] [--echo mute|gate|none] [--config FILE] | --list-devices [--json]", "talk with the bot through this machine's microphone and speaker, in this process; list audio devices", runVoice},
		{"calls", "list [--since DUR] [--limit N] [--json] | show CALL [--json] | recording CALL --out FILE.wav", "phone and sound-card calls: records, transcripts, decrypted recordings (works while serving)", runCalls},
		{"models", "list|verify|install|remove|shadow|promote|rollback [NAME|SRC] [flags] | quantize IN.onnx OUT.onnx [--eval FILE]", "manage models: install, verify, shadow-test, promote, roll back; int8-quantize an ONNX file", runModels},
	}
}

func main() {
	os.Exit(run(context.Background(), os.Args[1:], cmdIO{os.Stdin, os.Stdout, os.Stderr}))
}

func run(ctx context.Context, args []string, cio cmdIO) int {
	if len(args) == 0 {
		printUsage(cio.stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "--help", "-help", "help":
		if len(args) > 1 {
			if c, ok := findCommand(args[1]); ok {
				printCommandHelp(cio.stdout, c)
				return exitOK
			}
		}
		printUsage(cio.stdout)
		return exitOK
	case "-version", "--version":
		name = "version"
	}
	c, ok := findCommand(name)
	if !ok {
		fmt.Fprintf(cio.stderr, "zhiyin: unknown command %q\n\n", name)
		printUsage(cio.stderr)
		return exitUsage
	}
	if c.name != "serve" { // serve handles its own signals (SIGTERM drains, SIGHUP reloads)
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
	}
	err := c.run(ctx, cio, args[1:])
	var ue usageError
	var ee exitError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(cio.stderr, "zhiyin %s: %s\n", c.name, ue.msg)
		fmt.Fprintf(cio.stderr, "usage: zhiyin %s %s\n", c.name, c.args)
		return exitUsage
	case errors.As(err, &ee):
		return ee.code
	default:
		fmt.Fprintf(cio.stderr, "zhiyin %s: %v\n", c.name, err)
		return exitFailure
	}
}

func findCommand(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func printUsage(w io.Writer) {
	fmt.Fprintf(w, "zhiyin (知音) — offline intelligent customer service\n\nusage: zhiyin <command> [flags]\n\ncommands:\n")
	cs := commands()
	sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	for _, c := range cs {
		fmt.Fprintf(w, "  %-13s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'zhiyin <command> --help' for a command's flags.\n")
	fmt.Fprintf(w, "Configuration: --config FILE, else $ZHIYIN_CONFIG, else %s if it exists, else the built-in defaults.\n", defaultConfigPath)
}

func printCommandHelp(w io.Writer, c command) {
	fmt.Fprintf(w, "usage: zhiyin %s %s\n\n%s\n", c.name, c.args, c.summary)
}

// newFlagSet returns a flag set for command c whose -h prints the command's
// synopsis and flags to out.
func newFlagSet(c string, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("zhiyin "+c, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		cmd, _ := findCommand(c)
		fmt.Fprintf(out, "usage: zhiyin %s %s\n\n%s\n\nflags:\n", cmd.name, cmd.args, cmd.summary)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, allowing flags after positional arguments
// (`zhiyin restore FILE --force`), and returns the positional ones.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{strings.TrimSpace(err.Error())}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
