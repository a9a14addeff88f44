package media

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// DefaultDTMF is the telephone-event payload type we offer.
const DefaultDTMF = 101

// maxSDP bounds the body ParseSDP reads; a real audio offer is under 2 KiB.
const maxSDP = 64 << 10

// Description is what an SDP body says about its first RTP audio stream.
// It is a plain value: the caller owns it and its Codecs.
type Description struct {
	// Origin is the o= username; SessionID and SessionVersion are the o=
	// line's numbers (a re-INVITE with the same version changes nothing).
	Origin                    string
	SessionID, SessionVersion uint64
	// Addr is the RTP address: c= (media level over session level) and the
	// m= port. Port 0 means the stream is refused or removed; address
	// 0.0.0.0 means hold (RFC 2543 style).
	Addr netip.AddrPort
	// RTCP is a=rtcp: when given, else Addr with port+1 (Addr itself with
	// rtcp-mux).
	RTCP netip.AddrPort
	// RTCPMux is a=rtcp-mux: RTCP shares the RTP port.
	RTCPMux bool
	// Codecs are the audio codecs offered that we know (PCMU, PCMA, also
	// by rtpmap name on a dynamic payload type), in offer order.
	Codecs []Codec
	// DTMF is the telephone-event/8000 payload type, when HasDTMF.
	DTMF    uint8
	HasDTMF bool
	// Ptime is a=ptime in milliseconds, 20 when absent.
	Ptime int
	// Direction is the stream's direction attribute (media level over
	// session level), sendrecv when absent.
	Direction Direction

	// audio is the index of the audio stream among the m= lines; media
	// holds every m= line, so an answer can refuse the others in order.
	audio int
	media []mline
}

// mline is what an answer needs to refuse an m= line.
type mline struct {
	kind, proto, format string
}

// Hold reports whether the description puts the stream on hold: c=0.0.0.0,
// or a direction in which its writer does not receive.
func (d *Description) Hold() bool {
	return d.Addr.Addr().IsUnspecified() || !d.Direction.receives()
}

