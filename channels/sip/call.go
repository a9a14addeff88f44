package sip

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/zhiyin/zhiyin/channels/sip/media"
	"github.com/zhiyin/zhiyin/channels/voice"
)

// telephoneEventPT is the RTP payload type we offer for RFC 4733 events
// when we make the offer (answers reuse the offer's).
const telephoneEventPT = 101

// startTimeout bounds Answerer.Start, so a stuck engine cannot hold an
// INVITE transaction (and a call slot) for ever.
const startTimeout = 10 * time.Second

// statsEvery is how often the Handler gets the receive-side figures.
const statsEvery = 5 * time.Second

// byeTimeout bounds the BYE we send when a call ends on our side.
const byeTimeout = 5 * time.Second

// call is one answered (or being answered) inbound call: the UAS dialog,
// its media stream and the voice engine's handler. One goroutine (run)
// owns its end; the SIP handlers only signal it.
type call struct {
	s      *Server
	id     string // dialog ID
	callID string
	dlg    *sipgo.DialogServerSession
	stream *media.Stream
	sink   *relaySink
	info   voice.CallInfo

	mu        sync.Mutex
	local     media.Local
	neg       media.Negotiated
	handler   voice.Handler
	hold      bool
	se        time.Duration // negotiated session interval; 0: no session timer
	weRefresh bool
	reason    string
	sendBye   bool
	bridge    *bridgeLeg

	endOnce  sync.Once
	acked    chan struct{} // closed once our 200 OK's wait for ACK is over (ACK or give-up)
	ackCh    chan struct{} // closed when the ACK for our 200 OK arrives
	ackOnce  sync.Once
	endCh    chan struct{} // closed when the call starts ending
	done     chan struct{} // closed when everything is released
	refresh  chan struct{} // a session refresh arrived (cap 1, drop when full)
	acks     chan uint32   // CSeq of ACKs for re-INVITE 200s (cap 4, drop when full)
	notifies chan int      // sipfrag status codes from NOTIFYs for our REFER (cap 8, drop when full)
	referBye atomic.Bool   // the peer's BYE arrived (a REFER in flight counts it as success)
	bridged  atomic.Bool   // the caller is bridged to an agent; the engine has left
}

// relaySink is the Stream's sink: the voice engine's Handler, or during a
// bridged transfer the other leg's Stream. Safe for concurrent use.
type relaySink struct {
	to atomic.Pointer[sinkTarget]
}

type sinkTarget struct {
	h     voice.Handler
	other *media.Stream // when set, audio is relayed to it
}

func (r *relaySink) Audio(samples []float32) {
	t := r.to.Load()
	switch {
	case t == nil:
	case t.other != nil:
		// Relay in real time: the other stream's queue takes 100 ms, so a
		// 20 ms frame never waits long; if it does, drop rather than stall
		// this stream's clock.
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Millisecond)
		_ = t.other.Play(ctx, samples)
		cancel()
	case t.h != nil:
		t.h.Audio(samples)
	}
}

func (r *relaySink) DTMF(digit rune) {
	t := r.to.Load()
	switch {
	case t == nil:
	case t.other != nil:
		_ = t.other.SendDTMF(digit, 100*time.Millisecond)
	case t.h != nil:
		t.h.DTMF(digit)
	}
}

