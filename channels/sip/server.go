package sip

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/zhiyin/zhiyin/channels/sip/media"
	"github.com/zhiyin/zhiyin/channels/voice"
)

// Deps are what a Server needs from the process.
type Deps struct {
	// Answerer takes each call (the voice engine). Required.
	Answerer voice.Answerer
	// Log receives signalling events (never audio or what callers say);
	// nil discards.
	Log *slog.Logger
	// Metrics, when set, gets the zhiyin_sip_* collectors.
	Metrics prometheus.Registerer
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Status is the line's state for /readyz, doctor and the console.
type Status struct {
	// Listening is true between a successful Start and Stop.
	Listening bool
	// Addr is the bound SIP address.
	Addr string
	// Registering is true when register.registrar is configured;
	// Registered tells whether the registration is current.
	Registering, Registered bool
	// RegisteredUntil is when the current registration lapses.
	RegisteredUntil time.Time
	// LastError is the last registration or listener failure ("" if none).
	LastError string
	// Calls is how many calls are up (or being set up).
	Calls int
}

// allowed is our Allow header: what we answer.
const allowed = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, REFER, NOTIFY"

// Log attribute keys.
const (
	logCallID = "call_id"
	logRemote = "remote"
	logCode   = "code"
	logErr    = "err"
	logReason = "reason"
)

// Server is one SIP line: it listens on UDP and TCP, takes calls from
// allowed peers, and optionally registers. Create with New, then Start;
// Stop ends every call. Safe for concurrent use.
type Server struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	now     func() time.Time
	met     *metrics
	auth    *digestAuth
	peers   []netip.Prefix
	codecs  []media.Codec
	ports   media.PortRange
	started bool
	// minSE is the smallest session interval we accept (RFC 4028 Min-SE,
	// 90 s; tests shorten it to watch timers fire).
	minSE time.Duration
	// ackTimeout is how long our 200 OK waits for its ACK (64·T1 = 32 s).
	ackTimeout time.Duration

	// Set by Start.
	ua        *sipgo.UserAgent
	srv       *sipgo.Server
	client    *sipgo.Client
	dlgUDP    *sipgo.DialogUA
	dlgTCP    *sipgo.DialogUA
	udp       net.PacketConn
	tcp       net.Listener
	addr      netip.AddrPort
	public    string // host advertised in Contact/Via
	mediaBind netip.Addr
	mediaAdv  netip.Addr
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup // serving goroutines, call runs, bridged End calls
	regDone   chan struct{}  // closed when registerLoop returned

	mu        sync.Mutex
	calls     map[string]*call // by dialog ID (ours are UAS dialogs)
	agents    map[string]*call // bridged agent legs by their client dialog ID
	slots     int              // calls up or being set up (≤ MaxCalls)
	stopping  bool
	status    Status
	regCallID string
	regCSeq   uint32
}

// New checks cfg and builds a Server; it does no I/O.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := validate(cfg); err != nil {
		return nil, err
	}
	if deps.Answerer == nil {
		return nil, errors.New("sip: Deps.Answerer is required")
	}
	s := &Server{cfg: cfg, deps: deps, log: deps.Log, now: deps.Now,
		calls: map[string]*call{}, agents: map[string]*call{}, minSE: minSessionExpires, ackTimeout: 64 * sip.T1}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.cfg.Transfer == "" {
		s.cfg.Transfer = TransferRefer
	}
	if s.cfg.UserAgent == "" {
		s.cfg.UserAgent = "zhiyin"
	}
	var err error
	if s.met, err = newMetrics(deps.Metrics); err != nil {
		return nil, fmt.Errorf("sip metrics: %w", err)
	}
	if cfg.Auth.Username != "" {
		s.auth = newDigestAuth(cfg.Auth, s.now)
	}
	for _, p := range cfg.Peers {
		pr, _ := parsePeer(p) // validated
		s.peers = append(s.peers, pr)
	}
	s.codecs, _ = cfg.codecs()
	s.ports, _ = parsePortRange(cfg.RTPPorts)
	return s, nil
}

