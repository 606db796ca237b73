package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/riferrei/srclient"
)

func startServer(t *testing.T, opts ServerOptions) (*Server, string) {
	t.Helper()
	s, err := NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return s, hs.URL
}

func newClient(url string) *srclient.SchemaRegistryClient {
	return srclient.NewSchemaRegistryClient(url)
}

// call makes a plain HTTP request and decodes the JSON response into out
// (when not nil). It returns the status and, for errors, the error code.
func call(t *testing.T, method, url, body string, out any) (status, code int) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ContentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != ContentType {
		t.Errorf("%s %s: content type %q", method, url, ct)
	}
	if resp.StatusCode >= 300 {
		var e APIError
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("%s %s: status %d with non-JSON body %q", method, url, resp.StatusCode, b)
		}
		return resp.StatusCode, e.Code
	}
	if out != nil {
		if s, ok := out.(*string); ok {
			*s = string(b)
		} else if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decoding %q: %v", method, url, b, err)
		}
	}
	return resp.StatusCode, 0
}

// body builds a registration request body.
func body(schema string, extra ...string) string {
	b, _ := json.Marshal(schema)
	s := `{"schema":` + string(b)
	for _, e := range extra {
		s += "," + e
	}
	return s + "}"
}

func srCode(t *testing.T, err error) int {
	t.Helper()
	var se srclient.Error
	if !errors.As(err, &se) {
		t.Fatalf("err = %v (%T), want a srclient.Error", err, err)
	}
	return se.Code
}

var (
	v1 = rec("Order", field("id", `"string"`))
	v2 = rec("Order", field("id", `"string"`), field("cents", `"long"`, `"default":0`))
	v3 = rec("Order", field("id", `"string"`), field("cents", `"long"`, `"default":0`), field("note", `"string"`))
)

func TestSrclientRegistersAndReads(t *testing.T) {
	_, url := startServer(t, ServerOptions{})
	c := newClient(url)

	s1, err := c.CreateSchema("orders-value", v1, srclient.Avro)
	if err != nil {
		t.Fatal(err)
	}
	if s1.ID() != 1 {
		t.Fatalf("first id = %d, want 1", s1.ID())
	}
	// srclient v0.7.3 quirk: CreateSchema re-reads GET /schemas/ids/{id},
	// which (as in Confluent) carries no version, so it reports version 0.
	if s1.Version() != 0 {
		t.Fatalf("srclient reported version %d; the quirk is gone, update the note in doc.go", s1.Version())
	}

	t.Run("the same schema gets the same id in another subject", func(t *testing.T) {
		s, err := c.CreateSchema("archive-value", v1, srclient.Avro)
		if err != nil || s.ID() != s1.ID() {
			t.Fatalf("id %v, err %v", s, err)
		}
	})
	t.Run("re-registering is idempotent, even reformatted", func(t *testing.T) {
		pretty := strings.ReplaceAll(v1, ",", ",\n  ")
		s, err := c.CreateSchema("orders-value", pretty, srclient.Avro)
		if err != nil || s.ID() != s1.ID() {
			t.Fatalf("id %v, err %v", s, err)
		}
		vs, err := c.GetSchemaVersions("orders-value")
		if err != nil || !reflect.DeepEqual(vs, []int{1}) {
			t.Fatalf("versions %v, err %v", vs, err)
		}
	})
	t.Run("a compatible schema gets the next version", func(t *testing.T) {
		s, err := c.CreateSchema("orders-value", v2, srclient.Avro)
		if err != nil || s.ID() != 2 {
			t.Fatalf("schema %v, err %v", s, err)
		}
		got, err := c.GetSchemaByVersion("orders-value", 2)
		if err != nil || got.ID() != 2 || got.Version() != 2 || got.Schema() != v2 {
			t.Fatalf("version 2 = %+v, err %v", got, err)
		}
	})
	t.Run("an incompatible schema is refused with 409", func(t *testing.T) {
		_, err := c.CreateSchema("orders-value", v3, srclient.Avro)
		if code := srCode(t, err); code != CodeIncompatibleSchema {
			t.Fatalf("code %d", code)
		}
		if !strings.Contains(err.Error(), "READER_FIELD_MISSING_DEFAULT_VALUE") || !strings.Contains(err.Error(), "note") {
			t.Fatalf("message does not explain: %v", err)
		}
	})
	t.Run("an invalid schema is refused with 42201", func(t *testing.T) {
		_, err := c.CreateSchema("orders-value", `{"type":"record","name":"X"}`, srclient.Avro)
		if code := srCode(t, err); code != CodeInvalidSchema {
			t.Fatalf("code %d", code)
		}
	})
	t.Run("schemas are read by id", func(t *testing.T) {
		s, err := c.GetSchema(1)
		if err != nil || s.Schema() != v1 {
			t.Fatalf("schema %v, err %v", s, err)
		}
		_, err = c.GetSchema(99)
		if code := srCode(t, err); code != CodeSchemaNotFound {
			t.Fatalf("code %d", code)
		}
	})
	t.Run("ids list their subject versions", func(t *testing.T) {
		svs, err := c.GetSubjectVersionsById(1)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(svs)
		if string(b) != `[{"subject":"archive-value","version":1},{"subject":"orders-value","version":1}]` {
			t.Fatalf("got %s", b)
		}
	})
	t.Run("subjects are listed", func(t *testing.T) {
		subs, err := c.GetSubjects()
		if err != nil || !reflect.DeepEqual(subs, []string{"archive-value", "orders-value"}) {
			t.Fatalf("subjects %v, err %v", subs, err)
		}
	})
	t.Run("lookup finds the version of a schema", func(t *testing.T) {
		s, err := c.LookupSchema("orders-value", v2, srclient.Avro)
		if err != nil || s.ID() != 2 || s.Version() != 2 {
			t.Fatalf("lookup %+v, err %v", s, err)
		}
		_, err = c.LookupSchema("orders-value", v3, srclient.Avro)
		if code := srCode(t, err); code != CodeSchemaNotFound {
			t.Fatalf("unknown schema: code %d", code)
		}
		_, err = c.LookupSchema("nobody-value", v1, srclient.Avro)
		if code := srCode(t, err); code != CodeSubjectNotFound {
			t.Fatalf("unknown subject: code %d", code)
		}
	})
	t.Run("unknown subjects and versions have their codes", func(t *testing.T) {
		_, err := c.GetSchemaVersions("nobody-value")
		if code := srCode(t, err); code != CodeSubjectNotFound {
			t.Fatalf("versions of unknown subject: code %d", code)
		}
		_, err = c.GetSchemaByVersion("orders-value", 7)
		if code := srCode(t, err); code != CodeVersionNotFound {
			t.Fatalf("unknown version: code %d", code)
		}
	})
}