// onInvite takes a new call: auth, limits, SDP, media, the Answerer, then
// 200 OK and the wait for ACK.
func (s *Server) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	started := s.now()
	log := s.log.With(logCallID, callIDOf(req), logRemote, req.Source())
	if s.auth != nil {
		hdr := ""
		if h := req.GetHeader("Authorization"); h != nil {
			hdr = h.Value()
		}
		switch verdict, stale := s.auth.check(hdr, string(req.Method)); verdict {
		case authChallenge:
			s.respond(req, tx, 401, "Unauthorized", nil, sip.NewHeader("WWW-Authenticate", s.auth.challenge(stale)))
			return
		case authForbidden:
			log.Warn("sip call refused: wrong credentials")
			s.respond(req, tx, 403, "Forbidden", nil)
			return
		}
	}
	_ = tx.Respond(sip.NewResponseFromRequest(req, 100, "Trying", nil))

	se, refresher := sessionExpires(req)
	if se > 0 && se < s.minSE {
		s.respond(req, tx, 422, "Session Interval Too Small", nil,
			sip.NewHeader("Min-SE", strconv.Itoa(int(s.minSE/time.Second))))
		return
	}
	switch s.reserve() {
	case 486:
		log.Info("sip call refused: busy", "max_calls", s.cfg.MaxCalls)
		s.respond(req, tx, 486, "Busy Here", nil)
		return
	case 503:
		s.respond(req, tx, 503, "Service Unavailable", nil, sip.NewHeader("Retry-After", "30"))
		return
	}
	ok := false
	defer func() {
		if !ok {
			s.release()
		}
	}()

	body := req.Body()
	if len(body) == 0 {
		// Late offer (SDP in the ACK) is not supported: every PBX and
		// gateway we target sends the offer in the INVITE.
		s.respond(req, tx, 488, "Not Acceptable Here", nil,
			warning(s.public, 399, "zhiyin needs the SDP offer in the INVITE (late offer is not supported)"))
		return
	}
	offer, err := media.ParseSDP(body)
	if err != nil {
		log.Info("sip call refused: bad SDP", logErr, err)
		s.respond(req, tx, 488, "Not Acceptable Here", nil, warning(s.public, 399, "unreadable SDP offer"))
		return
	}
	stream, err := media.Listen(s.mediaBind, s.ports, s.cfg.Media, s.log)
	if err != nil {
		log.Error("sip call refused: no RTP port free; widen sip.rtp_ports", logErr, err)
		s.respond(req, tx, 503, "Service Unavailable", nil, sip.NewHeader("Retry-After", "30"))
		return
	}
	local := media.Local{
		Addr:      netip.AddrPortFrom(s.mediaAdv, stream.LocalAddr().Port()),
		Codecs:    s.codecs,
		DTMF:      telephoneEventPT,
		SessionID: randUint64() >> 2, SessionVersion: 1, Username: "zhiyin",
	}
	answer, neg, err := media.Answer(offer, local)
	if err != nil {
		stream.Close()
		if errors.Is(err, media.ErrNoCodec) {
			s.respond(req, tx, 488, "Not Acceptable Here", nil, warning(s.public, 305, "Incompatible media format: we take PCMU or PCMA"))
		} else {
			s.respond(req, tx, 488, "Not Acceptable Here", nil, warning(s.public, 399, "no usable audio stream"))
		}
		return
	}
	dlg, err := s.dialogUA(req).ReadInvite(req, tx)
	if err != nil {
		stream.Close()
		s.respond(req, tx, 400, "Bad Request", nil)
		return
	}

	c := &call{
		s: s, id: dlg.ID, callID: callIDOf(req), dlg: dlg, stream: stream, sink: &relaySink{},
		local: local, neg: neg, hold: !neg.Send,
		acked: make(chan struct{}), ackCh: make(chan struct{}), endCh: make(chan struct{}), done: make(chan struct{}),
		refresh: make(chan struct{}, 1), acks: make(chan uint32, 4), notifies: make(chan int, 8),
	}
	// Session timer (RFC 4028): the caller's interval if it asked for one,
	// else ours; the UAC refreshes when it said so and supports timers,
	// otherwise we do.
	c.se = s.cfg.SessionExpires
	if se > 0 && se < c.se {
		c.se = se
	}
	uacTimer := supports(req, "timer")
	c.weRefresh = !(uacTimer && refresher == "uac")
	if uacTimer && refresher == "" {
		c.weRefresh = false // RFC 4028 §9: the UAS may choose; the UAC refreshing spares us the re-INVITEs
	}

	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		stream.Close()
		s.respond(req, tx, 503, "Service Unavailable", nil, sip.NewHeader("Retry-After", "30"))
		return
	}
	s.calls[c.id] = c
	s.mu.Unlock()
	forget := func() {
		s.mu.Lock()
		delete(s.calls, c.id)
		s.mu.Unlock()
		stream.Close()
	}

	c.info = voice.CallInfo{
		Channel: "sip", ID: c.callID, From: addrOf(req.From()), To: addrOf(req.To()),
		Remote: req.Source(), Started: started,
	}
	// Setup is known only after the 200 leaves, which follows Start; what
	// the engine gets is INVITE → Start, within a millisecond of it (the
	// exact figure goes to zhiyin_sip_call_setup_seconds).
	c.info.Setup = s.now().Sub(started)
	startCtx, cancel := context.WithTimeout(dlg.Context(), startTimeout)
	h, err := s.deps.Answerer.Start(startCtx, c.info, &callMedia{c: c}, 8000)
	cancel()
	if err != nil {
		forget()
		if dlg.Context().Err() != nil {
			return // CANCELled: the transaction layer answered 487
		}
		log.Warn("sip call refused by the voice engine", logErr, err)
		s.respond(req, tx, 503, "Service Unavailable", nil, sip.NewHeader("Retry-After", "30"),
			warning(s.public, 399, "voice engine unavailable"))
		return
	}
	c.handler = h
	c.sink.to.Store(&sinkTarget{h: h})
	if dlg.Context().Err() != nil {
		forget()
		h.End("caller cancelled")
		return
	}
	if err := stream.Start(neg, c.sink); err != nil {
		forget()
		h.End("media failed")
		log.Error("sip call: start media", logErr, err)
		s.respond(req, tx, 500, "Server Internal Error", nil)
		return
	}

	res := sip.NewSDPResponseFromRequest(dlg.InviteRequest, answer)
	s.decorate(res, sip.NewHeader("Supported", "timer"))
	if c.se > 0 {
		who := "uas"
		if !c.weRefresh {
			who = "uac"
		}
		res.AppendHeader(sip.NewHeader("Session-Expires", fmt.Sprintf("%d;refresher=%s", int(c.se/time.Second), who)))
		if uacTimer {
			res.AppendHeader(sip.NewHeader("Require", "timer"))
		}
	}
	ok = true
	setup := s.now().Sub(started)
	s.met.setup.Observe(setup.Seconds())
	s.met.request("INVITE", 200)
	log.Info("sip call answered", "codec", neg.Codec.Name, "setup_ms", setup.Milliseconds())
	s.wg.Add(1)
	go func() { defer s.wg.Done(); c.run() }()
	err = c.answer(tx, res)
	close(c.acked)
	if err != nil {
		select {
		case <-c.endCh:
		default:
			log.Warn("sip call: no ACK for our 200 OK; hanging up", logErr, err)
			c.end("no ACK", true)
		}
	}
}