// Start binds UDP and TCP on sip.listen, starts serving and, when
// configured, registering. It returns once both sockets listen; an error
// names the busy address. Call once.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.started || s.stopping {
		s.mu.Unlock()
		return fmt.Errorf("sip start: %w", ErrStopped)
	}
	s.started = true
	s.mu.Unlock()

	udp, err := net.ListenPacket("udp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("sip listen udp %s: %w (is another SIP server running? change sip.listen)", s.cfg.Listen, err)
	}
	ap := udp.LocalAddr().(*net.UDPAddr).AddrPort()
	tcp, err := net.Listen("tcp", netip.AddrPortFrom(ap.Addr(), ap.Port()).String())
	if err != nil {
		udp.Close()
		return fmt.Errorf("sip listen tcp %s: %w (change sip.listen)", ap, err)
	}
	s.udp, s.tcp = udp, tcp
	s.addr = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())

	if err := s.resolveAddresses(); err != nil {
		udp.Close()
		tcp.Close()
		return err
	}

	sipLog := s.log.With("component", "sipgo")
	ua, err := sipgo.NewUA(
		sipgo.WithUserAgent(s.cfg.UserAgent),
		sipgo.WithUserAgentHostname(s.public),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(sipLog)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(sipLog)),
	)
	if err != nil {
		udp.Close()
		tcp.Close()
		return fmt.Errorf("sip user agent: %w", err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(sipLog))
	if err != nil {
		ua.Close()
		udp.Close()
		tcp.Close()
		return fmt.Errorf("sip server: %w", err)
	}
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname(s.public), sipgo.WithClientLogger(sipLog))
	if err != nil {
		ua.Close()
		udp.Close()
		tcp.Close()
		return fmt.Errorf("sip client: %w", err)
	}
	s.ua, s.srv, s.client = ua, srv, client
	s.dlgUDP = &sipgo.DialogUA{Client: client, ContactHDR: s.contact("udp")}
	s.dlgTCP = &sipgo.DialogUA{Client: client, ContactHDR: s.contact("tcp")}

	for _, m := range []sip.RequestMethod{sip.INVITE, sip.ACK, sip.BYE, sip.CANCEL, sip.OPTIONS,
		sip.UPDATE, sip.INFO, sip.NOTIFY, sip.REFER, sip.REGISTER, sip.SUBSCRIBE, sip.MESSAGE, sip.PUBLISH, sip.PRACK} {
		srv.OnRequest(m, s.guard(m))
	}

	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(2)
	go func() { defer s.wg.Done(); _ = srv.ServeUDP(udp) }()
	go func() { defer s.wg.Done(); _ = srv.ServeTCP(tcp) }()

	s.mu.Lock()
	s.status.Listening = true
	s.status.Addr = s.addr.String()
	s.status.Registering = s.cfg.Register.Registrar != ""
	s.mu.Unlock()

	s.regDone = make(chan struct{})
	if s.cfg.Register.Registrar != "" {
		go func() { defer close(s.regDone); s.registerLoop(s.ctx) }()
	} else {
		close(s.regDone)
	}
	s.log.Info("sip listening", "addr", s.addr.String(), "public", s.public)
	return nil
}

// resolveAddresses picks what we advertise (Contact host, SDP address) and
// what media binds to.
func (s *Server) resolveAddresses() error {
	listenIP := s.addr.Addr()
	s.mediaBind = listenIP
	switch {
	case s.cfg.PublicAddr != "":
		s.public = s.cfg.PublicAddr
		if a, err := netip.ParseAddr(s.cfg.PublicAddr); err == nil {
			s.mediaAdv = a.Unmap()
		} else {
			ips, err := net.LookupIP(s.cfg.PublicAddr)
			if err != nil || len(ips) == 0 {
				return fmt.Errorf("sip.public_addr %q does not resolve: %v (set an IP)", s.cfg.PublicAddr, err)
			}
			a, _ := netip.AddrFromSlice(ips[0])
			s.mediaAdv = a.Unmap()
		}
	case !listenIP.IsUnspecified():
		s.public, s.mediaAdv = listenIP.String(), listenIP
	default:
		// The outbound interface's address: a UDP "connect" sends nothing.
		c, err := net.Dial("udp", "192.0.2.1:9")
		if err != nil {
			return fmt.Errorf("sip: cannot tell this host's address to advertise (%v): set sip.public_addr", err)
		}
		a := c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
		c.Close()
		s.public, s.mediaAdv = a.String(), a
	}
	return nil
}

