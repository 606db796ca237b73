package protoschema

import (
	"fmt"
	"strings"
)

// Ref is a schema a Protobuf schema references: the name its import
// statement uses ("acme/money.proto") and its text, in either form.
type Ref struct {
	Name string
	Text string
}

// Load reads a schema and its references with DefaultLimits and links them.
func Load(name, text string, refs []Ref) (*File, error) {
	return DefaultLimits().Load(name, text, refs)
}

// Load reads a schema (.proto text or base64 descriptor) and the schemas it
// references, each once, and resolves every type name (Link, strict). Imports
// resolve by name to refs, then to the well-known files a Schema Registry
// knows without references (google/protobuf/timestamp.proto,
// confluent/meta.proto...). Refs without a name are visible to every import.
// A type name that resolves nowhere is an error: a masking plan cannot walk a
// message it does not know.
func (l Limits) Load(name, text string, refs []Ref) (*File, error) {
	l = l.withDefaults()
	if len(refs) > l.MaxRefs {
		return nil, limitErr("%d references, more than %d", len(refs), l.MaxRefs)
	}
	main, err := l.ParseSchema(name, text)
	if err != nil {
		return nil, err
	}
	var deps []*File
	seen := map[string]bool{}
	for i, r := range refs {
		key := r.Name
		if key == "" {
			key = "\x00" + r.Text
		}
		if seen[key] {
			continue // a diamond: the same file reached twice
		}
		seen[key] = true
		f, err := l.ParseSchema(r.Name, r.Text)
		if err != nil {
			return nil, fmt.Errorf("reference %d (%q): %w", i, r.Name, err)
		}
		if r.Name != "" {
			f.Name = r.Name
		}
		deps = append(deps, f)
	}
	if err := l.Link(main, deps, true); err != nil {
		return nil, err
	}
	return main, nil
}

// Link resolves the type names of main and deps against each other and the
// well-known files their imports name (parsed afresh: linking writes into
// the files). Types resolve by protobuf's scoping rules, innermost scope
// first. With strict, a name that resolves nowhere is an error; otherwise it
// stays as written (the registry compares schemas whose imports it cannot
// see).
func (l Limits) Link(main *File, deps []*File, strict bool) error {
	l = l.withDefaults()
	files := append([]*File{main}, deps...)
	have := map[string]bool{}
	for _, f := range files {
		if f.Name != "" {
			have[f.Name] = true
		}
	}
	// Well-known imports not given as references, transitively.
	for i := 0; i < len(files); i++ {
		for _, imp := range files[i].Imports {
			if have[imp.Path] {
				continue
			}
			text, ok := wellKnown[imp.Path]
			if !ok {
				continue
			}
			have[imp.Path] = true
			wk, err := l.Parse(imp.Path, text)
			if err != nil {
				return fmt.Errorf("well-known file %s: %w", imp.Path, err) // cannot happen: tested
			}
			files = append(files, wk)
		}
	}
	if len(files) > l.MaxRefs+1+len(wellKnown) {
		return limitErr("%d files, more than %d", len(files), l.MaxRefs+1)
	}
	syms := map[string]any{}
	for _, f := range files {
		f.index()
		for full, d := range f.byName {
			if _, dup := syms[full]; !dup {
				syms[full] = d
			}
		}
	}
	lk := linker{syms: syms, strict: strict}
	for _, f := range files {
		for _, x := range f.Extensions {
			if err := lk.field(x, f.Package); err != nil {
				return err
			}
		}
		var err error
		f.walkMessages(func(m *Message) {
			if err != nil {
				return
			}
			for _, fd := range m.Fields {
				if err = lk.field(fd, m.FullName); err != nil {
					return
				}
			}
			for _, x := range m.Extensions {
				if err = lk.field(x, m.FullName); err != nil {
					return
				}
			}
		})
		if err != nil {
			return err
		}
		for _, s := range f.Services {
			for i := range s.Methods {
				mt := &s.Methods[i]
				mt.Input = lk.name(f.Package, mt.Input)
				mt.Output = lk.name(f.Package, mt.Output)
			}
		}
	}
	return nil
}

type linker struct {
	syms   map[string]any
	strict bool
}