// ParseSDP reads an SDP body (RFC 4566, via pion/sdp/v3) and describes its
// first RTP/AVP or RTP/AVPF audio stream. Line endings may be CRLF or LF.
// Errors wrap ErrSDP (not SDP, no c= address, bad port), ErrNoAudio (no
// plain RTP audio stream) or ErrNoCodec (the audio stream offers neither
// PCMU nor PCMA). It does no I/O and is safe for concurrent use.
func ParseSDP(b []byte) (*Description, error) {
	if len(b) > maxSDP {
		return nil, fmt.Errorf("%w: body of %d bytes exceeds %d", ErrSDP, len(b), maxSDP)
	}
	body := normalize(b)
	if !strings.HasPrefix(body, "v=") {
		return nil, fmt.Errorf("%w: the body does not start with v=", ErrSDP)
	}
	var s sdp.SessionDescription
	if err := s.UnmarshalString(body); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSDP, err)
	}
	d := &Description{
		Origin:         s.Origin.Username,
		SessionID:      s.Origin.SessionID,
		SessionVersion: s.Origin.SessionVersion,
		Ptime:          20,
		Direction:      SendRecv,
		audio:          -1,
	}
	var m *sdp.MediaDescription
	for i, md := range s.MediaDescriptions {
		proto := strings.Join(md.MediaName.Protos, "/")
		format := "0"
		if len(md.MediaName.Formats) > 0 {
			format = md.MediaName.Formats[0]
		}
		d.media = append(d.media, mline{kind: md.MediaName.Media, proto: proto, format: format})
		if m == nil && md.MediaName.Media == "audio" && (proto == "RTP/AVP" || proto == "RTP/AVPF") {
			m, d.audio = md, i
		}
	}
	if m == nil {
		return nil, ErrNoAudio
	}
	if dir, ok := direction(m.Attributes); ok {
		d.Direction = dir
	} else if dir, ok := direction(s.Attributes); ok {
		d.Direction = dir
	}

	conn := m.ConnectionInformation
	if conn == nil {
		conn = s.ConnectionInformation
	}
	if conn == nil || conn.Address == nil {
		return nil, fmt.Errorf("%w: the audio stream has no connection address (c=)", ErrSDP)
	}
	ip, err := netip.ParseAddr(conn.Address.Address)
	if err != nil {
		return nil, fmt.Errorf("%w: c= address %q is not an IP address", ErrSDP, conn.Address.Address)
	}
	port := m.MediaName.Port.Value
	if port < 0 || port > 65535 {
		return nil, fmt.Errorf("%w: m= port %d", ErrSDP, port)
	}
	d.Addr = netip.AddrPortFrom(ip.Unmap(), uint16(port))
	_, d.RTCPMux = m.Attribute("rtcp-mux")
	d.RTCP = netip.AddrPortFrom(d.Addr.Addr(), uint16(port+1))
	if d.RTCPMux || port == 0 || port == 65535 {
		d.RTCP = d.Addr
	}
	if v, ok := m.Attribute("rtcp"); ok {
		if a, ok := parseRTCP(v, d.Addr.Addr()); ok {
			d.RTCP = a
		}
	}
	if v, ok := m.Attribute("ptime"); ok {
		if p, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && p >= 10 && p <= 200 {
			d.Ptime = p
		}
	}

	rtpmap := map[string]string{}
	for _, a := range m.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		pt, enc, ok := strings.Cut(strings.TrimSpace(a.Value), " ")
		if ok {
			rtpmap[pt] = strings.TrimSpace(enc)
		}
	}
	for _, f := range m.MediaName.Formats {
		n, err := strconv.ParseUint(f, 10, 8)
		if err != nil || n > 127 {
			continue
		}
		pt := uint8(n)
		name, rate := "", 8000
		if enc, ok := rtpmap[f]; ok {
			parts := strings.Split(enc, "/")
			name = parts[0]
			if len(parts) > 1 {
				if r, err := strconv.Atoi(parts[1]); err == nil {
					rate = r
				}
			}
		} else if pt == 0 {
			name = "PCMU"
		} else if pt == 8 {
			name = "PCMA"
		}
		c := Codec{Name: name, PayloadType: pt, ClockRate: rate}
		switch {
		case strings.EqualFold(name, "telephone-event") && rate == 8000:
			if !d.HasDTMF {
				d.DTMF, d.HasDTMF = pt, true
			}
		case c.known():
			if c.alaw() {
				c.Name = PCMA.Name
			} else {
				c.Name = PCMU.Name
			}
			d.Codecs = append(d.Codecs, c)
		}
	}
	if len(d.Codecs) == 0 {
		return nil, fmt.Errorf("%w: the audio stream offers %v", ErrNoCodec, m.MediaName.Formats)
	}
	return d, nil
}

// normalize makes a body pion parses: CRLF line ends, no blank or
// whitespace-padded lines (some gateways send them).
func normalize(b []byte) string {
	var out strings.Builder
	out.Grow(len(b) + 64)
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		out.Write(line)
		out.WriteString("\r\n")
	}
	return out.String()
}

// direction finds a direction attribute.
func direction(attrs []sdp.Attribute) (Direction, bool) {
	for _, a := range attrs {
		switch d := Direction(a.Key); d {
		case SendRecv, SendOnly, RecvOnly, Inactive:
			return d, true
		}
	}
	return "", false
}

// parseRTCP reads "a=rtcp:port [IN IP4 addr]" (RFC 3605).
func parseRTCP(v string, def netip.Addr) (netip.AddrPort, bool) {
	f := strings.Fields(v)
	if len(f) == 0 {
		return netip.AddrPort{}, false
	}
	p, err := strconv.ParseUint(f[0], 10, 16)
	if err != nil {
		return netip.AddrPort{}, false
	}
	ip := def
	if len(f) == 4 {
		if a, err := netip.ParseAddr(f[3]); err == nil {
			ip = a.Unmap()
		}
	}
	return netip.AddrPortFrom(ip, uint16(p)), true
}

