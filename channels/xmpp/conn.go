package xmpp

import (
	"bufio"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// idleConn sets a read deadline before every read: a stream that stays
// silent longer than idle (the keepalive pings get answers) is dead.
type idleConn struct {
	net.Conn
	idle *atomic.Int64 // nanoseconds; 0: no deadline
}

func (c *idleConn) Read(p []byte) (int, error) {
	if d := c.idle.Load(); d > 0 {
		_ = c.Conn.SetReadDeadline(time.Now().Add(time.Duration(d)))
	}
	return c.Conn.Read(p)
}

// session is one connected, authenticated stream. Its reader belongs to
// the one goroutine that reads; write is safe for concurrent use.
type session struct {
	ns       string // default namespace of the stream: jabber:client or jabber:component:accept
	loopback bool   // the peer's address is a loopback address
	domain   string // the server domain (client) or the component domain
	jid      string // the full JID bound (client) or the component domain
	tls      bool
	addr     string
	timeout  time.Duration

	raw  net.Conn
	conn net.Conn // raw or the TLS connection over it
	br   *bufio.Reader
	rd   *reader
	max  int64
	idle atomic.Int64

	wmu    sync.Mutex
	closed bool
	stop   func() bool // releases the context.AfterFunc
	pings  atomic.Int64
}

// dialOptions are what a connection needs beyond Config: the TLS
// configuration (built once in Start) and whether the password may go in
// clear.
type dialOptions struct {
	tls        *tls.Config
	plainOK    bool
	maxStanza  int64
	timeout    time.Duration
	onInsecure func() // called when TLS verification is off (a warning)
}

// dial connects to addr; the connection is closed when ctx ends.
func dial(ctx context.Context, addr string, o dialOptions) (*session, error) {
	d := net.Dialer{Timeout: o.timeout, KeepAlive: 30 * time.Second}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", addr, err)
	}
	s := &session{addr: addr, timeout: o.timeout, raw: raw, max: o.maxStanza}
	if ta, ok := raw.RemoteAddr().(*net.TCPAddr); ok {
		s.loopback = ta.IP.IsLoopback()
	}
	s.idle.Store(int64(o.timeout))
	s.conn = &idleConn{Conn: raw, idle: &s.idle}
	s.br = bufio.NewReader(s.conn)
	s.rd = newReader(s.br, s.max)
	s.wmu.Lock()
	s.stop = context.AfterFunc(ctx, func() { s.close(true) })
	s.wmu.Unlock()
	return s, nil
}

// close ends the stream (politely when graceful) and the connection.
// Idempotent.
func (s *session) close(graceful bool) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	if graceful {
		_ = s.conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = io.WriteString(s.conn, "</stream:stream>")
	}
	_ = s.raw.Close()
	if s.stop != nil {
		s.stop()
	}
}

// write sends raw XML under the writer lock; a failed write closes the
// connection (a partial stanza leaves the stream unusable), which makes the
// reader fail and the adapter reconnect.
func (s *session) write(ctx context.Context, data string) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed {
		return ErrNotConnected
	}
	dl := time.Now().Add(s.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	_ = s.conn.SetWriteDeadline(dl)
	if _, err := io.WriteString(s.conn, data); err != nil {
		s.closed = true
		_ = s.raw.Close()
		if s.stop != nil {
			s.stop()
		}
		return fmt.Errorf("xmpp write: %w", err)
	}
	return nil
}

// openStream sends a stream header and reads the server's.
func (s *session) openStream(ctx context.Context, header string) (id string, err error) {
	if err := s.write(ctx, header); err != nil {
		return "", err
	}
	hdr, err := s.rd.start()
	if err != nil {
		return "", fmt.Errorf("read stream header: %w", err)
	}
	for _, a := range hdr.Attr {
		if a.Name.Space == "" && a.Name.Local == "id" {
			id = a.Value
		}
	}
	return id, nil
}

// restart begins a new stream on the same connection (after STARTTLS or
// SASL): the old parser's state is discarded.
func (s *session) restart() {
	s.rd = newReader(s.br, s.max)
}

