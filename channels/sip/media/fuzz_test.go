package media

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

func FuzzParseSDP(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.sdp"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 65535 RTP/AVP 0 8 127\r\na=rtcp:0\r\na=rtpmap:127 telephone-event/8000\r\n"))
	local := Local{Addr: netip.MustParseAddrPort("10.0.0.1:4000"), DTMF: DefaultDTMF}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseSDP(b)
		if err != nil {
			if !errors.Is(err, ErrSDP) && !errors.Is(err, ErrNoAudio) && !errors.Is(err, ErrNoCodec) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if len(d.Codecs) == 0 {
			t.Fatal("parsed with no codec")
		}
		ans, _, err := Answer(d, local)
		if err != nil {
			if !errors.Is(err, ErrNoCodec) {
				t.Fatal(err)
			}
			return
		}
		if _, err := ParseSDP(ans); err != nil && d.Addr.Port() != 0 {
			t.Fatalf("our answer does not parse: %v\n%s", err, ans)
		}
		Accept(local, d)
	})
}

// FuzzRTP puts arbitrary datagrams into a started stream's RTP and RTCP
// handlers while its clock runs.
func FuzzRTP(f *testing.F) {
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: 65535, Timestamp: 1<<32 - 100, SSRC: 7}, Payload: make([]byte, 160)}
	b, _ := p.Marshal()
	f.Add(b)
	p.PayloadType, p.Marker, p.Payload = 101, true, []byte{5, 0x8a, 3, 0x20}
	b, _ = p.Marshal()
	f.Add(b)
	p.CSRC = []uint32{1, 2}
	if err := p.SetExtension(1, []byte{1}); err != nil {
		f.Fatal(err)
	}
	p.Padding, p.PaddingSize = true, 4
	b, _ = p.Marshal()
	f.Add(b)
	sr, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.SenderReport{SSRC: 7, NTPTime: 1 << 40, Reports: []rtcp.ReceptionReport{{SSRC: 1, LastSenderReport: 5}}}, &rtcp.Goodbye{Sources: []uint32{7}}})
	f.Add(sr)
	f.Add([]byte{0x80})

	s, err := Listen(loopback, PortRange{}, DefaultConfig(), nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	remote := netip.MustParseAddrPort("127.0.0.1:9")
	n := negotiated(remote)
	n.RTCPMux = true
	if err := s.Start(n, &sink{}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		now := time.Now()
		if isRTCPPacket(b) {
			s.handleRTCP(b, remote, now)
		} else {
			s.handleRTP(b, remote, now)
		}
		s.mu.Lock()
		out := make([]float32, 160)
		s.receiveFrame(out, now)
		s.mu.Unlock()
		for _, v := range out {
			if v > 1 || v < -1 || v != v {
				t.Fatalf("sample %v", v)
			}
		}
	})
}

// FuzzDTMF decodes telephone-event payloads: each 6 bytes are a 2-byte
// timestamp step and a 4-byte payload, fed to a receiver in turn. Every
// digit is reported at most once per event timestamp.
func FuzzDTMF(f *testing.F) {
	f.Add([]byte{0, 0, 5, 0x0a, 0, 160, 0, 0, 5, 0x8a, 1, 64, 0, 0, 5, 0x8a, 1, 64})
	f.Add([]byte{0, 0, 11, 0x0a, 0, 160, 3, 32, 1, 0x8a, 0, 160})
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		var r dtmfReceiver
		var out []rune
		events := 0
		ts := uint32(0)
		last := uint32(1)
		now := time.Unix(0, 0)
		for len(b) >= 2 {
			ts += uint32(binary.BigEndian.Uint16(b))
			b = b[2:]
			ev, err := parseEvent(b)
			if err != nil {
				break
			}
			b = b[4:]
			if ts != last {
				events++
				last = ts
			}
			now = now.Add(20 * time.Millisecond)
			out = r.packet(ts, ev, now, out)
			if back := ev.append(nil); len(back) != 4 {
				t.Fatal("encode")
			}
		}
		out = r.poll(now.Add(time.Second), out)
		if len(out) > events {
			t.Fatalf("%d digits from %d events", len(out), events)
		}
	})
}
