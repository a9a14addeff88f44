package sip

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"github.com/zhiyin/zhiyin/internal/config"
)

func TestParseDTMFInfo(t *testing.T) {
	for _, tc := range []struct {
		ct, body string
		want     rune
		ok       bool
	}{
		{"application/dtmf-relay", "Signal=5\r\nDuration=160\r\n", '5', true},
		{"application/dtmf-relay", "Signal= #\nDuration=250", '#', true},
		{"Application/DTMF-Relay; charset=utf-8", "signal=*\r\n", '*', true},
		{"application/dtmf-relay", "Signal=11\r\nDuration=160", '#', true},
		{"application/dtmf-relay", "Signal=d", 'D', true},
		{"application/dtmf", "7", '7', true},
		{"application/dtmf-relay", "Duration=160", 0, false},
		{"application/dtmf-relay", "Signal=16", 0, false},
		{"application/dtmf-relay", "Signal=E", 0, false},
		{"text/plain", "Signal=5", 0, false},
	} {
		got, ok := parseDTMFInfo(tc.ct, []byte(tc.body))
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseDTMFInfo(%q, %q) = %q %v, want %q %v", tc.ct, tc.body, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseSipfrag(t *testing.T) {
	for body, want := range map[string]int{
		"SIP/2.0 200 OK\r\n":                        200,
		"SIP/2.0 100 Trying":                        100,
		"SIP/2.0 486 Busy Here\r\nContent-Length:0": 486,
		"sip/2.0 603 Decline":                       603,
		"INVITE sip:a@b SIP/2.0":                    0,
		"SIP/2.0 99 Odd":                            0,
		"":                                          0,
	} {
		got, ok := parseSipfrag([]byte(body))
		if got != want || ok != (want != 0) {
			t.Errorf("parseSipfrag(%q) = %d %v, want %d", body, got, ok, want)
		}
	}
}

func TestSessionExpiresHeader(t *testing.T) {
	req := sip.NewRequest(sip.INVITE, sip.Uri{Host: "x"})
	req.AppendHeader(sip.NewHeader("Session-Expires", "1800; refresher=UAS"))
	if d, r := sessionExpires(req); d != 30*time.Minute || r != "uas" {
		t.Errorf("got %v %q", d, r)
	}
	req = sip.NewRequest(sip.INVITE, sip.Uri{Host: "x"})
	req.AppendHeader(sip.NewHeader("x", "90"))
	if d, r := sessionExpires(req); d != 90*time.Second || r != "" {
		t.Errorf("compact form: got %v %q", d, r)
	}
}

func TestDigestAuth(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	a := newDigestAuth(AuthConfig{Username: "pbx", Password: config.NewSecret("pw"), Realm: "zhiyin"}, func() time.Time { return now })
	if v, _ := a.check("", "INVITE"); v != authChallenge {
		t.Fatalf("no credentials: %v", v)
	}
	chal, err := digest.ParseChallenge(a.challenge(false))
	if err != nil {
		t.Fatal(err)
	}
	answer := func(user, pw string) string {
		c, err := digest.Digest(chal, digest.Options{Method: "INVITE", URI: "sip:zhiyin@127.0.0.1", Username: user, Password: pw})
		if err != nil {
			t.Fatal(err)
		}
		return c.String()
	}
	if v, _ := a.check(answer("pbx", "pw"), "INVITE"); v != authOK {
		t.Errorf("good credentials: %v", v)
	}
	if v, _ := a.check(answer("pbx", "wrong"), "INVITE"); v != authForbidden {
		t.Errorf("wrong password: %v", v)
	}
	if v, _ := a.check(answer("eve", "pw"), "INVITE"); v != authForbidden {
		t.Errorf("wrong user: %v", v)
	}
	if v, _ := a.check(answer("pbx", "pw"), "BYE"); v != authForbidden {
		t.Errorf("answer for another method: %v", v)
	}
	good := answer("pbx", "pw")
	now = now.Add(nonceLifetime + time.Second)
	if v, stale := a.check(good, "INVITE"); v != authChallenge || !stale {
		t.Errorf("expired nonce: %v stale=%v", v, stale)
	}
	forged := strings.Replace(good, chal.Nonce, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 1)
	if v, _ := a.check(forged, "INVITE"); v != authChallenge {
		t.Errorf("foreign nonce: %v", v)
	}
}

func TestConfigValidate(t *testing.T) {
	def := DefaultConfig()
	def.Enabled = true
	if err := config.Validate(&def); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, tc := range []struct {
		mutate func(*Config)
		key    string
	}{
		{func(c *Config) { c.Listen = "5060" }, "listen"},
		{func(c *Config) { c.RTPPorts = "20000" }, "rtp_ports"},
		{func(c *Config) { c.RTPPorts = "20000-10000" }, "rtp_ports"},
		{func(c *Config) { c.RTPPorts = "10001-10002" }, "rtp_ports"},
		{func(c *Config) { c.Peers = []string{"10.0.0.1", "10.0.0.0/33"} }, "peers[1]"},
		{func(c *Config) { c.Auth.Username = "u" }, "auth"},
		{func(c *Config) { c.Register.Registrar = "pbx" }, "register.username"},
		{func(c *Config) {
			c.Register.Registrar = "pbx"
			c.Register.Username = "u"
			c.Register.Expires = time.Second
		}, "register.expires"},
		{func(c *Config) { c.MaxCalls = 0 }, "max_calls"},
		{func(c *Config) { c.Transfer = "attended" }, "transfer"},
		{func(c *Config) { c.Transfer = TransferBridge }, "agent"},
		{func(c *Config) { c.Agent = "queue@pbx" }, "agent"},
		{func(c *Config) { c.SessionExpires = time.Minute }, "session_expires"},
		{func(c *Config) { c.Codecs = []string{"G729"} }, "codecs"},
		{func(c *Config) { c.Media.Jitter = time.Millisecond }, "media.jitter"},
	} {
		c := DefaultConfig()
		c.Enabled = true
		tc.mutate(&c)
		if err := config.Validate(&c); !hasPath(err, tc.key) {
			t.Errorf("want an error at %s, got %v", tc.key, err)
		}
		// New checks its config as enabled.
		c.Enabled = false
		if _, err := New(c, Deps{Answerer: newTestAnswerer()}); err == nil || !strings.Contains(err.Error(), tc.key+":") {
			t.Errorf("New: want an error naming %s, got %v", tc.key, err)
		}
		// A disabled section is not checked, except media's own ranges.
		err := config.Validate(&c)
		if strings.HasPrefix(tc.key, "media.") != (err != nil) {
			t.Errorf("disabled, bad %s: %v", tc.key, err)
		}
	}
}

// hasPath reports whether err is config.Errors holding a problem at path.
func hasPath(err error, path string) bool {
	var es config.Errors
	if !errors.As(err, &es) {
		return false
	}
	for _, e := range es {
		if e.Path == path {
			return true
		}
	}
	return false
}

func TestPeerAllowed(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Peers = []string{"192.0.2.10", "198.51.100.0/24", "2001:db8::1"}
	s, err := New(cfg, Deps{Answerer: newTestAnswerer()})
	if err != nil {
		t.Fatal(err)
	}
	for src, want := range map[string]bool{
		"192.0.2.10:5060":          true,
		"192.0.2.11:5060":          false,
		"198.51.100.77:5080":       true,
		"[2001:db8::1]:5060":       true,
		"[::ffff:192.0.2.10]:5060": true,
		"garbage":                  false,
	} {
		if got := s.peerAllowed(src); got != want {
			t.Errorf("peerAllowed(%s) = %v", src, got)
		}
	}
}

func FuzzParseDTMFInfo(f *testing.F) {
	f.Add("application/dtmf-relay", []byte("Signal=5\r\nDuration=160\r\n"))
	f.Add("application/dtmf", []byte("#"))
	f.Add("application/dtmf-relay; x=y", []byte("Signal=12"))
	f.Add("application/dtmf-relay", []byte("Signal\n=\n"))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		d, ok := parseDTMFInfo(ct, body)
		if ok && !strings.ContainsRune("0123456789*#ABCD", d) {
			t.Fatalf("digit %q", d)
		}
	})
}

func FuzzParseSipfrag(f *testing.F) {
	f.Add([]byte("SIP/2.0 200 OK\r\n"))
	f.Add([]byte("SIP/2.0 180 Ringing\r\nContent-Length: 0\r\n"))
	f.Add([]byte("SIP/2.0"))
	f.Add([]byte("SIP/2.0 -1 x"))
	f.Fuzz(func(t *testing.T, body []byte) {
		code, ok := parseSipfrag(body)
		if ok && (code < 100 || code > 699) {
			t.Fatalf("code %d", code)
		}
	})
}

func FuzzDigestCheck(f *testing.F) {
	f.Add(`Digest username="pbx", realm="zhiyin", nonce="x", uri="sip:a", response="00", qop=auth, nc=00000001, cnonce="c"`)
	f.Add(`Digest username="pbx"`)
	f.Add(`Basic abc`)
	a := newDigestAuth(AuthConfig{Username: "pbx", Password: config.NewSecret("pw")}, time.Now)
	f.Fuzz(func(t *testing.T, hdr string) {
		if v, _ := a.check(hdr, "INVITE"); v == authOK {
			t.Fatalf("accepted %q", hdr)
		}
	})
}