// errNoAck is answer's error when the caller never ACKed our 200 OK.
var errNoAck = errors.New("no ACK for 200 OK")

// answer sends the 200 OK and waits for its ACK (RFC 3261 §13.3.1.4):
// over UDP it retransmits from T1 doubling to T2; after 64·T1 without an
// ACK the session is to end. The server transaction does not retransmit
// 2xx itself (RFC 6026), and sipgo's own wait has no overall bound.
func (c *call) answer(tx sip.ServerTransaction, res *sip.Response) error {
	if res.Contact() == nil {
		h := c.s.dialogUA(c.dlg.InviteRequest).ContactHDR
		res.AppendHeader(&h)
	}
	c.dlg.InviteResponse = res
	if err := tx.Respond(res); err != nil {
		return fmt.Errorf("send 200 OK: %w", err)
	}
	reliable := !strings.EqualFold(c.dlg.InviteRequest.Transport(), "udp")
	wait := sip.T1
	deadline := time.NewTimer(c.s.ackTimeout)
	defer deadline.Stop()
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-c.ackCh:
			return nil
		case <-c.endCh:
			return nil
		case <-deadline.C:
			// The transaction is over for us, and RFC 3261 §15 lets the BYE
			// go out once it timed out. sipgo's dialog ends itself when the
			// INVITE transaction dies before it is confirmed (and then sends
			// no BYE), so mark it confirmed first, as the ACK would have.
			_ = c.dlg.ReadAck(c.dlg.InviteRequest, nil)
			tx.Terminate()
			return errNoAck
		case <-t.C:
			if !reliable {
				_ = tx.Respond(res)
			}
			wait = min(2*wait, sip.T2)
			t.Reset(wait)
		}
	}
}