func clientHeader(domain string) string {
	return `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='` +
		escape(domain) + `' version='1.0' xml:lang='zh'>`
}

func componentHeader(domain string) string {
	return `<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='` +
		escape(domain) + `'>`
}

// saslPlain is the initial response of SASL PLAIN (RFC 4616) with an empty
// authorisation identity.
func saslPlain(user, password string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + password))
}

// handshakeDigest is XEP-0114's handshake: hex(SHA1(stream id + secret)).
func handshakeDigest(streamID, secret string) string {
	sum := sha1.Sum([]byte(streamID + secret))
	return hex.EncodeToString(sum[:])
}

// loginClient negotiates a c2s stream: STARTTLS, SASL PLAIN, resource
// binding and, where the server still requires it, a session.
func (s *session) loginClient(ctx context.Context, jid, password, resource string, o dialOptions) error {
	s.ns = nsClient
	local, domain, _ := splitJID(jid)
	s.domain = domain
	authed := false
	for {
		if _, err := s.openStream(ctx, clientHeader(domain)); err != nil {
			return err
		}
		feats, err := s.rd.next()
		if err != nil {
			return fmt.Errorf("read stream features: %w", err)
		}
		if !feats.is(nsStream, "features") {
			return fmt.Errorf("xmpp: expected stream features, got <%s>", feats.Name.Local)
		}
		if !s.tls {
			if feats.child(nsTLS, "starttls") != nil {
				if err := s.startTLS(ctx, domain, o); err != nil {
					return err
				}
				continue
			}
			if !o.plainOK || !s.loopback {
				return fmt.Errorf("%w: %s offers no STARTTLS (enable TLS on the server; allow_plain is only for a server on loopback)", ErrInsecure, s.addr)
			}
		}
		if mechs := feats.child(nsSASL, "mechanisms"); mechs != nil && !authed {
			if err := s.authPlain(ctx, mechs, local, password); err != nil {
				return err
			}
			authed = true
			s.restart()
			continue
		}
		if !authed {
			return errors.New("xmpp: server offers no SASL authentication")
		}
		if feats.child(nsBind, "bind") == nil {
			return errors.New("xmpp: server offers no resource binding")
		}
		if err := s.bind(ctx, resource); err != nil {
			return err
		}
		if sess := feats.child(nsSession, "session"); sess != nil && sess.child("", "optional") == nil {
			if _, err := s.iq(ctx, "set", domain, `<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/>`); err != nil {
				return fmt.Errorf("xmpp session: %w", err)
			}
		}
		return nil
	}
}

func (s *session) startTLS(ctx context.Context, domain string, o dialOptions) error {
	if err := s.write(ctx, `<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`); err != nil {
		return err
	}
	el, err := s.rd.next()
	if err != nil {
		return fmt.Errorf("starttls: %w", err)
	}
	if !el.is(nsTLS, "proceed") {
		return fmt.Errorf("xmpp: server refused STARTTLS (<%s/>)", el.Name.Local)
	}
	if s.br.Buffered() != 0 {
		return errors.New("xmpp: data after <proceed/> before the TLS handshake")
	}
	cfg := o.tls.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName = domain
	}
	if cfg.InsecureSkipVerify && o.onInsecure != nil {
		o.onInsecure()
	}
	tc := tls.Client(&idleConn{Conn: s.raw, idle: &s.idle}, cfg)
	hctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		return fmt.Errorf("tls handshake with %s: %w", s.addr, err)
	}
	s.wmu.Lock()
	s.conn = tc
	s.wmu.Unlock()
	s.tls = true
	s.br = bufio.NewReader(tc)
	s.restart()
	return nil
}