func (s *Server) contact(transport string) sip.ContactHeader {
	h := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "zhiyin", Host: s.public, Port: int(s.addr.Port())}}
	if transport == "tcp" {
		h.Address.UriParams = sip.NewParams()
		h.Address.UriParams.Add("transport", "tcp")
	}
	return h
}

func (s *Server) dialogUA(req *sip.Request) *sipgo.DialogUA {
	if strings.EqualFold(req.Transport(), "tcp") {
		return s.dlgTCP
	}
	return s.dlgUDP
}

// Addr is the bound SIP address (the real port when sip.listen asked for 0).
func (s *Server) Addr() netip.AddrPort { return s.addr }

// Calls is how many calls are up or being set up.
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.slots
}

// Status reports listening, registration and calls.
func (s *Server) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	st.Calls = s.slots
	return st
}

// Stop sends BYE on every live call (waiting up to ctx for the answers),
// unregisters (Expires: 0), and closes the sockets. Idempotent, and safe
// after a failed Start.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		return nil
	}
	s.stopping = true
	calls := make([]*call, 0, len(s.calls))
	for _, c := range s.calls {
		calls = append(calls, c)
	}
	started := s.srv != nil
	s.mu.Unlock()
	if !started {
		if s.udp != nil {
			s.udp.Close()
		}
		if s.tcp != nil {
			s.tcp.Close()
		}
		return nil
	}
	var wg sync.WaitGroup
	for _, c := range calls {
		wg.Add(1)
		go func() { defer wg.Done(); c.hangup("server shutting down"); c.wait(ctx) }()
	}
	wg.Wait()
	s.cancel()
	select {
	case <-s.regDone:
	case <-ctx.Done():
	}
	s.unregister(ctx)
	s.udp.Close()
	s.tcp.Close()
	_ = s.srv.Close()
	_ = s.ua.Close()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("sip stop: %w", ctx.Err())
	}
	s.mu.Lock()
	s.status.Listening = false
	s.mu.Unlock()
	return nil
}

// guard wraps every handler: the peer allow-list first (403, nothing
// else), then dispatch.
func (s *Server) guard(m sip.RequestMethod) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		if !s.peerAllowed(req.Source()) {
			if m != sip.ACK {
				s.respond(req, tx, 403, "Forbidden", nil)
			}
			return
		}
		switch m {
		case sip.INVITE:
			if req.To() != nil && req.To().Params.Has("tag") {
				s.inDialog(req, tx, (*call).onReinvite)
				return
			}
			s.onInvite(req, tx)
		case sip.ACK:
			s.onAck(req)
		case sip.BYE:
			s.onBye(req, tx)
		case sip.CANCEL:
			// A CANCEL matching a live INVITE transaction was answered by
			// the transaction layer (200, then 487); this one matched none.
			s.respond(req, tx, 481, "Call/Transaction Does Not Exist", nil)
		case sip.OPTIONS:
			s.respond(req, tx, 200, "OK", nil,
				sip.NewHeader("Accept", "application/sdp"), sip.NewHeader("Supported", "timer"))
		case sip.UPDATE:
			s.inDialog(req, tx, (*call).onUpdate)
		case sip.INFO:
			s.inDialog(req, tx, (*call).onInfo)
		case sip.NOTIFY:
			s.inDialog(req, tx, (*call).onNotify)
		default:
			s.respond(req, tx, 405, "Method Not Allowed", nil)
		}
	}
}

