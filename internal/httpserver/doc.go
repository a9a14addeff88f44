// Package httpserver is the daemon's HTTP shell on fiber: request IDs, panic
// recovery, access logs without customer text, Prometheus request metrics,
// body size limits, timeouts, per-IP and per-key rate limits, API key / JWT
// authentication, JSON errors, and the /healthz, /readyz and /metrics
// routes. Components add their routes to the groups it exposes (Public, API,
// Admin) before Serve; it knows nothing of what those routes do.
package httpserver
