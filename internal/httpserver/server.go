package httpserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/zhiyin/zhiyin/internal/auth"
	"github.com/zhiyin/zhiyin/internal/health"
	"github.com/zhiyin/zhiyin/internal/ratelimit"
)

// Headers the shell reads or writes.
const (
	HeaderRequestID = "X-Request-ID"
	HeaderAPIKey    = "X-API-Key"
)

// Locals keys.
const (
	localRequestID = "zhiyin.request_id"
	localPrincipal = "zhiyin.principal"
)

// Policy says who may call the routes of a group.
type Policy int

// Policies.
const (
	// Public routes need no credentials: health probes and the channels'
	// own signed callbacks (they verify the platform's signature).
	Public Policy = iota
	// Authenticated routes need an API key or JWT of any role (or a
	// loopback request when auth.allow_loopback is on).
	Authenticated
	// AdminOnly routes need the admin role.
	AdminOnly
)

// Deps are what the server uses but does not own.
type Deps struct {
	Log *slog.Logger
	// Metrics receives the HTTP metrics; Gatherer is served on /metrics.
	Metrics  prometheus.Registerer
	Gatherer prometheus.Gatherer
	// Readiness answers /readyz; Liveness answers /healthz.
	Readiness *health.Readiness
	Liveness  *health.Liveness
	// Auth checks credentials; nil refuses every credential.
	Auth *auth.Authenticator
	// MapError turns component errors (a busy database, say) into answers;
	// it returns nil for errors it does not know. Optional.
	MapError func(error) *Error
}

// Dynamic is the part of the HTTP shell's behaviour that SIGHUP reloads.
type Dynamic struct {
	AllowLoopback bool
	Limits        LimitsConfig
}

// Server is the HTTP shell. New registers routes; Serve runs it; Shutdown
// drains it. Safe for concurrent use once serving.
type Server struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
	app  *fiber.App
	dyn  atomic.Pointer[Dynamic]

	ipLimiter  *ratelimit.Limiter
	keyLimiter *ratelimit.Limiter
	large      []largeBody // routes that read big bodies as streams

	reqDuration  *prometheus.HistogramVec
	inFlight     prometheus.Gauge
	rateLimited  *prometheus.CounterVec
	authFailures *prometheus.CounterVec
}

// New builds the server and its built-in routes (/healthz, /readyz,
// /metrics). It does no I/O; it fails only if the metrics cannot be
// registered.
func New(cfg Config, dyn Dynamic, deps Deps) (*Server, error) {
	s := &Server{cfg: cfg, deps: deps, log: deps.Log}
	s.dyn.Store(&dyn)
	s.ipLimiter = ratelimit.New(dyn.Limits.PerIP, dyn.Limits.MaxTracked)
	s.keyLimiter = ratelimit.New(dyn.Limits.PerKey, dyn.Limits.MaxTracked)

	s.reqDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "zhiyin", Subsystem: "http", Name: "request_duration_seconds",
		Help:    "Time to answer HTTP requests, by route pattern, method and status.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"route", "method", "status"})
	s.inFlight = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "zhiyin", Subsystem: "http", Name: "requests_in_flight",
		Help: "HTTP requests being answered now.",
	})
	s.rateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "zhiyin", Subsystem: "http", Name: "rate_limited_total",
		Help: "Requests refused with 429, by limit (ip or key).",
	}, []string{"limit"})
	s.authFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "zhiyin", Subsystem: "http", Name: "auth_failures_total",
		Help: "Requests refused with 401 or 403, by reason.",
	}, []string{"reason"})
	for _, c := range []prometheus.Collector{s.reqDuration, s.inFlight, s.rateLimited, s.authFailures} {
		if err := deps.Metrics.Register(c); err != nil {
			return nil, fmt.Errorf("register HTTP metrics: %w", err)
		}
	}

	fcfg := fiber.Config{
		AppName:               "zhiyin",
		DisableStartupMessage: true,
		ReadTimeout:           cfg.ReadTimeout,
		WriteTimeout:          cfg.WriteTimeout,
		IdleTimeout:           cfg.IdleTimeout,
		// Bodies up to BodyLimit are read before the handler runs; longer
		// ones are streamed, and limitBody refuses them except on the
		// routes that read uploads as streams (speech files).
		BodyLimit:                    int(cfg.BodyLimit),
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		Concurrency:                  cfg.MaxConnections,
		ErrorHandler:                 s.connErrorHandler,
		EnableIPValidation:           true,
	}
	if cfg.ProxyHeader != "" {
		fcfg.ProxyHeader = cfg.ProxyHeader
		fcfg.EnableTrustedProxyCheck = true
		fcfg.TrustedProxies = cfg.TrustedProxies
	}
	s.app = fiber.New(fcfg)
	s.app.Use(s.observe, s.limitBody, s.limitIP)
	s.app.Get("/healthz", s.healthz)
	s.app.Get("/readyz", s.readyz)
	s.app.Get("/metrics", s.authenticate(Authenticated),
		adaptor.HTTPHandler(promhttp.HandlerFor(deps.Gatherer, promhttp.HandlerOpts{ErrorLog: slogPrinter{deps.Log}})))
	return s, nil
}

