package httpserver

import (
	"net"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// benchGet drives GET url with parallel keep-alive clients.
func benchGet(b *testing.B, url, key string) {
	client := &fasthttp.Client{MaxConnsPerHost: 256}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI(url)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		for pb.Next() {
			if err := client.Do(req, resp); err != nil {
				b.Error(err)
				return
			}
			if resp.StatusCode() != 200 {
				b.Errorf("status %d", resp.StatusCode())
				return
			}
		}
	})
}

// BenchmarkBareFiber is the floor: a fiber handler with no middleware.
func BenchmarkBareFiber(b *testing.B) {
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/v1/auth/whoami", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"role": "admin"}) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go app.Listener(ln)
	defer app.Shutdown()
	benchGet(b, "http://"+ln.Addr().String()+"/v1/auth/whoami", "")
}

// BenchmarkShellAPIKey is the same route through the whole shell: request
// id, metrics, access log (discarded), per-IP and per-key limits, and an API
// key verified against SQLite on every request.
func BenchmarkShellAPIKey(b *testing.B) {
	f := newBenchFixture(b, false)
	benchGet(b, f.url+"/v1/auth/whoami", f.adminKey)
}

// BenchmarkShellLoopback: the shell with loopback access (no key lookup).
func BenchmarkShellLoopback(b *testing.B) {
	f := newBenchFixture(b, true)
	benchGet(b, f.url+"/v1/auth/whoami", "")
}
