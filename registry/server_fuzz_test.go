package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// serverScript is a realistic session: modes, registrations of the three
// schema types with a reference, compatibility checks, config, lookups and
// deletes. Each line is "METHOD PATH BODY".
const serverScript = `PUT /config {"compatibility":"FULL"}
POST /subjects/payments-value/versions {"schema":"{\"type\":\"record\",\"name\":\"P\",\"fields\":[{\"name\":\"email\",\"type\":\"string\"}]}"}
POST /compatibility/subjects/payments-value/versions/latest {"schema":"{\"type\":\"record\",\"name\":\"P\",\"fields\":[{\"name\":\"email\",\"type\":\"string\"},{\"name\":\"n\",\"type\":\"int\",\"default\":0}]}"}
POST /subjects/common/versions {"schemaType":"PROTOBUF","schema":"syntax = \"proto3\"; package c; message Money { int64 cents = 1; }"}
POST /subjects/orders-value/versions {"schemaType":"PROTOBUF","schema":"syntax = \"proto3\"; import \"c.proto\"; message O { c.Money total = 1; string email = 2; }","references":[{"name":"c.proto","subject":"common","version":1}]}
POST /subjects/j/versions {"schemaType":"JSON","schema":"{\"type\":\"object\",\"properties\":{\"a\":{\"$ref\":\"#/$defs/x\"}},\"$defs\":{\"x\":{\"type\":\"string\"}}}"}
GET /schemas/ids/2/schema
PUT /mode/imp {"mode":"IMPORT"}
POST /subjects/imp/versions {"schema":"\"string\"","id":100,"version":7}
POST /subjects/payments-value {"schema":"{\"type\":\"record\",\"name\":\"P\",\"fields\":[{\"name\":\"email\",\"type\":\"string\"}]}"}
DELETE /subjects/common/versions/1
DELETE /subjects/j
DELETE /subjects/j?permanent=true
GET /subjects/orders-value/versions/1/referencedby`

// FuzzServer drives the embedded registry's http.Handler with a script of
// arbitrary requests, one per line ("METHOD PATH BODY", up to 16). No request
// may panic or get a 5xx (the server has no data file, so no store error is
// real); every error is a JSON body with a code, and every answer to a JSON
// endpoint is JSON; ids handed out fit the wire format's 4 bytes. The state
// the requests build must survive the data file: written, loaded and written
// again, byte for byte. Seeds: serverScript and testdata/fuzz/FuzzServer.
func FuzzServer(f *testing.F) {
	f.Add(serverScript)
	lines := strings.Split(serverScript, "\n")
	f.Add(strings.Join(lines[3:6], "\n"))
	f.Add(strings.Join(lines[7:9], "\n"))
	f.Add("PUT /mode/x {\"mode\":\"IMPORT\"}\nPOST /subjects/x/versions {\"schema\":\"\\\"int\\\"\",\"id\":2147483648}\nPOST /subjects/y/versions {\"schema\":\"\\\"long\\\"\"}")
	f.Add("GET /subjects/%zz/versions\nPOST /subjects/a/versions/1 {}\nGET /schemas/guids/x\nGET //subjects")
	f.Fuzz(func(t *testing.T, script string) {
		s, err := NewServer(ServerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.SplitN(script, "\n", 16) {
			method, rest, _ := strings.Cut(line, " ")
			path, body, _ := strings.Cut(rest, " ")
			if !strings.HasPrefix(path, "/") {
				path = "/" + path
			}
			req, err := http.NewRequest(method, "http://registry.test"+path, strings.NewReader(body))
			if err != nil {
				continue // not a request a client could send
			}
			req.Header.Set("Content-Type", ContentType)
			w := httptest.NewRecorder()
			s.ServeHTTP(w, req)
			where := func() string { return fmt.Sprintf("request %d: %s %s", i, method, path) }
			if w.Code >= 500 {
				t.Fatalf("%s %.200s: status %d: %s", where(), body, w.Code, w.Body.Bytes())
			}
			raw := w.Code == http.StatusOK && strings.HasSuffix(req.URL.Path, "/schema")
			if w.Code >= 300 && w.Code < 400 {
				continue // the mux's redirect to a cleaned path
			}
			if !raw && !json.Valid(w.Body.Bytes()) {
				t.Fatalf("%s: status %d with a body that is not JSON: %q", where(), w.Code, w.Body.Bytes())
			}
			if w.Code >= 400 {
				var e APIError
				if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Code == 0 || e.Message == "" {
					t.Fatalf("%s: status %d with body %q, not an error with a code and message", where(), w.Code, w.Body.Bytes())
				}
			}
		}
		s.mu.RLock()
		st := s.st
		s.mu.RUnlock()
		for id := range st.Schemas {
			if id < 1 || id > math.MaxInt32 {
				t.Fatalf("schema id %d does not fit the wire format", id)
			}
		}
		for name, sub := range st.Subjects {
			for _, v := range sub.Versions {
				if v.Version < 1 || v.Version > math.MaxInt32 {
					t.Fatalf("subject %q has version %d", name, v.Version)
				}
			}
		}
		checkDataFile(t, st)
	})
}

// checkDataFile writes st as the data file, loads it and writes it again:
// the two files must be equal.
func checkDataFile(t *testing.T, st *state) {
	t.Helper()
	b, err := st.marshal()
	if err != nil {
		t.Fatalf("encoding the state: %v", err)
	}
	back, err := decodeState(b, "registry.json", Backward)
	if err != nil {
		t.Fatalf("the data file of a state does not load: %v\n%s", err, b)
	}
	b2, err := back.marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, b2) {
		t.Fatalf("the data file changed on loading:\n%s\n%s", b, b2)
	}
}

