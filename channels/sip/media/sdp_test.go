package media

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/internal/config"
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseSDPFixtures(t *testing.T) {
	ap := netip.MustParseAddrPort
	tests := []struct {
		file      string
		origin    string
		addr      netip.AddrPort
		rtcp      netip.AddrPort
		mux       bool
		codecs    []Codec
		dtmf      int // -1: none
		dir       Direction
		hold      bool
		answerPT  uint8
		answerDir Direction
	}{
		{"asterisk.sdp", "root", ap("192.168.10.5:14530"), ap("192.168.10.5:14531"), false, []Codec{PCMU, PCMA}, 101, SendRecv, false, 0, SendRecv},
		{"freeswitch.sdp", "FreeSWITCH", ap("10.0.0.20:24680"), ap("10.0.0.20:24681"), false, []Codec{PCMA, PCMU}, 101, SendRecv, false, 8, SendRecv},
		{"audiocodes.sdp", "AudiocodesGW", ap("172.16.1.10:6010"), ap("172.16.1.10:6011"), false, []Codec{PCMA}, 96, SendRecv, false, 8, SendRecv},
		{"cisco.sdp", "CiscoSystemsSIP-GW-UserAgent", ap("10.20.30.3:17236"), ap("10.20.30.3:17237"), false, []Codec{PCMU}, -1, SendRecv, false, 0, SendRecv},
		{"baresip.sdp", "-", ap("192.168.1.33:10066"), ap("192.168.1.33:10066"), true, []Codec{PCMU, PCMA}, 101, SendRecv, false, 0, SendRecv},
		{"sipp.sdp", "user1", ap("127.0.0.1:6000"), ap("127.0.0.1:6001"), false, []Codec{PCMU}, -1, SendRecv, false, 0, SendRecv},
		{"hold-sendonly.sdp", "root", ap("192.168.10.5:14530"), ap("192.168.10.5:14531"), false, []Codec{PCMU}, 101, SendOnly, true, 0, RecvOnly},
		{"hold-c0.sdp", "Cisco", ap("0.0.0.0:17236"), ap("0.0.0.0:17237"), false, []Codec{PCMU}, -1, SendRecv, true, 0, RecvOnly},
		{"video-dynamic.sdp", "-", ap("10.9.9.9:9002"), ap("10.9.9.9:9003"), false, []Codec{{"PCMU", 112, 8000}}, 110, RecvOnly, false, 112, SendOnly},
	}
	local := Local{Addr: ap("198.51.100.7:20000"), DTMF: DefaultDTMF, SessionID: 42, SessionVersion: 1}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			d, err := ParseSDP(readFixture(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if d.Origin != tt.origin || d.Addr != tt.addr || d.RTCP != tt.rtcp || d.RTCPMux != tt.mux {
				t.Errorf("got origin %q addr %v rtcp %v mux %v", d.Origin, d.Addr, d.RTCP, d.RTCPMux)
			}
			if !slices.Equal(d.Codecs, tt.codecs) {
				t.Errorf("codecs %v, want %v", d.Codecs, tt.codecs)
			}
			if (tt.dtmf >= 0) != d.HasDTMF || (d.HasDTMF && int(d.DTMF) != tt.dtmf) {
				t.Errorf("dtmf %v %d, want %d", d.HasDTMF, d.DTMF, tt.dtmf)
			}
			if d.Direction != tt.dir || d.Hold() != tt.hold || d.Ptime != 20 {
				t.Errorf("direction %s hold %v ptime %d", d.Direction, d.Hold(), d.Ptime)
			}

			body, n, err := Answer(d, local)
			if err != nil {
				t.Fatal(err)
			}
			if n.Codec.PayloadType != tt.answerPT || n.Remote != tt.addr || n.RTCPMux != tt.mux {
				t.Errorf("negotiated %+v", n)
			}
			if n.HasDTMF != d.HasDTMF || n.DTMF != d.DTMF {
				t.Errorf("negotiated dtmf %v %d", n.HasDTMF, n.DTMF)
			}
			// The answer is itself valid SDP that says what we decided.
			a, err := ParseSDP(body)
			if err != nil {
				t.Fatalf("answer does not parse: %v\n%s", err, body)
			}
			if a.Direction != tt.answerDir || a.Addr != local.Addr || len(a.Codecs) != 1 || a.Codecs[0].PayloadType != tt.answerPT {
				t.Errorf("answer dir %s addr %v codecs %v\n%s", a.Direction, a.Addr, a.Codecs, body)
			}
			if a.HasDTMF != d.HasDTMF || a.DTMF != d.DTMF || a.RTCPMux != tt.mux {
				t.Errorf("answer dtmf %v %d mux %v", a.HasDTMF, a.DTMF, a.RTCPMux)
			}
			if n.Send != tt.answerDir.sends() || n.Receive != tt.answerDir.receives() {
				t.Errorf("send %v receive %v for %s", n.Send, n.Receive, tt.answerDir)
			}
			if strings.Contains(string(body), "\n") && !strings.Contains(string(body), "\r\n") {
				t.Error("answer lines must end in CRLF")
			}
			if len(a.media) != len(d.media) {
				t.Errorf("answer has %d m= lines, offer %d", len(a.media), len(d.media))
			}
		})
	}
}