func TestSrclientLatestIsCachedForever(t *testing.T) {
	_, url := startServer(t, ServerOptions{})
	c := newClient(url)
	if _, err := c.CreateSchema("s", v1, srclient.Avro); err != nil {
		t.Fatal(err)
	}
	l1, err := c.GetLatestSchema("s")
	if err != nil || l1.Version() != 1 {
		t.Fatalf("latest %+v, err %v", l1, err)
	}
	if _, err := c.CreateSchema("s", v2, srclient.Avro); err != nil {
		t.Fatal(err)
	}
	// srclient v0.7.3 quirk: "s-latest" stays in its cache.
	stale, _ := c.GetLatestSchema("s")
	if stale.Version() != 1 {
		t.Fatalf("srclient refreshed latest (version %d); update the note in doc.go", stale.Version())
	}
	c.ResetCache()
	fresh, err := c.GetLatestSchema("s")
	if err != nil || fresh.Version() != 2 {
		t.Fatalf("after ResetCache: %+v, err %v", fresh, err)
	}
}

func TestSrclientCompatibilityAndConfig(t *testing.T) {
	_, url := startServer(t, ServerOptions{})
	c := newClient(url)

	global, err := c.GetGlobalCompatibilityLevel()
	if err != nil || *global != srclient.Backward {
		t.Fatalf("global level %v, err %v", global, err)
	}
	_, err = c.GetCompatibilityLevel("s", false)
	if code := srCode(t, err); code != CodeSubjectCompatNotConfigured {
		t.Fatalf("unconfigured subject level: code %d", code)
	}
	lvl, err := c.GetCompatibilityLevel("s", true)
	if err != nil || *lvl != srclient.Backward {
		t.Fatalf("defaultToGlobal: %v, err %v", lvl, err)
	}
	set, err := c.ChangeSubjectCompatibilityLevel("s", srclient.BackwardTransitive)
	if err != nil || *set != srclient.BackwardTransitive {
		t.Fatalf("set level: %v, err %v", set, err)
	}
	if lvl, err := c.GetCompatibilityLevel("s", false); err != nil || *lvl != srclient.BackwardTransitive {
		t.Fatalf("subject level %v, err %v", lvl, err)
	}

	// History: v1 {id}, v2 {id, cents default 0}. A candidate whose cents has
	// no default is compatible with v2 but not with v1.
	for _, s := range []string{v1, v2} {
		if _, err := c.CreateSchema("s", s, srclient.Avro); err != nil {
			t.Fatal(err)
		}
	}
	cand := rec("Order", field("id", `"string"`), field("cents", `"long"`))
	ok, err := c.IsSchemaCompatible("s", cand, "latest", srclient.Avro)
	if err != nil || !ok {
		t.Fatalf("against latest: %v, err %v", ok, err)
	}
	// srclient v0.7.3 quirk: IsSchemaCompatible checks one version, so a
	// transitive level is not enforced; the all-versions endpoint is.
	ok, err = c.IsSchemaCompatible("s", cand, "1", srclient.Avro)
	if err != nil || ok {
		t.Fatalf("against version 1: %v, err %v", ok, err)
	}
	var res compatResponse
	if status, _ := call(t, "POST", url+"/compatibility/subjects/s/versions?verbose=true", body(cand), &res); status != 200 ||
		res.IsCompatible || !strings.Contains(strings.Join(res.Messages, " "), "{oldSchemaVersion: 1}") {
		t.Fatalf("all versions: %d %+v", status, res)
	}
	_, err = c.CreateSchema("s", cand, srclient.Avro)
	if code := srCode(t, err); code != CodeIncompatibleSchema {
		t.Fatalf("registration under BACKWARD_TRANSITIVE: code %d", code)
	}
	_, err = c.IsSchemaCompatible("s", cand, "9", srclient.Avro)
	if code := srCode(t, err); code != CodeVersionNotFound {
		t.Fatalf("unknown version: code %d", code)
	}
	_, err = c.IsSchemaCompatible("s", cand, "zero", srclient.Avro)
	if code := srCode(t, err); code != CodeInvalidVersion {
		t.Fatalf("invalid version: code %d", code)
	}
	_, err = c.ChangeSubjectCompatibilityLevel("s", "SIDEWAYS")
	if code := srCode(t, err); code != CodeInvalidCompatibility {
		t.Fatalf("invalid level: code %d", code)
	}
}

