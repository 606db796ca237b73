package registry

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// english prints validation errors (the library's messages need a printer).
var english = message.NewPrinter(language.English)

// ReasonSchemaInvalid is the RecordError reason of a JSON document that does
// not validate against its JSON Schema.
const ReasonSchemaInvalid = "schema-invalid"

// ReasonUnknownSubjectVersion is the RecordError reason of a document whose
// subject or version does not exist in the registry (for instance a Pub/Sub
// schema revision mapped to a version nobody registered).
const ReasonUnknownSubjectVersion = "unknown-subject-version"

// defaultLatestTTL is how long JSONValidator trusts its answer to "which
// version is the latest", so a newly registered version is picked up.
const defaultLatestTTL = 30 * time.Second

// JSONValidator validates JSON documents against the JSON Schema versions of
// registry subjects. Every (subject, version) is fetched and compiled once;
// "latest" is re-read after a TTL. Safe for concurrent use.
type JSONValidator struct {
	c         *Client
	latestTTL time.Duration
	now       func() time.Time

	mu       sync.Mutex
	compiled map[subjectVersion]*compiledEntry // Subject, Version
	latest   map[string]latestEntry
}

// compiledEntry is filled once; done is closed when s or err is set, so
// concurrent first uses of a version wait for one fetch.
type compiledEntry struct {
	done chan struct{}
	s    *JSONSchema
	err  error
}

type latestEntry struct {
	version int
	at      time.Time
}

// JSONSchema is a compiled JSON Schema version of a subject.
type JSONSchema struct {
	*Schema // ID, Subject, Version, Text
	s       *jsonschema.Schema
}

// NewJSONValidator returns a validator reading schemas through c.
func NewJSONValidator(c *Client) *JSONValidator {
	return &JSONValidator{c: c, latestTTL: defaultLatestTTL, now: time.Now,
		compiled: map[subjectVersion]*compiledEntry{}, latest: map[string]latestEntry{}}
}

