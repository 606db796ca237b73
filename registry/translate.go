package registry

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"golang.org/x/sync/singleflight"
)

// DefaultNegativeTTL is how long a Translator remembers that a schema may not
// land (unknown id, incompatible, bad reference) before asking the
// registries again. It keeps a flood of such records from hammering the
// registries, and still lets an operator's fix (a relaxed compatibility
// level, a restored schema) take effect without a restart.
const DefaultNegativeTTL = time.Minute

// TranslatorOptions tunes a Translator. The zero value gives the defaults.
type TranslatorOptions struct {
	// Type is the pipeline's format: Avro (default), JSON or Protobuf. It
	// decides whether Protobuf message indexes follow the schema id, and a
	// value whose writer schema is of another type is rejected
	// (ReasonNotWireFormat).
	Type SchemaType
	// Keys says whether record keys carry the wire format (KeyPlain,
	// default; KeyFramed; KeyDetect). Framed keys are translated under the
	// subject <topic>-key. A __key_schema_id header is translated whatever
	// the mode.
	Keys KeyMode
	// CacheSize bounds the cached translations, and separately the cached
	// rejections and referenced schemas. Default DefaultCacheSize.
	CacheSize int
	// NegativeTTL is how long a rejection is cached. Default
	// DefaultNegativeTTL.
	NegativeTTL time.Duration
}

// Translator rewrites the schema ids of records mirrored from a source
// cluster so that they name the same schemas in the target cluster's
// registry, registering the schemas there first. It is safe for concurrent
// use; one Translator serves a pipeline.
//
// The first record of a (schema, target subject) pair costs a few registry
// calls; the answer, positive or negative, is cached, so later records make
// none: the hot path is Locate, one map lookup and one allocation.
type Translator struct {
	source, target *Client
	typ            SchemaType
	keys           KeyMode
	ttl            time.Duration
	now            func() time.Time // tests move the clock

	// The caches take their own locks and are never held together.
	hits   *cache[tkey, *entry]         // translations, never expire
	misses *cache[tkey, *rejection]     // RecordErrors, expire after ttl
	refs   *cache[Reference, Reference] // source reference -> target reference (Name empty)
	flight singleflight.Group           // one resolution per key at a time
}

// tkey names a translation: the schema as the record refers to it in the
// source registry (the Translator's), the target topic and the part. The
// subject is derived from topic and part.
type tkey struct {
	topic string
	id    int32
	guid  [16]byte
	magic byte
	key   bool
}

// entry is a cached translation.
type entry struct {
	subject  string
	sourceID int32
	targetID int32
	typ      SchemaType
}

type rejection struct {
	err     *RecordError
	expires time.Time
}

// Translation tells how the schema reference of a record's key or value was
// translated.
type Translation struct {
	// Place is where the record carries the reference; Absent means there is
	// none (a plain key, a tombstone) and the other fields are zero.
	Place Place
	// Source is the reference as the record carried it (id or GUID, and the
	// Protobuf message indexes, which are kept as they are).
	Source SchemaRef
	// SourceID is the schema id in the source registry (for a GUID, as the
	// registry reported it; 0 if it did not).
	SourceID int32
	// Subject is the target subject: <topic>-value or <topic>-key.
	Subject string
	// TargetID is the schema id in the target registry, now in the record.
	TargetID int32
	// Type is the writer schema's type.
	Type SchemaType
}

// Result is a translated record. Key, Value and Headers are the slices
// passed to Translate when their part did not change, new ones otherwise;
// the inputs are never modified.
type Result struct {
	Key, Value  []byte
	Headers     []Header
	KeySchema   Translation
	ValueSchema Translation
}

// NewTranslator returns a translator from the source cluster's registry to
// the target's.
func NewTranslator(source, target *Client, opts TranslatorOptions) *Translator {
	if opts.Type == "" {
		opts.Type = Avro
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = DefaultCacheSize
	}
	if opts.NegativeTTL <= 0 {
		opts.NegativeTTL = DefaultNegativeTTL
	}
	return &Translator{
		source: source, target: target,
		typ: opts.Type, keys: opts.Keys, ttl: opts.NegativeTTL, now: time.Now,
		hits:   newCache[tkey, *entry](opts.CacheSize),
		misses: newCache[tkey, *rejection](opts.CacheSize),
		refs:   newCache[Reference, Reference](opts.CacheSize),
	}
}

