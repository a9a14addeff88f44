package media

import (
	"strings"

	"github.com/zhiyin/zhiyin/asr/audio"
)

// Codec is an RTP audio payload format. Codecs are compared by Name
// (case-insensitively) and ClockRate; PayloadType is what one SDP body
// maps it to (static 0 and 8, or a dynamic one).
type Codec struct {
	Name        string
	PayloadType uint8
	ClockRate   int
}

// The codecs a Stream can carry. They are values: copy them, never assign
// to them.
var (
	// PCMU is G.711 µ-law, static payload type 0.
	PCMU = Codec{Name: "PCMU", PayloadType: 0, ClockRate: 8000}
	// PCMA is G.711 A-law, static payload type 8.
	PCMA = Codec{Name: "PCMA", PayloadType: 8, ClockRate: 8000}
)

// same reports whether two codecs are the same format (ignoring the
// payload type).
func (c Codec) same(o Codec) bool {
	return strings.EqualFold(c.Name, o.Name) && c.ClockRate == o.ClockRate
}

// known reports whether a Stream can carry c.
func (c Codec) known() bool { return c.same(PCMU) || c.same(PCMA) }

// alaw reports whether c is PCMA (else PCMU).
func (c Codec) alaw() bool { return c.same(PCMA) }

// decode turns G.711 bytes into samples (dst must be len(src) long).
func (c Codec) decode(dst []float32, src []byte) {
	if c.alaw() {
		audio.DecodeALaw(dst, src)
		return
	}
	audio.DecodeMuLaw(dst, src)
}

// encode turns samples into G.711 bytes (dst must be len(src) long).
func (c Codec) encode(dst []byte, src []float32) {
	if c.alaw() {
		audio.EncodeALaw(dst, src)
		return
	}
	audio.EncodeMuLaw(dst, src)
}

// Direction is an SDP media direction attribute.
type Direction string

// Media directions (RFC 3264 §5.1), as seen by the side that writes them.
const (
	SendRecv Direction = "sendrecv"
	SendOnly Direction = "sendonly"
	RecvOnly Direction = "recvonly"
	Inactive Direction = "inactive"
)

// mirror is the direction an answerer writes for an offered one.
func (d Direction) mirror() Direction {
	switch d {
	case SendOnly:
		return RecvOnly
	case RecvOnly:
		return SendOnly
	case Inactive:
		return Inactive
	}
	return SendRecv
}

// sends and receives report what the side that wrote d will do.
func (d Direction) sends() bool    { return d == SendRecv || d == SendOnly }
func (d Direction) receives() bool { return d == SendRecv || d == RecvOnly }
