package xmpp

import (
	"bufio"
	"errors"
	"strings"
	"testing"
)

const testHeader = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='localhost' version='1.0'>`

func streamOf(s string, max int64) *reader {
	return newReader(bufio.NewReader(strings.NewReader(s)), max)
}

// readAll reads the header and every stanza of s.
func readAll(s string, max int64) ([]*element, error) {
	r := streamOf(s, max)
	if _, err := r.start(); err != nil {
		return nil, err
	}
	var out []*element
	for {
		el, err := r.next()
		if err != nil {
			return out, err
		}
		out = append(out, el)
	}
}

func TestHandshakeDigest(t *testing.T) {
	// XEP-0114, example 3: stream id 3BF96D32, secret "test".
	if got, want := handshakeDigest("3BF96D32", "test"), "aaee83c26aeeafcbabeabfcbcd50df997e0a2a1e"; got != want {
		t.Fatalf("handshake = %s, want %s", got, want)
	}
}

func TestSASLPlain(t *testing.T) {
	// RFC 6120, 9.2.3 (juliet / r0m30myr0m30).
	if got, want := saslPlain("juliet", "r0m30myr0m30"), "AGp1bGlldAByMG0zMG15cjBtMzA="; got != want {
		t.Fatalf("PLAIN = %s, want %s", got, want)
	}
}

func TestReaderStanzas(t *testing.T) {
	els, err := readAll(testHeader+`  <message from='a@b/c' id='1'><body>hi &amp; &lt;you&gt;</body></message>
	<presence/> </stream:stream>`, 1<<16)
	if !errors.Is(err, ErrStreamClosed) {
		t.Fatalf("err = %v, want ErrStreamClosed", err)
	}
	if len(els) != 2 || !els[0].is(nsClient, "message") || !els[1].is(nsClient, "presence") {
		t.Fatalf("stanzas = %v", els)
	}
	if got := els[0].child(nsClient, "body").Text; got != "hi & <you>" {
		t.Fatalf("body = %q", got)
	}
}

func TestReaderRefuses(t *testing.T) {
	deep := strings.Repeat("<a>", maxDepth+1) + strings.Repeat("</a>", maxDepth+1)
	many := "<message>" + strings.Repeat("<a/>", maxElements) + "</message>"
	for _, tc := range []struct {
		name, in string
		max      int64
		want     error
	}{
		{"doctype", `<?xml version='1.0'?><!DOCTYPE foo [<!ENTITY x "y">]>` + testHeader, 1 << 16, ErrRestrictedXML},
		{"doctype in stream", testHeader + `<!DOCTYPE foo>`, 1 << 16, ErrRestrictedXML},
		{"pi", testHeader + `<?php x?>`, 1 << 16, ErrRestrictedXML},
		{"pi in stanza", testHeader + `<message><?php x?></message>`, 1 << 16, ErrRestrictedXML},
		{"text between stanzas", testHeader + `hello<presence/>`, 1 << 16, ErrRestrictedXML},
		{"too large", testHeader + `<message><body>` + strings.Repeat("x", 5000) + `</body></message>`, 4096, ErrStanzaTooLarge},
		{"too large whitespace", testHeader + strings.Repeat(" ", 5000), 4096, ErrStanzaTooLarge},
		{"too deep", testHeader + deep, 1 << 20, ErrTooDeep},
		{"too many", testHeader + many, 1 << 20, ErrTooDeep},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readAll(tc.in, tc.max)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	// An undefined entity is a syntax error, never expanded.
	if _, err := readAll(testHeader+`<message><body>&xxe;</body></message>`, 1<<16); err == nil || errors.Is(err, ErrStreamClosed) {
		t.Fatalf("undefined entity: err = %v", err)
	}
}

func TestReaderLimitResetsPerStanza(t *testing.T) {
	one := `<message><body>` + strings.Repeat("x", 3000) + `</body></message>`
	els, err := readAll(testHeader+one+"\n"+one+one+`</stream:stream>`, 4096)
	if !errors.Is(err, ErrStreamClosed) || len(els) != 3 {
		t.Fatalf("got %d stanzas, err %v", len(els), err)
	}
}

func TestStreamError(t *testing.T) {
	_, err := readAll(testHeader+`<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Replaced</text></stream:error>`, 1<<16)
	var se *StreamError
	if !errors.As(err, &se) || se.Condition != "conflict" || se.Text != "Replaced" {
		t.Fatalf("err = %v", err)
	}
}

func TestEscape(t *testing.T) {
	if got, want := escape(`<a href="x">&'`), `&lt;a href=&#34;x&#34;&gt;&amp;&#39;`; got != want {
		t.Fatalf("escape = %s, want %s", got, want)
	}
	// What escape writes reads back as the same text; characters XML
	// cannot carry become U+FFFD.
	in := "第一行\n<b>&amp;</b>\t\"q\" 'a' \x00\x1b end"
	els, err := readAll(testHeader+`<message><body>`+escape(in)+`</body></message>`, 1<<16)
	if err == nil || len(els) != 1 {
		t.Fatalf("stanzas %d, err %v", len(els), err)
	}
	want := strings.NewReplacer("\x00", "\uFFFD", "\x1b", "\uFFFD").Replace(in)
	if got := els[0].child("", "body").Text; got != want {
		t.Fatalf("round trip = %q, want %q", got, want)
	}
}