func TestSrclientDeletes(t *testing.T) {
	_, url := startServer(t, ServerOptions{})
	c := newClient(url)
	c.CachingEnabled(false)
	for _, s := range []string{v1, v2} {
		if _, err := c.CreateSchema("s", s, srclient.Avro); err != nil {
			t.Fatal(err)
		}
	}

	if err := c.DeleteSubjectByVersion("s", 2, false); err != nil {
		t.Fatal(err)
	}
	if vs, _ := c.GetSchemaVersions("s"); !reflect.DeepEqual(vs, []int{1}) {
		t.Fatalf("versions after soft delete: %v", vs)
	}
	var all []int
	call(t, "GET", url+"/subjects/s/versions?deleted=true", "", &all)
	if !reflect.DeepEqual(all, []int{1, 2}) {
		t.Fatalf("versions with deleted: %v", all)
	}
	if status, code := call(t, "GET", url+"/subjects/s/versions/2", "", nil); status != 404 || code != CodeVersionNotFound {
		t.Fatalf("soft-deleted version: %d %d", status, code)
	}
	var sj schemaJSON
	if status, _ := call(t, "GET", url+"/subjects/s/versions/2?deleted=true", "", &sj); status != 200 || sj.ID != 2 {
		t.Fatalf("soft-deleted version with deleted=true: %d %+v", status, sj)
	}
	// A soft-deleted version's id still resolves, for data written with it.
	if s, err := c.GetSchema(2); err != nil || s.Schema() != v2 {
		t.Fatalf("id of soft-deleted version: %v, %v", s, err)
	}
	if code := srCode(t, deleteOnce(url+"/subjects/s/versions/2")); code != CodeVersionSoftDeleted {
		t.Fatalf("soft delete twice: code %d", code)
	}
	if code := srCode(t, deleteOnce(url+"/subjects/s/versions/1?permanent=true")); code != CodeVersionNotSoftDeleted {
		t.Fatalf("permanent before soft: code %d", code)
	}
	if code := srCode(t, deleteOnce(url+"/subjects/s/versions/abc")); code != CodeInvalidVersion {
		t.Fatalf("invalid version: code %d", code)
	}
	if code := srCode(t, deleteOnce(url+"/subjects/s/versions/5")); code != CodeVersionNotFound {
		t.Fatalf("unknown version: code %d", code)
	}
	if err := c.DeleteSubjectByVersion("s", 2, true); err == nil {
		t.Fatal("srclient's permanent delete of an already soft-deleted version should fail on its first (soft) call")
	}
	if err := deleteOnce(url + "/subjects/s/versions/2?permanent=true"); err != nil {
		t.Fatal(err)
	}
	if status, code := call(t, "GET", url+"/schemas/ids/2", "", nil); status != 404 || code != CodeSchemaNotFound {
		t.Fatalf("id after permanent delete: %d %d", status, code)
	}

	if code := srCode(t, deleteOnce(url+"/subjects/s?permanent=true")); code != CodeSubjectNotSoftDeleted {
		t.Fatalf("permanent subject delete before soft: code %d", code)
	}
	if err := c.DeleteSubject("s", false); err != nil {
		t.Fatal(err)
	}
	if subs, _ := c.GetSubjects(); len(subs) != 0 {
		t.Fatalf("subjects after soft delete: %v", subs)
	}
	if subs, _ := c.GetSubjectsIncludingDeleted(); !reflect.DeepEqual(subs, []string{"s"}) {
		t.Fatalf("subjects including deleted: %v", subs)
	}
	if code := srCode(t, deleteOnce(url+"/subjects/s")); code != CodeSubjectSoftDeleted {
		t.Fatalf("soft subject delete twice: code %d", code)
	}
	if err := deleteOnce(url + "/subjects/s?permanent=true"); err != nil {
		t.Fatal(err)
	}
	if code := srCode(t, c.DeleteSubject("s", true)); code != CodeSubjectNotFound {
		t.Fatalf("deleting a gone subject: code %d", code)
	}
	// Versions restart after a permanent delete; the id of the same schema is kept.
	s, err := c.CreateSchema("s", v1, srclient.Avro)
	if err != nil || s.ID() != 1 {
		t.Fatalf("re-register after permanent delete: %v, %v", s, err)
	}
}