// Translate rewrites the schema references of one record bound for
// targetTopic: in the payload prefix or the __key_schema_id /
// __value_schema_id header, wherever the record carries them, keeping
// Protobuf message indexes byte for byte. A GUID reference (magic byte 1)
// becomes an id reference (magic byte 0), which every deserializer reads.
//
// Errors: a *RecordError when the record cannot land (quarantine it;
// Reason is one of the Reason* codes of RecordError); otherwise the record
// was not judged, because a registry could not be asked: IsRetryable tells
// an outage (pause and retry) from a configuration problem such as refused
// credentials. Never quarantine a record for an error that is not a
// *RecordError. On a cache miss ctx bounds the registry calls (those made
// through srclient only until they start; the client timeout bounds them).
func (t *Translator) Translate(ctx context.Context, targetTopic string, key, value []byte, headers []Header) (Result, error) {
	kl, vl, err := Locate(key, value, headers, t.typ, t.keys)
	if err != nil {
		return Result{}, &RecordError{Reason: ReasonNotWireFormat, Msg: err.Error(), Err: err}
	}
	res := Result{Key: key, Value: value, Headers: headers}
	var ke, ve *entry
	if vl.Place != Absent {
		if ve, err = t.lookup(ctx, targetTopic, false, vl.Ref); err != nil {
			return Result{}, err
		}
		res.ValueSchema = ve.translation(vl)
	}
	if kl.Place != Absent {
		if ke, err = t.lookup(ctx, targetTopic, true, kl.Ref); err != nil {
			return Result{}, err
		}
		res.KeySchema = ke.translation(kl)
	}
	rewrite(&res, kl, vl, ke, ve)
	return res, nil
}

func (e *entry) translation(l Location) Translation {
	return Translation{Place: l.Place, Source: l.Ref, SourceID: e.sourceID, Subject: e.subject, TargetID: e.targetID, Type: e.typ}
}

// lookup is the hot path: a cached translation or rejection, else resolve.
func (t *Translator) lookup(ctx context.Context, topic string, isKey bool, ref SchemaRef) (*entry, error) {
	k := tkey{topic: topic, id: ref.ID, guid: ref.GUID, magic: ref.Magic, key: isKey}
	if e, ok := t.hits.get(k); ok {
		return e, nil
	}
	if r, ok := t.misses.get(k); ok && t.now().Before(r.expires) {
		return nil, r.err
	}
	for {
		v, err, _ := t.flight.Do(k.String(), func() (any, error) { return t.resolve(ctx, k) })
		if err != nil && ctx.Err() == nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
			// The caller that ran the resolution gave up; ours has not.
			continue
		}
		if err != nil {
			return nil, err
		}
		return v.(*entry), nil
	}
}

func (k tkey) String() string {
	s := k.topic + "-value/"
	if k.key {
		s = k.topic + "-key/"
	}
	if k.magic == MagicGUID {
		return s + "guid " + FormatGUID(k.guid)
	}
	return s + "id " + strconv.Itoa(int(k.id))
}

func (k tkey) part() string {
	if k.key {
		return "key"
	}
	return "value"
}

func (k tkey) ref() string {
	if k.magic == MagicGUID {
		return "guid " + FormatGUID(k.guid)
	}
	return "id " + strconv.Itoa(int(k.id))
}

