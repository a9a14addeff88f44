package inference

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// The admin API routes `zhiyin models` calls on a running daemon (the
// server mounts them; the Registry methods named do the work):
//
//	GET    /v1/admin/models                 {"models": List()}
//	GET    /v1/admin/models/{name}          Report(name)
//	POST   /v1/admin/models/{name}/shadow   StartShadow(name, ShadowOptions from the JSON body) → ShadowReport
//	DELETE /v1/admin/models/{name}/shadow   StopShadow(name) → ShadowReport
//	POST   /v1/admin/models/{name}/promote  Promote(name) → SwapEvent
//	POST   /v1/admin/models/{name}/rollback Rollback(name) → SwapEvent
//
// Errors map to statuses with HTTPStatus.
const AdminModelsPath = "/v1/admin/models"

// HTTPStatus maps a Registry error to an HTTP status: 404 for an unknown
// model, 409 when there is no candidate or previous version, 422 for a
// contract mismatch or invalid manifest, 503 when closed or overloaded,
// 500 otherwise.
func HTTPStatus(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, ErrModelNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrNoCandidate), errors.Is(err, ErrNoPrevious):
		return http.StatusConflict
	case errors.Is(err, ErrContract), errors.Is(err, ErrManifest), errors.Is(err, ErrBadInput),
		errors.Is(err, ErrChecksum), errors.Is(err, ErrMissingFile):
		return http.StatusUnprocessableEntity
	case errors.Is(err, ErrClosed), errors.Is(err, ErrOverloaded):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// shadowOptionsJSON is ShadowOptions on the wire: the window as a Go
// duration string ("30m").
type shadowOptionsJSON struct {
	Dir      string  `json:"dir,omitempty"`
	Fraction float64 `json:"fraction,omitempty"`
	Window   string  `json:"window,omitempty"`
}

// MarshalJSON writes the window as a duration string.
func (o ShadowOptions) MarshalJSON() ([]byte, error) {
	j := shadowOptionsJSON{Dir: o.Dir, Fraction: o.Fraction}
	if o.Window != 0 {
		j.Window = o.Window.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads {"dir": "...", "fraction": 0.2, "window": "30m"}; an
// empty body is the zero value.
func (o *ShadowOptions) UnmarshalJSON(b []byte) error {
	var j shadowOptionsJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("shadow options: %w", err)
	}
	*o = ShadowOptions{Dir: j.Dir, Fraction: j.Fraction}
	if j.Fraction < 0 || j.Fraction > 1 {
		return fmt.Errorf("shadow options: fraction must be in (0, 1], got %v", j.Fraction)
	}
	if j.Window != "" {
		d, err := time.ParseDuration(j.Window)
		if err != nil || d < 0 {
			return fmt.Errorf("shadow options: window %q is not a duration such as 30m", j.Window)
		}
		o.Window = d
	}
	return nil
}
