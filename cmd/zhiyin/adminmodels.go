package main

import (
	"encoding/json"
	"errors"

	"github.com/gofiber/fiber/v2"

	"github.com/zhiyin/zhiyin/inference"
	"github.com/zhiyin/zhiyin/internal/httpserver"
)

// mountModelAdmin adds the routes `zhiyin models` calls on a running daemon
// (inference.AdminModelsPath; the contract is documented there) to an admin
// group mounted at that path.
func mountModelAdmin(g fiber.Router, reg *inference.Registry) {
	g.Get("/", func(c *fiber.Ctx) error {
		return c.JSON(fiber.Map{"models": reg.List()})
	})
	g.Get("/:name", func(c *fiber.Ctx) error {
		rep, err := reg.Report(c.Params("name"))
		if err != nil {
			return modelError(err)
		}
		return c.JSON(rep)
	})
	g.Post("/:name/shadow", func(c *fiber.Ctx) error {
		var opts inference.ShadowOptions
		if len(c.Body()) > 0 {
			if err := httpserver.DecodeJSON(c, &opts); err != nil {
				return err
			}
		}
		rep, err := reg.StartShadow(c.UserContext(), c.Params("name"), opts)
		if err != nil {
			return modelError(err)
		}
		return c.JSON(rep)
	})
	g.Delete("/:name/shadow", func(c *fiber.Ctx) error {
		rep, err := reg.StopShadow(c.UserContext(), c.Params("name"))
		if err != nil {
			return modelError(err)
		}
		return c.JSON(rep)
	})
	g.Post("/:name/promote", func(c *fiber.Ctx) error {
		ev, err := reg.Promote(c.UserContext(), c.Params("name"))
		if err != nil {
			return modelError(err)
		}
		return c.JSON(ev)
	})
	g.Post("/:name/rollback", func(c *fiber.Ctx) error {
		ev, err := reg.Rollback(c.UserContext(), c.Params("name"))
		if err != nil {
			return modelError(err)
		}
		return c.JSON(ev)
	})
}

// modelError turns a registry error into an answer: its own message for
// the caller's mistakes (unknown model, no candidate, bad manifest), a
// logged 500 otherwise.
func modelError(err error) error {
	status := inference.HTTPStatus(err)
	code := map[int]string{
		404: httpserver.CodeNotFound, 409: httpserver.CodeConflict,
		422: httpserver.CodeBadRequest, 503: httpserver.CodeUnavailable,
	}[status]
	if code == "" {
		return err // 500, details in the log only
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		status, code = 400, httpserver.CodeBadRequest
	}
	return &httpserver.Error{Status: status, Code: code, Message: err.Error(), Err: err}
}
