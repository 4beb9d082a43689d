package gateway

// Cross-origin calls: a browser application served from an origin the
// configuration names may call the gateway with its bearer token. Any
// other origin gets no CORS headers, so the browser keeps the answer from
// it; a preflight from it is refused and audited.

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// CORSConfig names the browser origins that may call the gateway.
type CORSConfig struct {
	// Origins are exact origins, scheme://host[:port] (no path, no
	// wildcard: a caller's token is a credential, and each origin that
	// may spend it is named). None: no browser application may call.
	Origins []string `yaml:"origins"`
	// MaxAge is how long a browser may keep a preflight's answer
	// (default 10m).
	MaxAge Duration `yaml:"max_age"`
}

// corsRequestHeaders are the request headers a cross-origin call may
// send, and corsExposedHeaders the response headers its script may read.
const (
	corsRequestHeaders = "Authorization, Content-Type, If-None-Match, " + PurposeHeader + ", " + JustificationHeader + ", " + ExplainTokenHeader
	corsExposedHeaders = "X-Request-Id, Retry-After, ETag, Link"
)

func (c *CORSConfig) validate(bad func(field, format string, args ...any)) {
	for i, o := range c.Origins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || o != u.Scheme+"://"+u.Host {
			bad(fmt.Sprintf("cors.origins[%d]", i), "want an origin such as https://app.example.gov.cn (scheme, host, optional port; no path, no wildcard), got %q", o)
		}
	}
	if c.MaxAge == 0 {
		c.MaxAge = Duration(10 * time.Minute)
	}
}

// cors wraps the routes: it answers preflights for the configured origins
// (without a token: a preflight carries none) and marks the answers to
// their calls readable by them.
func (s *Server) cors(next http.Handler) http.Handler {
	origins := s.cfg.CORS.Origins
	if len(origins) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Add("Vary", "Origin")
		allowed := slices.Contains(origins, origin)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			s.preflight(w, r, origin, allowed)
			return
		}
		if allowed {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Expose-Headers", corsExposedHeaders)
		}
		next.ServeHTTP(w, r)
	})
}

// preflight answers a CORS preflight: 204 with what the origin may send
// when it is configured, 403 otherwise; audited either way (action
// "preflight"), though it reads nothing.
func (s *Server) preflight(w http.ResponseWriter, r *http.Request, origin string, allowed bool) {
	x := s.begin(w, r, "preflight")
	if !allowed {
		s.fail(w, r, x, errForbidden(fmt.Sprintf("origin %q may not call this gateway (cors.origins)", origin)))
		return
	}
	x.ev.Decision, x.ev.Status, x.ev.Reason = "allow", http.StatusNoContent, "cors.origins names "+origin
	if !s.recorded(w, r, x) {
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Methods", "GET, POST")
	h.Set("Access-Control-Allow-Headers", corsRequestHeaders)
	h.Set("Access-Control-Max-Age", strconv.Itoa(int(time.Duration(s.cfg.CORS.MaxAge)/time.Second)))
	w.WriteHeader(http.StatusNoContent)
	s.logDone(x, nil)
}

// keepOnError says whether an answer's header survives its replacement
// by an error document: the request id, and what lets the calling
// origin read the error.
func keepOnError(name string) bool {
	return name == "X-Request-Id" || name == "Vary" || strings.HasPrefix(name, "Access-Control-")
}
