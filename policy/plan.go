package policy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Reasons a plan rejects a record, for Violation.Reason. The record then goes to
// the source-region quarantine; nothing of it reaches the target.
const (
	// ReasonUnmatchedPII: the schema has a PII-tagged field that no rule covers.
	ReasonUnmatchedPII = "unmatched-pii"
	// ReasonBlocked: a block rule matched a field that holds a value.
	ReasonBlocked = "blocked"
	// ReasonUndecodable: the record does not decode with its writer schema.
	ReasonUndecodable = "undecodable"
	// ReasonPolicyConflict: two policies that apply to the stream give a header
	// different actions. Header names are matched against globs per record, so
	// unlike a conflict on a field (a compile error) this shows only then.
	ReasonPolicyConflict = "policy-conflict"
	// ReasonUnmaskable: a rule matched a value it cannot mask without leaving the
	// writer schema's type, as in a JSON number under a hash rule, a string a
	// truncate rule cannot read as a timestamp, or a number outside every bucket.
	ReasonUnmaskable = "unmaskable"
	// ReasonSchemaUnreadable: the record's JSON Schema has a part the masker
	// cannot read soundly (an unresolvable $ref, nesting past the limit...),
	// so PII tags there could go unseen. Detail names the keyword and where
	// it is.
	ReasonSchemaUnreadable = "schema-unreadable"
)

// Violation is why a plan refused a record. It never contains record values.
type Violation struct {
	// Reason is one of the Reason constants.
	Reason string
	// FieldPath is the field concerned, as in "customer.ssn"; "" when the record
	// as a whole is concerned.
	FieldPath string
	// Rule is the rule concerned, as in "payments-pii@7 rules[4]"; "" when none is.
	Rule string
	// Detail adds where decoding failed; it never quotes record bytes.
	Detail string
}

// Error formats the violation as "blocked: field customer.ssn (payments-pii@7 rules[4])".
func (v *Violation) Error() string {
	var b strings.Builder
	b.WriteString(v.Reason)
	if v.FieldPath != "" {
		b.WriteString(": field ")
		b.WriteString(v.FieldPath)
	}
	if v.Rule != "" {
		b.WriteString(" (")
		b.WriteString(v.Rule)
		b.WriteString(")")
	}
	if v.Detail != "" {
		b.WriteString(": ")
		b.WriteString(v.Detail)
	}
	return b.String()
}

// Touch is one rule's effect on one field of a record.
type Touch struct {
	// Path is the field, as in "customer.email" or "items[].card" (map values are
	// "attrs.*", or "attrs.<key>" for a key a rule names). Key fields start with
	// "key" ("key.customer_id", "key" for the whole key), headers with
	// "header." and the rule's match ("header.x-user-*").
	Path string
	// Action is what was done.
	Action Action
	// Policy and Version name the policy the rule belongs to, and Rule its index
	// in the policy's rules.
	Policy  string
	Version int64
	Rule    int
	// Count is how many values the rule changed at Path (more than one in arrays
	// and maps). Plans count only values that were present (not null).
	Count int
}

// Ref is the touching rule's policy as "<name>@<version>".
func (t Touch) Ref() string { return t.Policy + "@" + strconv.FormatInt(t.Version, 10) }

// Result says what a plan did to one record, for the tributary-policy header and
// the tributary_masked_fields_total{pipeline,policy,action} counter.
type Result struct {
	// Touches lists each (field, rule) that changed values, in record order.
	Touches []Touch
	// KeyID identifies the hash key (the first 8 hex digits of its sha256) when a
	// hash rule touched the record; "" otherwise. It lets keys rotate: pseudonyms
	// made with different key ids do not join.
	KeyID string
}

// Merge adds o's touches to r, adding up the counts of touches of the same
// path, action and rule, and takes o's KeyID when r has none. The caller merges
// the Results of a record's key, value and headers, so that one
// tributary-policy header (Header) names every policy that touched the record.
func (r *Result) Merge(o Result) {
	for _, t := range o.Touches {
		r.add(t, t.Count, "")
	}
	if r.KeyID == "" {
		r.KeyID = o.KeyID
	}
}

// add counts n changes by touch t (whose Count is ignored) and notes the hash
// key id, if any. r may be nil.
func (r *Result) add(t Touch, n int, keyID string) {
	if r == nil {
		return
	}
	if r.KeyID == "" {
		r.KeyID = keyID
	}
	for i := range r.Touches {
		u := &r.Touches[i]
		if u.Path == t.Path && u.Rule == t.Rule && u.Policy == t.Policy && u.Version == t.Version && u.Action == t.Action {
			u.Count += n
			return
		}
	}
	t.Count = n
	r.Touches = append(r.Touches, t)
}

// Policies returns "<name>@<version>" of the policies that touched the record,
// sorted.
func (r Result) Policies() []string {
	var out []string
	for _, t := range r.Touches {
		if ref := t.Ref(); !slices.Contains(out, ref) {
			out = append(out, ref)
		}
	}
	slices.Sort(out)
	return out
}

// Header is the tributary-policy header value: Policies joined by ","; "" when
// no policy touched the record.
func (r Result) Header() string { return strings.Join(r.Policies(), ",") }

// Option configures Compile and NewCache.
type Option func(*options)

type options struct {
	key   []byte
	check bool // Lint: no key needed, schema problems only
	all   bool // TestRecord without a scope: every policy applies
	// stream is TestRecord's scope (ForStream).
	stream *[2]string
}

// WithHashKey sets the HMAC key of hash rules. Compile fails for a plan with a
// hash rule when no key was given. The caller reads the key (LoadHashKey); the
// plan keeps it only in memory.
func WithHashKey(key []byte) Option {
	return func(o *options) { o.key = slices.Clone(key) }
}

