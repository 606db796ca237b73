package registry

import (
	"fmt"
	"strings"
)

// Level is a Confluent compatibility level.
type Level string

// Compatibility levels. Backward is the registry's default.
const (
	None               Level = "NONE"
	Backward           Level = "BACKWARD"
	BackwardTransitive Level = "BACKWARD_TRANSITIVE"
	Forward            Level = "FORWARD"
	ForwardTransitive  Level = "FORWARD_TRANSITIVE"
	Full               Level = "FULL"
	FullTransitive     Level = "FULL_TRANSITIVE"
)

// Levels lists all compatibility levels.
var Levels = []Level{None, Backward, BackwardTransitive, Forward, ForwardTransitive, Full, FullTransitive}

// ParseLevel parses a compatibility level, ignoring case.
func ParseLevel(s string) (Level, error) {
	l := Level(strings.ToUpper(strings.TrimSpace(s)))
	for _, v := range Levels {
		if l == v {
			return l, nil
		}
	}
	return "", fmt.Errorf("invalid compatibility level %q: valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive", s)
}

// Transitive reports whether the level checks against all previous versions
// rather than only the latest.
func (l Level) Transitive() bool {
	return l == BackwardTransitive || l == ForwardTransitive || l == FullTransitive
}

// backward: the new schema must read data written with the old one.
func (l Level) backward() bool {
	return l == Backward || l == BackwardTransitive || l == Full || l == FullTransitive
}

// forward: the old schema must read data written with the new one.
func (l Level) forward() bool {
	return l == Forward || l == ForwardTransitive || l == Full || l == FullTransitive
}

// incompat is one reason two schemas are incompatible.
type incompat struct {
	kind string // errorType, e.g. READER_FIELD_MISSING_DEFAULT_VALUE
	path string // location in the schema document, a JSON pointer
	desc string // human description naming the field path
	info string // additionalInfo: the field, symbol or type concerned
}

// String formats the incompatibility the way Confluent's verbose messages do.
func (i incompat) String() string {
	return fmt.Sprintf("{errorType:'%s', description:'%s', additionalInfo:'%s'}", i.kind, i.desc, i.info)
}

// versioned is a registered version a candidate is checked against.
type versioned struct {
	version int
	p       *parsed
}

// compatMessages checks cand against prev (oldest first, soft-deleted versions
// already left out) under level and returns Confluent-style verbose messages,
// empty when compatible. Non-transitive levels look at the latest version only;
// transitive ones at all, newest first, stopping at the first that fails.
func compatMessages(level Level, cand *parsed, prev []versioned) []string {
	if level == None || len(prev) == 0 {
		return nil
	}
	against := prev
	if !level.Transitive() {
		against = prev[len(prev)-1:]
	}
	for i := len(against) - 1; i >= 0; i-- {
		old := against[i]
		var found []incompat
		if level.backward() {
			found = append(found, pairCheck(cand, old.p, "new", "old")...)
		}
		if level.forward() {
			found = append(found, pairCheck(old.p, cand, "old", "new")...)
		}
		if len(found) == 0 {
			continue
		}
		msgs := make([]string, 0, len(found)+3)
		for _, f := range found {
			msgs = append(msgs, f.String())
		}
		return append(msgs,
			fmt.Sprintf("{oldSchemaVersion: %d}", old.version),
			fmt.Sprintf("{oldSchema: '%s'}", old.p.text),
			fmt.Sprintf("{compatibility: '%s'}", level))
	}
	return nil
}

// pairCheck reports why data written with writer cannot be read with reader.
// rl and wl name the two schemas in messages ("new", "old").
func pairCheck(reader, writer *parsed, rl, wl string) []incompat {
	if reader.typ != writer.typ {
		return []incompat{{kind: "SCHEMA_TYPE_CHANGED", path: "/",
			desc: fmt.Sprintf("The %s schema is of type %s but the %s schema is of type %s", rl, reader.typ, wl, writer.typ),
			info: string(reader.typ)}}
	}
	switch reader.typ {
	case Avro:
		c := &avroChecker{rl: rl, wl: wl, inProgress: map[[2]any]bool{}}
		found := c.check(reader.avro, writer.avro, "", "")
		if reader.mangled || writer.mangled {
			for i := range found {
				found[i].desc, found[i].info = demangle(found[i].desc), demangle(found[i].info)
			}
		}
		return found
	case JSON:
		c := &jsonChecker{rl: rl, wl: wl, r: reader.json, w: writer.json, inProgress: map[[2]string]bool{}}
		return c.check(reader.json.root, writer.json.root, "#", "#", "#")
	case Protobuf:
		// Protobuf rules are stated as changes from an original to an update;
		// the writer is the original.
		return protoDiff(writer.proto, reader.proto, wl, rl)
	}
	return nil
}