func (s *session) authPlain(ctx context.Context, mechs *element, user, password string) error {
	var offered []string
	plain := false
	for _, m := range mechs.Children {
		if m.Name.Local == "mechanism" {
			offered = append(offered, m.Text)
			plain = plain || m.Text == "PLAIN"
		}
	}
	if !plain {
		return fmt.Errorf("%w: the server offers no SASL PLAIN (offered: %v)", ErrAuth, offered)
	}
	err := s.write(ctx, `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>`+saslPlain(user, password)+`</auth>`)
	if err != nil {
		return err
	}
	el, err := s.rd.next()
	if err != nil {
		return fmt.Errorf("sasl: %w", err)
	}
	switch {
	case el.is(nsSASL, "success"):
		return nil
	case el.is(nsSASL, "failure"):
		cond, text := "", ""
		for _, c := range el.Children {
			if c.Name.Local == "text" {
				text = c.Text
			} else {
				cond = c.Name.Local
			}
		}
		return fmt.Errorf("%w: %s %s (check jid and password)", ErrAuth, cond, text)
	default:
		return fmt.Errorf("xmpp sasl: unexpected <%s>", el.Name.Local)
	}
}

func (s *session) bind(ctx context.Context, resource string) error {
	res, err := s.iq(ctx, "set", "", `<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>`+escape(resource)+`</resource></bind>`)
	if err != nil {
		return fmt.Errorf("xmpp bind: %w", err)
	}
	j := res.child(nsBind, "bind").child("", "jid")
	if j == nil || checkJID(j.Text, true, false) != nil {
		return errors.New("xmpp bind: no valid jid in the result")
	}
	s.jid = j.Text
	return nil
}

// iq sends an iq during login and reads its answer (nothing else arrives
// before the stream is bound).
func (s *session) iq(ctx context.Context, typ, to, payload string) (*element, error) {
	id := "z" + strconv.FormatInt(s.pings.Add(1), 10)
	att := ""
	if to != "" {
		att = ` to='` + escape(to) + `'`
	}
	if err := s.write(ctx, `<iq type='`+typ+`' id='`+id+`'`+att+`>`+payload+`</iq>`); err != nil {
		return nil, err
	}
	for range 16 {
		el, err := s.rd.next()
		if err != nil {
			return nil, err
		}
		if el.Name.Local != "iq" || el.attr("id") != id {
			continue
		}
		if el.attr("type") == "result" {
			return el, nil
		}
		return nil, fmt.Errorf("refused: %s", stanzaErrorCondition(el))
	}
	return nil, errors.New("no answer")
}

// loginComponent performs XEP-0114's handshake.
func (s *session) loginComponent(ctx context.Context, domain, secret string) error {
	s.ns = nsComponent
	s.domain, s.jid = domain, domain
	id, err := s.openStream(ctx, componentHeader(domain))
	if err != nil {
		var se *StreamError
		if errors.As(err, &se) {
			return fmt.Errorf("%w: %s %s (is component_domain configured as a Component on the server?)", ErrAuth, se.Condition, se.Text)
		}
		return err
	}
	if id == "" {
		return errors.New("xmpp component: the server's stream header has no id")
	}
	if err := s.write(ctx, `<handshake>`+handshakeDigest(id, secret)+`</handshake>`); err != nil {
		return err
	}
	el, err := s.rd.next()
	if err != nil {
		var se *StreamError
		if errors.As(err, &se) {
			return fmt.Errorf("%w: %s %s (check component_secret)", ErrAuth, se.Condition, se.Text)
		}
		return fmt.Errorf("xmpp handshake: %w", err)
	}
	if el.Name.Local != "handshake" {
		return fmt.Errorf("xmpp handshake: unexpected <%s>", el.Name.Local)
	}
	return nil
}

// stanzaErrorCondition names the defined condition of an error stanza.
func stanzaErrorCondition(el *element) string {
	e := el.child("", "error")
	if e == nil {
		return "unknown error"
	}
	cond, text := "undefined-condition", ""
	for _, c := range e.Children {
		switch {
		case c.Name.Local == "text":
			text = c.Text
		case c.Name.Space == nsStanzaErr:
			cond = c.Name.Local
		}
	}
	if text != "" {
		return cond + ": " + text
	}
	return cond
}