func TestAnswerRefusesOtherStreams(t *testing.T) {
	d, err := ParseSDP(readFixture(t, "video-dynamic.sdp"))
	if err != nil {
		t.Fatal(err)
	}
	body, _, err := Answer(d, Local{Addr: netip.MustParseAddrPort("10.0.0.1:4000"), DTMF: 101})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(body), "\r\n")
	var ms []string
	for _, l := range lines {
		if strings.HasPrefix(l, "m=") {
			ms = append(ms, l)
		}
	}
	if want := []string{"m=video 0 RTP/AVP 96", "m=audio 4000 RTP/AVP 112 110"}; !slices.Equal(ms, want) {
		t.Errorf("m= lines %q, want %q", ms, want)
	}
}

func TestParseSDPErrors(t *testing.T) {
	tests := []struct {
		name string
		body []byte
		want error
	}{
		{"g729 only", readFixture(t, "g729-only.sdp"), ErrNoCodec},
		{"no c=", readFixture(t, "no-c.sdp"), ErrSDP},
		{"srtp only", readFixture(t, "srtp.sdp"), ErrNoAudio},
		{"garbage", []byte("hello"), ErrSDP},
		{"empty", nil, ErrSDP},
		{"video only", []byte("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=video 5000 RTP/AVP 96\r\n"), ErrNoAudio},
		{"hostname", []byte("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 pbx.example\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n"), ErrSDP},
		{"huge", make([]byte, maxSDP+1), ErrSDP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSDP(tt.body)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestAnswerNoCommonCodec(t *testing.T) {
	d, err := ParseSDP(readFixture(t, "audiocodes.sdp")) // PCMA only
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = Answer(d, Local{Addr: netip.MustParseAddrPort("10.0.0.1:4000"), Codecs: []Codec{PCMU}})
	if !errors.Is(err, ErrNoCodec) {
		t.Fatalf("got %v, want ErrNoCodec", err)
	}
}

func TestAnswerRefusedStream(t *testing.T) {
	body := []byte("v=0\r\no=- 1 2 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n")
	d, err := ParseSDP(body)
	if err != nil {
		t.Fatal(err)
	}
	ans, n, err := Answer(d, Local{Addr: netip.MustParseAddrPort("10.0.0.1:4000")})
	if err != nil {
		t.Fatal(err)
	}
	if n.Send || n.Receive || !strings.Contains(string(ans), "m=audio 0 ") {
		t.Errorf("refused stream answered %+v\n%s", n, ans)
	}
}

func TestOfferAccept(t *testing.T) {
	local := Local{Addr: netip.MustParseAddrPort("10.0.0.1:4000"), DTMF: DefaultDTMF, SessionID: 7, SessionVersion: 3, Username: "zy"}
	offer := Offer(local, SendRecv)
	d, err := ParseSDP(offer)
	if err != nil {
		t.Fatalf("%v\n%s", err, offer)
	}
	if d.Origin != "zy" || d.SessionID != 7 || d.SessionVersion != 3 || !slices.Equal(d.Codecs, []Codec{PCMU, PCMA}) || d.DTMF != 101 || d.Direction != SendRecv {
		t.Errorf("offer parsed as %+v", d)
	}
	// The peer answers the offer with this package's Answer (PCMA only).
	peer := Local{Addr: netip.MustParseAddrPort("10.0.0.2:5000"), Codecs: []Codec{PCMA}, DTMF: 101}
	ans, pn, err := Answer(d, peer)
	if err != nil {
		t.Fatal(err)
	}
	ad, err := ParseSDP(ans)
	if err != nil {
		t.Fatal(err)
	}
	n, err := Accept(local, ad)
	if err != nil {
		t.Fatal(err)
	}
	if n.Codec != PCMA || pn.Codec != PCMA || n.Remote != peer.Addr || !n.Send || !n.Receive || !n.HasDTMF || n.DTMF != 101 {
		t.Errorf("accepted %+v", n)
	}

	// Hold: we offer sendonly, the peer answers recvonly.
	hold, err := ParseSDP(Offer(local, SendOnly))
	if err != nil {
		t.Fatal(err)
	}
	ans, pn, err = Answer(hold, peer)
	if err != nil {
		t.Fatal(err)
	}
	if pn.Send || !pn.Receive {
		t.Errorf("peer on hold: %+v", pn)
	}
	ad, _ = ParseSDP(ans)
	n, err = Accept(local, ad)
	if err != nil || !n.Send || n.Receive {
		t.Errorf("holding: %+v %v", n, err)
	}

	// An answer refusing audio.
	ad.Addr = netip.AddrPortFrom(ad.Addr.Addr(), 0)
	if _, err := Accept(local, ad); !errors.Is(err, ErrNoAudio) {
		t.Errorf("refused answer: %v", err)
	}
	// An answer with a codec we did not offer.
	ad.Addr = peer.Addr
	ad.Codecs = []Codec{{"PCMA", 8, 8000}}
	if _, err := Accept(Local{Codecs: []Codec{PCMU}}, ad); !errors.Is(err, ErrNoCodec) {
		t.Errorf("foreign codec: %v", err)
	}
}

func TestParseSDPLenient(t *testing.T) {
	// LF line ends, blank lines and trailing spaces, IPv6.
	body := "v=0\n\no=- 1 1 IN IP6 2001:db8::1 \ns=-\nc=IN IP6 2001:db8::1\nt=0 0\nm=audio 7000 RTP/AVP 8\n\n"
	d, err := ParseSDP([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if d.Addr != netip.MustParseAddrPort("[2001:db8::1]:7000") || d.Codecs[0] != PCMA {
		t.Errorf("%+v", d)
	}
	ans, _, err := Answer(d, Local{Addr: netip.MustParseAddrPort("[2001:db8::2]:8000")})
	if err != nil || !strings.Contains(string(ans), "c=IN IP6 2001:db8::2") {
		t.Errorf("%v\n%s", err, ans)
	}
}

func TestConfigValidate(t *testing.T) {
	def := DefaultConfig()
	if err := config.Validate(&def); err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	c.Jitter = time.Millisecond
	c.RTCPInterval = 0
	err := config.Validate(&c)
	var es config.Errors
	if !errors.As(err, &es) || len(es) != 2 || es[0].Path != "jitter" || es[1].Path != "rtcp_interval" {
		t.Errorf("got %v", err)
	}
	if _, err := Listen(loopback, PortRange{}, c, nil); err == nil || !strings.Contains(err.Error(), "jitter:") {
		t.Errorf("Listen with a bad config: %v", err)
	}
	for _, r := range []PortRange{{10000, 20000}, {}, {10001, 10003}} {
		if err := r.Validate(); err != nil {
			t.Errorf("%v: %v", r, err)
		}
	}
	for _, r := range []PortRange{{10, 20}, {20000, 10000}, {10001, 10002}, {60000, 70000}} {
		if err := r.Validate(); err == nil || !strings.Contains(err.Error(), "rtp_ports:") {
			t.Errorf("%v: %v", r, err)
		}
	}
}
