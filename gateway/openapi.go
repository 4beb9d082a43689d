package gateway

// GET /openapi.json: the OpenAPI 3.1 description of every route, kept
// beside the routes in openapi.json and served as it is kept, with the
// build that serves it as info.version. The tests hold it to the routes
// (each pattern served is described, and nothing else) and to the
// answers (every answer a test gets validates against it).

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"

	"github.com/sluicegw/sluice/internal/version"
)

//go:embed openapi.json
var openapiJSON []byte

// servedOpenAPI is the description as served, and its ETag; built once,
// for the build never changes while the process runs.
var servedOpenAPI = sync.OnceValues(func() ([]byte, string) {
	b, err := withVersion(openapiJSON, version.Version().Module)
	if err != nil {
		panic(fmt.Sprintf("gateway: openapi.json: %v", err)) // the tests load it: a broken one never ships
	}
	sum := sha256.Sum256(b)
	return b, `"` + hex.EncodeToString(sum[:16]) + `"`
})

// openapi serves GET /openapi.json without a token, like /healthz: it
// describes the routes and holds nothing about anyone. It is the same for
// every caller and changes only with the build, so caches may keep it and
// revalidate it by its ETag.
func (s *Server) openapi(w http.ResponseWriter, r *http.Request) {
	body, etag := servedOpenAPI()
	h := w.Header()
	h.Set("X-Request-Id", newRequestID())
	h.Set("ETag", etag)
	h.Set("Cache-Control", "public, no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	if etagMatches(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

// withVersion is the document doc, compacted, with info.version set to
// v; its other members are as they are, in their order.
func withVersion(doc []byte, v string) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("not a JSON object")
	}
	var out bytes.Buffer
	out.WriteString("{")
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		key := t.(string)
		if key == "info" {
			var info map[string]any
			if err := json.Unmarshal(raw, &info); err != nil {
				return nil, fmt.Errorf("info: %w", err)
			}
			info["version"] = v
			if raw, err = json.Marshal(info); err != nil {
				return nil, err
			}
		}
		if out.Len() > 1 {
			out.WriteString(",")
		}
		k, _ := json.Marshal(key)
		out.Write(k)
		out.WriteString(":")
		out.Write(raw)
	}
	out.WriteString("}")
	var compact bytes.Buffer
	if err := json.Compact(&compact, out.Bytes()); err != nil {
		return nil, err
	}
	compact.WriteByte('\n')
	return compact.Bytes(), nil
}

// testHookHandler, when a test sets it, wraps the handler of every
// gateway built: the tests check each answer against openapi.json
// through it (fixture_test.go). Like net/http's testHook variables, it is
// nil outside tests.
var testHookHandler func(*Server, http.Handler) http.Handler

// hooked is h, wrapped by testHookHandler when a test has set it.
func (s *Server) hooked(h http.Handler) http.Handler {
	if testHookHandler == nil {
		return h
	}
	return testHookHandler(s, h)
}