// Group returns a router for routes under prefix with the given policy.
// Register routes before Serve.
func (s *Server) Group(prefix string, p Policy) fiber.Router {
	if p == Public {
		return s.app.Group(prefix)
	}
	return s.app.Group(prefix, s.authenticate(p))
}

// largeBody is a route prefix whose handlers read the request body as a
// stream, up to limit bytes.
type largeBody struct {
	prefix string
	limit  int64
}

// AllowLargeBodies lets requests under prefix carry bodies of up to limit
// bytes, which their handlers read as a stream (c.Request().BodyStream(),
// through BodyReader) instead of from memory. Call it before Serve.
func (s *Server) AllowLargeBodies(prefix string, limit int64) {
	s.large = append(s.large, largeBody{prefix: prefix, limit: limit})
}

// BodyReader returns a request's body as a reader that fails with a 413
// Error past limit bytes. Use it on routes given to AllowLargeBodies; the
// body is not in memory.
func BodyReader(c *fiber.Ctx, limit int64) io.Reader {
	req := c.Request()
	var r io.Reader
	if req.IsBodyStream() {
		r = req.BodyStream()
	} else {
		r = bytes.NewReader(req.Body())
	}
	return &limitedBody{r: r, left: limit, limit: limit}
}

type limitedBody struct {
	r           io.Reader
	left, limit int64
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// One byte more than allowed tells a long body from an exact one.
		var one [1]byte
		if n, _ := l.r.Read(one[:]); n > 0 {
			return 0, Errorf(fiber.StatusRequestEntityTooLarge, CodePayloadTooLarge, "request body too large: the limit here is %d bytes", l.limit)
		}
		return 0, io.EOF
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// limitBody enforces server.body_limit on bodies fasthttp streamed
// because they were long or chunked, except under AllowLargeBodies
// prefixes, whose handlers read them as streams.
func (s *Server) limitBody(c *fiber.Ctx) error {
	req := c.Request()
	if !req.IsBodyStream() {
		return c.Next()
	}
	path := c.Path()
	for _, l := range s.large {
		if strings.HasPrefix(path, l.prefix) {
			if cl := req.Header.ContentLength(); cl > 0 && int64(cl) > l.limit {
				c.Context().SetConnectionClose()
				return Errorf(fiber.StatusRequestEntityTooLarge, CodePayloadTooLarge, "request body of %d bytes is too large: the limit here is %d bytes", cl, l.limit)
			}
			// The handler may answer before reading all of a long body
			// (a bad header, say): the connection cannot be reused then.
			if cl := req.Header.ContentLength(); cl < 0 || int64(cl) > int64(s.cfg.BodyLimit) {
				c.Context().SetConnectionClose()
			}
			return c.Next()
		}
	}
	limit := int64(s.cfg.BodyLimit)
	cl := req.Header.ContentLength()
	if cl < 0 || int64(cl) <= limit {
		// fasthttp read only the first part of it: read the rest here, up
		// to the limit, so that an early answer (401, 429) never leaves
		// body bytes on a kept-alive connection.
		data, err := io.ReadAll(io.LimitReader(req.BodyStream(), limit+1))
		if err == nil && int64(len(data)) <= limit {
			req.SetBody(data)
			return c.Next()
		}
	}
	c.Context().SetConnectionClose()
	return &Error{Status: fiber.StatusRequestEntityTooLarge, Code: CodePayloadTooLarge, Message: "request body too large (see server.body_limit)"}
}

// App returns the fiber app, for tests (app.Test) and rare needs.
func (s *Server) App() *fiber.App { return s.app }

// Apply switches to a reloaded dynamic configuration.
func (s *Server) Apply(d Dynamic) {
	s.ipLimiter.SetRate(d.Limits.PerIP)
	s.keyLimiter.SetRate(d.Limits.PerKey)
	s.dyn.Store(&d)
}

// Serve answers requests on ln until Shutdown. It blocks.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.app.Listener(ln); err != nil {
		return fmt.Errorf("serve HTTP on %s: %w", ln.Addr(), err)
	}
	return nil
}

