package statuspage

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, target string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec.Result()
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestTheRootServesTheHTMLPage(t *testing.T) {
	resp := get(t, Handler(), http.MethodGet, "/")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /: %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("GET /: Content-Type %q, want text/html", ct)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self'") {
		t.Errorf("GET /: Content-Security-Policy %q does not restrict fetches to the node", csp)
	}
	b := body(t, resp)
	for _, want := range []string{"<!doctype html>", `<html lang="en">`, `src="ui/app.js"`, `href="ui/style.css"`, `<main>`} {
		if !strings.Contains(b, want) {
			t.Errorf("GET /: page lacks %s", want)
		}
	}
}

var refAttr = regexp.MustCompile(`(?:src|href)="([^"]*)"`)

// TestEveryFileThePageRefersToIsServed follows each src and href of the page:
// its own files are served with their type, and the rest are the node's own
// endpoints (relative URLs), never another host.
func TestEveryFileThePageRefersToIsServed(t *testing.T) {
	h := Handler()
	page := body(t, get(t, h, http.MethodGet, "/"))
	types := map[string]string{".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
	endpoints := map[string]bool{"v1/status": true, "v1/status?scope=cluster": true, "metrics": true, "readyz": true, "healthz": true, "#pipelines": true}
	served := 0
	for _, m := range refAttr.FindAllStringSubmatch(page, -1) {
		ref := m[1]
		if strings.Contains(ref, "//") || strings.HasPrefix(ref, "/") {
			t.Errorf("page refers to %q: only relative URLs (the node may sit behind a path prefix)", ref)
			continue
		}
		if endpoints[ref] {
			continue
		}
		want, ok := types[path.Ext(ref)]
		if !strings.HasPrefix(ref, "ui/") || !ok {
			t.Errorf("page refers to %q, which is neither an embedded file nor a node endpoint", ref)
			continue
		}
		resp := get(t, h, http.MethodGet, "/"+ref)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET /%s: %d", ref, resp.StatusCode)
			continue
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, want) {
			t.Errorf("GET /%s: Content-Type %q, want %s", ref, ct, want)
		}
		if len(body(t, resp)) == 0 {
			t.Errorf("GET /%s: empty", ref)
		}
		served++
	}
	if served < 3 {
		t.Errorf("page refers to %d embedded files, want the script, the style sheet and the icon", served)
	}
}

func TestTheScriptIsServed(t *testing.T) {
	resp := get(t, Handler(), http.MethodGet, "/ui/app.js")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /ui/app.js: %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
		t.Errorf("Content-Type %q", ct)
	}
	b := body(t, resp)
	if !strings.Contains(b, "fetch(STATUS_URL") || !strings.Contains(b, "const STATUS_URL = 'v1/status?scope=cluster';") {
		t.Errorf("the script does not poll v1/status?scope=cluster relative to the page")
	}
}

func TestOtherPathsAndMethodsAreRefused(t *testing.T) {
	h := Handler()
	for _, tc := range []struct {
		method, target string
		want           int
	}{
		{http.MethodGet, "/nope", http.StatusNotFound},
		{http.MethodGet, "/ui/", http.StatusNotFound},
		{http.MethodGet, "/ui/index.html", http.StatusNotFound},
		{http.MethodPost, "/", http.StatusMethodNotAllowed},
		{http.MethodDelete, "/ui/app.js", http.StatusMethodNotAllowed},
		{http.MethodHead, "/", http.StatusOK},
	} {
		if got := get(t, h, tc.method, tc.target).StatusCode; got != tc.want {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.target, got, tc.want)
		}
	}
}

func TestAnUnchangedFileIsRevalidatedByETag(t *testing.T) {
	h := Handler()
	etag := get(t, h, http.MethodGet, "/ui/style.css").Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	req := httptest.NewRequest(http.MethodGet, "/ui/style.css", nil)
	req.Header.Set("If-None-Match", etag)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified {
		t.Errorf("conditional GET: %d, want 304", rec.Code)
	}
}

// xmlNamespaces are URIs that name an XML vocabulary; browsers never fetch them.
var xmlNamespaces = []string{"http://www.w3.org/2000/svg"}

