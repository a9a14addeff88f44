package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/coder/websocket"

	"github.com/zhiyin/zhiyin/channels"
)

// socketEnvelope is one Socket Mode frame from Slack.
type socketEnvelope struct {
	EnvelopeID             string          `json:"envelope_id"`
	Type                   string          `json:"type"`
	Payload                json.RawMessage `json:"payload"`
	AcceptsResponsePayload bool            `json:"accepts_response_payload"`
	RetryAttempt           int             `json:"retry_attempt"`
	RetryReason            string          `json:"retry_reason"`
	// Reason says why Slack disconnects (type "disconnect"):
	// refresh_requested, warning, link_disabled.
	Reason string `json:"reason"`
}

// parseSocketEnvelope decodes one Socket Mode frame.
func parseSocketEnvelope(data []byte) (*socketEnvelope, error) {
	var env socketEnvelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("%w: socket frame: %w", errMalformed, err)
	}
	if env.Type == "" {
		return nil, fmt.Errorf("%w: socket frame without type", errMalformed)
	}
	return &env, nil
}

// disconnectError ends a session Slack asked us to leave.
type disconnectError struct{ reason string }

func (e *disconnectError) Error() string { return "slack asked to reconnect: " + e.reason }

// runSocket keeps one Socket Mode connection up until ctx ends: each
// session starts with a fresh apps.connections.open (the URL is single
// use). A "disconnect" after a healthy session reconnects at once;
// failures back off with jitter.
func (a *Adapter) runSocket(ctx context.Context, sink channels.Sink) {
	defer a.wg.Done()
	failures := 0
	for ctx.Err() == nil {
		hello, err := a.socketSession(ctx, sink)
		a.setConnected(false, "")
		if ctx.Err() != nil {
			return
		}
		if hello {
			failures = 0
		}
		var de *disconnectError
		if errors.As(err, &de) && hello && de.reason != "link_disabled" {
			a.log.Info("slack socket mode reconnecting", logReason, de.reason)
			continue
		}
		failures++
		if errors.As(err, &de) && de.reason == "link_disabled" {
			err = errors.New("socket mode is off for this app (link_disabled): turn Socket Mode on in the app's settings")
			failures = max(failures, 10) // the longest wait: a person must act
		}
		a.setError(err)
		d := a.backoff.Delay(failures)
		if ra, ok := errors.AsType[*channels.RetryAfterError](err); ok && ra.After > d {
			d = ra.After
		}
		a.log.Warn("slack socket mode connection lost", logErr, err, "retry_in", d)
		if !channels.Sleep(ctx, d) {
			return
		}
	}
}

// socketSession opens one connection and serves it until it fails, Slack
// disconnects, or ctx ends. hello reports whether Slack said hello (the
// connection worked).
func (a *Adapter) socketSession(ctx context.Context, sink channels.Sink) (hello bool, err error) {
	var open struct {
		apiStatus
		URL string `json:"url"`
	}
	if err := a.call(ctx, "apps.connections.open", a.cfg.AppToken.Value(), nil, &open); err != nil {
		return false, err
	}
	if open.URL == "" {
		return false, errors.New("slack apps.connections.open: no url in the answer")
	}
	conn, _, err := websocket.Dial(ctx, open.URL, &websocket.DialOptions{HTTPClient: a.client})
	if err != nil {
		return false, fmt.Errorf("slack socket mode dial: %w", err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(int64(a.cfg.MaxBody))

	sctx, cancel := context.WithCancel(ctx)
	var pinger sync.WaitGroup
	pinger.Add(1)
	go func() {
		defer pinger.Done()
		a.keepAlive(sctx, conn)
	}()
	defer pinger.Wait()
	defer cancel()

	for {
		typ, data, err := conn.Read(sctx)
		if err != nil {
			return hello, fmt.Errorf("slack socket mode read: %w", err)
		}
		if typ != websocket.MessageText {
			continue
		}
		env, err := parseSocketEnvelope(data)
		if err != nil {
			sink.Rejected(channels.ReasonMalformed)
			a.log.Warn("slack socket frame malformed", logErr, err)
			continue
		}
		switch env.Type {
		case "hello":
			hello = true
			a.setConnected(true, "socket mode connected")
			a.log.Info("slack socket mode connected")
		case "disconnect":
			// Slack closes this link soon anyway; no close handshake to wait on.
			_ = conn.CloseNow()
			return hello, &disconnectError{reason: env.Reason}
		case "events_api":
			if !a.handleEventsAPI(sctx, sink, env) {
				continue // not stored: no ack, Slack redelivers
			}
			if err := a.ack(sctx, conn, env.EnvelopeID); err != nil {
				return hello, err
			}
		default:
			// slash_commands, interactive and whatever comes later: not
			// handled; acknowledged so that Slack does not retry them.
			a.log.Debug("slack socket envelope ignored", logEvent, env.Type)
			if env.EnvelopeID != "" {
				if err := a.ack(sctx, conn, env.EnvelopeID); err != nil {
					return hello, err
				}
			}
		}
	}
}

// handleEventsAPI delivers an events_api envelope's message, if any. It
// reports whether the envelope may be acknowledged: false only when the
// sink failed for now.
func (a *Adapter) handleEventsAPI(ctx context.Context, sink channels.Sink, env *socketEnvelope) bool {
	if env.RetryAttempt > 0 {
		a.log.Debug("slack envelope retried", logEnvelope, env.EnvelopeID, logRetry, env.RetryAttempt, logReason, env.RetryReason)
	}
	m, err := a.parsePayload(env.Payload)
	if err != nil {
		// It will never parse: acknowledge it, or Slack sends it again.
		sink.Rejected(channels.ReasonMalformed)
		a.log.Warn("slack event malformed", logEnvelope, env.EnvelopeID, logErr, err)
		return true
	}
	if m == nil {
		return true
	}
	if err := sink.Deliver(ctx, m); err != nil && !errors.Is(err, channels.ErrInvalid) {
		a.log.Warn("slack message not stored; Slack will redeliver", logEnvelope, env.EnvelopeID, logErr, err)
		return false
	}
	return true
}

// parsePayload parses an events_api payload: the same event_callback body
// the Events API posts.
func (a *Adapter) parsePayload(payload json.RawMessage) (*channels.Message, error) {
	if len(payload) == 0 {
		return nil, fmt.Errorf("%w: events_api without payload", errMalformed)
	}
	env, err := parseEnvelope(payload)
	if err != nil {
		return nil, err
	}
	if env.Type != "event_callback" {
		return nil, nil
	}
	return a.parseEvent(env, payload)
}

// ack acknowledges an envelope.
func (a *Adapter) ack(ctx context.Context, conn *websocket.Conn, id string) error {
	b, _ := json.Marshal(struct {
		EnvelopeID string `json:"envelope_id"`
	}{id})
	wctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
	defer cancel()
	if err := conn.Write(wctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("slack socket mode ack: %w", err)
	}
	return nil
}

// keepAlive pings every pingInterval and drops a connection that stops
// answering (the read loop then reconnects).
func (a *Adapter) keepAlive(ctx context.Context, conn *websocket.Conn) {
	for channels.Sleep(ctx, a.pingInterval) {
		pctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
		err := conn.Ping(pctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				a.log.Warn("slack socket mode ping failed", logErr, err)
				conn.CloseNow()
			}
			return
		}
	}
}