// Schema returns a subject's version compiled, version 0 meaning the latest.
// A missing subject or version, a schema that is not JSON Schema or does not
// compile is a *RecordError (the documents meant for it cannot land); registry
// outages are other errors (retry later).
func (v *JSONValidator) Schema(ctx context.Context, subject string, version int) (*JSONSchema, error) {
	var latest *Schema // the latest version's schema when just read
	if version == 0 {
		ver, s, err := v.latestVersion(ctx, subject)
		if err != nil {
			return nil, err
		}
		version, latest = ver, s
	}
	key := subjectVersion{subject, version}
	v.mu.Lock()
	e, ok := v.compiled[key]
	if !ok {
		e = &compiledEntry{done: make(chan struct{})}
		v.compiled[key] = e
	}
	v.mu.Unlock()
	if ok {
		select {
		case <-e.done:
			return e.s, e.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	e.s, e.err = v.load(ctx, subject, version, latest)
	if e.err != nil && !isRecordError(e.err) {
		// Not cached: a registry outage is retried by the next call.
		v.mu.Lock()
		delete(v.compiled, key)
		v.mu.Unlock()
	}
	close(e.done)
	return e.s, e.err
}

func isRecordError(err error) bool {
	var re *RecordError
	return errors.As(err, &re)
}

// latestVersion returns a subject's latest version number and, when it read
// the registry for it (not within the TTL), that version's schema.
func (v *JSONValidator) latestVersion(ctx context.Context, subject string) (int, *Schema, error) {
	v.mu.Lock()
	l, ok := v.latest[subject]
	v.mu.Unlock()
	if ok && v.now().Sub(l.at) < v.latestTTL {
		return l.version, nil, nil
	}
	var out schemaJSON
	err := v.c.do(ctx, "GET", "/subjects/"+url.PathEscape(subject)+"/versions/latest", nil, &out)
	if err != nil {
		err = v.c.fail(err, fmt.Sprintf("fetching the latest version of subject %q", subject), CodeSubjectNotFound, CodeVersionNotFound)
		if errors.Is(err, ErrSchemaNotFound) {
			return 0, nil, &RecordError{Reason: ReasonUnknownSubjectVersion,
				Msg: fmt.Sprintf("subject %q has no version in %s", subject, v.c.url), Err: err}
		}
		return 0, nil, err
	}
	s, err := out.schema()
	if err != nil {
		return 0, nil, fmt.Errorf("the latest version of subject %q: %w", subject, err)
	}
	if s.Subject == "" {
		s.Subject = subject
	}
	v.mu.Lock()
	v.latest[subject] = latestEntry{version: out.Version, at: v.now()}
	v.mu.Unlock()
	return out.Version, s, nil
}

// load fetches a version (unless pre holds it already) and its references,
// and compiles it.
func (v *JSONValidator) load(ctx context.Context, subject string, version int, pre *Schema) (*JSONSchema, error) {
	s := pre
	if s == nil {
		var err error
		if s, err = v.fetch(ctx, subject, version); err != nil {
			return nil, err
		}
	}
	if s.Type != JSON {
		return nil, &RecordError{Reason: ReasonUnknownSubjectVersion,
			Msg: fmt.Sprintf("subject %q version %d is %s, not a JSON Schema", subject, version, s.Type)}
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(noLoader{})
	base := schemaURL(subject, version)
	if err := v.addResource(ctx, c, base, s, map[string]bool{}); err != nil {
		return nil, err
	}
	compiled, err := c.Compile(base)
	if err != nil {
		return nil, &RecordError{Reason: ReasonUnknownSubjectVersion,
			Msg: fmt.Sprintf("subject %q version %d does not compile as JSON Schema: %v", subject, version, oneLine(err.Error())), Err: err}
	}
	return &JSONSchema{Schema: s, s: compiled}, nil
}

func (v *JSONValidator) fetch(ctx context.Context, subject string, version int) (*Schema, error) {
	s, err := v.c.SchemaByVersion(ctx, subject, version)
	if err != nil {
		if errors.Is(err, ErrSchemaNotFound) {
			return nil, &RecordError{Reason: ReasonUnknownSubjectVersion,
				Msg: fmt.Sprintf("subject %q version %d is not in %s", subject, version, v.c.url), Err: err}
		}
		return nil, err
	}
	if s.Subject == "" {
		s.Subject, s.Version = subject, version
	}
	return s, nil
}

// addResource adds s at location loc, and its references (registry schema
// references: a name, as $ref writes it, resolved against loc) before it.
func (v *JSONValidator) addResource(ctx context.Context, c *jsonschema.Compiler, loc string, s *Schema, seen map[string]bool) error {
	if seen[loc] {
		return nil
	}
	seen[loc] = true
	for _, ref := range s.References {
		rs, err := v.fetch(ctx, ref.Subject, ref.Version)
		if err != nil {
			return fmt.Errorf("reference %q of subject %q: %w", ref.Name, s.Subject, err)
		}
		refLoc, err := resolveRef(loc, ref.Name)
		if err != nil {
			return &RecordError{Reason: ReasonBadSchemaReference, Msg: fmt.Sprintf("reference %q of subject %q: %v", ref.Name, s.Subject, err)}
		}
		if err := v.addResource(ctx, c, refLoc, rs, seen); err != nil {
			return err
		}
	}
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(s.Text))
	if err != nil {
		return &RecordError{Reason: ReasonUnknownSubjectVersion, Msg: fmt.Sprintf("subject %q version %d is not JSON: %v", s.Subject, s.Version, err)}
	}
	if err := c.AddResource(loc, doc); err != nil {
		return &RecordError{Reason: ReasonUnknownSubjectVersion, Msg: fmt.Sprintf("subject %q version %d: %v", s.Subject, s.Version, err)}
	}
	return nil
}

// schemaURL is where a subject version lives for the compiler: relative
// reference names resolve against it.
func schemaURL(subject string, version int) string {
	return fmt.Sprintf("https://schema-registry.invalid/subjects/%s/versions/%d/schema.json", url.PathEscape(subject), version)
}

func resolveRef(base, name string) (string, error) {
	b, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	r, err := url.Parse(name)
	if err != nil {
		return "", err
	}
	return b.ResolveReference(r).String(), nil
}

// noLoader refuses every URL the registry did not provide: validation never
// reaches the network or the file system.
type noLoader struct{}

func (noLoader) Load(u string) (any, error) {
	return nil, fmt.Errorf("%s is not a reference of the registry schema", u)
}

// Validate checks a JSON document. A document that does not parse or does
// not validate is a *RecordError naming the first failing location.
func (s *JSONSchema) Validate(doc []byte) error {
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(string(doc)))
	if err != nil {
		return &RecordError{Reason: ReasonSchemaInvalid, Msg: fmt.Sprintf("not JSON: %v", err), Err: err}
	}
	if err := s.s.Validate(inst); err != nil {
		return &RecordError{Reason: ReasonSchemaInvalid,
			Msg: fmt.Sprintf("does not validate against subject %q version %d (id %d): %s", s.Subject, s.Version, s.ID, describeValidation(err)), Err: err}
	}
	return nil
}

// describeValidation names the leaf failures of a validation error, as
// "at /speed: got string, want number", at most three of them.
func describeValidation(err error) string {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return oneLine(err.Error())
	}
	var leaves []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			leaves = append(leaves, fmt.Sprintf("at /%s: %s", strings.Join(e.InstanceLocation, "/"), e.ErrorKind.LocalizedString(english)))
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	if len(leaves) > 3 {
		leaves = append(leaves[:3], fmt.Sprintf("and %d more", len(leaves)-3))
	}
	return strings.Join(leaves, "; ")
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
