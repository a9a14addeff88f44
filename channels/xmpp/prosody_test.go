package xmpp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/channels/channelstest"
	"github.com/zhiyin/zhiyin/internal/config"
)

// wait bounds every wait for an event in these tests; generous because the
// machine may be busy, and never reached when things work.
const wait = 10 * time.Second

// prosody is a real XMPP server run for the test: localhost (with TLS),
// plainhost (no certificate: plain login on loopback), a MUC
// service conference.localhost and the component bot.localhost.
type prosody struct {
	dir        string
	c2s, comp  string // 127.0.0.1:port
	caFile     string
	tls        *tls.Config // trusts the test CA
	compSecret string
}

func startProsody(t *testing.T) *prosody {
	t.Helper()
	bin, err := exec.LookPath("prosody")
	if err != nil {
		t.Skip("prosody is not installed: run scripts/setup.sh test (installs the Debian package prosody)")
	}
	ctl, err := exec.LookPath("prosodyctl")
	if err != nil {
		t.Skip("prosodyctl is not installed: run scripts/setup.sh test")
	}
	dir := t.TempDir()
	p := &prosody{dir: dir, c2s: freeAddr(t), comp: freeAddr(t), compSecret: "s3cret-component"}
	if err := os.Mkdir(filepath.Join(dir, "tls"), 0o755); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "tls", "test-cert.pem"), filepath.Join(dir, "tls", "test-key.pem")
	p.tls = writeCert(t, certFile, keyFile)
	p.caFile = certFile
	_, c2sPort, _ := net.SplitHostPort(p.c2s)
	_, compPort, _ := net.SplitHostPort(p.comp)
	cfg := fmt.Sprintf(`-- written by channels/xmpp tests
run_as_root = true
daemonize = false
pidfile = %[1]q
data_path = %[2]q
plugin_paths = {}
log = {
	{ levels = { min = "info" }, to = "console" };
	{ levels = { min = "debug" }, to = "file", filename = %[3]q };
}
interfaces = { "127.0.0.1" }
c2s_ports = { %[4]s }
c2s_direct_tls_ports = {}
legacy_ssl_ports = {}
component_ports = { %[5]s }
component_interfaces = { "127.0.0.1" }
s2s_ports = {}
http_ports = {}
https_ports = {}
authentication = "internal_plain"
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "ping"; }
modules_disabled = { "s2s"; "offline"; }
VirtualHost "localhost"
	ssl = { certificate = %[6]q; key = %[7]q; }
VirtualHost "plainhost"
	modules_disabled = { "tls"; }
Component "conference.localhost" "muc"
Component "bot.localhost"
	component_secret = %[8]q
`, filepath.Join(dir, "prosody.pid"), filepath.Join(dir, "data"), filepath.Join(dir, "prosody.log"),
		c2sPort, compPort, certFile, keyFile, p.compSecret)
	cfgFile := filepath.Join(dir, "prosody.cfg.lua")
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}

	// Accounts, registered in parallel (prosodyctl takes about a second).
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, u := range [][2]string{{"bot", "localhost"}, {"user", "plainhost"}} {
		wg.Go(func() {
			out, err := exec.Command(ctl, "--config", cfgFile, "register", u[0], u[1], "pw-"+u[0]).CombinedOutput()
			if err != nil {
				errs <- fmt.Errorf("prosodyctl register %s@%s: %v\n%s", u[0], u[1], err, out)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	cmd := exec.Command(bin, "--config", cfgFile, "-F")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prosody: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "prosody.log")); err == nil {
				t.Logf("prosody.log (tail):\n%s", tail(string(b), 6000))
			}
		}
	})
	// Ready once both listeners are activated (prosody logs it).
	ready := make(chan error, 1)
	go func() {
		var log bytes.Buffer
		sc := bufio.NewScanner(stdout)
		c2s, comp := false, false
		for sc.Scan() {
			line := sc.Text()
			log.WriteString(line + "\n")
			c2s = c2s || strings.Contains(line, "Activated service 'c2s' on [127.0.0.1]:"+c2sPort)
			comp = comp || strings.Contains(line, "Activated service 'component' on [127.0.0.1]:"+compPort)
			if c2s && comp {
				ready <- nil
				_, _ = io.Copy(io.Discard, stdout)
				return
			}
		}
		ready <- fmt.Errorf("prosody exited before listening:\n%s", log.String())
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(wait):
		t.Fatal("prosody did not start listening")
	}
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// writeCert writes a self-signed certificate for localhost and returns a
// TLS configuration that trusts it.
func writeCert(t *testing.T, certFile, keyFile string) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "localhost"},
		DNSNames:              []string{"localhost"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o644); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// testClient is the customer's side: our own stream code logged in as
