package xmpp

import (
	"bufio"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/channels/channelstest"
	"github.com/zhiyin/zhiyin/internal/config"
)

// fakeServer is a scripted XMPP server for what prosody cannot be made to
// do on demand: oversize stanzas, silence, stream errors, no STARTTLS. Each
// accepted connection is handed to the test after the login.
type fakeServer struct {
	t     *testing.T
	l     net.Listener
	conns chan *fakeConn
	// login runs the server side of the login on a new connection.
	login func(fc *fakeConn) error
}

type fakeConn struct {
	t  *testing.T
	c  net.Conn
	rd *reader
	in chan *element
}

func newFakeServer(t *testing.T, login func(fc *fakeConn) error) *fakeServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fs := &fakeServer{t: t, l: l, conns: make(chan *fakeConn, 8), login: login}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			wg.Go(func() { fs.serve(c) })
		}
	})
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		for _, c := range open {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return fs
}

func (fs *fakeServer) serve(c net.Conn) {
	fc := &fakeConn{t: fs.t, c: c, rd: newReader(bufio.NewReader(c), 1<<20), in: make(chan *element, 16)}
	if err := fs.login(fc); err != nil {
		_ = c.Close()
		return
	}
	fs.conns <- fc
	defer close(fc.in)
	for {
		el, err := fc.rd.next()
		if err != nil {
			return
		}
		fc.in <- el
	}
}

// accept waits for the next logged-in connection.
func (fs *fakeServer) accept() *fakeConn {
	fs.t.Helper()
	select {
	case fc := <-fs.conns:
		return fc
	case <-time.After(wait):
		fs.t.Fatal("no connection")
		return nil
	}
}

func (fc *fakeConn) send(x string) {
	fc.t.Helper()
	if _, err := io.WriteString(fc.c, x); err != nil {
		fc.t.Fatalf("server write: %v", err)
	}
}

func (fc *fakeConn) expect(what string, ok func(*element) bool) *element {
	fc.t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case el, open := <-fc.in:
			if !open {
				fc.t.Fatalf("connection closed waiting for %s", what)
			}
			if ok(el) {
				return el
			}
		case <-deadline:
			fc.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// expectClosed waits until the client ends the connection.
func (fc *fakeConn) expectClosed() {
	fc.t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case _, open := <-fc.in:
			if !open {
				return
			}
		case <-deadline:
			fc.t.Fatal("connection not closed")
		}
	}
}

// componentLogin is the server side of XEP-0114 for bot.localhost.
func componentLogin(secret string) func(fc *fakeConn) error {
	return func(fc *fakeConn) error {
		hdr, err := fc.rd.start()
		if err != nil {
			return err
		}
		if hdr.Name.Local != "stream" || attrOf(hdr.Attr, "to") != "bot.localhost" {
			return errors.New("bad header")
		}
		fc.send(`<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' id='ID42' from='bot.localhost'>`)
		el, err := fc.rd.next()
		if err != nil {
			return err
		}
		if !el.is(nsComponent, "handshake") || el.Text != handshakeDigest("ID42", secret) {
			fc.send(`<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>`)
			return errors.New("bad handshake")
		}
		fc.send(`<handshake/>`)
		return nil
	}
}