// lookup resolves name from scope: a leading dot means fully qualified;
// otherwise the innermost enclosing scope that has it wins.
func (lk *linker) lookup(scope, name string) (string, any) {
	if strings.HasPrefix(name, ".") {
		full := name[1:]
		return full, lk.syms[full]
	}
	for s := scope; ; {
		cand := qualify(s, name)
		if d, ok := lk.syms[cand]; ok {
			return cand, d
		}
		if s == "" {
			return name, nil
		}
		if i := strings.LastIndexByte(s, '.'); i >= 0 {
			s = s[:i]
		} else {
			s = ""
		}
	}
}

// name resolves a type name for display and comparison: the full name with
// a leading dot when found, else as written without one.
func (lk *linker) name(scope, name string) string {
	full, d := lk.lookup(scope, name)
	if d == nil {
		return strings.TrimPrefix(name, ".")
	}
	return "." + full
}

func (lk *linker) field(fd *Field, scope string) error {
	if fd.Extendee != "" {
		fd.Extendee = lk.name(scope, fd.Extendee)
	}
	if fd.Kind.Scalar() {
		return nil
	}
	full, d := lk.lookup(scope, fd.TypeName)
	switch d := d.(type) {
	case *Message:
		if fd.Kind == EnumK {
			return fmt.Errorf("field %s.%s: %s is a message, not an enum", scope, fd.Name, full)
		}
		if fd.Kind == Named {
			fd.Kind = MessageK
		}
		fd.Message, fd.TypeName = d, "."+full
	case *Enum:
		if fd.Kind == MessageK || fd.Kind == Group {
			return fmt.Errorf("field %s.%s: %s is an enum, not a message", scope, fd.Name, full)
		}
		fd.Kind, fd.Enum, fd.TypeName = EnumK, d, "."+full
	default:
		if lk.strict {
			return fmt.Errorf("field %s.%s: type %s is not defined in the schema or its references", scope, fd.Name, strings.TrimPrefix(fd.TypeName, "."))
		}
	}
	return nil
}

// MessageAt returns the message Confluent's wire-format message indexes
// select: [] or [0] the first top-level message, [1 0] the first message
// nested in the second, and so on.
//
// Confluent's clients disagree on one point: protoc's descriptors (which the
// Go, Python and .NET serializers count in) hold a nested entry type for
// every map field, among the nested messages, while the Java serializer's
// text model has none. MessageAt reads the path both ways. A reading that
// runs out of range or lands on a map entry type (never a record's type) is
// dropped; when the two readings select different messages, MessageAt
// refuses the path rather than guess: masking a record with another
// message's rules would let its fields through unseen.
func (f *File) MessageAt(indexes []int) (*Message, error) {
	if len(indexes) == 0 {
		indexes = []int{0}
	}
	withEntries, errA := walkIndexes(f.Messages, indexes, true)
	without, errB := walkIndexes(f.Messages, indexes, false)
	if errA == nil && withEntries.MapEntry {
		errA = fmt.Errorf("message indexes %v select the map entry type %s", indexes, withEntries.FullName)
	}
	switch {
	case errA != nil && errB != nil:
		return nil, errA
	case errA != nil:
		return without, nil
	case errB != nil || withEntries == without:
		return withEntries, nil
	}
	return nil, fmt.Errorf("message indexes %v are ambiguous: %s when map entry types count, %s when they do not",
		indexes, withEntries.FullName, without.FullName)
}

func walkIndexes(top []*Message, indexes []int, entries bool) (*Message, error) {
	list := top
	var m *Message
	for depth, i := range indexes {
		var cand []*Message
		for _, x := range list {
			if entries || !x.MapEntry {
				cand = append(cand, x)
			}
		}
		if i < 0 || i >= len(cand) {
			return nil, fmt.Errorf("message index %d at depth %d is out of range (%d messages)", i, depth, len(cand))
		}
		m = cand[i]
		list = m.Messages
	}
	return m, nil
}

// Message returns the message of the file with the given full name (with
// or without a leading dot), or nil.
func (f *File) Message(full string) *Message {
	m, _ := f.Lookup(full).(*Message)
	return m
}
