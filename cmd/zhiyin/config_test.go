package main

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/zhiyin/zhiyin/internal/config"
)

var update = flag.Bool("update", false, "rewrite golden files")

// decodeFile decodes a config file the way serve does, without the data_dir
// resolution.
func decodeFile(t *testing.T, path string) (Config, error) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := defaultConfig()
	err = config.Decode(path, data, &cfg, config.DecodeOptions{})
	return cfg, err
}

// TestPackagedConfig: the file the packages install is valid, documents
// every key, and differs from the built-in defaults only where it says so.
func TestPackagedConfig(t *testing.T) {
	path := "../../packaging/zhiyin.yaml"
	cfg, err := decodeFile(t, path)
	if err != nil {
		t.Fatalf("packaged config invalid:\n%v", err)
	}
	want := defaultConfig()
	want.DataDir = "/var/lib/zhiyin"
	want.Auth.AllowLoopback = false
	got, _ := yaml.Marshal(cfg)
	exp, _ := yaml.Marshal(want)
	if string(got) != string(exp) {
		t.Errorf("packaged config differs from the defaults beyond data_dir and auth.allow_loopback:\n--- packaged\n%s\n--- want\n%s", got, exp)
	}
	// Every key of the effective configuration appears in the file, so the
	// file documents them all.
	var full map[string]any
	if err := yaml.Unmarshal(exp, &full); err != nil {
		t.Fatal(err)
	}
	text, _ := os.ReadFile(path)
	var missing []string
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		for k, sub := range m {
			indent := "\n" + strings.Repeat("  ", strings.Count(prefix, "."))
			if !strings.Contains(string(text), indent+k+":") && !strings.Contains(string(text), indent+`"`+k+`":`) &&
				!strings.HasPrefix(string(text), k+":") {
				missing = append(missing, prefix+k)
			}
			walk(prefix+k+".", sub)
		}
	}
	walk("", full)
	if len(missing) > 0 {
		t.Errorf("packaging/zhiyin.yaml does not document: %v", missing)
	}
}

// TestBuiltinGolden: `check-config --print` of the built-in defaults is
// pinned, so that a changed default is a reviewed change.
func TestBuiltinGolden(t *testing.T) {
	cfg := defaultConfig()
	cfg.DataDir = "<resolved at start: $STATE_DIRECTORY or ./var>"
	got, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "builtin.golden.yaml")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/zhiyin -run Golden -update)", err)
	}
	if string(got) != string(want) {
		t.Errorf("built-in defaults changed; review and run with -update:\n--- got\n%s\n--- want\n%s", got, want)
	}
}