// deleteOnce issues one DELETE through srclient's error decoding.
func deleteOnce(url string) error {
	req, _ := http.NewRequest("DELETE", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 300 {
		return nil
	}
	var e srclient.Error
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		return err
	}
	return e
}

func TestSrclientOtherSchemaTypesAndReferences(t *testing.T) {
	_, url := startServer(t, ServerOptions{})
	c := newClient(url)

	js := `{"type":"object","properties":{"id":{"type":"string"}}}`
	j, err := c.CreateSchema("events-value", js, srclient.Json)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.GetSchema(j.ID()); err != nil || *got.SchemaType() != srclient.Json {
		t.Fatalf("json schema type: %v, %v", got, err)
	}
	proto := "syntax = \"proto3\";\npackage acme;\nmessage Ping { string id = 1; }\n"
	p, err := c.CreateSchema("pings-value", proto, srclient.Protobuf)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.GetSchema(p.ID()); err != nil || got.Schema() != proto || *got.SchemaType() != srclient.Protobuf {
		t.Fatalf("protobuf schema: %v, %v", got, err)
	}
	// Same proto, different layout: same id.
	p2, err := c.CreateSchema("pings2-value", "syntax=\"proto3\"; package acme; // x\nmessage Ping {string id=1;}", srclient.Protobuf)
	if err != nil || p2.ID() != p.ID() {
		t.Fatalf("reformatted proto: %v, %v", p2, err)
	}

	// Avro references: a named type registered under its own subject.
	money := `{"type":"record","name":"Money","namespace":"com.acme","fields":[{"name":"cents","type":"long"}]}`
	if _, err := c.CreateSchema("com.acme.Money", money, srclient.Avro); err != nil {
		t.Fatal(err)
	}
	order := `{"type":"record","name":"Order","namespace":"com.acme","fields":[{"name":"total","type":"com.acme.Money"}]}`
	ref := srclient.Reference{Name: "com.acme.Money", Subject: "com.acme.Money", Version: 1}
	o, err := c.CreateSchema("orders-value", order, srclient.Avro, ref)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.GetSchema(o.ID())
	if err != nil || !reflect.DeepEqual(got.References(), []srclient.Reference{ref}) {
		t.Fatalf("references: %v, %v", got, err)
	}
	_, err = c.CreateSchema("orders2-value", order, srclient.Avro)
	if code := srCode(t, err); code != CodeInvalidSchema {
		t.Fatalf("unresolved named type: code %d", code)
	}
	_, err = c.CreateSchema("orders3-value", order, srclient.Avro, srclient.Reference{Name: "com.acme.Money", Subject: "com.acme.Money", Version: 9})
	if code := srCode(t, err); code != CodeInvalidSchema {
		t.Fatalf("missing reference version: code %d", code)
	}
	var ids []int
	call(t, "GET", url+"/subjects/com.acme.Money/versions/1/referencedby", "", &ids)
	if !reflect.DeepEqual(ids, []int{o.ID()}) {
		t.Fatalf("referencedby = %v", ids)
	}
	if code := srCode(t, c.DeleteSubject("com.acme.Money", false)); code != CodeReferenceExists {
		t.Fatalf("deleting a referenced subject: code %d", code)
	}
	// JSON Schema: a $ref naming a reference resolves into it, also when
	// checking compatibility.
	addr := `{"type":"object","properties":{"zip":{"type":"string"}},"additionalProperties":false}`
	if _, err := c.CreateSchema("address.json", addr, srclient.Json); err != nil {
		t.Fatal(err)
	}
	jref := srclient.Reference{Name: "address.json", Subject: "address.json", Version: 1}
	cust := `{"type":"object","properties":{"address":{"$ref":"address.json"}},"additionalProperties":false}`
	if _, err := c.CreateSchema("customers-value", cust, srclient.Json, jref); err != nil {
		t.Fatal(err)
	}
	addr2 := `{"type":"object","properties":{"zip":{"type":"integer"}},"additionalProperties":false}`
	if _, err := c.CreateSchema("address.json", addr2, srclient.Json); err == nil {
		t.Fatal("an incompatible referenced JSON schema was accepted")
	}
	call(t, "PUT", url+"/config/address.json", `{"compatibility":"NONE"}`, nil)
	if _, err := c.CreateSchema("address.json", addr2, srclient.Json); err != nil {
		t.Fatal(err)
	}
	var res compatResponse
	cust2 := body(cust, `"schemaType":"JSON"`, `"references":[{"name":"address.json","subject":"address.json","version":2}]`)
	call(t, "POST", url+"/compatibility/subjects/customers-value/versions?verbose=true", cust2, &res)
	if res.IsCompatible || !strings.Contains(strings.Join(res.Messages, " "), "#/properties/address/properties/zip") {
		t.Fatalf("a referenced type change is not seen: %+v", res)
	}
	// Protobuf imports are references by file name.
	if _, err := c.CreateSchema("acme/money.proto", `syntax = "proto3"; package acme; message Money { int64 cents = 1; }`, srclient.Protobuf); err != nil {
		t.Fatal(err)
	}
	pref := srclient.Reference{Name: "acme/money.proto", Subject: "acme/money.proto", Version: 1}
	if _, err := c.CreateSchema("invoices-value", `syntax = "proto3"; package acme; import "acme/money.proto"; message Invoice { Money total = 1; }`, srclient.Protobuf, pref); err != nil {
		t.Fatal(err)
	}

	// A compatible evolution of a referencing schema resolves its references.
	order2 := `{"type":"record","name":"Order","namespace":"com.acme","fields":[{"name":"total","type":"com.acme.Money"},{"name":"tip","type":["null","com.acme.Money"],"default":null}]}`
	if _, err := c.CreateSchema("orders-value", order2, srclient.Avro, ref); err != nil {
		t.Fatal(err)
	}
}

