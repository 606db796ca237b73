package policy

// Part is the part of a Kafka record a Plan is compiled for. The key and the
// value of a record have schemas of their own (or none), so each gets its own
// plan; headers get a HeaderPlan.
type Part uint8

const (
	// Value is the record's value (the Pub/Sub message data): field and tag
	// rules apply. It is the zero Part.
	Value Part = iota
	// Key is the record's key: key and tag rules apply. Paths in Touch and
	// Violation start with "key" ("key.customer_id"; "key" for the whole key).
	Key
)

// String returns "value" or "key".
func (p Part) String() string {
	if p == Key {
		return "key"
	}
	return "value"
}

// appliesTo reports whether rule r takes part in plans for part: field rules
// in value plans, key rules in key plans, tag rules alone in both; header
// rules in neither (see HeaderPlan).
func (r *Rule) appliesTo(part Part) bool {
	m := r.Match
	switch {
	case m.Header != "":
		return false
	case m.Key != "":
		return part == Key
	case m.Field != "":
		return part == Value
	}
	return m.Tag != ""
}

// tagOnly reports whether the rule matches by tag alone.
func (r *Rule) tagOnly() bool {
	return r.Match.Field == "" && r.Match.Key == "" && r.Match.Header == "" && r.Match.Tag != ""
}

// PlanPart is Plan for one part of the record (see CompilePart); Plan(...) is
// PlanPart(..., Value, ...).
func (c *Cache) PlanPart(set *Set, pipeline, topic string, part Part, schema Schema) (*Plan, error) {
	k := cacheKey{pipeline: pipeline, topic: topic, part: part, typ: schema.Type, id: schema.ID}
	if schema.ID == 0 {
		k.text = schema.Text
	}
	if schema.Type == Protobuf {
		k.indexes = protoIndexKey(schema.ProtoIndexes)
	}
	c.mu.Lock()
	c.reset(set)
	e, ok := c.m[k]
	c.mu.Unlock()
	if ok {
		return e.plan, e.err
	}
	p, err := CompilePart(set, pipeline, topic, part, schema, c.opts...)
	c.mu.Lock()
	if c.set == set {
		c.m[k] = cached{p, err}
	}
	c.mu.Unlock()
	return p, err
}
