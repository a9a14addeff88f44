package sip

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"github.com/zhiyin/zhiyin/internal/config"
)

// testRegistrar is a small registrar on sipgo: it challenges every
// REGISTER without credentials (401, digest MD5 qop=auth), checks the
// answer, and records what it bound.
type testRegistrar struct {
	addr     string
	user     string
	password string
	grant    int // seconds granted in the 200

	mu       sync.Mutex
	ok       []time.Time // accepted REGISTERs with Expires > 0
	removed  int         // accepted REGISTERs with Expires: 0
	refused  int
	contacts []string
	okCh     chan struct{}
}

func startRegistrar(t *testing.T, user, password string, grant int) *testRegistrar {
	t.Helper()
	r := &testRegistrar{user: user, password: password, grant: grant, okCh: make(chan struct{}, 16)}
	ua, err := sipgo.NewUA(sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(testLog(t))),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(testLog(t))))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(testLog(t)))
	if err != nil {
		t.Fatal(err)
	}
	const nonce = "registrar-nonce-1"
	srv.OnRegister(func(req *sip.Request, tx sip.ServerTransaction) {
		h := req.GetHeader("Authorization")
		if h == nil {
			res := sip.NewResponseFromRequest(req, 401, "Unauthorized", nil)
			chal := digest.Challenge{Realm: "pbx", Nonce: nonce, Algorithm: "MD5", QOP: []string{"auth"}}
			res.AppendHeader(sip.NewHeader("WWW-Authenticate", chal.String()))
			_ = tx.Respond(res)
			return
		}
		cred, err := digest.ParseCredentials(h.Value())
		good := err == nil && cred.Username == r.user
		if good {
			want, err := digest.Digest(&digest.Challenge{Realm: "pbx", Nonce: nonce, Algorithm: "MD5", QOP: []string{"auth"}},
				digest.Options{Method: "REGISTER", URI: cred.URI, Username: r.user, Password: r.password, Cnonce: cred.Cnonce, Count: cred.Nc})
			good = err == nil && want.Response == cred.Response
		}
		if !good {
			r.mu.Lock()
			r.refused++
			r.mu.Unlock()
			_ = tx.Respond(sip.NewResponseFromRequest(req, 403, "Forbidden", nil))
			return
		}
		exp := 3600
		if e := req.GetHeader("Expires"); e != nil {
			exp, _ = strconv.Atoi(e.Value())
		}
		r.mu.Lock()
		if exp == 0 {
			r.removed++
		} else {
			r.ok = append(r.ok, time.Now())
			if c := req.Contact(); c != nil {
				r.contacts = append(r.contacts, c.Address.String())
			}
		}
		r.mu.Unlock()
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		if exp > 0 {
			res.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(min(exp, r.grant))))
		}
		_ = tx.Respond(res)
		select {
		case r.okCh <- struct{}{}:
		default:
		}
	})
	l, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = l.LocalAddr().String()
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.ServeUDP(l) }()
	t.Cleanup(func() { l.Close(); ua.Close(); <-done })
	return r
}

func TestRegister(t *testing.T) {
	reg := startRegistrar(t, "1001", "pw", 2) // grants 2 s: refresh at about 1 s
	a := newTestAnswerer()
	s := startServer(t, a, func(c *Config) {
		c.Register = RegisterConfig{Registrar: "sip:" + reg.addr, Username: "1001", Password: config.NewSecret("pw"), Domain: "pbx.example", Expires: time.Hour}
	})
	for i := 0; i < 2; i++ {
		select {
		case <-reg.okCh:
		case <-time.After(10 * time.Second):
			t.Fatalf("registration %d never accepted (status %+v)", i+1, s.Status())
		}
	}
	st := s.Status()
	if !st.Registering || !st.Registered || st.LastError != "" {
		t.Errorf("status %+v", st)
	}
	reg.mu.Lock()
	gap := reg.ok[1].Sub(reg.ok[0])
	contact := reg.contacts[0]
	reg.mu.Unlock()
	if gap < 500*time.Millisecond || gap > 3*time.Second {
		t.Errorf("refreshed after %v for a 2 s grant, want about half", gap)
	}
	if !strings.Contains(contact, "1001@127.0.0.1:"+strconv.Itoa(int(s.Addr().Port()))) {
		t.Errorf("contact %q does not point at us (%s)", contact, s.Addr())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	reg.mu.Lock()
	removed := reg.removed
	reg.mu.Unlock()
	if removed != 1 {
		t.Errorf("Stop sent %d unregistrations, want 1", removed)
	}
}

func TestRegisterWrongPassword(t *testing.T) {
	reg := startRegistrar(t, "1001", "pw", 60)
	a := newTestAnswerer()
	s := startServer(t, a, func(c *Config) {
		c.Register = RegisterConfig{Registrar: reg.addr, Username: "1001", Password: config.NewSecret("nope"), Expires: time.Hour}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := s.Status()
		if st.LastError != "" {
			if st.Registered || !strings.Contains(st.LastError, "403") || !strings.Contains(st.LastError, "password") {
				t.Errorf("status %+v", st)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no registration error reported: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
