package httpserver

import (
	"github.com/zhiyin/zhiyin/internal/config"
	"github.com/zhiyin/zhiyin/internal/ratelimit"
)

func ratelimitRate(perSecond float64, burst int) ratelimit.Rate {
	return ratelimit.Rate{PerSecond: perSecond, Burst: burst}
}

func newValidator() *config.Validator { return config.NewValidator("") }
