package xmpp

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Namespaces.
const (
	nsStream    = "http://etherx.jabber.org/streams"
	nsStreamErr = "urn:ietf:params:xml:ns:xmpp-streams"
	nsStanzaErr = "urn:ietf:params:xml:ns:xmpp-stanzas"
	nsClient    = "jabber:client"
	nsComponent = "jabber:component:accept"
	nsTLS       = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL      = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsBind      = "urn:ietf:params:xml:ns:xmpp-bind"
	nsSession   = "urn:ietf:params:xml:ns:xmpp-session"
	nsMUC       = "http://jabber.org/protocol/muc"
	nsMUCUser   = "http://jabber.org/protocol/muc#user"
	nsMUCOwner  = "http://jabber.org/protocol/muc#owner"
	nsData      = "jabber:x:data"
	nsPing      = "urn:xmpp:ping"
	nsDelay     = "urn:xmpp:delay"
	nsSID       = "urn:xmpp:sid:0"
	nsOOB       = "jabber:x:oob"
	nsXML       = "http://www.w3.org/XML/1998/namespace"
)

// Bounds of one stanza beyond its size.
const (
	maxDepth    = 32
	maxElements = 8192
)

// element is one parsed stanza (or a child of one): the generic tree the
// stanza handlers read. Text is the character data directly inside it.
type element struct {
	Name     xml.Name
	Attr     []xml.Attr
	Children []*element
	Text     string
}

// attr returns the value of the unqualified attribute local.
func (e *element) attr(local string) string {
	for _, a := range e.Attr {
		if a.Name.Space == "" && a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// child returns the first child named local in namespace space ("" for
// any), or nil.
func (e *element) child(space, local string) *element {
	if e == nil {
		return nil
	}
	for _, c := range e.Children {
		if c.Name.Local == local && (space == "" || c.Name.Space == space) {
			return c
		}
	}
	return nil
}

// is reports whether e is named local in namespace space.
func (e *element) is(space, local string) bool {
	return e != nil && e.Name.Space == space && e.Name.Local == local
}

// limitReader counts the bytes the decoder takes since the last reset and
// fails once they exceed max, so that one stanza (and everything the
// decoder buffers for it) stays bounded.
type limitReader struct {
	r      *bufio.Reader
	n, max int64
}

func (l *limitReader) ReadByte() (byte, error) {
	if l.n >= l.max {
		return 0, ErrStanzaTooLarge
	}
	b, err := l.r.ReadByte()
	if err == nil {
		l.n++
	}
	return b, err
}

// Read is here for io.Reader; xml.Decoder only calls ReadByte.
func (l *limitReader) Read(p []byte) (int, error) {
	if l.n >= l.max {
		return 0, ErrStanzaTooLarge
	}
	if int64(len(p)) > l.max-l.n {
		p = p[:l.max-l.n]
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	return n, err
}

func (l *limitReader) reset() { l.n = 0 }

// reader reads one XML stream: its header, then one stanza at a time.
// Not safe for concurrent use.
type reader struct {
	lr  *limitReader
	dec *xml.Decoder
}

// newReader reads a stream from br with stanzas of at most max bytes. A
// stream restart (after STARTTLS or SASL) takes a new reader on the same
// bufio.Reader.
func newReader(br *bufio.Reader, max int64) *reader {
	lr := &limitReader{r: br, max: max}
	dec := xml.NewDecoder(lr)
	dec.Strict = true
	return &reader{lr: lr, dec: dec}
}

// start reads up to and including the stream header and returns it.
func (r *reader) start() (xml.StartElement, error) {
	r.lr.reset()
	first := true
	for {
		tok, err := r.dec.Token()
		if err != nil {
			return xml.StartElement{}, err
		}
		switch t := tok.(type) {
		case xml.ProcInst:
			if !first || t.Target != "xml" {
				return xml.StartElement{}, ErrRestrictedXML
			}
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return xml.StartElement{}, fmt.Errorf("%w: text before the stream header", ErrRestrictedXML)
			}
		case xml.StartElement:
			if t.Name.Space != nsStream || t.Name.Local != "stream" {
				return xml.StartElement{}, fmt.Errorf("xmpp: expected a stream header, got <%s>", t.Name.Local)
			}
			return t.Copy(), nil
		case xml.EndElement:
			return xml.StartElement{}, fmt.Errorf("xmpp: unexpected </%s> before the stream header", t.Name.Local)
		default: // comments, directives (DOCTYPE)
			return xml.StartElement{}, ErrRestrictedXML
		}
		first = false
	}
}

// next reads the next stanza. Whitespace between stanzas (keepalives) is
// skipped. A <stream:error/> is returned as *StreamError, the end of the
// stream as ErrStreamClosed.
func (r *reader) next() (*element, error) {
	for {
		r.lr.reset()
		tok, err := r.dec.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			el, err := r.build(t)
			if err != nil {
				return nil, err
			}
			if el.is(nsStream, "error") {
				return nil, streamError(el)
			}
			return el, nil
		case xml.EndElement:
			return nil, ErrStreamClosed
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return nil, fmt.Errorf("%w: text between stanzas", ErrRestrictedXML)
			}
		default:
			return nil, ErrRestrictedXML
		}
	}
}