// run owns the call's life after the 200 OK: session timer, stats, and the
// ordered teardown.
func (c *call) run() {
	defer close(c.done)
	hdone := c.handler.Done()
	stats := time.NewTicker(statsEvery)
	defer stats.Stop()
	timer := time.NewTimer(c.timerDelay())
	defer timer.Stop()
	for {
		select {
		case <-c.endCh:
			c.teardown()
			return
		case <-c.s.ctx.Done():
			c.end("server shutting down", true)
		case <-hdone:
			hdone = nil
			if !c.bridged.Load() {
				// The engine ended the call without Hangup: end ours too.
				c.end("engine finished", true)
			}
		case <-stats.C:
			if !c.bridged.Load() {
				c.handler.Stats(c.rtpStats())
			}
		case <-c.refresh:
			timer.Reset(c.timerDelay())
		case <-timer.C:
			if c.weRefresh {
				if err := c.sendRefresh(); err != nil {
					c.s.log.Warn("sip session refresh failed; hanging up", logCallID, c.callID, logErr, err)
					c.end("session refresh failed", true)
					continue
				}
				timer.Reset(c.timerDelay())
				continue
			}
			c.s.log.Info("sip session expired: no refresh from the caller", logCallID, c.callID)
			c.end("session expired", true)
		}
	}
}

// timerDelay is when the session timer fires next: half the interval when
// we refresh, else the interval less min(32 s, interval/3) (RFC 4028 §10).
func (c *call) timerDelay() time.Duration {
	c.mu.Lock()
	se, we := c.se, c.weRefresh
	c.mu.Unlock()
	if se <= 0 {
		return 100 * 365 * 24 * time.Hour
	}
	if we {
		return se / 2
	}
	return se - min(32*time.Second, se/3)
}

// end starts ending the call once: reason for the Handler, bye whether we
// must send BYE. Never blocks.
func (c *call) end(reason string, bye bool) {
	c.endOnce.Do(func() {
		c.mu.Lock()
		c.reason, c.sendBye = reason, bye
		c.mu.Unlock()
		close(c.endCh)
	})
}

func (c *call) hangup(reason string) { c.end(reason, true) }