func attrOf(attrs []xml.Attr, local string) string {
	for _, a := range attrs {
		if a.Name.Space == "" && a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

func componentConfig(addr string) Config {
	c := DefaultConfig()
	c.Enabled = true
	c.Mode = ModeComponent
	c.Server = addr
	c.ComponentDomain = "bot.localhost"
	c.ComponentSecret = config.NewSecret("sec")
	c.MaxStanza = 4096
	return c
}

func TestFakeComponentReconnects(t *testing.T) {
	fs := newFakeServer(t, componentLogin("sec"))
	a, sink := startAdapter(t, componentConfig(fs.l.Addr().String()))
	fc := fs.accept()
	a.waitUntil(t, "connected", func() bool { return a.cur != nil })

	// A ping from the server is answered; any other request refused.
	fc.send(`<iq type='get' id='p1' from='localhost' to='bot.localhost'><ping xmlns='urn:xmpp:ping'/></iq>`)
	pong := fc.expect("pong", func(el *element) bool { return el.attr("id") == "p1" })
	if pong.attr("type") != "result" || pong.attr("to") != "localhost" || pong.attr("from") != "bot.localhost" {
		t.Fatalf("pong %s", pong)
	}
	fc.send(`<iq type='get' id='v1' from='u@localhost/r' to='help@bot.localhost'><query xmlns='jabber:iq:version'/></iq>`)
	refusal := fc.expect("refusal", func(el *element) bool { return el.attr("id") == "v1" })
	if refusal.attr("type") != "error" || refusal.child("", "error").child(nsStanzaErr, "service-unavailable") == nil {
		t.Fatalf("refusal %s", refusal)
	}

	// An oversize stanza ends the stream; the adapter reconnects.
	fc.send(`<message from='u@localhost/r' to='help@bot.localhost' id='big'><body>` + strings.Repeat("x", 5000) + `</body></message>`)
	fc.expectClosed()
	fc = fs.accept()
	a.waitUntil(t, "reconnected", func() bool { return a.cur != nil })
	if st := a.State(); !strings.Contains(st.LastError, "max_stanza") {
		t.Fatalf("state %+v", st)
	}
	fc.send(`<message from='u@localhost/r' to='help@bot.localhost' id='m1'><body>hi</body></message>`)
	if msgs := sink.WaitMessages(1, wait); len(msgs) != 1 || msgs[0].ID != "m1" {
		t.Fatalf("messages %+v", msgs)
	}

	// A stream error ends the stream too.
	fc.send(`<stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>`)
	fc.expectClosed()
	fc = fs.accept()
	a.waitUntil(t, "reconnected after a stream error", func() bool {
		return a.cur != nil && strings.Contains(a.state.LastError, "system-shutdown")
	})

	// So does a DOCTYPE (no entity is ever expanded).
	fc.send(`<!DOCTYPE lol [<!ENTITY lol "lol">]>`)
	fc.expectClosed()
	fs.accept()
	a.waitUntil(t, "reconnected after a DOCTYPE", func() bool {
		return a.cur != nil && strings.Contains(a.state.LastError, "restricted XML")
	})
}

func TestFakeKeepalive(t *testing.T) {
	fs := newFakeServer(t, componentLogin("sec"))
	cfg := componentConfig(fs.l.Addr().String())
	cfg.Timeout = 200 * time.Millisecond
	a, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	a.ping = 50 * time.Millisecond
	a.back = channels.Backoff{Min: 10 * time.Millisecond, Max: 20 * time.Millisecond}
	if err := a.Start(context.Background(), channelstest.NewSink()); err != nil {
		t.Fatal(err)
	}
	defer a.Stop(context.Background())
	fc := fs.accept()
	ping := fc.expect("a keepalive ping", func(el *element) bool { return el.child(nsPing, "ping") != nil })
	if ping.attr("to") != "localhost" || ping.attr("from") != "bot.localhost" || ping.attr("type") != "get" {
		t.Fatalf("ping %s", ping)
	}
	// Unanswered, the stream is declared dead and replaced.
	fc.expectClosed()
	fs.accept()
	a.waitUntil(t, "a dead-stream error", func() bool { return strings.Contains(a.state.LastError, "no data from the server") })
}

// flakySink fails the first n Delivers with a temporary error.
type flakySink struct {
	*channelstest.Sink
	mu sync.Mutex
	n  int
}

func (f *flakySink) Deliver(ctx context.Context, m *channels.Message) error {
	f.mu.Lock()
	fail := f.n > 0
	f.n--
	f.mu.Unlock()
	if fail {
		return errors.New("database busy")
	}
	if m.Text == "invalid" {
		return channels.ErrInvalid
	}
	return f.Sink.Deliver(ctx, m)
}

func TestFakeDeliverRetried(t *testing.T) {
	fs := newFakeServer(t, componentLogin("sec"))
	a, err := New(componentConfig(fs.l.Addr().String()), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	a.redo = channels.Backoff{Min: time.Millisecond, Max: 2 * time.Millisecond}
	sink := &flakySink{Sink: channelstest.NewSink(), n: 2}
	if err := a.Start(context.Background(), sink); err != nil {
		t.Fatal(err)
	}
	defer a.Stop(context.Background())
	fc := fs.accept()
	fc.send(`<message from='u@localhost/r' to='help@bot.localhost' id='m1'><body>first</body></message>`)
	fc.send(`<message from='u@localhost/r' to='help@bot.localhost' id='m2'><body>invalid</body></message>`)
	fc.send(`<message from='u@localhost/r' to='help@bot.localhost' id='m3'><body>third</body></message>`)
	msgs := sink.WaitMessages(2, wait)
	if len(msgs) != 2 || msgs[0].Text != "first" || msgs[1].Text != "third" {
		t.Fatalf("messages %+v", msgs)
	}
}

func TestFakeComponentWrongSecret(t *testing.T) {
	fs := newFakeServer(t, componentLogin("other"))
	a, _ := startAdapter(t, componentConfig(fs.l.Addr().String()))
	a.waitUntil(t, "an error", func() bool { return a.state.LastError != "" })
	if st := a.State(); st.Connected || !strings.Contains(st.LastError, "authentication failed: not-authorized") {
		t.Fatalf("state %+v", st)
	}
}

// clientLogin is the server side of a c2s login without STARTTLS: SASL
// PLAIN for bot@localhost / pw, then bind.
func clientLogin(fc *fakeConn) error {
	stream := func() error {
		if _, err := fc.rd.start(); err != nil {
			return err
		}
		fc.send(`<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:client' id='c1' from='localhost' version='1.0'>`)
		return nil
	}
	if err := stream(); err != nil {
		return err
	}
	fc.send(`<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms></stream:features>`)
	auth, err := fc.rd.next()
	if err != nil {
		return err
	}
	if !auth.is(nsSASL, "auth") || auth.attr("mechanism") != "PLAIN" || auth.Text != saslPlain("bot", "pw") {
		fc.send(`<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>`)
		return errors.New("bad auth")
	}
	fc.send(`<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>`)
	fc.rd = newReader(fc.rd.lr.r, 1<<20)
	if err := stream(); err != nil {
		return err
	}
	fc.send(`<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session></stream:features>`)
	bind, err := fc.rd.next()
	if err != nil {
		return err
	}
	if bind.child(nsBind, "bind").child("", "resource").Text != "zhiyin" {
		return errors.New("bad bind")
	}
	fc.send(`<iq type='result' id='` + bind.attr("id") + `'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>bot@localhost/zhiyin</jid></bind></iq>`)
	return nil
}

func clientConfig(addr string) Config {
	c := DefaultConfig()
	c.Enabled = true
	c.JID = "bot@localhost"
	c.Password = config.NewSecret("pw")
	c.Server = addr
	return c
}

func TestFakeClientPlain(t *testing.T) {
	fs := newFakeServer(t, clientLogin)

	// Without allow_plain the password never leaves, even on loopback.
	refused, _ := startAdapter(t, clientConfig(fs.l.Addr().String()))
	refused.waitUntil(t, "a refusal", func() bool { return refused.state.LastError != "" })
	if st := refused.State(); !strings.Contains(st.LastError, "refusing to authenticate without TLS") {
		t.Fatalf("state %+v", st)
	}
	if err := refused.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	cfg := clientConfig(fs.l.Addr().String())
	cfg.AllowPlain = true
	cfg.Rooms = []Room{{JID: "room@conference.localhost"}} // nick: bot
	a, sink := startAdapter(t, cfg)
	fc := fs.accept()
	fc.expect("initial presence", func(el *element) bool { return el.Name.Local == "presence" && el.attr("to") == "" })
	join := fc.expect("room join", func(el *element) bool { return el.Name.Local == "presence" })
	if join.attr("to") != "room@conference.localhost/bot" || join.child(nsMUC, "x").child("", "history").attr("maxstanzas") != "0" {
		t.Fatalf("join %s", join)
	}
	// Before the room confirms the join, a group reply waits (retryable).
	_, err := a.Send(context.Background(), &channels.Outgoing{Key: "k0", Conversation: "room@conference.localhost", ConversationType: channels.Group, Text: "x"})
	if err == nil || errors.Is(err, channels.ErrPermanent) {
		t.Fatalf("send before join: %v", err)
	}
	// The room was created by us: the adapter unlocks it.
	fc.send(`<presence from='room@conference.localhost/bot'><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='owner' role='moderator'/><status code='110'/><status code='201'/></x></presence>`)
	cfgIQ := fc.expect("instant room configuration", func(el *element) bool { return el.Name.Local == "iq" })
	if cfgIQ.attr("to") != "room@conference.localhost" || cfgIQ.child(nsMUCOwner, "query").child(nsData, "x").attr("type") != "submit" {
		t.Fatalf("configuration %s", cfgIQ)
	}
	a.waitUntil(t, "joined", func() bool { return a.rooms["room@conference.localhost"].joined })

	fc.send(`<message from='room@conference.localhost/alice' type='groupchat' id='g1'><body>bot: 你好</body></message>`)
	if msgs := sink.WaitMessages(1, wait); len(msgs) != 1 || !msgs[0].Mentioned || msgs[0].Text != "你好" {
		t.Fatalf("messages %+v", msgs)
	}
	r, err := a.Send(context.Background(), &channels.Outgoing{Key: "k1", Conversation: "room@conference.localhost", ConversationType: channels.Group, Text: "a < b & c"})
	if err != nil || r.PlatformID != "k1" {
		t.Fatalf("send: %v", err)
	}
	got := fc.expect("the reply", func(el *element) bool { return el.Name.Local == "message" })
	if got.attr("type") != "groupchat" || body(got) != "a < b & c" || got.attr("from") != "" {
		t.Fatalf("reply %s", got)
	}

	// Concurrent sends each arrive whole.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			_, err := a.Send(context.Background(), &channels.Outgoing{
				Key: "c" + string(rune('a'+i)), Conversation: "u" + string(rune('a'+i)) + "@localhost",
				ConversationType: channels.Direct, Text: strings.Repeat("长", 1000),
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for range 20 {
		m := fc.expect("a concurrent reply", func(el *element) bool { return el.Name.Local == "message" })
		if body(m) != strings.Repeat("长", 1000) || m.attr("type") != "chat" {
			t.Fatalf("reply %s", m)
		}
	}

	// The server drops the connection: the adapter logs in again and
	// rejoins.
	_ = fc.c.Close()
	fc = fs.accept()
	fc.expect("rejoin", func(el *element) bool { return el.Name.Local == "presence" && el.attr("to") != "" })
}

func TestSendErrors(t *testing.T) {
	cfg := clientConfig(freeAddr(t)) // nothing listens there
	cfg.AllowPlain = true
	a, _ := startAdapter(t, cfg)
	ctx := context.Background()
	_, err := a.Send(ctx, &channels.Outgoing{Key: "k", Conversation: "u@localhost", ConversationType: channels.Direct, Text: "hi"})
	if !errors.Is(err, ErrNotConnected) || errors.Is(err, channels.ErrPermanent) {
		t.Fatalf("disconnected send: %v", err)
	}
	for _, out := range []channels.Outgoing{
		{Key: "k", Conversation: "", Text: "hi"},
		{Key: "k", Conversation: "a b@c", Text: "hi"},
		{Key: "k", Conversation: "u@localhost", Text: "  "},
		{Key: "k", Conversation: "room@conference.localhost/nick", ConversationType: channels.Group, Text: "hi"},
		{Key: "k", Conversation: "room@conference.localhost", ConversationType: channels.Group, Text: "hi"},
	} {
		if _, err := a.Send(ctx, &out); !errors.Is(err, channels.ErrPermanent) {
			t.Errorf("send %+v: %v, want permanent", out, err)
		}
	}
}

func TestStopWithoutStart(t *testing.T) {
	a, err := New(clientConfig("127.0.0.1:1"), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := a.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if l := a.Limits(); l.MaxText != 4000 || l.Unit != channels.Runes || l.Global.N != 20 {
		t.Fatalf("limits %+v", l)
	}
}