// Local is our side of a negotiation.
type Local struct {
	// Addr is our RTP address as advertised in c= and m= (RTCP is port+1).
	Addr netip.AddrPort
	// Codecs is our preference among PCMU and PCMA; empty means PCMU,
	// PCMA.
	Codecs []Codec
	// DTMF is the telephone-event payload type we offer (DefaultDTMF,
	// 101); 0 offers none.
	DTMF uint8
	// SessionID and SessionVersion go on the o= line: keep the ID for the
	// call and bump the version with every new offer or answer that
	// changes something (hold, resume).
	SessionID, SessionVersion uint64
	// Username is the o= username; empty means "zhiyin".
	Username string
}

func (l Local) codecs() []Codec {
	if len(l.Codecs) == 0 {
		return []Codec{PCMU, PCMA}
	}
	return l.Codecs
}

func (l Local) supports(c Codec) bool {
	for _, o := range l.codecs() {
		if o.same(c) {
			return true
		}
	}
	return false
}

// Negotiated is the outcome of an offer/answer exchange: what a Stream
// sends and expects.
type Negotiated struct {
	// Remote is where RTP goes (port 0 or address 0.0.0.0: nowhere);
	// RemoteRTCP is where RTCP goes.
	Remote, RemoteRTCP netip.AddrPort
	// RTCPMux says RTCP shares the RTP port both ways.
	RTCPMux bool
	// Codec is what both sides send.
	Codec Codec
	// DTMF is the telephone-event payload type, when HasDTMF.
	DTMF    uint8
	HasDTMF bool
	// Ptime is the frame length in milliseconds (10 to 60 in steps of 10
	// are sent as is; anything else as 20).
	Ptime int
	// Send and Receive are from our side: may we send, will they send.
	Send, Receive bool
}

// Hold reports whether the negotiated stream carries nothing out.
func (n Negotiated) Hold() bool { return !n.Send }

// Answer answers an offer (RFC 3264): the first offered codec we support
// (with the offer's payload type), telephone-event with the offered
// payload type when offered and local.DTMF is not 0, ptime 20, rtcp-mux
// when offered, the direction mirrored (sendonly → recvonly, recvonly →
// sendonly, inactive → inactive; an old-style hold, c=0.0.0.0, is answered
// recvonly or inactive). Other m= lines are refused with port 0. It wraps
// ErrNoCodec when no codec matches (answer 488). It does no I/O.
func Answer(offer *Description, local Local) ([]byte, Negotiated, error) {
	var n Negotiated
	found := false
	for _, c := range offer.Codecs {
		if local.supports(c) {
			n.Codec, found = c, true
			break
		}
	}
	if !found {
		return nil, Negotiated{}, fmt.Errorf("answer: %w (offered %v)", ErrNoCodec, offer.Codecs)
	}
	n.Remote, n.RemoteRTCP, n.RTCPMux = offer.Addr, offer.RTCP, offer.RTCPMux
	if offer.HasDTMF && local.DTMF != 0 {
		n.DTMF, n.HasDTMF = offer.DTMF, true
	}
	n.Ptime = 20
	dir := offer.Direction.mirror()
	refused := offer.Addr.Port() == 0
	if offer.Addr.Addr().IsUnspecified() {
		// Old-style hold: nowhere to send to.
		if offer.Direction.sends() {
			dir = RecvOnly
		} else {
			dir = Inactive
		}
	}
	if refused {
		dir = Inactive
	}
	n.Send, n.Receive = dir.sends(), dir.receives()

	var b bytes.Buffer
	writeSession(&b, local)
	for i, m := range offer.media {
		if i != offer.audio {
			fmt.Fprintf(&b, "m=%s 0 %s %s\r\n", m.kind, m.proto, m.format)
			continue
		}
		port := local.Addr.Port()
		if refused {
			port = 0
		}
		writeAudio(&b, port, offer.media[i].proto, []Codec{n.Codec}, n.DTMF, n.HasDTMF)
		if offer.RTCPMux && !refused {
			b.WriteString("a=rtcp-mux\r\n")
		}
		fmt.Fprintf(&b, "a=%s\r\n", dir)
	}
	if len(offer.media) == 0 { // a Description built by hand
		writeAudio(&b, local.Addr.Port(), "RTP/AVP", []Codec{n.Codec}, n.DTMF, n.HasDTMF)
		fmt.Fprintf(&b, "a=%s\r\n", dir)
	}
	return b.Bytes(), n, nil
}

