package httpserver

import (
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/zhiyin/zhiyin/internal/auth"
)

// MountAPIKeys adds the API key administration routes to an admin group:
//
//	GET    /apikeys?all=true     list (revoked ones with all=true)
//	POST   /apikeys              {"name","role"} → 201 with the key, shown once
//	DELETE /apikeys/:id          revoke by id or name
//
// and GET /whoami to an authenticated group (who the credentials belong to).
//
// audit, when not nil, records each key created or revoked (who, what,
// which key id); it must not fail the request.
func MountAPIKeys(admin, authed fiber.Router, ks *auth.KeyStore, audit func(c *fiber.Ctx, action, target string)) {
	record := func(c *fiber.Ctx, action, target string) {
		if audit != nil {
			audit(c, action, target)
		}
	}
	admin.Get("/apikeys", func(c *fiber.Ctx) error {
		keys, err := ks.List(c.UserContext(), c.QueryBool("all"))
		if err != nil {
			return err
		}
		if keys == nil {
			keys = []auth.Key{}
		}
		return c.JSON(fiber.Map{"keys": keys})
	})
	admin.Post("/apikeys", func(c *fiber.Ctx) error {
		var req struct {
			Name string `json:"name"`
			Role string `json:"role"`
		}
		if err := DecodeJSON(c, &req); err != nil {
			return err
		}
		if req.Role == "" {
			req.Role = string(auth.RoleClient)
		}
		role, err := auth.ParseRole(req.Role)
		if err != nil {
			return Errorf(fiber.StatusBadRequest, CodeBadRequest, "role: %v", err)
		}
		plain, k, err := ks.Create(c.UserContext(), req.Name, role)
		switch {
		case errors.Is(err, auth.ErrDuplicateName):
			return Errorf(fiber.StatusConflict, CodeConflict, "an active key is already named %q; revoke it or choose another name", req.Name)
		case isValidation(err):
			return Errorf(fiber.StatusBadRequest, CodeBadRequest, "%v", err)
		case err != nil:
			return err
		}
		record(c, "apikey.create", k.ID)
		c.Status(fiber.StatusCreated)
		return c.JSON(struct {
			auth.Key
			Secret string `json:"key"`
			Note   string `json:"note"`
		}{k, plain, "store the key now: it is not shown again"})
	})
	admin.Delete("/apikeys/:id", func(c *fiber.Ctx) error {
		k, err := ks.Revoke(c.UserContext(), c.Params("id"))
		if errors.Is(err, auth.ErrNotFound) {
			return Errorf(fiber.StatusNotFound, CodeNotFound, "no active API key with id or name %q", c.Params("id"))
		}
		if err != nil {
			return err
		}
		record(c, "apikey.revoke", k.ID)
		return c.JSON(k)
	})
	authed.Get("/whoami", func(c *fiber.Ctx) error {
		p, _ := PrincipalFrom(c)
		return c.JSON(struct {
			auth.Principal
			Time time.Time `json:"server_time"`
		}{p, time.Now().UTC()})
	})
}

// isValidation reports whether a key store error is about the input (name,
// role) rather than the database.
func isValidation(err error) bool {
	var ve *auth.ValidationError
	return errors.As(err, &ve)
}
