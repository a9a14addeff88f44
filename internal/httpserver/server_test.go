package httpserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/zhiyin/zhiyin/internal/auth"
	"github.com/zhiyin/zhiyin/internal/health"
	"github.com/zhiyin/zhiyin/internal/store"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type fixture struct {
	srv       *Server
	url       string
	keys      *auth.KeyStore
	ready     *health.Readiness
	live      *health.Liveness
	logs      *syncBuffer
	adminKey  string
	clientKey string
}

// newBenchFixture is newFixture for benchmarks: no limits, logs discarded.
func newBenchFixture(b *testing.B, loopback bool) *fixture {
	return newFixtureLog(b, func(_ *Config, d *Dynamic) {
		d.AllowLoopback = loopback
		d.Limits = LimitsConfig{MaxTracked: 100000}
	}, nil, io.Discard)
}

// newFixture starts a server on a real loopback socket with a real store.
// mutate may change the config and dynamic settings first; routes may add
// test routes before serving. Its logs are kept in f.logs.
func newFixture(t testing.TB, mutate func(*Config, *Dynamic), routes func(*Server)) *fixture {
	return newFixtureLog(t, mutate, routes, nil)
}

// newFixtureLog is newFixture logging to w (nil: f.logs).
func newFixtureLog(t testing.TB, mutate func(*Config, *Dynamic), routes func(*Server), w io.Writer) *fixture {
	t.Helper()
	ctx := context.Background()
	scfg := store.DefaultConfig()
	scfg.Path = filepath.Join(t.TempDir(), "z.db")
	scfg.Synchronous = "normal"
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := store.Open(ctx, scfg, quiet, prometheus.NewRegistry(), store.Options{},
		store.MigrationSet{Component: auth.MigrationComponent, FS: auth.Migrations()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ks := auth.NewKeyStore(db)
	admin, _, err := ks.Create(ctx, "admin", auth.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	client, _, err := ks.Create(ctx, "client", auth.RoleClient)
	if err != nil {
		t.Fatal(err)
	}

	cfg := DefaultConfig()
	dyn := Dynamic{Limits: DefaultLimits()}
	if mutate != nil {
		mutate(&cfg, &dyn)
	}
	logs := &syncBuffer{}
	if w == nil {
		w = logs
	}
	reg := prometheus.NewRegistry()
	f := &fixture{keys: ks, ready: health.NewReadiness(), live: &health.Liveness{}, logs: logs, adminKey: admin, clientKey: client}
	srv, err := New(cfg, dyn, Deps{
		Log: slog.New(slog.NewJSONHandler(w, nil)), Metrics: reg, Gatherer: reg,
		Readiness: f.ready, Liveness: f.live, Auth: auth.NewAuthenticator(ks, nil),
		MapError: func(err error) *Error {
			if errors.Is(err, store.ErrBusy) {
				return &Error{Status: 503, Code: CodeUnavailable, Message: "busy", RetryAfter: time.Second}
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	MountAPIKeys(srv.Group("/v1/admin", AdminOnly), srv.Group("/v1/auth", Authenticated), ks, nil)
	if routes != nil {
		routes(srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	})
	f.srv, f.url = srv, "http://"+ln.Addr().String()
	return f
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) errBody(t *testing.T) ErrorDetail {
	t.Helper()
	var eb ErrorBody
	if err := json.Unmarshal(a.body, &eb); err != nil || eb.Error.Code == "" {
		t.Fatalf("status %d body is not a JSON error: %q (%v)", a.status, a.body, err)
	}
	return eb.Error
}

func (f *fixture) do(t *testing.T, method, path, key string, body []byte, hdr ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, f.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, b}
}

func TestErrorsAreJSONWithRequestID(t *testing.T) {
	f := newFixture(t, nil, func(s *Server) {
		s.Group("/v1/test", Authenticated).Get("/panic", func(c *fiber.Ctx) error { panic("boom") })
		s.Group("/v1/test", Authenticated).Get("/busy", func(c *fiber.Ctx) error {
			return fmt.Errorf("save turn: %w", store.ErrBusy)
		})
	})
	a := f.do(t, "GET", "/nope", f.adminKey, nil)
	if a.status != 404 || a.errBody(t).Code != CodeNotFound {
		t.Errorf("unknown route: %d %s", a.status, a.body)
	}
	rid := a.header.Get(HeaderRequestID)
	if len(rid) != 16 || a.errBody(t).RequestID != rid {
		t.Errorf("request id header %q, body %q", rid, a.errBody(t).RequestID)
	}
	a = f.do(t, "POST", "/healthz", "", nil)
	if a.status != 405 || a.errBody(t).Code != CodeMethodNotAllowed {
		t.Errorf("wrong method: %d %s", a.status, a.body)
	}
	// A panic becomes a 500 naming the request id; the server keeps going.
	a = f.do(t, "GET", "/v1/test/panic", f.adminKey, nil, HeaderRequestID, "trace-123")
	e := a.errBody(t)
	if a.status != 500 || e.Code != CodeInternal || !strings.Contains(e.Message, "trace-123") || a.header.Get(HeaderRequestID) != "trace-123" {
		t.Errorf("panic: %d %+v", a.status, e)
	}
	if !strings.Contains(f.logs.String(), "panic: boom") {
		t.Error("panic not logged with its cause")
	}
	if a := f.do(t, "GET", "/healthz", "", nil); a.status != 200 {
		t.Errorf("server unusable after a panic: %d", a.status)
	}
	// A mapped component error.
	a = f.do(t, "GET", "/v1/test/busy", f.adminKey, nil)
	if a.status != 503 || a.header.Get("Retry-After") != "1" || a.errBody(t).Code != CodeUnavailable {
		t.Errorf("busy: %d %v %s", a.status, a.header, a.body)
	}
	// An invalid incoming id is replaced.
	a = f.do(t, "GET", "/healthz", "", nil, HeaderRequestID, "bad id\twith tab")
	if got := a.header.Get(HeaderRequestID); got == "" || strings.Contains(got, " ") {
		t.Errorf("bad request id kept: %q", got)
	}
}

func TestAuthPaths(t *testing.T) {
	f := newFixture(t, nil, nil)
	cases := []struct {
		name, path, key string
		status          int
		code            string
	}{
		{"no credentials", "/v1/auth/whoami", "", 401, CodeUnauthorized},
		{"malformed key", "/v1/auth/whoami", "zy_nope", 401, CodeUnauthorized},
		{"jwt not enabled", "/v1/auth/whoami", "eyJhbGciOiJIUzI1NiJ9.e30.x", 401, CodeUnauthorized},
		{"client on admin route", "/v1/admin/apikeys", f.clientKey, 403, CodeForbidden},
		{"client ok", "/v1/auth/whoami", f.clientKey, 200, ""},
		{"admin ok", "/v1/admin/apikeys", f.adminKey, 200, ""},
		{"metrics need credentials", "/metrics", "", 401, CodeUnauthorized},
		{"probes are public", "/readyz", "", 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := f.do(t, "GET", tc.path, tc.key, nil)
			if a.status != tc.status {
				t.Fatalf("status %d, want %d: %s", a.status, tc.status, a.body)
			}
			if tc.code != "" && a.errBody(t).Code != tc.code {
				t.Errorf("code %q, want %q", a.errBody(t).Code, tc.code)
			}
			if tc.status == 401 && a.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	// The X-API-Key header works too, and whoami says who.
	a := f.do(t, "GET", "/v1/auth/whoami", "", nil, HeaderAPIKey, f.clientKey)
	var p auth.Principal
	if err := json.Unmarshal(a.body, &p); err != nil || a.status != 200 || p.Role != auth.RoleClient || !strings.HasPrefix(p.Subject, "key:") {
		t.Errorf("whoami: %d %s", a.status, a.body)
	}
	// Revocation is immediate.
	id, _, _ := auth.ParseKey(f.clientKey)
	if a := f.do(t, "DELETE", "/v1/admin/apikeys/"+id, f.adminKey, nil); a.status != 200 {
		t.Fatalf("revoke: %d %s", a.status, a.body)
	}
	if a := f.do(t, "GET", "/v1/auth/whoami", f.clientKey, nil); a.status != 401 {
		t.Errorf("revoked key: %d", a.status)
	}
	if a := f.do(t, "DELETE", "/v1/admin/apikeys/"+id, f.adminKey, nil); a.status != 404 {
		t.Errorf("second revoke: %d", a.status)
	}
}

func TestLoopbackPolicy(t *testing.T) {
	f := newFixture(t, func(_ *Config, d *Dynamic) { d.AllowLoopback = true }, nil)
	a := f.do(t, "GET", "/v1/admin/apikeys", "", nil)
	if a.status != 200 {
		t.Fatalf("loopback without credentials: %d %s", a.status, a.body)
	}
	// Credentials that are sent are still checked.
	if a := f.do(t, "GET", "/v1/auth/whoami", "zy_bad", nil); a.status != 401 {
		t.Errorf("bad key from loopback: %d", a.status)
	}
	// Turning it off on reload takes effect at once.
	f.srv.Apply(Dynamic{AllowLoopback: false, Limits: DefaultLimits()})
	if a := f.do(t, "GET", "/v1/admin/apikeys", "", nil); a.status != 401 {
		t.Errorf("after reload: %d", a.status)
	}
	// Behind a trusted proxy, a forwarded client is not loopback.
	g := newFixture(t, func(c *Config, d *Dynamic) {
		d.AllowLoopback = true
		c.ProxyHeader, c.TrustedProxies = "X-Forwarded-For", []string{"127.0.0.1"}
	}, nil)
	if a := g.do(t, "GET", "/v1/admin/apikeys", "", nil, "X-Forwarded-For", "203.0.113.9"); a.status != 401 {
		t.Errorf("forwarded client let in as loopback: %d", a.status)
	}
	if a := g.do(t, "GET", "/v1/admin/apikeys", "", nil); a.status != 200 {
		t.Errorf("direct loopback behind proxy config: %d", a.status)
	}
}

func TestBodyLimit(t *testing.T) {
	f := newFixture(t, func(c *Config, _ *Dynamic) { c.BodyLimit = 4096 }, nil)
	big := []byte(`{"name":"` + strings.Repeat("x", 8000) + `"}`)
	a := f.do(t, "POST", "/v1/admin/apikeys", f.adminKey, big)
	if a.status != 413 || a.errBody(t).Code != CodePayloadTooLarge {
		t.Errorf("big body: %d %s", a.status, a.body)
	}
	// Small bodies still work on the same server.
	a = f.do(t, "POST", "/v1/admin/apikeys", f.adminKey, []byte(`{"name":"ok","role":"client"}`))
	if a.status != 201 {
		t.Errorf("small body: %d %s", a.status, a.body)
	}
}

func TestRateLimits(t *testing.T) {
	f := newFixture(t, func(_ *Config, d *Dynamic) {
		d.Limits.PerKey = ratelimitRate(0.01, 2) // one token per 100 s: no refill during the test
	}, nil)
	var statuses []int
	var last answer
	for i := 0; i < 3; i++ {
		last = f.do(t, "GET", "/v1/auth/whoami", f.clientKey, nil)
		statuses = append(statuses, last.status)
	}
	if fmt.Sprint(statuses) != "[200 200 429]" {
		t.Fatalf("per-key statuses %v", statuses)
	}
	if ra, err := strconv.Atoi(last.header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("Retry-After %q", last.header.Get("Retry-After"))
	}
	if last.errBody(t).Code != CodeRateLimited {
		t.Errorf("code %q", last.errBody(t).Code)
	}
	// Another key is not affected.
	if a := f.do(t, "GET", "/v1/auth/whoami", f.adminKey, nil); a.status != 200 {
		t.Errorf("other key: %d", a.status)
	}
	// Per address: loopback is exempt by default; without the exemption it
	// is limited, but health probes never are.
	f.srv.Apply(Dynamic{Limits: LimitsConfig{PerIP: ratelimitRate(0.01, 1), MaxTracked: 100}})
	statuses = nil
	for i := 0; i < 2; i++ {
		statuses = append(statuses, f.do(t, "GET", "/nope", "", nil).status)
	}
	if fmt.Sprint(statuses) != "[404 429]" {
		t.Errorf("per-IP statuses %v", statuses)
	}
	for i := 0; i < 5; i++ {
		if a := f.do(t, "GET", "/healthz", "", nil); a.status != 200 {
			t.Fatalf("probe limited: %d", a.status)
		}
	}
}

func TestReadyAndHealth(t *testing.T) {
	f := newFixture(t, nil, nil)
	f.ready.Set("database", true, "/x.db")
	f.ready.Set("model:vad", false, "warming up")
	a := f.do(t, "GET", "/readyz", "", nil)
	var rb ReadyBody
	if err := json.Unmarshal(a.body, &rb); err != nil || a.status != 503 || rb.Status != "not_ready" || fmt.Sprint(rb.NotReady) != "[model:vad]" {
		t.Errorf("not ready: %d %s", a.status, a.body)
	}
	f.ready.Set("model:vad", true, "warmed on cpu")
	if a := f.do(t, "GET", "/readyz", "", nil); a.status != 200 {
		t.Errorf("ready: %d %s", a.status, a.body)
	}
	f.live.Set(errors.New("database writer not responding"))
	a = f.do(t, "GET", "/healthz", "", nil)
	if a.status != 503 || !strings.Contains(string(a.body), "not responding") {
		t.Errorf("failing health: %d %s", a.status, a.body)
	}
}

func TestMetricsAndAccessLog(t *testing.T) {
	f := newFixture(t, nil, nil)
	secret := "我的快递SF1234567890到哪了"
	f.do(t, "POST", "/v1/admin/apikeys?text="+secret, f.adminKey, []byte(`{"name":"`+secret+`"}`))
	f.do(t, "GET", "/v1/auth/whoami", f.clientKey, nil)
	a := f.do(t, "GET", "/metrics", f.adminKey, nil)
	if a.status != 200 {
		t.Fatalf("metrics: %d", a.status)
	}
	for _, want := range []string{
		`zhiyin_http_request_duration_seconds_bucket{method="GET",route="/v1/auth/whoami",status="200"`,
		`zhiyin_http_request_duration_seconds_count{method="POST",route="/v1/admin/apikeys",status="201"}`,
		"zhiyin_http_requests_in_flight",
	} {
		if !strings.Contains(string(a.body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	logs := f.logs.String()
	if !strings.Contains(logs, `"route":"/v1/auth/whoami"`) || !strings.Contains(logs, `"status":200`) {
		t.Errorf("access log lacks route/status:\n%s", logs)
	}
	if strings.Contains(logs, "SF1234567890") || strings.Contains(logs, "快递") {
		t.Errorf("access log holds customer text:\n%s", logs)
	}
}

func TestDecodeJSON(t *testing.T) {
	f := newFixture(t, nil, nil)
	cases := []struct {
		name, ctype, body string
		status            int
		msg               string
	}{
		{"wrong type", "text/plain", `{"name":"a"}`, 415, "send the body as JSON with Content-Type: application/json"},
		{"empty", "application/json", ``, 400, "the request body is empty; send a JSON object"},
		{"syntax", "application/json", `{"name":}`, 400, "invalid JSON body: syntax error at byte 9"},
		{"unknown field", "application/json", `{"nmae":"a"}`, 400, `invalid JSON body: unknown field "nmae"`},
		{"wrong type field", "application/json", `{"name":5}`, 400, `invalid JSON body: field "name" must be a string, not number`},
		{"trailing", "application/json", `{"name":"a"} {}`, 400, "invalid JSON body: unexpected data after the object"},
		{"truncated", "application/json", `{"name":"a"`, 400, "invalid JSON body: the JSON ends too early"},
		{"bad role", "application/json", `{"name":"a","role":"root"}`, 400, `role: unknown role "root": use admin or client`},
		{"bad name", "application/json", `{"name":""}`, 400, "key name must be 1 to 64 characters, got 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := f.do(t, "POST", "/v1/admin/apikeys", f.adminKey, []byte(tc.body), "Content-Type", tc.ctype)
			if a.status != tc.status || a.errBody(t).Message != tc.msg {
				t.Errorf("got %d %q, want %d %q", a.status, a.errBody(t).Message, tc.status, tc.msg)
			}
		})
	}
	// Duplicate names conflict.
	f.do(t, "POST", "/v1/admin/apikeys", f.adminKey, []byte(`{"name":"dup"}`))
	if a := f.do(t, "POST", "/v1/admin/apikeys", f.adminKey, []byte(`{"name":"dup"}`)); a.status != 409 {
		t.Errorf("duplicate: %d %s", a.status, a.body)
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.Listen = "x" }, `server.listen: invalid address "x": use host:port, e.g. 127.0.0.1:18789 or 0.0.0.0:18789`},
		{func(c *Config) { c.Listen = "127.0.0.1:99999" }, `server.listen: invalid port in "127.0.0.1:99999": use 1-65535`},
		{func(c *Config) { c.Listen = "example.com:80" }, `server.listen: invalid host in "example.com:80": use an IP address (names are not resolved on an offline appliance) or localhost`},
		{func(c *Config) { c.ReadTimeout = time.Millisecond }, "server.read_timeout: must be between 1s and 1h, got 1ms"},
		{func(c *Config) { c.BodyLimit = 10 }, "server.body_limit: must be between 1KiB and 1GiB, got 10"},
		{func(c *Config) { c.ProxyHeader = "X-Forwarded-For" }, "server.trusted_proxies: required when proxy_header is set (otherwise any client could forge its address)"},
		{func(c *Config) { c.ProxyHeader, c.TrustedProxies = "X-Real-IP", []string{"10.0.0.0/8", "nope"} }, `server.trusted_proxies[1]: invalid address or CIDR "nope"`},
	}
	for _, tc := range cases {
		c := DefaultConfig()
		tc.mod(&c)
		v := newValidator()
		c.Validate(v.Sub("server"))
		if err := v.Err(); err == nil || err.Error() != tc.want {
			t.Errorf("got %v\nwant %s", err, tc.want)
		}
	}
	if !IsLoopbackListen("127.0.0.1:1") || !IsLoopbackListen("[::1]:1") || !IsLoopbackListen("localhost:1") || IsLoopbackListen("0.0.0.0:1") || IsLoopbackListen(":1") {
		t.Error("IsLoopbackListen wrong")
	}
}

func FuzzValidRequestID(f *testing.F) {
	f.Add("abc-123")
	f.Add("a b")
	f.Fuzz(func(t *testing.T, s string) {
		if validRequestID(s) && (strings.ContainsAny(s, " \t\r\n\"=") || len(s) > 128) {
			t.Fatalf("accepted %q", s)
		}
	})
}

// Long and chunked bodies are streamed by fasthttp: elsewhere they are
// held to server.body_limit (chunked ones read here, up to it); under an
// AllowLargeBodies prefix the handler reads them as a stream, up to the
// route's own limit.
func TestLargeBodies(t *testing.T) {
	const routeLimit = 256 << 10
	f := newFixture(t, func(c *Config, _ *Dynamic) { c.BodyLimit = 4096 }, func(s *Server) {
		s.AllowLargeBodies("/v1/upload", routeLimit)
		up := s.Group("/v1/upload", Authenticated)
		up.Post("", func(c *fiber.Ctx) error {
			n, err := io.Copy(io.Discard, BodyReader(c, routeLimit))
			if err != nil {
				return err
			}
			return c.JSON(map[string]int64{"bytes": n})
		})
		s.Group("/v1/echo", Authenticated).Post("", func(c *fiber.Ctx) error {
			return c.JSON(map[string]int{"bytes": len(c.Body())})
		})
	})
	post := func(path string, body io.Reader, size int64) answer {
		t.Helper()
		req, err := http.NewRequest("POST", f.url+path, body)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = size // -1: chunked
		req.Header.Set("Authorization", "Bearer "+f.clientKey)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return answer{status: res.StatusCode, header: res.Header, body: b}
	}
	chunked := func(n int) io.Reader { return io.MultiReader(strings.NewReader(strings.Repeat("a", n))) }
	// A declared length over the route's limit is refused once the first
	// server.body_limit bytes arrived, without reading the rest (a client
	// still writing it may see a reset): send only 8 KiB of it here.
	t.Run("upload declared too long", func(t *testing.T) {
		conn, err := net.Dial("tcp", strings.TrimPrefix(f.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /v1/upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s", f.clientKey, routeLimit+1, strings.Repeat("a", 8192))
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 413 || !res.Close {
			t.Errorf("status %d, close %v; want 413 and the connection closed", res.StatusCode, res.Close)
		}
	})
	for _, c := range []struct {
		name   string
		path   string
		body   io.Reader
		size   int64
		status int
		bytes  int
	}{
		{"small", "/v1/echo", strings.NewReader("hello"), 5, 200, 5},
		{"small chunked", "/v1/echo", chunked(3000), -1, 200, 3000},
		{"long", "/v1/echo", strings.NewReader(strings.Repeat("a", 5000)), 5000, 413, 0},
		{"long chunked", "/v1/echo", chunked(5000), -1, 413, 0},
		{"upload", "/v1/upload", strings.NewReader(strings.Repeat("a", 200<<10)), 200 << 10, 200, 200 << 10},
		{"upload chunked", "/v1/upload", chunked(200 << 10), -1, 200, 200 << 10},
		{"upload exactly the limit", "/v1/upload", chunked(routeLimit), -1, 200, routeLimit},
		{"upload chunked too long", "/v1/upload", chunked(routeLimit + 10), -1, 413, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := post(c.path, c.body, c.size)
			if a.status != c.status {
				t.Fatalf("status %d, want %d: %s", a.status, c.status, a.body)
			}
			if c.status == 413 {
				if a.errBody(t).Code != CodePayloadTooLarge {
					t.Errorf("code %s", a.errBody(t).Code)
				}
				return
			}
			var got map[string]int
			if err := json.Unmarshal(a.body, &got); err != nil || got["bytes"] != c.bytes {
				t.Errorf("handler saw %s, want %d bytes", a.body, c.bytes)
			}
		})
	}
}

// An early answer (401 before the handler reads the body) leaves nothing
// of a longer-than-prefetch body on a kept-alive connection.
func TestEarlyAnswerKeepsConnection(t *testing.T) {
	f := newFixture(t, func(_ *Config, d *Dynamic) { d.AllowLoopback = false }, nil)
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"name":"` + strings.Repeat("x", 50_000) + `"}`
	fmt.Fprintf(conn, "POST /v1/admin/apikeys HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(conn)
	for _, want := range []int{401, 200} {
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("want %d: %v", want, err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != want {
			t.Fatalf("status %d, want %d", res.StatusCode, want)
		}
	}
}
