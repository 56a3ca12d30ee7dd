package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/vguard-dev/vguard/internal/store"
	"github.com/vguard-dev/vguard/internal/token"
)

// handler is an API handler that returns its failure instead of writing
// it: an *httpError carries the status and the message the client may see,
// apart from the cause, which is logged and never sent (Tailscale's
// tsweb does the same).
type handler func(w http.ResponseWriter, r *http.Request, c *caller) error

// caller is who is calling: the token's holder and role.
type caller struct {
	tok  store.Token
	role token.Role
}

// actor names the caller in the audit trail.
func (c *caller) actor() string {
	if c.tok.ID == "" {
		return "anonymous"
	}
	return c.tok.Name + " (" + c.tok.ID + ")"
}

// httpError is a failure to show the client.
type httpError struct {
	status   int
	msg      string   // safe to show
	problems []string // input problems, file:line first, as the CLI prints them
	cause    error    // logged only
}

func (e *httpError) Error() string {
	if e.cause != nil {
		return e.msg + ": " + e.cause.Error()
	}
	return e.msg
}

func (e *httpError) Unwrap() error { return e.cause }

// userError is a failure whose message is safe to show as it is.
func userError(status int, format string, args ...any) *httpError {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

// internalError hides cause behind msg.
func internalError(msg string, cause error) *httpError {
	return &httpError{status: http.StatusInternalServerError, msg: msg, cause: cause}
}

// route is one entry of the API: who may call it and what serves it.
type route struct {
	method, path string
	role         token.Role // the least role that may call it
	h            handler
	summary      string
}

// RouteInfo describes a route, for tests and docs.
type RouteInfo struct {
	Method, Path string
	Role         token.Role
}

// Routes returns the API's routes, as registered on the mux.
func (s *Server) Routes() []RouteInfo {
	out := make([]RouteInfo, len(s.routes))
	for i, r := range s.routes {
		out[i] = RouteInfo{Method: r.method, Path: r.path, Role: r.role}
	}
	return out
}

// table is the API: the only place routes are declared.
func (s *Server) table() []route {
	return []route{
		{"GET", "/healthz", token.None, s.healthz, "liveness"},
		{"GET", "/metrics", token.Viewer, s.serveMetrics, "Prometheus metrics"},
		{"GET", "/api/openapi.json", token.Viewer, s.openAPI, "this API's OpenAPI document"},
		{"GET", "/api/v1/estate", token.Viewer, s.getEstate, "the documents held and the estate's size"},
		{"PUT", "/api/v1/estate", token.Admin, s.putDocument("estate", "estate.yaml"), "upload or replace an estate document"},
		{"PUT", "/api/v1/policy", token.Admin, s.putDocument("policy", "policy.yaml"), "upload or replace a policy document"},
		{"PUT", "/api/v1/scans/{path...}", token.Operator, s.putSideFile("scan"), "upload a scan report"},
		{"PUT", "/api/v1/manifests/{path...}", token.Operator, s.putSideFile("manifest"), "upload a manifest"},
		{"GET", "/api/v1/findings", token.Viewer, s.getFindings, "findings with their history"},
		{"POST", "/api/v1/judge", token.Operator, s.judge, "judge a change"},
		{"GET", "/api/v1/blast-radius", token.Viewer, s.blastRadius, "blast radius"},
		{"GET", "/api/v1/rollout", token.Viewer, s.rollout, "rollout plan"},
		{"GET", "/api/v1/audit", token.Viewer, s.getAudit, "read the audit trail"},
		{"GET", "/api/v1/audit/verify", token.Viewer, s.verifyAudit, "verify the audit chain"},
		{"GET", "/api/v1/tokens", token.Admin, s.listTokens, "list tokens"},
		{"POST", "/api/v1/tokens", token.Admin, s.createToken, "create a token"},
		{"DELETE", "/api/v1/tokens/{id}", token.Admin, s.revokeToken, "revoke a token"},
	}
}

func (s *Server) buildRoutes() error {
	s.routes = s.table()
	s.mux = http.NewServeMux()
	for _, rt := range s.routes {
		if rt.role == token.None && rt.path != "/healthz" {
			return fmt.Errorf("server: route %s %s has no access rule", rt.method, rt.path)
		}
		s.mux.Handle(rt.method+" "+rt.path, s.wrap(rt))
	}
	// Anything else: a JSON 404. This catch-all matches every method, so
	// a known path asked with another method gets this 404 too, not a
	// 405.
	s.mux.Handle("/", s.wrap(route{method: "", path: "/", role: token.None, h: func(http.ResponseWriter, *http.Request, *caller) error {
		return userError(http.StatusNotFound, "no such endpoint")
	}}))
	return nil
}

// wrap adds what every route gets: the body limit, the token check,
// metrics, and the error handling.
func (s *Server) wrap(rt route) http.Handler {
	label := rt.method + " " + rt.path
	if rt.method == "" {
		label = "other"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		r.Body = http.MaxBytesReader(sw, r.Body, s.cfg.MaxBodyBytes)
		err := func() error {
			c := &caller{}
			if rt.role > token.None {
				var err error
				if c, err = s.authenticate(r); err != nil {
					return err
				}
				if c.role < rt.role {
					return userError(http.StatusForbidden, "this needs the %s role; the token has %s", rt.role, c.role)
				}
			}
			return rt.h(sw, r, c)
		}()
		if err != nil {
			s.writeError(sw, r, err)
		}
		s.metrics.observeRequest(label, sw.status, time.Since(start))
	})
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		he = userError(http.StatusRequestEntityTooLarge, "the request body is larger than %d bytes (maxBodyBytes)", mbe.Limit)
	case errors.As(err, &he):
	default:
		he = internalError("internal error", err)
	}
	if he.status >= 500 {
		s.logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "status", he.status, "err", err)
	} else if he.cause != nil {
		s.logger.Info("request refused", "method", r.Method, "path", r.URL.Path, "status", he.status, "err", err)
	}
	if he.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="vguard"`)
	}
	body := struct {
		Error    string   `json:"error"`
		Problems []string `json:"problems,omitempty"`
	}{he.msg, he.problems}
	writeJSON(w, he.status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away: nothing to do
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// tokenTTL is how long a checked token is trusted without asking the store
// again: a token revoked by another process (vguard token revoke, another
// replica) stops working within it. Revocations through this server's API
// take effect at once.
const tokenTTL = 5 * time.Second

type tokenCache struct {
	st store.Store
	mu sync.Mutex
	m  map[string]cachedToken
	// gen is bumped by forget: a lookup that read the store before a
	// revocation must not put the revoked token back afterwards.
	gen uint64
}

type cachedToken struct {
	tok     store.Token
	expires time.Time
}

func (tc *tokenCache) lookup(r *http.Request, hash string) (store.Token, error) {
	now := time.Now()
	tc.mu.Lock()
	if e, ok := tc.m[hash]; ok && now.Before(e.expires) {
		tc.mu.Unlock()
		return e.tok, nil
	}
	gen := tc.gen
	tc.mu.Unlock()
	// The token is found by the SHA-256 of the secret, in the database's
	// index and in this map: the comparison is on a hash the caller
	// cannot steer byte by byte, so it leaks nothing of a secret through
	// timing. Do not replace it with a comparison of secrets.
	tok, err := tc.st.TokenByHash(r.Context(), hash)
	if err != nil {
		return store.Token{}, err
	}
	tc.mu.Lock()
	if tc.gen == gen {
		if tc.m == nil || len(tc.m) > 10000 {
			tc.m = map[string]cachedToken{}
		}
		tc.m[hash] = cachedToken{tok: tok, expires: now.Add(tokenTTL)}
	}
	tc.mu.Unlock()
	return tok, nil
}

func (tc *tokenCache) forget(id string) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	tc.gen++
	for h, e := range tc.m {
		if e.tok.ID == id {
			delete(tc.m, h)
		}
	}
}

func (s *Server) authenticate(r *http.Request) (*caller, error) {
	h := r.Header.Get("Authorization")
	scheme, secret, ok := strings.Cut(h, " ")
	if h == "" || !ok || !strings.EqualFold(scheme, "Bearer") || secret == "" {
		return nil, userError(http.StatusUnauthorized, "a bearer token is required (Authorization: Bearer TOKEN)")
	}
	tok, err := s.tokens.lookup(r, token.Hash(strings.TrimSpace(secret)))
	if errors.Is(err, store.ErrNotFound) {
		return nil, &httpError{status: http.StatusUnauthorized, msg: "the token is unknown or revoked",
			cause: fmt.Errorf("token %s", token.Redact(secret))}
	}
	if err != nil {
		return nil, internalError("could not check the token", err)
	}
	role, err := token.ParseRole(tok.Role)
	if err != nil {
		return nil, internalError("could not check the token", fmt.Errorf("token %s: %w", tok.ID, err))
	}
	return &caller{tok: tok, role: role}, nil
}
