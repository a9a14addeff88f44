package sip

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/zhiyin/zhiyin/channels/sip/media"
	"github.com/zhiyin/zhiyin/channels/voice"
)

// transferTimeout bounds a transfer when the engine's ctx has no deadline:
// the REFER's NOTIFYs, or the agent answering a bridged call.
const transferTimeout = 60 * time.Second

// transfer hands the call to target (or sip.agent) by REFER or by bridging.
func (c *call) transfer(ctx context.Context, target string) error {
	select {
	case <-c.endCh:
		return voice.ErrHungUp
	default:
	}
	if target == "" {
		target = c.s.cfg.Agent
	}
	if target == "" {
		return fmt.Errorf("transfer: no target and sip.agent is empty (set sip.agent to the agents' queue URI): %w", ErrTransferFailed)
	}
	if !hasPrefixFold(target, "sip:") && !hasPrefixFold(target, "sips:") {
		target = "sip:" + target
	}
	var uri sip.Uri
	if err := sip.ParseUri(target, &uri); err != nil {
		return fmt.Errorf("transfer: target %q: %v: %w", target, err, ErrTransferFailed)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, transferTimeout)
		defer cancel()
	}
	if err := c.waitAcked(ctx); err != nil {
		return fmt.Errorf("transfer: call not confirmed: %v: %w", err, ErrTransferFailed)
	}
	if c.s.cfg.Transfer == TransferBridge {
		return c.bridgeTo(ctx, uri)
	}
	return c.refer(ctx, uri)
}

// refer does a blind transfer (RFC 3515): REFER, 202, then NOTIFYs with
// the new call's progress as message/sipfrag; a final 2xx (or the peer's
// BYE) means done and we leave with BYE.
func (c *call) refer(ctx context.Context, target sip.Uri) error {
	for len(c.notifies) > 0 {
		<-c.notifies
	}
	req := sip.NewRequest(sip.REFER, c.dlg.InviteRequest.Contact().Address)
	req.AppendHeader(sip.NewHeader("Refer-To", "<"+target.String()+">"))
	req.AppendHeader(sip.NewHeader("Referred-By", "<"+c.dlg.InviteRequest.To().Address.String()+">"))
	c.referBye.Store(false)
	res, err := c.dlg.Do(ctx, req)
	if err != nil {
		if c.referBye.Load() {
			return nil
		}
		return fmt.Errorf("transfer: REFER: %v: %w", err, ErrTransferFailed)
	}
	if res.StatusCode >= 300 {
		return fmt.Errorf("transfer: the peer refused the REFER (%d %s): %w", res.StatusCode, res.Reason, ErrTransferFailed)
	}
	for {
		select {
		case code := <-c.notifies:
			switch {
			case code < 200:
				continue
			case code < 300:
				c.end("transferred", true)
				return nil
			default:
				return fmt.Errorf("transfer: the new call failed (%d): %w", code, ErrTransferFailed)
			}
		case <-c.endCh:
			if c.referBye.Load() {
				// The transferee hung up on us after taking the REFER:
				// that is how many PBXes finish a blind transfer.
				c.mu.Lock()
				c.reason = "transferred"
				c.mu.Unlock()
				return nil
			}
			return voice.ErrHungUp
		case <-ctx.Done():
			return fmt.Errorf("transfer: no final NOTIFY: %v: %w", ctx.Err(), ErrTransferFailed)
		}
	}
}

// bridgeLeg is our call to the agent when transfer is "bridge".
type bridgeLeg struct {
	id     string // the ID the agent's requests carry to us (UAS view)
	callID string
	dlg    *sipgo.DialogClientSession
	stream *media.Stream
	byeIn  atomic.Bool
	once   sync.Once
}

func (b *bridgeLeg) byeReceived() { b.byeIn.Store(true) }