// resolve finds the writer schema in the source registry, registers its
// references and itself in the target (after checking compatibility) and
// caches the answer. Registry outages are returned as they are and not
// cached.
func (t *Translator) resolve(ctx context.Context, k tkey) (*entry, error) {
	if e, ok := t.hits.get(k); ok { // resolved while we waited for the flight
		return e, nil
	}
	subject := k.topic + "-value"
	if k.key {
		subject = k.topic + "-key"
	}
	var src *Schema
	var err error
	if k.magic == MagicGUID {
		src, err = t.source.SchemaByGUID(ctx, k.guid)
	} else {
		src, err = t.source.SchemaByID(ctx, int(k.id))
	}
	if err != nil {
		switch {
		case errors.Is(err, ErrSchemaNotFound):
			return nil, t.reject(k, &RecordError{Reason: ReasonUnknownSchemaID,
				Msg: fmt.Sprintf("%s schema %s not found in the source registry %s", k.part(), k.ref(), t.source.URL()), Err: err})
		case errors.Is(err, ErrGUIDUnsupported):
			return nil, t.reject(k, &RecordError{Reason: ReasonUnknownSchemaID,
				Msg: fmt.Sprintf("%s schema %s: the source registry %s does not support schema guids", k.part(), k.ref(), t.source.URL()), Err: err})
		}
		return nil, fmt.Errorf("translating %s schema %s: %w", k.part(), k.ref(), err)
	}
	if !k.key && src.Type != t.typ {
		return nil, t.reject(k, &RecordError{Reason: ReasonNotWireFormat,
			Msg: fmt.Sprintf("value schema %s is a %s schema; the pipeline's format is %s", k.ref(), src.Type, t.typ)})
	}
	refs, err := t.references(ctx, src.References, nil)
	if err != nil {
		return nil, t.rejectOr(k, err, fmt.Sprintf("%s schema %s", k.part(), k.ref()))
	}
	id, _, err := t.ensure(ctx, subject, &Schema{Type: src.Type, Text: src.Text, References: refs}, false)
	if err != nil {
		return nil, t.rejectOr(k, err, fmt.Sprintf("%s schema %s", k.part(), k.ref()))
	}
	sourceID := k.id
	if k.magic == MagicGUID {
		sourceID = int32(src.ID)
	}
	e := &entry{subject: subject, sourceID: sourceID, targetID: int32(id), typ: src.Type}
	t.hits.put(k, e)
	return e, nil
}

// ensure makes s a version of subject in the target registry and returns its
// id (and, with needVersion, its version): the version that already holds
// it, else a new one after checking s against every version the subject's
// level requires.
func (t *Translator) ensure(ctx context.Context, subject string, s *Schema, needVersion bool) (id, version int, err error) {
	got, err := t.target.Lookup(ctx, subject, s)
	if err == nil {
		return got.ID, got.Version, nil
	}
	if !errors.Is(err, ErrSchemaNotFound) {
		return 0, 0, err
	}
	level, err := t.target.Compatibility(ctx, subject)
	if err != nil {
		return 0, 0, err
	}
	if level != None {
		if err := t.target.CheckCompatibility(ctx, subject, s); err != nil {
			return 0, 0, fmt.Errorf("compatibility level %s: %w", level, err)
		}
	}
	if id, err = t.target.Register(ctx, subject, s); err != nil {
		return 0, 0, err
	}
	if !needVersion {
		return id, 0, nil
	}
	// srclient v0.7.3 reports version 0 for a registration.
	if got, err = t.target.Lookup(ctx, subject, s); err != nil {
		return 0, 0, err
	}
	return got.ID, got.Version, nil
}

// references registers the schemas refs name (recursively, referenced ones
// first) in the target under the same subject names, and returns refs with
// the target's versions. path holds the references being resolved, to stop
// cycles; its length bounds the depth as the server does.
func (t *Translator) references(ctx context.Context, refs []Reference, path []Reference) ([]Reference, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	if len(path) >= maxRefDepth {
		return nil, &RecordError{Reason: ReasonBadSchemaReference,
			Msg: fmt.Sprintf("references nest deeper than %d", maxRefDepth)}
	}
	out := make([]Reference, len(refs))
	for i, r := range refs {
		at := Reference{Subject: r.Subject, Version: r.Version}
		if got, ok := t.refs.get(at); ok {
			out[i] = Reference{Name: r.Name, Subject: got.Subject, Version: got.Version}
			continue
		}
		for _, p := range path {
			if p == at {
				return nil, &RecordError{Reason: ReasonBadSchemaReference,
					Msg: fmt.Sprintf("reference %q: subject %q version %d refers to itself", r.Name, r.Subject, r.Version)}
			}
		}
		s, err := t.source.SchemaByVersion(ctx, r.Subject, r.Version)
		if err != nil {
			if errors.Is(err, ErrSchemaNotFound) {
				return nil, &RecordError{Reason: ReasonBadSchemaReference,
					Msg: fmt.Sprintf("reference %q: subject %q version %d not found in the source registry %s", r.Name, r.Subject, r.Version, t.source.URL()),
					Err: err}
			}
			return nil, err
		}
		sub, err := t.references(ctx, s.References, append(path, at))
		if err != nil {
			return nil, err
		}
		_, v, err := t.ensure(ctx, r.Subject, &Schema{Type: s.Type, Text: s.Text, References: sub}, true)
		if err != nil {
			return nil, fmt.Errorf("reference %q (subject %q version %d): %w", r.Name, r.Subject, r.Version, err)
		}
		t.refs.put(at, Reference{Subject: r.Subject, Version: v})
		out[i] = Reference{Name: r.Name, Subject: r.Subject, Version: v}
	}
	return out, nil
}