// Offer writes an offer for a call we place or a re-INVITE we send: our
// codecs in preference order, telephone-event when local.DTMF is not 0,
// ptime 20 and dir (SendOnly puts the peer on hold, SendRecv resumes). It
// does no I/O.
func Offer(local Local, dir Direction) []byte {
	if dir == "" {
		dir = SendRecv
	}
	var b bytes.Buffer
	writeSession(&b, local)
	writeAudio(&b, local.Addr.Port(), "RTP/AVP", local.codecs(), local.DTMF, local.DTMF != 0)
	fmt.Fprintf(&b, "a=%s\r\n", dir)
	return b.Bytes()
}

// Accept reads the answer to our offer: its first codec we support, its
// telephone-event payload type, its address and direction (their sendonly
// means we only receive). It wraps ErrNoAudio when the answer refused the
// stream (port 0) and ErrNoCodec when it chose no codec we offered. It
// does no I/O.
func Accept(local Local, answer *Description) (Negotiated, error) {
	if answer.Addr.Port() == 0 {
		return Negotiated{}, fmt.Errorf("accept: the peer refused the audio stream: %w", ErrNoAudio)
	}
	n := Negotiated{Remote: answer.Addr, RemoteRTCP: answer.RTCP, RTCPMux: answer.RTCPMux, Ptime: answer.Ptime}
	found := false
	for _, c := range answer.Codecs {
		if local.supports(c) {
			n.Codec, found = c, true
			break
		}
	}
	if !found {
		return Negotiated{}, fmt.Errorf("accept: %w (answered %v)", ErrNoCodec, answer.Codecs)
	}
	if answer.HasDTMF && local.DTMF != 0 {
		n.DTMF, n.HasDTMF = answer.DTMF, true
	}
	// Their direction is what they do; we mirror it.
	n.Send, n.Receive = answer.Direction.receives(), answer.Direction.sends()
	if answer.Addr.Addr().IsUnspecified() {
		n.Send = false
	}
	return n, nil
}

func addrType(a netip.Addr) string {
	if a.Is6() && !a.Is4In6() {
		return "IP6"
	}
	return "IP4"
}

func writeSession(b *bytes.Buffer, l Local) {
	user := l.Username
	if user == "" {
		user = "zhiyin"
	}
	ip := l.Addr.Addr().Unmap()
	if !ip.IsValid() {
		ip = netip.IPv4Unspecified()
	}
	fmt.Fprintf(b, "v=0\r\no=%s %d %d IN %s %s\r\ns=zhiyin\r\nc=IN %s %s\r\nt=0 0\r\n",
		user, l.SessionID, l.SessionVersion, addrType(ip), ip, addrType(ip), ip)
}

func writeAudio(b *bytes.Buffer, port uint16, proto string, codecs []Codec, dtmf uint8, hasDTMF bool) {
	fmt.Fprintf(b, "m=audio %d %s", port, proto)
	for _, c := range codecs {
		fmt.Fprintf(b, " %d", c.PayloadType)
	}
	if hasDTMF {
		fmt.Fprintf(b, " %d", dtmf)
	}
	b.WriteString("\r\n")
	for _, c := range codecs {
		fmt.Fprintf(b, "a=rtpmap:%d %s/%d\r\n", c.PayloadType, c.Name, c.ClockRate)
	}
	if hasDTMF {
		fmt.Fprintf(b, "a=rtpmap:%d telephone-event/8000\r\na=fmtp:%d 0-16\r\n", dtmf, dtmf)
	}
	b.WriteString("a=ptime:20\r\n")
}