// waitAcked blocks until our 200 OK was ACKed (or given up on): no request
// of ours may go out in the dialog before (RFC 3261 §15, and the dialog's
// state is only settled then).
func (c *call) waitAcked(ctx context.Context) error {
	select {
	case <-c.acked:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// wait blocks until the call is released or ctx ends.
func (c *call) wait(ctx context.Context) {
	select {
	case <-c.done:
	case <-ctx.Done():
	}
}

func (c *call) teardown() {
	c.mu.Lock()
	reason, bye, br := c.reason, c.sendBye, c.bridge
	c.mu.Unlock()
	c.stream.StopPlayback()
	st := c.rtpStats()
	c.stream.Close()
	if br != nil {
		br.close()
	}
	if bye {
		ctx, cancel := context.WithTimeout(context.Background(), byeTimeout)
		if err := c.waitAcked(ctx); err != nil {
			c.s.log.Debug("sip bye: no ACK yet", logCallID, c.callID, logErr, err)
		} else if err := c.dlg.Bye(ctx); err != nil {
			c.s.log.Debug("sip bye", logCallID, c.callID, logErr, err)
		}
		cancel()
	}
	_ = c.dlg.Close()
	if !c.bridged.Load() {
		c.handler.Stats(st)
	}
	c.handler.End(reason)
	c.s.met.rtpLost.Add(float64(st.Lost))
	c.s.met.rtpJitter.Observe(st.Jitter.Seconds())
	c.s.mu.Lock()
	delete(c.s.calls, c.id)
	if br != nil {
		delete(c.s.agents, br.id)
	}
	c.s.mu.Unlock()
	c.s.release()
	c.s.log.Info("sip call ended", logCallID, c.callID, logReason, reason,
		"received", st.Received, "lost", st.Lost, "late", st.Late, "concealed", st.Concealed)
}

func (c *call) rtpStats() voice.RTPStats { return c.stream.Stats().RTPStats }

func (c *call) onAck(req *sip.Request) {
	cseq := req.CSeq()
	if cseq == nil {
		return
	}
	if callIDOf(req) != c.callID {
		return // the agent leg's ACKs are not ours to take
	}
	if cseq.SeqNo == c.dlg.InviteRequest.CSeq().SeqNo {
		_ = c.dlg.ReadAck(req, nil)
		c.ackOnce.Do(func() { close(c.ackCh) })
		return
	}
	select {
	case c.acks <- cseq.SeqNo:
	default:
	}
}

func (c *call) onBye(req *sip.Request, tx sip.ServerTransaction) {
	if br := c.bridgeFor(req); br != nil {
		c.s.respond(req, tx, 200, "OK", nil)
		br.byeReceived()
		c.end("agent hung up", true)
		return
	}
	c.s.respond(req, tx, 200, "OK", nil)
	c.referBye.Store(true)
	c.end("caller hung up", false)
}

// onReinvite handles a re-INVITE: hold, resume, a new address or codec,
// or a session refresh.
func (c *call) onReinvite(req *sip.Request, tx sip.ServerTransaction) {
	if !c.readRefresh(req, tx) {
		return
	}
	res := c.answerOffer(req, tx, "INVITE")
	if res == nil {
		return
	}
	if err := tx.Respond(res); err != nil {
		return
	}
	// Retransmit the 2xx until its ACK (RFC 3261 §13.3.1.4): the server
	// transaction does not do it for 2xx.
	if strings.EqualFold(req.Transport(), "udp") {
		go c.retransmit(tx, res, req.CSeq().SeqNo)
	}
}

func (c *call) retransmit(tx sip.ServerTransaction, res *sip.Response, cseq uint32) {
	wait := sip.T1
	deadline := time.NewTimer(64 * sip.T1)
	defer deadline.Stop()
	for {
		t := time.NewTimer(wait)
		select {
		case n := <-c.acks:
			t.Stop()
			if n == cseq {
				return
			}
			continue
		case <-c.endCh:
			t.Stop()
			return
		case <-deadline.C:
			t.Stop()
			return
		case <-t.C:
			if err := tx.Respond(res); err != nil {
				return
			}
			wait = min(2*wait, sip.T2)
		}
	}
}

// onUpdate handles UPDATE (RFC 3311): a session refresh, with or without
// a new offer.
func (c *call) onUpdate(req *sip.Request, tx sip.ServerTransaction) {
	if !c.readRefresh(req, tx) {
		return
	}
	if len(req.Body()) == 0 {
		c.s.respond(req, tx, 200, "OK", nil, c.sessionHeaders()...)
		return
	}
	if res := c.answerOffer(req, tx, "UPDATE"); res != nil {
		_ = tx.Respond(res)
	}
}

// readRefresh takes an in-dialog re-INVITE or UPDATE into the dialog and
// its session timer; false when it already answered (500, 422).
func (c *call) readRefresh(req *sip.Request, tx sip.ServerTransaction) bool {
	if err := c.dlg.ReadRequest(req, tx); err != nil {
		c.s.respond(req, tx, 500, "Server Internal Error", nil, sip.NewHeader("Retry-After", "1"))
		return false
	}
	return c.checkRefresh(req, tx)
}

// answerOffer applies the request's SDP offer and returns the 200 with our
// answer, not yet sent; nil when it already answered with a refusal.
func (c *call) answerOffer(req *sip.Request, tx sip.ServerTransaction, method string) *sip.Response {
	sdp, code, hdr := c.reoffer(req.Body())
	if code != 200 {
		c.s.respond(req, tx, code, "Not Acceptable Here", nil, hdr)
		return nil
	}
	res := sip.NewSDPResponseFromRequest(req, sdp)
	c.s.decorate(res, c.sessionHeaders()...)
	c.s.met.request(method, 200)
	return res
}

// checkRefresh takes a refresh's Session-Expires (422 when too small) and
// resets the timer; false when it already answered.
func (c *call) checkRefresh(req *sip.Request, tx sip.ServerTransaction) bool {
	se, refresher := sessionExpires(req)
	if se > 0 && se < c.s.minSE {
		c.s.respond(req, tx, 422, "Session Interval Too Small", nil,
			sip.NewHeader("Min-SE", strconv.Itoa(int(c.s.minSE/time.Second))))
		return false
	}
	c.mu.Lock()
	if se > 0 {
		c.se = min(se, c.s.cfg.SessionExpires)
		c.weRefresh = refresher == "uas" || !supports(req, "timer")
	}
	c.mu.Unlock()
	select {
	case c.refresh <- struct{}{}:
	default:
	}
	return true
}

func (c *call) sessionHeaders() []sip.Header {
	c.mu.Lock()
	se, we := c.se, c.weRefresh
	c.mu.Unlock()
	if se <= 0 {
		return nil
	}
	who := "uac"
	if we {
		who = "uas"
	}
	return []sip.Header{sip.NewHeader("Session-Expires", fmt.Sprintf("%d;refresher=%s", int(se/time.Second), who))}
}

// reoffer answers a new offer in the dialog and applies it to the stream.
// An empty body (an offerless re-INVITE) gets our current session again.
func (c *call) reoffer(body []byte) ([]byte, int, sip.Header) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(body) == 0 {
		// We cannot take the answer from the ACK; re-send our last answer
		// as it stands (same version: nothing changed).
		return media.Offer(c.local, direction(c.neg)), 200, nil
	}
	offer, err := media.ParseSDP(body)
	if err != nil {
		return nil, 488, warning(c.s.public, 399, "unreadable SDP offer")
	}
	local := c.local
	local.SessionVersion++
	sdp, neg, err := media.Answer(offer, local)
	if err != nil {
		return nil, 488, warning(c.s.public, 305, "Incompatible media format: we take PCMU or PCMA")
	}
	c.local, c.neg = local, neg
	c.stream.Update(neg)
	hold := !neg.Send
	if hold != c.hold {
		c.hold = hold
		h := c.handler
		go h.Hold(hold) // never under our lock, never on the SIP handler's path
	}
	return sdp, 200, nil
}

func direction(n media.Negotiated) media.Direction {
	switch {
	case n.Send && n.Receive:
		return media.SendRecv
	case n.Send:
		return media.SendOnly
	case n.Receive:
		return media.RecvOnly
	}
	return media.Inactive
}

// sendRefresh refreshes the session as the refresher: UPDATE when the
// peer allows it, else a re-INVITE with our unchanged SDP.
func (c *call) sendRefresh() error {
	ctx, cancel := context.WithTimeout(c.s.ctx, 32*time.Second)
	defer cancel()
	if err := c.waitAcked(ctx); err != nil {
		return fmt.Errorf("session refresh: %w", err)
	}
	method := sip.INVITE
	if allows(c.dlg.InviteRequest, "UPDATE") {
		method = sip.UPDATE
	}
	req := sip.NewRequest(method, c.dlg.InviteRequest.Contact().Address)
	hdrs := c.sessionHeaders()
	for _, h := range hdrs {
		req.AppendHeader(h)
	}
	req.AppendHeader(sip.NewHeader("Supported", "timer"))
	if method == sip.INVITE {
		c.mu.Lock()
		body := media.Offer(c.local, direction(c.neg))
		c.mu.Unlock()
		req.SetBody(body)
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	res, err := c.dlg.Do(ctx, req)
	if err != nil {
		return fmt.Errorf("session refresh %s: %w", method, err)
	}
	if method == sip.INVITE && res.IsSuccess() {
		ack := sip.NewRequest(sip.ACK, c.dlg.InviteRequest.Contact().Address)
		if err := c.dlg.WriteRequest(ack); err != nil {
			return fmt.Errorf("session refresh ack: %w", err)
		}
	}
	switch {
	case res.IsSuccess():
		return nil
	case res.StatusCode == 481 || res.StatusCode == 408:
		return fmt.Errorf("session refresh %s: %d %s", method, res.StatusCode, res.Reason)
	default:
		// Any other failure leaves the session up (RFC 4028 §10).
		return nil
	}
}

// onInfo takes SIP INFO: application/dtmf-relay or application/dtmf
// digits go to the Handler; an empty INFO is a keep-alive.
func (c *call) onInfo(req *sip.Request, tx sip.ServerTransaction) {
	ct := ""
	if h := req.ContentType(); h != nil {
		ct = h.Value()
	}
	body := req.Body()
	if len(body) == 0 {
		c.s.respond(req, tx, 200, "OK", nil)
		return
	}
	digit, ok := parseDTMFInfo(ct, body)
	if !ok {
		c.s.respond(req, tx, 415, "Unsupported Media Type", nil,
			sip.NewHeader("Accept", "application/dtmf-relay, application/dtmf"))
		return
	}
	c.s.respond(req, tx, 200, "OK", nil)
	if t := c.sink.to.Load(); t != nil && t.h != nil {
		t.h.DTMF(digit)
	}
}

// onNotify takes the NOTIFYs of our REFER's implicit subscription.
func (c *call) onNotify(req *sip.Request, tx sip.ServerTransaction) {
	c.s.respond(req, tx, 200, "OK", nil)
	ev := req.GetHeader("Event")
	if ev == nil {
		ev = req.GetHeader("o")
	}
	if ev == nil || !hasPrefixFold(ev.Value(), "refer") {
		return
	}
	code, ok := parseSipfrag(req.Body())
	if !ok {
		return
	}
	select {
	case c.notifies <- code:
	default:
	}
}

// callMedia is the voice.Media the engine speaks through.
type callMedia struct{ c *call }

var _ voice.Media = (*callMedia)(nil)

func (m *callMedia) OutputRate() int { return m.c.stream.OutputRate() }
func (m *callMedia) Play(ctx context.Context, samples []float32) error {
	return m.c.stream.Play(ctx, samples)
}
func (m *callMedia) Drain(ctx context.Context) error { return m.c.stream.Drain(ctx) }
func (m *callMedia) StopPlayback()                   { m.c.stream.StopPlayback() }
func (m *callMedia) Hangup(reason string)            { m.c.hangup(reason) }
func (m *callMedia) Transfer(ctx context.Context, target string) error {
	return m.c.transfer(ctx, target)
}

func callIDOf(req *sip.Request) string {
	if h := req.CallID(); h != nil {
		return h.Value()
	}
	return ""
}

func addrOf(h interface{ Value() string }) string {
	switch v := h.(type) {
	case *sip.FromHeader:
		if v == nil {
			return ""
		}
		return v.Address.String()
	case *sip.ToHeader:
		if v == nil {
			return ""
		}
		return v.Address.String()
	}
	return ""
}

func warning(host string, code int, text string) sip.Header {
	return sip.NewHeader("Warning", fmt.Sprintf("%d %s %q", code, host, text))
}

func randUint64() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:])
}