func TestElementString(t *testing.T) {
	in := `<message xmlns='jabber:client' from='a@b/c' xml:lang='en'><body>x &lt; y</body><stanza-id xmlns='urn:xmpp:sid:0' by='a@b' id='1'/></message>`
	els, _ := readAll(testHeader+in, 1<<16)
	if len(els) != 1 {
		t.Fatal("no stanza")
	}
	out := els[0].String()
	// The serialisation parses back to the same tree.
	els2, _ := readAll(testHeader+out, 1<<16)
	if len(els2) != 1 || els2[0].String() != out {
		t.Fatalf("round trip:\n%s\n%v", out, els2)
	}
	if !strings.Contains(out, `<stanza-id xmlns="urn:xmpp:sid:0" by="a@b" id="1"/>`) || !strings.Contains(out, `xml:lang="en"`) {
		t.Fatalf("serialised: %s", out)
	}
}

// FuzzStanza parses arbitrary bytes as a stream of stanzas and reads every
// message as the adapter would: no panic, and nothing read past the limit.
func FuzzStanza(f *testing.F) {
	for _, s := range []string{
		testHeader + `<message from='u@localhost/r' type='chat' id='1'><body>你好</body></message>`,
		testHeader + `<message from='room@conf/nick' type='groupchat' id='2'><body>知音: 查订单</body><stanza-id xmlns='urn:xmpp:sid:0' by='room@conf' id='s'/></message>`,
		testHeader + `<message from='room@conf/nick' type='groupchat'><body>x</body><delay xmlns='urn:xmpp:delay' stamp='2020-01-01T00:00:00Z'/></message>`,
		testHeader + `<message from='u@h'><body>https://h/a.png</body><x xmlns='jabber:x:oob'><url>https://h/a.png</url></x></message>`,
		testHeader + `<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>`,
		`<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>`,
		testHeader + `<a><b><c>` + strings.Repeat("<d>", 40),
		testHeader + `<iq type='get' id='p' from='localhost'><ping xmlns='urn:xmpp:ping'/></iq></stream:stream>`,
	} {
		f.Add([]byte(s))
	}
	rooms := map[string]*room{"room@conf": {jid: "room@conf", nick: "知音"}}
	e := &env{channel: Name, mode: ModeClient, self: "bot@localhost", rooms: rooms, now: fixedNow}
	f.Fuzz(func(t *testing.T, data []byte) {
		const max = 4096
		r := newReader(bufio.NewReader(strings.NewReader(string(data))), max)
		if _, err := r.start(); err != nil {
			return
		}
		for range 64 {
			el, err := r.next()
			if r.lr.n > max {
				t.Fatalf("read %d bytes for one stanza, limit %d", r.lr.n, max)
			}
			if err != nil {
				return
			}
			if el.Name.Local == "message" {
				if m, ok := parseMessage(el, e); ok && (m.ID == "" || m.Conversation == "" || len(m.Key()) > maxKey+70) {
					t.Fatalf("bad message %+v", m)
				}
			}
			_ = el.String()
		}
	})
}