// HashKeyEnv is the environment variable LoadHashKey reads.
const HashKeyEnv = "TRIBUTARY_HASH_KEY"

// MinHashKeyLen is the shortest hash key accepted: 16 bytes (128 bits).
const MinHashKeyLen = 16

// ErrNoHashKey is returned by LoadHashKey when neither a key file nor the
// environment variable gives a key.
var ErrNoHashKey = errors.New("no hash key: set " + HashKeyEnv + " or a key file")

// LoadHashKey returns the hash key from keyFile when it is not "" (one trailing
// newline is ignored), else from the environment variable TRIBUTARY_HASH_KEY
// through getenv (os.Getenv when nil). The key is used as bytes, as given. A
// key file that group or others may read or write is refused.
func LoadHashKey(keyFile string, getenv func(string) string) ([]byte, error) {
	var key []byte
	if keyFile != "" {
		fi, err := os.Stat(keyFile)
		if err != nil {
			return nil, fmt.Errorf("reading hash key: %w", err)
		}
		if mode := fi.Mode().Perm(); mode&0o077 != 0 {
			// Whoever reads the key can reverse pseudonyms of guessable
			// values (emails, card numbers) by hashing candidates.
			return nil, fmt.Errorf("hash key file %s has mode %#o: it must be readable by its owner only (chmod 600 %s)", keyFile, mode, keyFile)
		}
		b, err := os.ReadFile(keyFile)
		if err != nil {
			return nil, fmt.Errorf("reading hash key: %w", err)
		}
		key = []byte(strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r"))
	} else {
		if getenv == nil {
			getenv = os.Getenv
		}
		key = []byte(getenv(HashKeyEnv))
	}
	if len(key) == 0 {
		return nil, ErrNoHashKey
	}
	if len(key) < MinHashKeyLen {
		return nil, fmt.Errorf("hash key is %d bytes; at least %d are required", len(key), MinHashKeyLen)
	}
	return key, nil
}

// KeyID is the key's identifier in Result and the audit trail: the first 8 hex
// digits of sha256(key). It does not reveal the key.
func KeyID(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:4])
}

// Plan is the compiled form of the policies that apply to one stream (pipeline
// and topic) for one writer schema. It walks only the fields some rule touches.
// A Plan is immutable and safe for concurrent use; compile one per (bundle,
// schema id) and reuse it (see Cache).
type Plan struct {
	format   SchemaType
	part     Part
	schemaID int
	root     *pnode
	// raw is the rule for the whole value of a Raw plan, or nil.
	raw *crule
	// touches are the (path, rule) pairs an Avro plan can report, by index.
	touches []Touch
	// static is the violation every record gets (a PII-tagged field no rule
	// covers), or nil.
	static   *Violation
	policies []string
	keyID    string
	hmacs    *sync.Pool
	touching bool
}

// Touches reports whether records need decoding: false when no rule applies to
// any field of the schema and it has no PII-tagged field; such records pass as
// they are.
func (p *Plan) Touches() bool { return p.touching }

// Policies returns "<name>@<version>" of the policies that apply to the plan's
// stream, sorted.
func (p *Plan) Policies() []string { return slices.Clone(p.policies) }

// Apply masks one record's part: MaskAvro for Avro plans, MaskJSON for JSON
// plans, MaskProto for Protobuf plans, and for Raw plans (a key without a schema) the whole key as a string
// (see doc.go). A nil payload is a null key: the output is nil exactly when the
// key is null after masking (a drop rule nulls it), so the caller writes a null
// key then.
func (p *Plan) Apply(payload []byte) ([]byte, Result, error) {
	switch p.format {
	case Protobuf:
		return p.MaskProto(payload)
	case Avro:
		return p.MaskAvro(payload)
	case Raw:
		return p.maskRaw(payload)
	}
	return p.MaskJSON(payload)
}

// hmac returns a pooled HMAC-SHA256 of the plan's key, reset.
func (p *Plan) hmac() hash.Hash {
	h := p.hmacs.Get().(hash.Hash)
	h.Reset()
	return h
}

func newHMACPool(key []byte) *sync.Pool {
	return &sync.Pool{New: func() any { return hmac.New(sha256.New, key) }}
}

// Cache holds compiled plans for one Set at a time, keyed by pipeline, topic and
// schema id (and a Protobuf record's message indexes). It is safe for concurrent use. Compile errors are cached too, so a
// schema that cannot be compiled is not compiled again for every record.
type Cache struct {
	opts    []Option
	mu      sync.Mutex
	set     *Set
	m       map[cacheKey]cached
	headers map[[2]string]cachedHeaders // by pipeline and topic
}

type cacheKey struct {
	pipeline, topic string
	part            Part
	typ             SchemaType
	id              int
	text            string // only when id is 0 (no registry)
	indexes         string // Protobuf message indexes
}

type cached struct {
	plan *Plan
	err  error
}

// NewCache returns an empty cache whose plans are compiled with opts.
func NewCache(opts ...Option) *Cache {
	return &Cache{opts: opts, m: map[cacheKey]cached{}, headers: map[[2]string]cachedHeaders{}}
}

// Plan returns the plan for the values of set's stream written with schema,
// compiling it on first use. Plans of a previous Set are dropped when set
// changes. Plan is PlanPart for Value.
func (c *Cache) Plan(set *Set, pipeline, topic string, schema Schema) (*Plan, error) {
	return c.PlanPart(set, pipeline, topic, Value, schema)
}

// reset drops the plans of another Set than set. c.mu is held.
func (c *Cache) reset(set *Set) {
	if c.set != set {
		c.set, c.m, c.headers = set, map[cacheKey]cached{}, map[[2]string]cachedHeaders{}
	}
}