func TestHTTPEndpoints(t *testing.T) {
	_, url := startServer(t, ServerOptions{})
	var reg map[string]any
	if status, _ := call(t, "POST", url+"/subjects/orders-value/versions", body(v1), &reg); status != 200 || reg["id"] != 1.0 || reg["version"] != 1.0 {
		t.Fatalf("register: %d %v", status, reg)
	}
	guid, _ := reg["guid"].(string)

	t.Run("schema types", func(t *testing.T) {
		var types []string
		call(t, "GET", url+"/schemas/types", "", &types)
		if !reflect.DeepEqual(types, []string{"JSON", "PROTOBUF", "AVRO"}) {
			t.Fatalf("types %v", types)
		}
	})
	t.Run("raw schema of a version and of an id", func(t *testing.T) {
		var raw string
		call(t, "GET", url+"/subjects/orders-value/versions/latest/schema", "", &raw)
		if raw != v1 {
			t.Fatalf("raw %q", raw)
		}
		raw = ""
		call(t, "GET", url+"/schemas/ids/1/schema", "", &raw)
		if raw != v1 {
			t.Fatalf("raw by id %q", raw)
		}
	})
	t.Run("version -1 is latest", func(t *testing.T) {
		var sj schemaJSON
		call(t, "GET", url+"/subjects/orders-value/versions/-1", "", &sj)
		if sj.Version != 1 || sj.Subject != "orders-value" || sj.ID != 1 || sj.Schema != v1 || sj.SchemaType != "" {
			t.Fatalf("got %+v", sj)
		}
	})
	t.Run("subjects of an id", func(t *testing.T) {
		var subs []string
		call(t, "GET", url+"/schemas/ids/1/subjects", "", &subs)
		if !reflect.DeepEqual(subs, []string{"orders-value"}) {
			t.Fatalf("subjects %v", subs)
		}
	})
	t.Run("schema by guid", func(t *testing.T) {
		var sj schemaJSON
		if status, _ := call(t, "GET", url+"/schemas/guids/"+guid, "", &sj); status != 200 || sj.ID != 1 {
			t.Fatalf("by guid %q: %d %+v", guid, status, sj)
		}
	})
	t.Run("global config", func(t *testing.T) {
		var cfg map[string]string
		call(t, "PUT", url+"/config", `{"compatibility":"full"}`, &cfg)
		if cfg["compatibility"] != "FULL" {
			t.Fatalf("put %v", cfg)
		}
		call(t, "DELETE", url+"/config", "", &cfg)
		if cfg["compatibilityLevel"] != "FULL" {
			t.Fatalf("delete returns the previous level: %v", cfg)
		}
		call(t, "GET", url+"/config", "", &cfg)
		if cfg["compatibilityLevel"] != "BACKWARD" {
			t.Fatalf("after delete %v", cfg)
		}
	})
	t.Run("subject config", func(t *testing.T) {
		if _, code := call(t, "DELETE", url+"/config/orders-value", "", nil); code != CodeSubjectCompatNotConfigured {
			t.Fatalf("delete unconfigured: %d", code)
		}
		if _, code := call(t, "DELETE", url+"/config/nobody", "", nil); code != CodeSubjectNotFound {
			t.Fatalf("delete unknown subject: %d", code)
		}
		call(t, "PUT", url+"/config/orders-value", `{"compatibility":"NONE"}`, nil)
		var cfg map[string]string
		call(t, "DELETE", url+"/config/orders-value", "", &cfg)
		if cfg["compatibilityLevel"] != "NONE" {
			t.Fatalf("delete: %v", cfg)
		}
		if _, code := call(t, "PUT", url+"/config", `{"compatibility":"MOSTLY"}`, nil); code != CodeInvalidCompatibility {
			t.Fatalf("invalid level: %d", code)
		}
	})
	t.Run("mode", func(t *testing.T) {
		var m map[string]string
		call(t, "GET", url+"/mode", "", &m)
		if m["mode"] != "READWRITE" {
			t.Fatalf("mode %v", m)
		}
		if _, code := call(t, "GET", url+"/mode/orders-value", "", nil); code != CodeSubjectModeNotConfigured {
			t.Fatalf("unconfigured subject mode: %d", code)
		}
		call(t, "GET", url+"/mode/orders-value?defaultToGlobal=true", "", &m)
		if m["mode"] != "READWRITE" {
			t.Fatalf("default to global: %v", m)
		}
		if _, code := call(t, "PUT", url+"/mode", `{"mode":"WRITEONLY"}`, nil); code != CodeInvalidMode {
			t.Fatalf("invalid mode: %d", code)
		}
		call(t, "PUT", url+"/mode/orders-value", `{"mode":"READONLY"}`, nil)
		if status, code := call(t, "POST", url+"/subjects/orders-value/versions", body(v2), nil); status != 422 || code != CodeOperationNotPermitted {
			t.Fatalf("register in READONLY: %d %d", status, code)
		}
		if _, code := call(t, "DELETE", url+"/subjects/orders-value", "", nil); code != CodeOperationNotPermitted {
			t.Fatalf("delete in READONLY: %d", code)
		}
		// Reads and compatibility checks still work.
		if status, _ := call(t, "POST", url+"/compatibility/subjects/orders-value/versions/latest", body(v2), nil); status != 200 {
			t.Fatalf("compatibility in READONLY: %d", status)
		}
		call(t, "DELETE", url+"/mode/orders-value", "", &m)
		if m["mode"] != "READONLY" {
			t.Fatalf("delete mode returns previous: %v", m)
		}
	})
	t.Run("compatibility of a version, verbose", func(t *testing.T) {
		var res compatResponse
		call(t, "POST", url+"/compatibility/subjects/orders-value/versions/1?verbose=true", body(v3), &res)
		if res.IsCompatible || len(res.Messages) == 0 || !strings.Contains(res.Messages[0], "note") {
			t.Fatalf("verbose: %+v", res)
		}
		res = compatResponse{}
		call(t, "POST", url+"/compatibility/subjects/orders-value/versions/latest?verbose=true", body(v2), &res)
		if !res.IsCompatible || res.Messages == nil {
			t.Fatalf("compatible verbose: %+v", res)
		}
		res = compatResponse{}
		call(t, "POST", url+"/compatibility/subjects/new-subject/versions/latest", body(v3), &res)
		if !res.IsCompatible {
			t.Fatalf("a new subject accepts anything: %+v", res)
		}
		if _, code := call(t, "POST", url+"/compatibility/subjects/new-subject/versions/1", body(v3), nil); code != CodeSubjectNotFound {
			t.Fatalf("version of a new subject: %d", code)
		}
		if _, code := call(t, "POST", url+"/compatibility/subjects/orders-value/versions/0", body(v3), nil); code != CodeInvalidVersion {
			t.Fatalf("version 0: %d", code)
		}
	})
	t.Run("bad requests", func(t *testing.T) {
		if status, code := call(t, "POST", url+"/subjects/orders-value/versions", `{"schema":`, nil); status != 400 || code != 400 {
			t.Fatalf("malformed body: %d %d", status, code)
		}
		if _, code := call(t, "POST", url+"/subjects/orders-value/versions", body(v1, `"schemaType":"XML"`), nil); code != CodeInvalidSchema {
			t.Fatalf("unknown schema type: %d", code)
		}
		if _, code := call(t, "POST", url+"/subjects/orders-value/versions", body(""), nil); code != CodeInvalidSchema {
			t.Fatalf("empty schema: %d", code)
		}
		if status, code := call(t, "GET", url+"/nowhere", "", nil); status != 404 || code != 404 {
			t.Fatalf("unknown path: %d %d", status, code)
		}
		if status, code := call(t, "PATCH", url+"/subjects", "", nil); status != 405 || code != 405 {
			t.Fatalf("wrong method: %d %d", status, code)
		}
		if _, code := call(t, "GET", url+"/schemas/ids/x", "", nil); code != CodeSchemaNotFound {
			t.Fatalf("non-numeric id: %d", code)
		}
		if _, code := call(t, "POST", url+"/subjects/orders-value/versions", body(v2, `"id":77`), nil); code != CodeOperationNotPermitted {
			t.Fatalf("id outside IMPORT mode: %d", code)
		}
	})
	t.Run("subject names are path-escaped", func(t *testing.T) {
		var reg map[string]any
		if status, _ := call(t, "POST", url+"/subjects/a%2Fb/versions", body(v1), &reg); status != 200 {
			t.Fatalf("register: %d", status)
		}
		var subs []string
		call(t, "GET", url+"/subjects?subjectPrefix=a", "", &subs)
		if !reflect.DeepEqual(subs, []string{"a/b"}) {
			t.Fatalf("subjects %v", subs)
		}
	})
}