// TestBadConfigs: a table of broken files and the exact messages an
// operator sees from `zhiyin check-config`.
func TestBadConfigs(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown section", "sever:\n  listen: 127.0.0.1:1\n",
			[]string{"C:1: sever: unknown key; known keys here: asr, auth, channels, data_dir, dialogue, inference, limits, log, nlu, server, storage, tts, voice"}},
		{"typo in a key", "server:\n  lisen: 127.0.0.1:1\n",
			[]string{"C:2: server.lisen: unknown key; known keys here: body_limit, idle_timeout, listen, max_connections, proxy_header, read_timeout, shutdown_timeout, trusted_proxies, write_timeout"}},
		{"bad listen", "server:\n  listen: x\n",
			[]string{`C:2: server.listen: invalid address "x": use host:port, e.g. 127.0.0.1:18789 or 0.0.0.0:18789`}},
		{"bad duration", "server:\n  read_timeout: 30\n",
			[]string{`C:2: server.read_timeout: cannot use number "30" as a duration such as "30s" or "5m"`}},
		{"duration text", "server:\n  read_timeout: soon\n",
			[]string{`C:2: server.read_timeout: cannot use text "soon" as a duration such as "30s" or "5m"`}},
		{"too short", "server:\n  read_timeout: 1ms\n",
			[]string{"C:2: server.read_timeout: must be between 1s and 1h, got 1ms"}},
		{"bad size", "server:\n  body_limit: huge\n",
			[]string{`C:2: server.body_limit: invalid size "huge": use bytes or a unit such as 512KiB, 1MiB, 2GiB`}},
		{"bad level", "log:\n  level: loud\n",
			[]string{`C:2: log.level: unknown level "loud": use debug, info, warn or error`}},
		{"asr", "asr:\n  language: fr\n  model: Sense\n  vad:\n    threshold: 2\n",
			[]string{`C:2: asr.language: must be one of auto, zh, en, yue, ja, ko, got "fr"`,
				`C:3: asr.model: must be auto or an installed model's name (lowercase letters, digits, - and _), got "Sense"`,
				"C:5: asr.vad.threshold: must be between 0 and 1 (exclusive), got 2"}},
		{"bad sync", "storage:\n  synchronous: sometimes\n",
			[]string{`C:2: storage.synchronous: must be full or normal, got "sometimes"`}},
		{"dialogue lanes and actions", "dialogue:\n  lanes:\n    normal:\n      workers: 0\n  actions:\n    - name: crm\n      url: ftp://x\n    - name: crm\n      url: http://y\n",
			[]string{"C:4: dialogue.lanes.normal.workers: must be between 1 and 4096, got 0",
				`C:7: dialogue.actions[0].url: "ftp://x" is not an http:// or https:// URL with a host`,
				`C:8: dialogue.actions[1].name: action "crm" is configured twice`}},
		{"bad idle timeout", "dialogue:\n  idle_timeout: 10ms\n",
			[]string{"C:2: dialogue.idle_timeout: must be at least 1s, got 10ms"}},
		{"bad provider", "inference:\n  provider: tpu\n",
			[]string{`C:2: inference.provider: must be cpu, cuda or auto, got "tpu"`}},
		{"negative rate", "limits:\n  per_ip:\n    per_second: -1\n",
			[]string{"C:3: limits.per_ip.per_second: must be 0 (off) or a positive number, got -1"}},
		{"jwt without audience", "auth:\n  jwt:\n    hs256_secret: 0123456789abcdef0123456789abcdef\n",
			[]string{"C:2: auth.jwt.audience: required when JWT is enabled (tokens are checked against it)"}},
		{"short jwt secret from env", "auth:\n  jwt:\n    hs256_secret: ${ZHIYIN_TEST_SHORT}\n    audience: z\n",
			[]string{"C:3: auth.jwt.hs256_secret: must be at least 32 bytes (got 5); generate one with `head -c 48 /dev/urandom | base64`"}},
		{"missing secret file", "auth:\n  jwt:\n    hs256_secret_file: /nonexistent/jwt\n    audience: z\n",
			[]string{`C:3: auth.jwt.hs256_secret: cannot read hs256_secret_file "/nonexistent/jwt": no such file or directory`}},
		{"several at once", "server:\n  listen: ':0'\n  idle_timeout: 0s\nstorage:\n  read_connections: 0\n",
			[]string{`C:2: server.listen: invalid port in ":0": use 1-65535`, "C:3: server.idle_timeout: must be between 1s and 1h, got 0s", "C:5: storage.read_connections: must be between 1 and 64, got 0"}},
		{"not yaml", "server: [\n", []string{"C:1: invalid YAML: did not find expected node content"}},
		{"voice", "voice:\n  max_no_input: 11\n  dtmf:\n    terminator: '**'\n    menu:\n      '12': x\n",
			[]string{"C:2: voice.max_no_input: 11 is outside 0..10",
				`C:4: voice.dtmf.terminator: "**" is not one keypad key (0-9, *, #, A-D) or empty`,
				`C:5: voice.dtmf.menu: key "12" is not one keypad key (0-9, *, #, A-D)`}},
		{"sip", "channels:\n  sip:\n    enabled: true\n    max_calls: -1\n    peers:\n      - 10.0.0.1\n      - 10.0.0.0/33\n    media:\n      jitter: 1ms\n",
			[]string{"C:4: channels.sip.max_calls: at least 1 (got -1)",
				`C:7: channels.sip.peers[1]: "10.0.0.0/33" is neither an IP nor a CIDR`,
				"C:9: channels.sip.media.jitter: 1ms is out of range: set it between 20ms and 500ms (default 40ms)"}},
		// A disabled channels.sip is not checked, but media's own ranges are.
		{"sip disabled", "channels:\n  sip:\n    max_calls: -1\n    media:\n      rtcp_interval: 1h\n",
			[]string{"C:5: channels.sip.media.rtcp_interval: 1h0m0s is out of range: set it between 1s and 5m0s (default 5s)"}},
		{"localaudio", "channels:\n  localaudio:\n    echo: loud\n",
			[]string{`C:3: channels.localaudio.echo: must be "mute", "gate" or "none", got "loud"`}},
	}
	t.Setenv("ZHIYIN_TEST_SHORT", "short")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".yaml")
			writeFile(t, path, tc.yaml)
			_, err := decodeFile(t, path)
			var es config.Errors
			if !errors.As(err, &es) {
				t.Fatalf("want config.Errors, got %v", err)
			}
			var got []string
			for _, e := range es {
				got = append(got, strings.Replace(e.Error(), path, "C", 1))
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			// The command prints the same lines and exits 1.
			code, _, errOut := runCLI(t, []string{"ZHIYIN_TEST_SHORT=short"}, "check-config", "--config", path)
			if code != 1 || !strings.Contains(errOut, strings.Replace(tc.want[0], "C:", path+":", 1)) {
				t.Errorf("check-config: exit %d\n%s", code, errOut)
			}
		})
	}
}
