package main

import (
	"context"
	"errors"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/zhiyin/zhiyin/dialogue"
	"github.com/zhiyin/zhiyin/dialogue/lanes"
	"github.com/zhiyin/zhiyin/dialogue/nlu"
	"github.com/zhiyin/zhiyin/internal/audit"
	"github.com/zhiyin/zhiyin/internal/auth"
	"github.com/zhiyin/zhiyin/internal/httpserver"
)

// engineSource returns the dialogue engine, or nil while it is starting.
type engineSource func() *dialogue.Engine

type chatRequest struct {
	SessionID string `json:"session_id,omitempty"`
	UserID    string `json:"user_id"`
	Text      string `json:"text"`
	Channel   string `json:"channel,omitempty"`
}

type rasaWebhookRequest struct {
	Sender   string         `json:"sender"`
	Message  string         `json:"message"`
	Metadata map[string]any `json:"metadata,omitempty"`
}

type rasaWebhookReply struct {
	RecipientID string `json:"recipient_id"`
	Text        string `json:"text"`
}

// apiChannel is the channel of sessions created through the HTTP API when
// the request names none.
const apiChannel = "api"

// mountChat adds POST /v1/chat, GET /v1/sessions/{id} and Rasa's REST
// channel POST /webhooks/rest/webhook, on the routers of those prefixes.
func mountChat(chatR, sessions, rasa fiber.Router, src engineSource) {
	chatR.Post("", func(c *fiber.Ctx) error {
		var req chatRequest
		if err := decodeUTF8JSON(c, &req); err != nil {
			return err
		}
		if req.Channel == "" {
			req.Channel = apiChannel
		}
		res, err := chat(c, src, req)
		if err != nil {
			return err
		}
		return c.JSON(res)
	})
	sessions.Get("/:id", func(c *fiber.Ctx) error {
		e := src()
		if e == nil {
			return errNotReady
		}
		limit, err := queryInt(c, "history", 50, 1000)
		if err != nil {
			return err
		}
		v, err := e.View(c.UserContext(), c.Params("id"), limit)
		p, _ := httpserver.PrincipalFrom(c)
		if errors.Is(err, dialogue.ErrNotFound) || (err == nil && !p.CanAccess(v.Client)) {
			return httpserver.Errorf(404, httpserver.CodeNotFound, "no session %q (sessions are visible to the client that created them)", c.Params("id"))
		}
		if err != nil {
			return err
		}
		return c.JSON(v)
	})
	rasa.Post("/webhook", func(c *fiber.Ctx) error {
		var req rasaWebhookRequest
		if err := decodeUTF8JSON(c, &req); err != nil {
			return err
		}
		res, err := chat(c, src, chatRequest{UserID: req.Sender, Text: req.Message, Channel: "rest"})
		if err != nil {
			return err
		}
		out := make([]rasaWebhookReply, 0, len(res.Replies))
		for _, r := range res.Replies {
			out = append(out, rasaWebhookReply{RecipientID: req.Sender, Text: r.Text})
		}
		return c.JSON(out)
	})
}

var errNotReady = httpserver.Errorf(503, httpserver.CodeUnavailable, "the dialogue engine is still starting; retry when /readyz says ready")

func decodeUTF8JSON(c *fiber.Ctx, v any) error {
	if !utf8.Valid(c.Body()) {
		return httpserver.Errorf(400, httpserver.CodeBadRequest, "the request body is not valid UTF-8")
	}
	return httpserver.DecodeJSON(c, v)
}

func chat(c *fiber.Ctx, src engineSource, req chatRequest) (*dialogue.Result, error) {
	e := src()
	if e == nil {
		return nil, errNotReady
	}
	p, _ := httpserver.PrincipalFrom(c)
	// Users are per client: two clients' "u1" are different people.
	res, err := e.Handle(c.UserContext(), dialogue.Message{SessionID: req.SessionID, Channel: req.Channel,
		Conversation: p.Subject + "/" + req.UserID, User: req.UserID, Client: p.Subject, Text: req.Text})
	return res, chatError(err)
}