// rejectOr turns an error of resolving k into a cached *RecordError when it
// is about the schema, and returns it unchanged (not cached) when it is
// about reaching a registry.
func (t *Translator) rejectOr(k tkey, err error, what string) error {
	var re *RecordError
	if errors.As(err, &re) {
		return t.reject(k, &RecordError{Reason: re.Reason, Msg: what + ": " + re.Msg, Err: re.Err})
	}
	var ie *IncompatibleError
	if errors.As(err, &ie) {
		return t.reject(k, &RecordError{Reason: ReasonIncompatibleSchema,
			Msg: what + ": " + shorten(err.Error()), Err: err})
	}
	if ae := asAPIError(err); ae != nil && ae.Code == CodeInvalidSchema {
		return t.reject(k, &RecordError{Reason: ReasonIncompatibleSchema,
			Msg: what + ": the target registry rejects the schema: " + shorten(ae.Message), Err: err})
	}
	return fmt.Errorf("translating %s: %w", what, err)
}

func (t *Translator) reject(k tkey, re *RecordError) *RecordError {
	t.misses.put(k, &rejection{err: re, expires: t.now().Add(t.ttl)})
	return re
}

// shorten bounds a message that goes into a quarantine header: verbose
// compatibility messages quote whole schemas. The full error stays in
// RecordError.Err.
func shorten(s string) string {
	const max = 1024
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// rewrite puts the target ids into the record: the changed payloads (and
// header values) share one new buffer, the headers one new slice.
func rewrite(r *Result, kl, vl Location, ke, ve *entry) {
	kc := ke != nil && changes(kl, ke)
	vc := ve != nil && changes(vl, ve)
	if !kc && !vc {
		return
	}
	size := 0
	inHeader := false
	if kc {
		size += reframedLen(kl, r.Key, r.Headers)
		inHeader = kl.Place == InHeader
	}
	if vc {
		size += reframedLen(vl, r.Value, r.Headers)
		inHeader = inHeader || vl.Place == InHeader
	}
	buf := make([]byte, 0, size)
	headers := r.Headers
	if inHeader {
		headers = make([]Header, len(r.Headers))
		copy(headers, r.Headers)
	}
	if kc {
		var out []byte
		buf, out = reframe(buf, kl, r.Key, r.Headers, ke.targetID)
		if kl.Place == InPayload {
			r.Key = out
		} else {
			headers[kl.Header].Value = out
		}
	}
	if vc {
		var out []byte
		_, out = reframe(buf, vl, r.Value, r.Headers, ve.targetID)
		if vl.Place == InPayload {
			r.Value = out
		} else {
			headers[vl.Header].Value = out
		}
	}
	r.Headers = headers
}

func changes(l Location, e *entry) bool {
	return l.Place != Absent && (l.Ref.Magic != MagicID || l.Ref.ID != e.targetID)
}

// refBytes returns the bytes that start with the reference of l and the
// length of its magic byte and id or GUID.
func refBytes(l Location, data []byte, headers []Header) ([]byte, int) {
	if l.Place == InHeader {
		data = headers[l.Header].Value
	}
	if l.Ref.Magic == MagicGUID {
		return data, 17
	}
	return data, 5
}

func reframedLen(l Location, data []byte, headers []Header) int {
	b, n := refBytes(l, data, headers)
	return len(b) - n + 5
}

// reframe appends to buf the bytes of l with magic byte 0 and id in place of
// the reference, the rest (message indexes, body) copied as it was, and
// returns buf and the appended part.
func reframe(buf []byte, l Location, data []byte, headers []Header, id int32) ([]byte, []byte) {
	b, n := refBytes(l, data, headers)
	start := len(buf)
	buf = append(buf, MagicID)
	buf = binary.BigEndian.AppendUint32(buf, uint32(id))
	buf = append(buf, b[n:]...)
	return buf, buf[start:len(buf):len(buf)]
}