func TestSoftDeletedVersionsAreIgnoredByCompatibility(t *testing.T) {
	_, url := startServer(t, ServerOptions{})
	rInt := rec("R", field("a", `"int"`))
	rString := rec("R", field("a", `"string"`))
	rLong := rec("R", field("a", `"long"`))
	call(t, "POST", url+"/subjects/s/versions", body(rInt), nil)
	call(t, "PUT", url+"/config/s", `{"compatibility":"NONE"}`, nil)
	call(t, "POST", url+"/subjects/s/versions", body(rString), nil)
	call(t, "PUT", url+"/config/s", `{"compatibility":"BACKWARD"}`, nil)
	if _, code := call(t, "POST", url+"/subjects/s/versions", body(rLong), nil); code != CodeIncompatibleSchema {
		t.Fatalf("long after string: %d", code)
	}
	call(t, "DELETE", url+"/subjects/s/versions/2", "", nil)
	var reg map[string]any
	if status, _ := call(t, "POST", url+"/subjects/s/versions", body(rLong), &reg); status != 200 || reg["version"] != 3.0 {
		t.Fatalf("long after int once string is soft-deleted: %d %v", status, reg)
	}
}

func TestImportMode(t *testing.T) {
	_, url := startServer(t, ServerOptions{})
	call(t, "POST", url+"/subjects/existing/versions", body(v1), nil)
	if _, code := call(t, "PUT", url+"/mode", `{"mode":"IMPORT"}`, nil); code != CodeOperationNotPermitted {
		t.Fatalf("IMPORT on a non-empty registry: %d", code)
	}
	if status, _ := call(t, "PUT", url+"/mode?force=true", `{"mode":"IMPORT"}`, nil); status != 200 {
		t.Fatalf("forced IMPORT: %d", status)
	}
	var reg map[string]any
	call(t, "POST", url+"/subjects/imported/versions", body(v3, `"id":100`, `"version":5`), &reg)
	if reg["id"] != 100.0 || reg["version"] != 5.0 {
		t.Fatalf("import: %v", reg)
	}
	var sj schemaJSON
	call(t, "GET", url+"/subjects/imported/versions/5", "", &sj)
	if sj.ID != 100 || sj.Schema != v3 {
		t.Fatalf("imported version: %+v", sj)
	}
	// Idempotent re-import, and conflicts.
	if status, _ := call(t, "POST", url+"/subjects/imported/versions", body(v3, `"id":100`, `"version":5`), nil); status != 200 {
		t.Fatalf("re-import: %d", status)
	}
	reg = nil
	call(t, "POST", url+"/subjects/imported/versions", body(v3, `"id":100`), &reg)
	if reg["version"] != 5.0 {
		t.Fatalf("re-import without a version: %v", reg)
	}
	if _, code := call(t, "POST", url+"/subjects/imported/versions", body(v2, `"id":100`), nil); code != CodeOperationNotPermitted {
		t.Fatalf("id reuse for another schema: %d", code)
	}
	if _, code := call(t, "POST", url+"/subjects/imported/versions", body(v2, `"id":101`, `"version":5`), nil); code != CodeOperationNotPermitted {
		t.Fatalf("version reuse for another schema: %d", code)
	}
	// IMPORT skips compatibility checks: v1 after v3 without defaults.
	if status, _ := call(t, "POST", url+"/subjects/imported/versions", body(v1, `"id":101`, `"version":6`), nil); status != 200 {
		t.Fatalf("import without compatibility: %d", status)
	}
	call(t, "PUT", url+"/mode", `{"mode":"READWRITE"}`, nil)
	reg = nil
	call(t, "POST", url+"/subjects/fresh/versions", body(rec("Fresh", field("x", `"int"`))), &reg)
	if reg["id"] != 102.0 {
		t.Fatalf("ids continue after the imported ones: %v", reg)
	}
}