// chatError turns engine errors into answers; unknown ones stay 500s.
func chatError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, dialogue.ErrBadMessage):
		return httpserver.Errorf(400, httpserver.CodeBadRequest, "%v", err)
	case errors.Is(err, nlu.ErrEmpty):
		return httpserver.Errorf(400, httpserver.CodeBadRequest, "text is empty: send the customer's message in \"text\"")
	case errors.Is(err, nlu.ErrInvalidUTF8):
		return httpserver.Errorf(400, httpserver.CodeBadRequest, "text is not valid UTF-8")
	case errors.Is(err, nlu.ErrTooLong):
		return httpserver.Errorf(413, httpserver.CodePayloadTooLarge, "%v (nlu.max_chars)", err)
	case errors.Is(err, dialogue.ErrNoNLU):
		return httpserver.Errorf(503, httpserver.CodeUnavailable, "no NLU model is loaded; see /readyz")
	case errors.Is(err, lanes.ErrQueueFull):
		return &httpserver.Error{Status: 503, Code: httpserver.CodeUnavailable, Message: "too many messages are waiting; retry shortly", RetryAfter: time.Second, Err: err}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &httpserver.Error{Status: 503, Code: httpserver.CodeUnavailable, Message: "the request was cancelled before it was answered; retry", RetryAfter: time.Second, Err: err}
	}
	return err // store.ErrBusy/ErrFull are mapped by the server's MapError
}

func queryInt(c *fiber.Ctx, name string, def, max int) (int, error) {
	s := c.Query(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > max {
		return 0, httpserver.Errorf(400, httpserver.CodeBadRequest, "%s must be a number from 0 to %d", name, max)
	}
	return n, nil
}

// mountHandoffAdmin adds the human queue's admin routes under
// /v1/admin/handoffs: GET (list, ?status=waiting|agent), POST
// /{id}/take and /{id}/release (?agent=NAME).
func mountHandoffAdmin(r fiber.Router, src engineSource, rec auditor) {
	r.Get("/", func(c *fiber.Ctx) error {
		e := src()
		if e == nil {
			return errNotReady
		}
		status := c.Query("status")
		if status != "" && status != "waiting" && status != "agent" {
			return httpserver.Errorf(400, httpserver.CodeBadRequest, "status must be waiting or agent (or absent for both)")
		}
		limit, err := queryInt(c, "limit", 100, 10_000)
		if err != nil {
			return err
		}
		hs, err := e.Handoffs(c.UserContext(), status, limit)
		if err != nil {
			return err
		}
		return c.JSON(fiber.Map{"handoffs": hs})
	})
	action := func(act string) fiber.Handler {
		return func(c *fiber.Ctx) error {
			e := src()
			if e == nil {
				return errNotReady
			}
			p, _ := httpserver.PrincipalFrom(c)
			agent := c.Query("agent", p.Subject)
			said, err := e.ChangeHandoff(c.UserContext(), c.Params("id"), act, agent)
			switch {
			case errors.Is(err, dialogue.ErrNotFound):
				return httpserver.Errorf(404, httpserver.CodeNotFound, "no session %q", c.Params("id"))
			case errors.Is(err, dialogue.ErrNotInHandoff):
				return httpserver.Errorf(409, httpserver.CodeConflict, "session %s is not handed off", c.Params("id"))
			case err != nil:
				return err
			}
			rec(c.UserContext(), audit.Entry{Actor: actorOf(p), Action: "handoff." + act, Target: c.Params("id"), Detail: map[string]string{"agent": agent}})
			return c.JSON(fiber.Map{"session_id": c.Params("id"), "action": act, "said": said})
		}
	}
	r.Post("/:id/take", action(dialogue.ActionTake))
	r.Post("/:id/release", action(dialogue.ActionRelease))
}

// auditor records an admin action; failures are logged, not fatal.
type auditor func(ctx context.Context, e audit.Entry)

func actorOf(p auth.Principal) string {
	if p.Subject != "" {
		return p.Kind + ":" + p.Subject
	}
	return p.Kind
}