// Shutdown stops accepting connections and waits for in-flight requests
// until ctx ends, then closes the remaining connections.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.app.ShutdownWithContext(ctx)
}

// RequestID returns the request's id.
func RequestID(c *fiber.Ctx) string {
	id, _ := c.Locals(localRequestID).(string)
	return id
}

// PrincipalFrom returns who is calling, on routes that are not Public.
func PrincipalFrom(c *fiber.Ctx) (auth.Principal, bool) {
	p, ok := c.Locals(localPrincipal).(auth.Principal)
	return p, ok
}

// validRequestID accepts ids a proxy or client may pass in: short, printable,
// no separators that could break log lines.
func validRequestID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_' || b == '.' || b == ':') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	return fmt.Sprintf("%016x", rand.Uint64())
}

// observe is the outermost middleware: request id, panic recovery, error
// answers, metrics and the access log. It never logs bodies or query
// strings: they may hold customer text.
func (s *Server) observe(c *fiber.Ctx) error {
	start := time.Now()
	rid := c.Get(HeaderRequestID)
	if !validRequestID(rid) {
		rid = newRequestID()
	} else {
		rid = strings.Clone(rid)
	}
	c.Locals(localRequestID, rid)
	c.Set(HeaderRequestID, rid)
	s.inFlight.Inc()
	defer s.inFlight.Dec()

	if err := s.next(c); err != nil {
		e := s.toError(err)
		if e.Status >= 500 {
			s.log.Error("request failed", "request_id", rid, "method", c.Method(), "route", c.Route().Path, "status", e.Status, "err", e.Err)
		}
		if werr := writeError(c, e, rid); werr != nil {
			s.log.Warn("write error answer", "request_id", rid, "err", werr)
		}
	}
	status := c.Response().StatusCode()
	dur := time.Since(start)
	route := routeLabel(c)
	// fiber's strings point into reused buffers: copy what outlives the
	// request (metric labels are kept by the registry).
	method := strings.Clone(c.Method())
	s.reqDuration.WithLabelValues(route, method, strconv.Itoa(status)).Observe(dur.Seconds())
	if !s.log.Enabled(c.UserContext(), slog.LevelInfo) {
		return nil
	}
	attrs := []any{"request_id", rid, "method", method, "route", route, "path", c.Path(),
		"status", status, "dur_ms", float64(dur.Microseconds()) / 1000, "bytes", len(c.Response().Body()), "ip", c.IP()}
	if p, ok := PrincipalFrom(c); ok {
		attrs = append(attrs, "principal", p.Kind+":"+p.ID)
	}
	s.log.Info("http request", attrs...)
	return nil
}

// next runs the rest of the chain, turning a panic into a 500.
func (s *Server) next(c *fiber.Ctx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &Error{Status: fiber.StatusInternalServerError, Code: CodeInternal, Message: "internal error",
				Err: fmt.Errorf("panic: %v\n%s", r, debug.Stack())}
		}
	}()
	return c.Next()
}

// routeLabel is the pattern of the route that answered: the handler's
// ("/v1/sessions/:id"), or the group's prefix when a middleware answered
// (a 401 on "/v1"), or "/" when nothing matched. Only registered patterns,
// never request paths, so the label values are bounded.
func routeLabel(c *fiber.Ctx) string {
	r := c.Route()
	if r == nil || r.Path == "" {
		return "/"
	}
	return strings.Clone(r.Path)
}

// connErrorHandler answers errors raised outside the middleware chain
// (body too large, malformed request line, read timeout).
func (s *Server) connErrorHandler(c *fiber.Ctx, err error) error {
	rid := RequestID(c)
	if rid == "" {
		rid = newRequestID()
	}
	return writeError(c, s.toError(err), rid)
}

func isProbe(path string) bool { return path == "/healthz" || path == "/readyz" }

// clientIsLoopback reports whether the client is this host: both the peer
// and, behind a trusted proxy, the forwarded address ip (c.IP()) are
// loopback.
func clientIsLoopback(c *fiber.Ctx, ip string) bool {
	if !c.Context().RemoteIP().IsLoopback() {
		return false
	}
	a, err := netip.ParseAddr(ip)
	return err == nil && a.IsLoopback()
}