func (s *Server) peerAllowed(source string) bool {
	if len(s.peers) == 0 {
		return true
	}
	ap, err := netip.ParseAddrPort(source)
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, p := range s.peers {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// respond answers req with a final response, adding Allow, Server and any
// extra headers, and counts it.
func (s *Server) respond(req *sip.Request, tx sip.ServerTransaction, code int, reason string, body []byte, hdrs ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, reason, body)
	s.decorate(res, hdrs...)
	s.met.request(req.Method.String(), code)
	if err := tx.Respond(res); err != nil {
		s.log.Debug("sip respond", logCode, code, logErr, err)
	}
}

func (s *Server) decorate(res *sip.Response, hdrs ...sip.Header) {
	res.AppendHeader(sip.NewHeader("Allow", allowed))
	res.AppendHeader(sip.NewHeader("Server", s.cfg.UserAgent))
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
}

// inDialog finds the call a request belongs to (481 if none) and hands the
// request to it.
func (s *Server) inDialog(req *sip.Request, tx sip.ServerTransaction, f func(*call, *sip.Request, sip.ServerTransaction)) {
	c := s.findCall(req)
	if c == nil {
		s.respond(req, tx, 481, "Call/Transaction Does Not Exist", nil)
		return
	}
	f(c, req, tx)
}

func (s *Server) findCall(req *sip.Request) *call {
	id, err := sip.DialogIDFromRequestUAS(req)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.calls[id]; c != nil {
		return c
	}
	// A bridged agent leg is stored under the ID its requests to us
	// carry: (call-id, our tag, their tag), see bridge.go.
	return s.agents[id]
}

func (s *Server) onAck(req *sip.Request) {
	if c := s.findCall(req); c != nil {
		c.onAck(req)
	}
}

func (s *Server) onBye(req *sip.Request, tx sip.ServerTransaction) {
	c := s.findCall(req)
	if c == nil {
		s.respond(req, tx, 481, "Call/Transaction Does Not Exist", nil)
		return
	}
	c.onBye(req, tx)
}

// reserve takes a call slot; it returns 0 or the status to refuse the
// call with: 486 when max_calls are up, 503 while stopping.
func (s *Server) reserve() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return 503
	}
	if s.slots >= s.cfg.MaxCalls {
		return 486
	}
	s.slots++
	s.met.callsActive.Set(float64(s.slots))
	return 0
}

func (s *Server) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.slots--
	s.met.callsActive.Set(float64(s.slots))
}

// sessionExpires reads Session-Expires (or its compact form x) and its
// refresher; 0 when absent.
func sessionExpires(req *sip.Request) (time.Duration, string) {
	h := req.GetHeader("Session-Expires")
	if h == nil {
		h = req.GetHeader("x")
	}
	if h == nil {
		return 0, ""
	}
	v, params, _ := strings.Cut(h.Value(), ";")
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n <= 0 {
		return 0, ""
	}
	refresher := ""
	for _, p := range strings.Split(params, ";") {
		k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(k, "refresher") {
			refresher = strings.ToLower(strings.TrimSpace(val))
		}
	}
	return time.Duration(n) * time.Second, refresher
}

func supports(req *sip.Request, option string) bool {
	for _, name := range []string{"Supported", "k", "Require"} {
		for _, h := range req.GetHeaders(name) {
			for _, o := range strings.Split(h.Value(), ",") {
				if strings.EqualFold(strings.TrimSpace(o), option) {
					return true
				}
			}
		}
	}
	return false
}

func allows(msg interface{ GetHeaders(string) []sip.Header }, method string) bool {
	for _, h := range msg.GetHeaders("Allow") {
		for _, o := range strings.Split(h.Value(), ",") {
			if strings.EqualFold(strings.TrimSpace(o), method) {
				return true
			}
		}
	}
	return false
}