func (b *bridgeLeg) close() {
	b.once.Do(func() {
		b.stream.Close()
		if !b.byeIn.Load() {
			ctx, cancel := context.WithTimeout(context.Background(), byeTimeout)
			_ = b.dlg.Bye(ctx)
			cancel()
		}
		_ = b.dlg.Close()
	})
}

func (c *call) bridgeFor(req *sip.Request) *bridgeLeg {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bridge != nil && callIDOf(req) == c.bridge.callID {
		return c.bridge
	}
	return nil
}

// bridgeTo calls the agent from a second stream and, once answered,
// relays audio both ways; the voice engine leaves the call.
func (c *call) bridgeTo(ctx context.Context, target sip.Uri) error {
	s := c.s
	stream, err := media.Listen(s.mediaBind, s.ports, s.cfg.Media, s.log)
	if err != nil {
		return fmt.Errorf("transfer: bridge media: %v: %w", err, ErrTransferFailed)
	}
	local := media.Local{
		Addr:   netip.AddrPortFrom(s.mediaAdv, stream.LocalAddr().Port()),
		Codecs: s.codecs, DTMF: telephoneEventPT,
		SessionID: randUint64() >> 2, SessionVersion: 1, Username: "zhiyin",
	}
	dua := s.dlgUDP
	if tr, _ := target.UriParams.Get("transport"); strings.EqualFold(tr, "tcp") {
		dua = s.dlgTCP
	}
	fail := func(format string, a ...any) error {
		stream.Close()
		return fmt.Errorf("transfer: bridge to %s: %s: %w", target.String(), fmt.Sprintf(format, a...), ErrTransferFailed)
	}
	dlg, err := dua.Invite(ctx, target, media.Offer(local, media.SendRecv),
		sip.NewHeader("Content-Type", "application/sdp"),
		sip.NewHeader("Referred-By", "<"+c.dlg.InviteRequest.From().Address.String()+">"))
	if err != nil {
		return fail("%v", err)
	}
	if err := dlg.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		_ = dlg.Close()
		return fail("%v", err)
	}
	desc, err := media.ParseSDP(dlg.InviteResponse.Body())
	var neg media.Negotiated
	if err == nil {
		neg, err = media.Accept(local, desc)
	}
	if err != nil {
		_ = dlg.Ack(ctx)
		bctx, cancel := context.WithTimeout(context.Background(), byeTimeout)
		_ = dlg.Bye(bctx)
		cancel()
		_ = dlg.Close()
		return fail("agent's answer: %v", err)
	}
	if err := dlg.Ack(ctx); err != nil {
		_ = dlg.Close()
		return fail("ack: %v", err)
	}
	ourTag, _ := dlg.InviteRequest.From().Params.Get("tag")
	theirTag, _ := dlg.InviteResponse.To().Params.Get("tag")
	leg := &bridgeLeg{
		id:     sip.DialogIDMake(callIDOf(dlg.InviteRequest), ourTag, theirTag),
		callID: callIDOf(dlg.InviteRequest), dlg: dlg, stream: stream,
	}
	agentSink := &relaySink{}
	agentSink.to.Store(&sinkTarget{other: c.stream})
	if err := stream.Start(neg, agentSink); err != nil {
		leg.close()
		return fmt.Errorf("transfer: bridge media: %v: %w", err, ErrTransferFailed)
	}

	c.mu.Lock()
	select {
	case <-c.endCh:
		c.mu.Unlock()
		leg.close()
		return voice.ErrHungUp
	default:
	}
	c.bridge = leg
	c.mu.Unlock()
	s.mu.Lock()
	s.agents[leg.id] = c
	s.mu.Unlock()
	c.stream.StopPlayback()
	c.sink.to.Store(&sinkTarget{other: stream})
	c.bridged.Store(true)
	s.log.Info("sip call bridged to an agent", logCallID, c.callID)
	// The engine leaves the call now; End waits for its work, which may be
	// this very Transfer, so it runs on its own goroutine.
	s.wg.Add(1)
	go func() { defer s.wg.Done(); c.handler.End("transferred") }()
	return nil
}