// limitIP applies the per-address limit to everything but health probes.
func (s *Server) limitIP(c *fiber.Ctx) error {
	if isProbe(c.Path()) {
		return c.Next()
	}
	d := s.dyn.Load()
	ip := c.IP()
	if d.Limits.ExemptLoopback && clientIsLoopback(c, ip) {
		return c.Next()
	}
	if ok, retry := s.ipLimiter.Allow(ip); !ok {
		s.rateLimited.WithLabelValues("ip").Inc()
		return &Error{Status: fiber.StatusTooManyRequests, Code: CodeRateLimited,
			Message: "too many requests from this address; slow down and retry after the time in Retry-After", RetryAfter: retry}
	}
	return c.Next()
}

// authenticate returns middleware enforcing policy p.
func (s *Server) authenticate(p Policy) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if _, done := PrincipalFrom(c); done {
			// An outer group already authenticated; only the role is left.
			return s.authorize(c, p)
		}
		d := s.dyn.Load()
		var principal auth.Principal
		var err error
		if s.deps.Auth == nil {
			err = auth.ErrNoCredentials
			if c.Get(fiber.HeaderAuthorization) != "" || c.Get(HeaderAPIKey) != "" {
				err = auth.ErrInvalidCredentials
			}
		} else {
			principal, err = s.deps.Auth.Authenticate(c.UserContext(), c.Get(fiber.HeaderAuthorization), c.Get(HeaderAPIKey))
		}
		switch {
		case err == nil:
		case errors.Is(err, auth.ErrNoCredentials) && d.AllowLoopback && clientIsLoopback(c, c.IP()):
			principal = auth.Principal{Kind: auth.KindLoopback, ID: "loopback", Subject: "loopback", Role: auth.RoleAdmin}
		case errors.Is(err, auth.ErrNoCredentials):
			s.authFailures.WithLabelValues("missing").Inc()
			return Errorf(fiber.StatusUnauthorized, CodeUnauthorized,
				"credentials required: send \"Authorization: Bearer <API key or JWT>\" (create a key with `zhiyin apikey create`)")
		case errors.Is(err, auth.ErrInvalidCredentials):
			s.authFailures.WithLabelValues("invalid").Inc()
			s.log.Info("authentication failed", "request_id", RequestID(c), "ip", c.IP(), "reason", err.Error())
			return Errorf(fiber.StatusUnauthorized, CodeUnauthorized, "invalid, expired or revoked credentials")
		default:
			return &Error{Status: fiber.StatusServiceUnavailable, Code: CodeUnavailable,
				Message: "cannot check credentials right now; retry shortly", RetryAfter: time.Second, Err: err}
		}
		c.Locals(localPrincipal, principal)
		if principal.Kind != auth.KindLoopback {
			if ok, retry := s.keyLimiter.Allow(principal.Kind + ":" + principal.ID); !ok {
				s.rateLimited.WithLabelValues("key").Inc()
				return &Error{Status: fiber.StatusTooManyRequests, Code: CodeRateLimited,
					Message: "too many requests for this key; slow down and retry after the time in Retry-After", RetryAfter: retry}
			}
		}
		return s.authorize(c, p)
	}
}

func (s *Server) authorize(c *fiber.Ctx, p Policy) error {
	principal, _ := PrincipalFrom(c)
	if p == AdminOnly && !principal.IsAdmin() {
		s.authFailures.WithLabelValues("forbidden").Inc()
		return Errorf(fiber.StatusForbidden, CodeForbidden, "this route needs an admin key or token; yours has role %s", principal.Role)
	}
	return c.Next()
}

func (s *Server) healthz(c *fiber.Ctx) error {
	if err := s.deps.Liveness.Err(); err != nil {
		c.Status(fiber.StatusServiceUnavailable)
		return c.JSON(fiber.Map{"status": "failing", "error": err.Error()})
	}
	return c.JSON(fiber.Map{"status": "ok"})
}

// ReadyBody is the /readyz answer.
type ReadyBody struct {
	Status     string        `json:"status"` // "ready" or "not_ready"
	NotReady   []string      `json:"not_ready"`
	Components []health.Item `json:"components"`
}

func (s *Server) readyz(c *fiber.Ctx) error {
	ready, items := s.deps.Readiness.Snapshot()
	body := ReadyBody{Status: "ready", NotReady: []string{}, Components: items}
	for _, it := range items {
		if !it.Ready {
			body.NotReady = append(body.NotReady, it.Name)
		}
	}
	if !ready {
		body.Status = "not_ready"
		c.Status(fiber.StatusServiceUnavailable)
	}
	return c.JSON(body)
}

// slogPrinter adapts slog to promhttp's error logger.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Warn("metrics", "err", fmt.Sprint(v...)) }