// another account, reading stanzas into a channel.
type testClient struct {
	t   *testing.T
	s   *session
	in  chan *element
	jid string
}

func newTestClient(t *testing.T, addr, jid, password string, tc *tls.Config) *testClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	o := dialOptions{tls: tc, plainOK: true, maxStanza: 1 << 20, timeout: wait}
	s, err := dial(ctx, addr, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.loginClient(ctx, jid, password, "test", o); err != nil {
		t.Fatalf("login %s: %v", jid, err)
	}
	s.idle.Store(0)
	c := &testClient{t: t, s: s, in: make(chan *element, 64), jid: s.jid}
	go func() {
		defer close(c.in)
		for {
			el, err := s.rd.next()
			if err != nil {
				return
			}
			c.in <- el
		}
	}()
	t.Cleanup(func() {
		cancel()
		s.close(true)
		for range c.in {
		}
	})
	c.send(`<presence/>`)
	return c
}

func (c *testClient) send(x string) {
	c.t.Helper()
	if err := c.s.write(context.Background(), x); err != nil {
		c.t.Fatalf("client write: %v", err)
	}
}

// expect reads stanzas until one satisfies ok.
func (c *testClient) expect(what string, ok func(*element) bool) *element {
	c.t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case el, open := <-c.in:
			if !open {
				c.t.Fatalf("stream closed waiting for %s", what)
			}
			if ok(el) {
				return el
			}
		case <-deadline:
			c.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// waitUntil waits until cond (called with a.mu held) holds.
func (a *Adapter) waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(wait)
	for {
		a.mu.Lock()
		ok, ch := cond(), a.changed
		a.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out waiting for %s; state %+v", what, a.State())
		}
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func startAdapter(t *testing.T, cfg Config) (*Adapter, *channelstest.Sink) {
	t.Helper()
	a, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	a.back = channels.Backoff{Min: 10 * time.Millisecond, Max: 100 * time.Millisecond}
	sink := channelstest.NewSink()
	if err := a.Start(context.Background(), sink); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := a.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return a, sink
}

func body(el *element) string {
	if b := el.child("", "body"); b != nil {
		return b.Text
	}
	return ""
}

func TestProsody(t *testing.T) {
	p := startProsody(t)
	const room = "support@conference.localhost"

	cfg := DefaultConfig()
	cfg.Enabled = true
	cfg.JID = "bot@localhost"
	cfg.Password = config.NewSecret("pw-bot")
	cfg.Server = p.c2s
	cfg.CAFile = p.caFile
	cfg.Rooms = []Room{{JID: room, Nick: "知音"}}
	bot, sink := startAdapter(t, cfg)
	bot.waitUntil(t, "bot online in the room", func() bool { return bot.cur != nil && bot.rooms[room].joined })
	if st := bot.State(); !st.Connected || !strings.Contains(st.Detail, "(TLS)") || !bot.cur.tls {
		t.Fatalf("state %+v", st)
	}

	// The customer logs in without TLS: plainhost does not offer it, and
	// loopback is the allowed exception.
	user := newTestClient(t, p.c2s, "user@plainhost", "pw-user", p.tls)
	if user.s.tls {
		t.Fatal("plainhost unexpectedly offered TLS")
	}

	t.Run("direct", func(t *testing.T) {
		user.t = t
		hello := `<message to='bot@localhost' type='chat' id='u1'><body>你好</body></message>`
		user.send(hello)
		user.send(hello) // the same stanza again: one message
		user.send(`<message to='bot@localhost' type='chat' id='u2'><body>在吗</body></message>`)
		msgs := sink.WaitMessages(2, wait)
		if len(msgs) != 2 {
			t.Fatalf("delivered %d messages", len(msgs))
		}
		m := msgs[0]
		if m.Channel != "xmpp" || m.Platform != "xmpp" || m.Bot != "bot@localhost" || m.ID != "u1" ||
			m.DedupKey != "id:user@plainhost/test:u1" || m.Conversation != "user@plainhost" ||
			m.ConversationType != channels.Direct || m.Sender.ID != "user@plainhost" || m.Text != "你好" ||
			m.Mentioned || len(m.Raw) == 0 || time.Since(m.Time) > time.Minute {
			t.Fatalf("message %+v", m)
		}
		if msgs[1].Text != "在吗" {
			t.Fatalf("second message %+v", msgs[1])
		}
		reply := "您好！<有什么> & \"可以\" 帮您？\n第二行"
		r, err := bot.Send(context.Background(), &channels.Outgoing{
			Key: "reply-1", Channel: "xmpp", Conversation: m.Conversation, ConversationType: channels.Direct, Text: reply,
		})
		if err != nil || r.PlatformID != "reply-1" {
			t.Fatalf("send: %v %+v", err, r)
		}
		got := user.expect("the reply", func(el *element) bool {
			return el.Name.Local == "message" && sameBare(el.attr("from"), "bot@localhost")
		})
		if body(got) != reply || got.attr("id") != "reply-1" || got.attr("type") != "chat" ||
			got.child(nsSID, "origin-id").attr("id") != "reply-1" {
			t.Fatalf("reply %s", got)
		}
	})

	t.Run("muc", func(t *testing.T) {
		user.t = t
		user.send(`<presence to='` + room + `/小王'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>`)
		user.expect("the bot in the room", func(el *element) bool {
			return el.Name.Local == "presence" && el.attr("from") == room+"/知音"
		})
		user.expect("our join", func(el *element) bool {
			if el.Name.Local == "presence" && el.attr("type") == "error" {
				t.Fatalf("join refused: %s", el)
			}
			return el.Name.Local == "presence" && el.attr("from") == room+"/小王"
		})
		n := len(sink.Messages())
		user.send(`<message to='` + room + `' type='groupchat' id='g1'><body>知音: 查订单</body></message>`)
		user.send(`<message to='` + room + `' type='groupchat' id='g2'><body>大家好</body></message>`)
		msgs := sink.WaitMessages(n+2, wait)
		if len(msgs) != n+2 {
			t.Fatalf("delivered %d messages, want %d", len(msgs), n+2)
		}
		m, m2 := msgs[n], msgs[n+1]
		if m.ConversationType != channels.Group || m.Conversation != room || m.Sender.ID != room+"/小王" ||
			m.Sender.Name != "小王" || !m.Mentioned || m.Text != "查订单" || m.ID != "g1" {
			t.Fatalf("mention %+v", m)
		}
		if m2.Mentioned || m2.Text != "大家好" || m2.ConversationType != channels.Group {
			t.Fatalf("no mention %+v", m2)
		}
		if _, err := bot.Send(context.Background(), &channels.Outgoing{
			Key: "reply-2", Conversation: room, ConversationType: channels.Group, Text: "小王，订单已发货",
		}); err != nil {
			t.Fatal(err)
		}
		got := user.expect("the reply in the room", func(el *element) bool {
			return el.Name.Local == "message" && el.attr("from") == room+"/知音"
		})
		if body(got) != "小王，订单已发货" || got.attr("type") != "groupchat" {
			t.Fatalf("room reply %s", got)
		}
		// The bot's echo of its own reply is not delivered.
		user.send(`<message to='` + room + `' type='groupchat' id='g3'><body>@知音 谢谢</body></message>`)
		msgs = sink.WaitMessages(n+3, wait)
		if len(msgs) != n+3 || msgs[n+2].Text != "谢谢" || !msgs[n+2].Mentioned {
			t.Fatalf("after the echo: %d messages, last %+v", len(msgs), msgs[len(msgs)-1])
		}
		// A room that is not configured is a permanent failure.
		_, err := bot.Send(context.Background(), &channels.Outgoing{Key: "x", Conversation: "other@conference.localhost", ConversationType: channels.Group, Text: "x"})
		if !errors.Is(err, channels.ErrPermanent) {
			t.Fatalf("unknown room: %v", err)
		}
	})

	t.Run("component", func(t *testing.T) {
		user.t = t
		ccfg := DefaultConfig()
		ccfg.Enabled = true
		ccfg.Mode = ModeComponent
		ccfg.Server = p.comp
		ccfg.ComponentDomain = "bot.localhost"
		ccfg.ComponentSecret = config.NewSecret(p.compSecret)
		comp, csink := startAdapter(t, ccfg)
		comp.waitUntil(t, "component connected", func() bool { return comp.cur != nil })

		user.send(`<message to='help@bot.localhost' type='chat' id='c1'><body>你好，组件</body></message>`)
		msgs := csink.WaitMessages(1, wait)
		if len(msgs) != 1 {
			t.Fatal("nothing delivered")
		}
		m := msgs[0]
		if m.Conversation != "user@plainhost" || m.Bot != "help@bot.localhost" || m.Text != "你好，组件" ||
			m.Handle.Extra["from"] != "help@bot.localhost" || m.ConversationType != channels.Direct {
			t.Fatalf("message %+v", m)
		}
		if _, err := comp.Send(context.Background(), &channels.Outgoing{
			Key: "reply-3", Conversation: m.Conversation, ConversationType: channels.Direct, Handle: m.Handle, Text: "组件回复",
		}); err != nil {
			t.Fatal(err)
		}
		got := user.expect("the component's reply", func(el *element) bool {
			return el.Name.Local == "message" && el.attr("from") == "help@bot.localhost"
		})
		if body(got) != "组件回复" {
			t.Fatalf("reply %s", got)
		}
	})

	t.Run("refused logins", func(t *testing.T) {
		bad := cfg
		bad.Password = config.NewSecret("wrong")
		bad.Rooms = nil
		a, _ := startAdapter(t, bad)
		a.waitUntil(t, "a login error", func() bool { return a.state.LastError != "" })
		if st := a.State(); st.Connected || !strings.Contains(st.LastError, "authentication failed") {
			t.Fatalf("state %+v", st)
		}
		badc := DefaultConfig()
		badc.Enabled = true
		badc.Mode = ModeComponent
		badc.Server = p.comp
		badc.ComponentDomain = "bot.localhost"
		badc.ComponentSecret = config.NewSecret("wrong")
		c, _ := startAdapter(t, badc)
		c.waitUntil(t, "a handshake error", func() bool { return c.state.LastError != "" })
		if st := c.State(); st.Connected || !strings.Contains(st.LastError, "authentication failed") {
			t.Fatalf("state %+v", st)
		}
		// Without ca_file the self-signed certificate is refused.
		untrusted := cfg
		untrusted.CAFile = ""
		untrusted.Rooms = nil
		u, _ := startAdapter(t, untrusted)
		u.waitUntil(t, "a TLS error", func() bool { return u.state.LastError != "" })
		if st := u.State(); st.Connected || !strings.Contains(st.LastError, "tls handshake") {
			t.Fatalf("state %+v", st)
		}
		// Unless verification is off (a warning at every connect).
		insecure := untrusted
		insecure.InsecureSkipVerify = true
		insecure.Resource = "insecure" // not to replace the bot's session
		i, _ := startAdapter(t, insecure)
		i.waitUntil(t, "connected without verification", func() bool { return i.cur != nil && i.cur.tls })
	})
}
