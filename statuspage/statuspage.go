package statuspage

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"net/http"
	"time"
)

//go:embed ui
var ui embed.FS

// contentSecurityPolicy lets the page load only its own script, style sheet
// and icon, and fetch only from its own origin: the page cannot reach anything
// outside the node, which is also what an air-gapped data center needs.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// asset is one embedded file as served.
type asset struct {
	body  []byte
	ctype string
	etag  string
}

// Handler returns the handler of the status page. It serves GET and HEAD of
//
//	/                 the page (it refers to the files below by relative URLs)
//	/ui/app.js        the script
//	/ui/style.css     the style sheet
//	/ui/favicon.svg   the icon
//
// and answers 404 for any other path and 405 for other methods. Mount it on
// exactly the two patterns it needs:
//
//	h := statuspage.Handler()
//	mux.Handle("GET /{$}", h)
//	mux.Handle("GET /ui/", h)
//
// Not as "GET /": net/http's ServeMux panics when that pattern meets a
// method-less one such as "/v1/cluster/", since neither is more specific.
//
// The files are embedded; the handler is safe for concurrent use and keeps no
// state between requests.
func Handler() http.Handler {
	assets := map[string]asset{}
	for path, file := range map[string]struct{ name, ctype string }{
		"/":               {"ui/index.html", "text/html; charset=utf-8"},
		"/ui/app.js":      {"ui/app.js", "text/javascript; charset=utf-8"},
		"/ui/style.css":   {"ui/style.css", "text/css; charset=utf-8"},
		"/ui/favicon.svg": {"ui/favicon.svg", "image/svg+xml"},
	} {
		body, err := ui.ReadFile(file.name)
		if err != nil {
			// The files are embedded at build time: missing one is a build bug.
			panic(fmt.Sprintf("statuspage: embedded file %s: %v", file.name, err))
		}
		sum := sha256.Sum256(body)
		assets[path] = asset{body: body, ctype: file.ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := assets[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.ctype)
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		// Revalidate every time (cheap, by ETag): an upgraded binary serves
		// new files at the same URLs.
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
	})
}