// build reads the rest of the element start began.
func (r *reader) build(start xml.StartElement) (*element, error) {
	root := &element{Name: start.Name, Attr: start.Copy().Attr}
	stack := []*element{root}
	texts := [][]byte{nil}
	count := 1
	for len(stack) > 0 {
		tok, err := r.dec.Token()
		if err != nil {
			return nil, err
		}
		top := len(stack) - 1
		switch t := tok.(type) {
		case xml.StartElement:
			count++
			if len(stack) >= maxDepth || count > maxElements {
				return nil, ErrTooDeep
			}
			el := &element{Name: t.Name, Attr: t.Copy().Attr}
			stack[top].Children = append(stack[top].Children, el)
			stack = append(stack, el)
			texts = append(texts, nil)
		case xml.EndElement:
			stack[top].Text = string(texts[top])
			stack, texts = stack[:top], texts[:top]
		case xml.CharData:
			texts[top] = append(texts[top], t...)
		case xml.Comment:
			// Forbidden by RFC 6120 but harmless inside a stanza; dropped.
		default: // processing instructions, directives
			return nil, ErrRestrictedXML
		}
	}
	return root, nil
}

func streamError(el *element) *StreamError {
	e := &StreamError{Condition: "undefined-condition"}
	for _, c := range el.Children {
		switch {
		case c.Name.Space == nsStreamErr && c.Name.Local == "text":
			e.Text = c.Text
		case c.Name.Space == nsStreamErr:
			e.Condition = c.Name.Local
		}
	}
	return e
}

// escape returns s escaped for XML text or a quoted attribute value;
// characters XML cannot carry become U+FFFD.
func escape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// String serialises the element back to XML (namespaces declared where
// they change), for Message.Raw and logs.
func (e *element) String() string {
	var b strings.Builder
	e.write(&b, "")
	return b.String()
}

func (e *element) write(w io.StringWriter, parentNS string) {
	_, _ = w.WriteString("<" + e.Name.Local)
	if e.Name.Space != parentNS {
		_, _ = w.WriteString(` xmlns="` + escape(e.Name.Space) + `"`)
	}
	prefixes := 0
	for _, a := range e.Attr {
		switch {
		case a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns":
			continue // declarations are rewritten
		case a.Name.Space == "":
			_, _ = w.WriteString(" " + a.Name.Local + `="` + escape(a.Value) + `"`)
		case a.Name.Space == nsXML || a.Name.Space == "xml":
			_, _ = w.WriteString(" xml:" + a.Name.Local + `="` + escape(a.Value) + `"`)
		default:
			p := "a" + strconv.Itoa(prefixes)
			prefixes++
			_, _ = w.WriteString(" xmlns:" + p + `="` + escape(a.Name.Space) + `" ` + p + ":" + a.Name.Local + `="` + escape(a.Value) + `"`)
		}
	}
	if e.Text == "" && len(e.Children) == 0 {
		_, _ = w.WriteString("/>")
		return
	}
	_, _ = w.WriteString(">")
	_, _ = w.WriteString(escape(e.Text))
	for _, c := range e.Children {
		c.write(w, e.Name.Space)
	}
	_, _ = w.WriteString("</" + e.Name.Local + ">")
}

// isTimeout reports whether err is a deadline exceeded on the socket.
func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}
