package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

type testServer struct {
	Listen  string        `yaml:"listen"`
	Timeout time.Duration `yaml:"timeout"`
	Body    ByteSize      `yaml:"body_limit"`
}

func (s *testServer) Validate(v *Validator) {
	if !strings.Contains(s.Listen, ":") {
		v.Errorf("listen", "invalid address %q", s.Listen)
	}
	if s.Timeout < time.Second {
		v.Errorf("timeout", "must be at least 1s")
	}
}

type testPeer struct {
	Name  string `yaml:"name"`
	Token Secret `yaml:"token"`
}

func (p *testPeer) Validate(v *Validator) {
	if p.Name == "" {
		v.Errorf("name", "required")
	}
}

type testRoot struct {
	Server testServer          `yaml:"server"`
	Peers  []testPeer          `yaml:"peers"`
	Named  map[string]testPeer `yaml:"named"`
	Common `yaml:",inline"`
}

type Common struct {
	DataDir string `yaml:"data_dir"`
}

func defaults() testRoot {
	return testRoot{Server: testServer{Listen: "127.0.0.1:1", Timeout: 5 * time.Second, Body: 1 << 20}}
}

func TestDecodeErrors(t *testing.T) {
	dir := t.TempDir()
	secretPath := filepath.Join(dir, "tok")
	if err := os.WriteFile(secretPath, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown key", "server:\n  listen: 127.0.0.1:2\n  lsten: x\n",
			[]string{`c.yaml:3: server.lsten: unknown key; known keys here: body_limit, listen, timeout`}},
		{"unknown top", "sever:\n  listen: x\n",
			[]string{`c.yaml:1: sever: unknown key; known keys here: data_dir, named, peers, server`}},
		{"validate with line", "server:\n  listen: x\n",
			[]string{`c.yaml:2: server.listen: invalid address "x"`}},
		{"two errors in file order", "server:\n  timeout: 1ms\n  listen: nope\n",
			[]string{`c.yaml:2: server.timeout: must be at least 1s`, `c.yaml:3: server.listen: invalid address "nope"`}},
		{"bad duration", "server:\n  timeout: soon\n",
			[]string{`c.yaml:2: server.timeout: cannot use text "soon" as a duration such as "30s" or "5m"`}},
		{"bad size", "server:\n  body_limit: lots\n",
			[]string{`c.yaml:2: server.body_limit: invalid size "lots": use bytes or a unit such as 512KiB, 1MiB, 2GiB`}},
		{"syntax", "server:\n  listen: [\n",
			[]string{`c.yaml:2: invalid YAML: did not find expected node content`}},
		{"duplicate key", "server:\n  listen: a:1\n  listen: b:2\n",
			[]string{`c.yaml:3: server.listen: duplicate key (first set on line 2)`}},
		{"duplicate map key", "named:\n  a: {name: x}\n  a: {name: y}\n",
			[]string{`c.yaml:3: named.a: duplicate key (first set on line 2)`}},
		{"list item", "peers:\n  - name: a\n  - token: x\n",
			[]string{`c.yaml:3: peers[1].name: required`}},
		{"map item", "named:\n  bob: {token: x}\n",
			[]string{`c.yaml:2: named.bob.name: required`}},
		{"secret both", "peers:\n  - name: a\n    token: x\n    token_file: " + secretPath + "\n",
			[]string{`c.yaml:4: peers[0].token: set either token (line 3) or token_file, not both`}},
		{"secret file missing", "peers:\n  - name: a\n    token_file: /nonexistent/tok\n",
			[]string{`c.yaml:3: peers[0].token: cannot read token_file "/nonexistent/tok": no such file or directory`}},
		{"secret env unset", "peers:\n  - name: a\n    token: ${ZHIYIN_TEST_UNSET_VAR}\n",
			[]string{`c.yaml:3: peers[0].token: environment variable ZHIYIN_TEST_UNSET_VAR is not set (set it, e.g. in the unit's EnvironmentFile=)`}},
		{"top not mapping", "- a\n", []string{`c.yaml:1: the top level must be a mapping of sections (server:, storage:, …)`}},
		{"section not mapping", "server: 3\n", []string{`c.yaml:1: server: must be a mapping of keys (body_limit, listen, timeout)`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := defaults()
			err := Decode("c.yaml", []byte(tc.yaml), &cfg, DecodeOptions{LookupEnv: func(string) (string, bool) { return "", false }})
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("want Errors, got %v", err)
			}
			var got []string
			for _, e := range es {
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestDecodeValues(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tok"), []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := `
server:
  listen: 0.0.0.0:9
  body_limit: 2MiB
peers:
  - name: a
    token_file: tok        # relative to the config file
  - name: b
    token: ${PEER_TOKEN}
  - name: c
    token: literal
data_dir: /srv/z
`
	cfg := defaults()
	env := map[string]string{"PEER_TOKEN": "from-env"}
	err := Decode(filepath.Join(dir, "z.yaml"), []byte(src), &cfg, DecodeOptions{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.Listen != "0.0.0.0:9" || cfg.Server.Timeout != 5*time.Second || cfg.Server.Body != 2<<20 {
		t.Errorf("server = %+v", cfg.Server)
	}
	if cfg.DataDir != "/srv/z" {
		t.Errorf("data_dir = %q", cfg.DataDir)
	}
	want := []struct{ val, src string }{
		{"from-file", "file " + filepath.Join(dir, "tok")}, {"from-env", "environment PEER_TOKEN"}, {"literal", "inline"},
	}
	for i, w := range want {
		if got := cfg.Peers[i].Token; got.Value() != w.val || got.Source() != w.src {
			t.Errorf("peer %d token = %q from %q, want %q from %q", i, got.Value(), got.Source(), w.val, w.src)
		}
	}
	// Secrets never print.
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{"from-file", "from-env", "literal"} {
		if strings.Contains(string(out), leak) {
			t.Errorf("marshalled config leaks %q:\n%s", leak, out)
		}
	}
	if s := cfg.Peers[2].Token.String(); s != "<redacted>" {
		t.Errorf("String() = %q", s)
	}
}

func TestDecodeEmptyKeepsDefaults(t *testing.T) {
	for _, src := range []string{"", "# only a comment\n", "~\n"} {
		cfg := defaults()
		if err := Decode("c.yaml", []byte(src), &cfg, DecodeOptions{}); err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		if cfg.Server.Listen != "127.0.0.1:1" {
			t.Errorf("%q: defaults lost: %+v", src, cfg.Server)
		}
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{"0": 0, "4096": 4096, "1KiB": 1024, "1MiB": 1 << 20, "1.5MiB": 3 << 19, "10MB": 10_000_000, "2 GiB": 2 << 30, "100kB": 100_000, "7B": 7} {
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "x", "-1", "1XB", "NaN", "1e300GiB"} {
		if _, err := ParseByteSize(bad); err == nil {
			t.Errorf("ParseByteSize(%q) accepted", bad)
		}
	}
	if s := ByteSize(1 << 20).String(); s != "1MiB" {
		t.Errorf("String = %q", s)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("server:\n  listen: a:1\n"))
	f.Add([]byte("peers:\n  - name: a\n    token_file: x\n"))
	f.Add([]byte("named: {a: {name: b}}\n&x a: *x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := defaults()
		_ = Decode("f.yaml", data, &cfg, DecodeOptions{
			LookupEnv: func(string) (string, bool) { return "", false },
			ReadFile:  func(string) ([]byte, error) { return nil, os.ErrNotExist },
		})
	})
}

func TestDecodeAdjustBeforeValidate(t *testing.T) {
	cfg := defaults()
	// The file's listen is invalid but the adjustment replaces it: valid.
	err := Decode("c.yaml", []byte("server:\n  listen: bad\n"), &cfg, DecodeOptions{Adjust: func() { cfg.Server.Listen = "127.0.0.1:9" }})
	if err != nil || cfg.Server.Listen != "127.0.0.1:9" {
		t.Fatalf("adjusted: %v %+v", err, cfg.Server)
	}
	// An adjustment that is invalid is reported.
	cfg = defaults()
	err = Decode("c.yaml", []byte(""), &cfg, DecodeOptions{Adjust: func() { cfg.Server.Listen = "bad" }})
	if err == nil || !strings.Contains(err.Error(), `server.listen: invalid address "bad"`) {
		t.Errorf("invalid adjustment: %v", err)
	}
}