func TestDurability(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "registry.json")
	_, url := startServer(t, ServerOptions{DataFile: data})
	c := newClient(url)
	for _, s := range []string{v1, v2} {
		if _, err := c.CreateSchema("orders-value", s, srclient.Avro); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.CreateSchema("pings-value", "syntax = \"proto3\"; message P { string id = 1; }", srclient.Protobuf); err != nil {
		t.Fatal(err)
	}
	call(t, "PUT", url+"/config", `{"compatibility":"FULL"}`, nil)
	call(t, "PUT", url+"/config/orders-value", `{"compatibility":"FORWARD_TRANSITIVE"}`, nil)
	call(t, "PUT", url+"/mode/pings-value", `{"mode":"READONLY"}`, nil)
	call(t, "DELETE", url+"/subjects/orders-value/versions/1", "", nil)
	var before map[string]any
	call(t, "GET", url+"/subjects/orders-value/versions/2", "", &before)

	// Restart from the data file.
	_, url2 := startServer(t, ServerOptions{DataFile: data})
	var after map[string]any
	call(t, "GET", url2+"/subjects/orders-value/versions/2", "", &after)
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("version 2 before %v, after %v", before, after)
	}
	var cfg map[string]string
	call(t, "GET", url2+"/config", "", &cfg)
	if cfg["compatibilityLevel"] != "FULL" {
		t.Fatalf("global config %v", cfg)
	}
	call(t, "GET", url2+"/config/orders-value", "", &cfg)
	if cfg["compatibilityLevel"] != "FORWARD_TRANSITIVE" {
		t.Fatalf("subject config %v", cfg)
	}
	var m map[string]string
	call(t, "GET", url2+"/mode/pings-value", "", &m)
	if m["mode"] != "READONLY" {
		t.Fatalf("subject mode %v", m)
	}
	var vs []int
	call(t, "GET", url2+"/subjects/orders-value/versions?deleted=true", "", &vs)
	if !reflect.DeepEqual(vs, []int{1, 2}) {
		t.Fatalf("versions with deleted %v", vs)
	}
	if _, code := call(t, "GET", url2+"/subjects/orders-value/versions/1", "", nil); code != CodeVersionNotFound {
		t.Fatalf("soft delete survives restart: %d", code)
	}
	var res compatResponse
	call(t, "POST", url2+"/compatibility/subjects/orders-value/versions?verbose=true", body(v1), &res)
	if !res.IsCompatible {
		t.Fatalf("stored schemas parse after restart: %+v", res)
	}
	c2 := newClient(url2)
	if s, err := c2.GetSchema(3); err != nil || !strings.Contains(s.Schema(), "message P") {
		t.Fatalf("protobuf schema after restart: %v %v", s, err)
	}
	// Same schema, same id after restart; new schemas continue the sequence.
	if s, err := c2.CreateSchema("other-value", v1, srclient.Avro); err != nil || s.ID() != 1 {
		t.Fatalf("same schema after restart: %v %v", s, err)
	}
	var reg map[string]any
	call(t, "POST", url2+"/subjects/new-value/versions", body(rec("New", field("x", `"int"`))), &reg)
	if reg["id"] != 4.0 {
		t.Fatalf("next id after restart: %v", reg)
	}
}