// TestEmbeddedFilesLoadNothingFromElsewhere scans every embedded file, comments
// aside, for absolute URLs: the page must work in an air-gapped data center.
func TestEmbeddedFilesLoadNothingFromElsewhere(t *testing.T) {
	scanned := 0
	err := fs.WalkDir(ui, "ui", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := ui.ReadFile(name)
		if err != nil {
			return err
		}
		text := withoutComments(t, name, string(b))
		for _, ns := range xmlNamespaces {
			text = strings.ReplaceAll(text, ns, "")
		}
		for _, bad := range []string{"http://", "https://", "@import", `src="//`, `href="//`, "url(//"} {
			if i := strings.Index(strings.ToLower(text), bad); i >= 0 {
				t.Errorf("%s refers to something outside the node (%q): ...%s...", name, bad, excerpt(text, i))
			}
		}
		scanned++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if scanned < 4 {
		t.Errorf("scanned %d files, want index.html, app.js, style.css and favicon.svg", scanned)
	}
}

func excerpt(s string, i int) string {
	from, to := max(0, i-30), min(len(s), i+50)
	return s[from:to]
}

// withoutComments removes the comments of an embedded file, by its type.
func withoutComments(t *testing.T, name, text string) string {
	switch path.Ext(name) {
	case ".html", ".svg":
		return regexp.MustCompile(`(?s)<!--.*?-->`).ReplaceAllString(text, "")
	case ".css":
		return regexp.MustCompile(`(?s)/\*.*?\*/`).ReplaceAllString(text, "")
	case ".js":
		return stripJSComments(text)
	}
	t.Errorf("%s: unknown file type; teach withoutComments about it", name)
	return text
}

// stripJSComments removes // and /* */ comments outside string and template
// literals. It does not know regular-expression literals, which the script
// does not use.
func stripJSComments(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'' || c == '"' || c == '`':
			j := i + 1
			for j < len(s) && s[j] != c {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			b.WriteString(s[i:min(j+1, len(s))])
			i = j
		case c == '/' && i+1 < len(s) && s[i+1] == '/':
			for i < len(s) && s[i] != '\n' {
				i++
			}
			b.WriteByte('\n')
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			end := strings.Index(s[i+2:], "*/")
			if end < 0 {
				return b.String()
			}
			i += end + 3
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func TestStripJSComments(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a // http://x\nb", "a \nb"},
		{"a /* https://x */ b", "a  b"},
		{`const u = 'https://cdn.example/x.js'; // c`, `const u = 'https://cdn.example/x.js'; ` + "\n"},
		{"const u = `//not a comment`;", "const u = `//not a comment`;"},
		{`"it\"s // here"`, `"it\"s // here"`},
	} {
		if got := stripJSComments(tc.in); got != tc.want {
			t.Errorf("stripJSComments(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

var idRef = regexp.MustCompile(`(?:byId|setText)\('([a-z0-9-]+)'`)

// TestTheScriptFindsItsElements checks that every id the script looks up exists
// in the page, so a renamed element cannot break the page silently.
func TestTheScriptFindsItsElements(t *testing.T) {
	page, _ := ui.ReadFile("ui/index.html")
	script, _ := ui.ReadFile("ui/app.js")
	refs := idRef.FindAllStringSubmatch(string(script), -1)
	if len(refs) < 5 {
		t.Fatalf("found %d element lookups in the script; did byId change?", len(refs))
	}
	for _, m := range refs {
		if !strings.Contains(string(page), `id="`+m[1]+`"`) {
			t.Errorf("the script looks up #%s, which index.html lacks", m[1])
		}
	}
}

// TestTheScriptParses runs node --check on the script when Node.js is installed.
func TestTheScriptParses(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed: the script's syntax is not checked")
	}
	script, _ := ui.ReadFile("ui/app.js")
	f := filepath.Join(t.TempDir(), "app.js")
	if err := os.WriteFile(f, script, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(node, "--check", f).CombinedOutput(); err != nil {
		t.Fatalf("node --check app.js: %v\n%s", err, out)
	}
}

// TestItMountsBesideTheNodeRoutes registers the handler on a mux with the
// routes a node serves (replicator.Server and cmd/tributary), as the doc says.
func TestItMountsBesideTheNodeRoutes(t *testing.T) {
	mux := http.NewServeMux()
	other := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "other") })
	for _, p := range []string{"GET /healthz", "GET /readyz", "GET /metrics", "GET /v1/status",
		"/v1/cluster", "/v1/cluster/", "POST /v1/policies/reload"} {
		mux.Handle(p, other)
	}
	h := Handler()
	mux.Handle("GET /{$}", h)
	mux.Handle("GET /ui/", h)
	for _, tc := range []struct {
		method, target string
		want           int
		page           bool
	}{
		{http.MethodGet, "/", http.StatusOK, true},
		{http.MethodGet, "/ui/app.js", http.StatusOK, true},
		{http.MethodGet, "/v1/status", http.StatusOK, false},
		{http.MethodGet, "/v1/cluster/members", http.StatusOK, false},
		{http.MethodGet, "/nope", http.StatusNotFound, false},
		{http.MethodPost, "/", http.StatusMethodNotAllowed, false},
	} {
		resp := get(t, mux, tc.method, tc.target)
		b := body(t, resp)
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.target, resp.StatusCode, tc.want)
		}
		if tc.want == http.StatusOK && (b != "other") != tc.page {
			t.Errorf("%s %s: served by the wrong handler", tc.method, tc.target)
		}
	}
}
