package main

import (
	"context"
	"errors"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/zhiyin/zhiyin/dialogue/nlu"
	"github.com/zhiyin/zhiyin/internal/httpserver"
)

// nluSource returns the loaded parser, or nil while there is none.
type nluSource func() *nlu.Parser

type parseRequest struct {
	Text string `json:"text"`
	// MessageID is accepted for Rasa clients (/model/parse) and ignored.
	MessageID string `json:"message_id,omitempty"`
}

// rasaEntity is an entity as Rasa's /model/parse returns it.
type rasaEntity struct {
	Entity     string  `json:"entity"`
	Start      int     `json:"start"`
	End        int     `json:"end"`
	Value      string  `json:"value"`
	Text       string  `json:"text"`
	Extractor  string  `json:"extractor"`
	Confidence float64 `json:"confidence_entity"`
}

type rasaParse struct {
	Text          string       `json:"text"`
	Intent        nlu.Intent   `json:"intent"`
	Entities      []rasaEntity `json:"entities"`
	IntentRanking []nlu.Intent `json:"intent_ranking"`
}

// mountNLU adds POST /v1/nlu/parse (zhiyin's answer) and POST /model/parse
// (Rasa's HTTP API shape, for clients written against Rasa).
func mountNLU(v1, rasa fiber.Router, src nluSource) {
	v1.Post("/parse", func(c *fiber.Ctx) error {
		res, err := parseRequestBody(c, src)
		if err != nil {
			return err
		}
		return c.JSON(res)
	})
	rasa.Post("/parse", func(c *fiber.Ctx) error {
		res, err := parseRequestBody(c, src)
		if err != nil {
			return err
		}
		out := rasaParse{Text: res.Text, Intent: res.Intent, IntentRanking: res.Ranking, Entities: []rasaEntity{}}
		for _, e := range res.Entities {
			out.Entities = append(out.Entities, rasaEntity{Entity: e.Type, Start: e.Start, End: e.End, Value: e.Normalized,
				Text: e.Value, Extractor: e.Extractor, Confidence: e.Confidence})
		}
		return c.JSON(out)
	})
}

func parseRequestBody(c *fiber.Ctx, src nluSource) (*nlu.Result, error) {
	p := src()
	if p == nil {
		return nil, httpserver.Errorf(503, httpserver.CodeUnavailable, "no NLU model is loaded: train one with `zhiyin train --data DATA --out DIR`, set nlu.model to DIR and restart zhiyin")
	}
	if !utf8.Valid(c.Body()) {
		return nil, httpserver.Errorf(400, httpserver.CodeBadRequest, "the request body is not valid UTF-8")
	}
	var req parseRequest
	if err := httpserver.DecodeJSON(c, &req); err != nil {
		return nil, err
	}
	res, err := p.Parse(c.UserContext(), req.Text)
	switch {
	case errors.Is(err, nlu.ErrEmpty):
		return nil, httpserver.Errorf(400, httpserver.CodeBadRequest, "text is empty: send {\"text\": \"...\"} with the message to parse")
	case errors.Is(err, nlu.ErrInvalidUTF8):
		return nil, httpserver.Errorf(400, httpserver.CodeBadRequest, "text is not valid UTF-8")
	case errors.Is(err, nlu.ErrTooLong):
		return nil, httpserver.Errorf(413, httpserver.CodePayloadTooLarge, "%v (nlu.max_chars)", err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return nil, httpserver.Errorf(503, httpserver.CodeUnavailable, "parse cancelled: %v", err)
	case err != nil:
		return nil, err
	}
	return res, nil
}