func TestStoreErrorKeepsState(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sub")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	_, url := startServer(t, ServerOptions{DataFile: filepath.Join(dir, "registry.json")})
	call(t, "POST", url+"/subjects/s/versions", body(v1), nil)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if status, code := call(t, "POST", url+"/subjects/s/versions", body(v2), nil); status != 500 || code != CodeStoreError {
		t.Fatalf("register with a broken store: %d %d", status, code)
	}
	var vs []int
	call(t, "GET", url+"/subjects/s/versions", "", &vs)
	if !reflect.DeepEqual(vs, []int{1}) {
		t.Fatalf("a failed write changed the state: %v", vs)
	}
}

func TestCorruptDataFileIsAnError(t *testing.T) {
	data := filepath.Join(t.TempDir(), "registry.json")
	for name, content := range map[string]string{
		"not json":       `{`,
		"unknown format": `{"format":99}`,
		"dangling id":    `{"format":1,"subjects":{"s":{"versions":[{"version":1,"id":7}]}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(data, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := NewServer(ServerOptions{DataFile: data}); err == nil {
				t.Fatal("NewServer accepted a corrupt data file")
			}
		})
	}
}

func TestConcurrentRegistrations(t *testing.T) {
	_, url := startServer(t, ServerOptions{Compatibility: None})
	c := newClient(url)
	var wg sync.WaitGroup
	ids := make([]int, 16)
	errs := make([]error, 16)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := c.CreateSchema(fmt.Sprintf("s%d", i%4), rec(fmt.Sprintf("R%d", i), field("a", `"int"`)), srclient.Avro)
			if err == nil {
				ids[i] = s.ID()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	seen := map[int]bool{}
	for i, id := range ids {
		if errs[i] != nil || seen[id] {
			t.Fatalf("registration %d: id %d, err %v", i, id, errs[i])
		}
		seen[id] = true
	}
}

func TestServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewServer(ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	var types []string
	call(t, "GET", "http://"+ln.Addr().String()+"/schemas/types", "", &types)
	if len(types) != 3 {
		t.Fatalf("types %v", types)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after cancel: %v", err)
	}
	if err := Serve(context.Background(), "256.0.0.1:1", ServerOptions{}); err == nil {
		t.Fatal("Serve on a bad address succeeded")
	}
}