// FuzzLoadState loads arbitrary bytes as the registry's data file. A file
// that loads must be one the registry writes back and loads again to the
// same bytes, with ids and versions that fit the wire format. Seeds:
// testdata/fuzz/FuzzLoadState.
func FuzzLoadState(f *testing.F) {
	f.Add([]byte(`{"format":1,"next_id":3,"compatibility":"BACKWARD","mode":"READWRITE","schemas":[{"id":1,"guid":"0b3e8a5e-3c53-4a9c-8f0e-6d5a1f0e2b7c","schemaType":"AVRO","schema":"\"string\""},{"id":2,"guid":"1b3e8a5e-3c53-4a9c-8f0e-6d5a1f0e2b7c","schemaType":"PROTOBUF","schema":"syntax = \"proto3\"; message M { string s = 1; }"}],"subjects":{"a":{"versions":[{"version":1,"id":1},{"version":2,"id":2,"deleted":true}],"compatibility":"NONE"}}}`))
	f.Add([]byte(`{"format":1,"subjects":{"a":{"versions":[null]}}}`))
	f.Add([]byte(`{"format":1,"next_id":9223372036854775807,"schemas":[{"id":2147483648,"schema":"\"int\""}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := decodeState(data, "registry.json", Backward)
		if err != nil {
			return
		}
		for id := range st.Schemas {
			if id < 1 || id > math.MaxInt32 {
				t.Fatalf("schema id %d loaded", id)
			}
		}
		if st.NextID < 1 || st.NextID > math.MaxInt32+1 {
			t.Fatalf("next id %d loaded", st.NextID)
		}
		checkDataFile(t, st)
	})
}

// TestImportIDBeyondWireFormat: found by FuzzServer. In IMPORT mode an id of
// 2^31 was accepted, and every schema registered after it got an id the
// wire format's 4 bytes cannot carry.
func TestImportIDBeyondWireFormat(t *testing.T) {
	_, url := startServer(t, ServerOptions{})
	if st, _ := call(t, "PUT", url+"/mode/x", `{"mode":"IMPORT"}`, nil); st != 200 {
		t.Fatalf("PUT /mode/x: %d", st)
	}
	for _, b := range []string{`{"schema":"\"int\"","id":2147483648}`, `{"schema":"\"int\"","id":1,"version":2147483648}`} {
		if st, code := call(t, "POST", url+"/subjects/x/versions", b, nil); st != 400 || code != 400 {
			t.Errorf("import %s: status %d code %d, want 400", b, st, code)
		}
	}
	var out struct{ ID int }
	if st, _ := call(t, "POST", url+"/subjects/x/versions", `{"schema":"\"int\"","id":2147483647}`, &out); st != 200 || out.ID != math.MaxInt32 {
		t.Fatalf("import of id 2^31-1: status %d, id %d", st, out.ID)
	}
	st, code := call(t, "POST", url+"/subjects/y/versions", `{"schema":"\"long\""}`, nil)
	if st != 422 || code != CodeOperationNotPermitted {
		t.Fatalf("registering after id 2^31-1: status %d code %d, want 422 %d", st, code, CodeOperationNotPermitted)
	}
}

// TestLoadStateRefusesBadVersions: found by FuzzLoadState. A data file with
// a null version panicked the server at start; ids beyond the wire format,
// a schema id or version listed twice loaded into a registry that could not
// serve them consistently.
func TestLoadStateRefusesBadVersions(t *testing.T) {
	for _, tc := range []struct{ name, file, want string }{
		{"null version", `{"format":1,"subjects":{"a":{"versions":[null]}}}`, `subject "a": version 0 (of its list) is not a version from 1 to 2^31-1`},
		{"version 0", `{"format":1,"schemas":[{"id":1,"schema":"\"int\""}],"subjects":{"a":{"versions":[{"version":0,"id":1}]}}}`, `subject "a": version 0 (of its list)`},
		{"version twice", `{"format":1,"schemas":[{"id":1,"schema":"\"int\""}],"subjects":{"a":{"versions":[{"version":1,"id":1},{"version":1,"id":1}]}}}`, `subject "a": version 1 listed twice`},
		{"id too big", `{"format":1,"schemas":[{"id":2147483648,"schema":"\"int\""}]}`, "schema 0 (of the schemas list) without a valid id (1 to 2^31-1)"},
		{"id twice", `{"format":1,"schemas":[{"id":1,"schema":"\"int\""},{"id":1,"schema":"\"long\""}]}`, "schema id 1 listed twice"},
		{"next id", `{"format":1,"next_id":2147483649}`, "next_id 2147483649: schema ids end at 2^31-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "registry.json")
			if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := NewServer(ServerOptions{DataFile: path})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("NewServer: %v, want an error naming %s with %q", err, path, tc.want)
			}
		})
	}
}
