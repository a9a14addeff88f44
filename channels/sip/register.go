package sip

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Registration backoff after a failure: doubling from regRetryMin to
// regRetryMax.
const (
	regRetryMin = time.Second
	regRetryMax = time.Minute
)

// registerLoop keeps our Contact registered: refresh at half of what the
// registrar granted, retry failures with backoff. Returns when ctx ends.
func (s *Server) registerLoop(ctx context.Context) {
	backoff := regRetryMin
	for {
		granted, err := s.registerOnce(ctx, s.cfg.Register.Expires)
		if ctx.Err() != nil {
			return
		}
		wait := granted / 2
		s.mu.Lock()
		if err != nil {
			s.status.Registered = false
			s.status.LastError = err.Error()
			s.met.registered.Set(0)
			wait = backoff
			backoff = min(2*backoff, regRetryMax)
		} else {
			s.status.Registered = true
			s.status.RegisteredUntil = s.now().Add(granted)
			s.status.LastError = ""
			s.met.registered.Set(1)
			backoff = regRetryMin
		}
		s.mu.Unlock()
		if err != nil {
			s.log.Warn("sip registration failed; retrying", logErr, err, "retry_in", wait)
		} else {
			s.log.Debug("sip registered", "expires", granted)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// registerOnce sends one REGISTER (answering a digest challenge) asking
// for expires; it returns what the registrar granted.
func (s *Server) registerOnce(ctx context.Context, expires time.Duration) (time.Duration, error) {
	r := s.cfg.Register
	target := r.Registrar
	if !hasPrefixFold(target, "sip:") && !hasPrefixFold(target, "sips:") {
		target = "sip:" + target
	}
	var registrar sip.Uri
	if err := sip.ParseUri(target, &registrar); err != nil {
		return 0, fmt.Errorf("%w: sip.register.registrar %q: %v", ErrNotRegistered, r.Registrar, err)
	}
	domain := r.Domain
	if domain == "" {
		domain = registrar.Host
	}
	aor := sip.Uri{Scheme: "sip", User: r.Username, Host: domain}
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: registrar.Scheme, Host: registrar.Host, Port: registrar.Port, UriParams: registrar.UriParams})
	if tr, _ := registrar.UriParams.Get("transport"); tr != "" {
		req.SetTransport(strings.ToUpper(tr))
	}
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: aor})
	s.mu.Lock()
	if s.regCallID == "" {
		s.regCallID = sip.GenerateTagN(24)
	}
	s.regCSeq++
	callID, cseq := sip.CallIDHeader(s.regCallID), s.regCSeq
	s.mu.Unlock()
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: sip.REGISTER})
	contact := s.contact(strings.ToLower(req.Transport()))
	contact.Address.User = r.Username
	req.AppendHeader(&contact)
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(int(expires/time.Second))))
	req.AppendHeader(sip.NewHeader("User-Agent", s.cfg.UserAgent))

	ctx, cancel := context.WithTimeout(ctx, 32*time.Second)
	defer cancel()
	res, err := s.client.Do(ctx, req)
	if err != nil {
		return 0, fmt.Errorf("%w: REGISTER to %s: %v (is the registrar reachable?)", ErrNotRegistered, r.Registrar, err)
	}
	if res.StatusCode == 401 || res.StatusCode == 407 {
		user := r.AuthUsername
		if user == "" {
			user = r.Username
		}
		res, err = s.client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: user, Password: r.Password.Value()})
		if err != nil {
			return 0, fmt.Errorf("%w: REGISTER to %s: %v", ErrNotRegistered, r.Registrar, err)
		}
		s.mu.Lock()
		s.regCSeq = max(s.regCSeq, req.CSeq().SeqNo)
		s.mu.Unlock()
	}
	if !res.IsSuccess() {
		hint := ""
		if res.StatusCode == 401 || res.StatusCode == 403 || res.StatusCode == 407 {
			hint = " (check sip.register.username, auth_username and password)"
		}
		return 0, fmt.Errorf("%w: registrar %s answered %d %s%s", ErrNotRegistered, r.Registrar, res.StatusCode, res.Reason, hint)
	}
	return grantedExpires(res, expires), nil
}

// grantedExpires reads the lifetime the registrar granted: our Contact's
// expires parameter, else the Expires header, else what we asked.
func grantedExpires(res *sip.Response, asked time.Duration) time.Duration {
	if c := res.Contact(); c != nil {
		if v, ok := c.Params.Get("expires"); ok {
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				return time.Duration(n) * time.Second
			}
		}
	}
	if h := res.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil && n > 0 {
			return time.Duration(n) * time.Second
		}
	}
	return asked
}

// unregister removes our binding (Expires: 0) when registration is on.
func (s *Server) unregister(ctx context.Context) {
	if s.cfg.Register.Registrar == "" {
		return
	}
	s.mu.Lock()
	was := s.status.Registered
	s.mu.Unlock()
	if !was {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := s.registerOnce(ctx, 0); err != nil {
		s.log.Warn("sip unregister failed", logErr, err)
	}
	s.mu.Lock()
	s.status.Registered = false
	s.met.registered.Set(0)
	s.mu.Unlock()
}
