package protoschema

import (
	"fmt"
	"strconv"
	"strings"
)

// Parse reads .proto text with DefaultLimits. name is the file's name, as
// imports would write it; it may be "".
func Parse(name, text string) (*File, error) { return DefaultLimits().Parse(name, text) }

// Parse reads .proto text: syntax, edition, package, imports, options,
// messages (nested), fields with their labels, types and options, maps,
// groups, oneofs, enums, reserved and extension ranges, extend blocks and
// services. Types are not resolved (see Load). Errors carry line:col.
func (l Limits) Parse(name, text string) (*File, error) {
	l = l.withDefaults()
	if len(text) > l.MaxBytes {
		return nil, limitErr("schema is %d bytes, more than %d", len(text), l.MaxBytes)
	}
	toks, err := lex(text, l)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks, lim: l, f: &File{Name: name, Syntax: "proto2"}}
	if err := p.file(); err != nil {
		return nil, err
	}
	p.f.index()
	if err := p.f.validate(l); err != nil {
		return nil, err
	}
	return p.f, nil
}

type parser struct {
	toks  []token
	pos   int
	f     *File
	lim   Limits
	depth int
}

func (p *parser) peek() token {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	t := token{}
	if n := len(p.toks); n > 0 {
		t.line, t.col = p.toks[n-1].line, p.toks[n-1].col+len(p.toks[n-1].s)
	} else {
		t.line, t.col = 1, 1
	}
	return t
}

func (p *parser) next() token {
	t := p.peek()
	if p.pos < len(p.toks) {
		p.pos++
	}
	return t
}

func (p *parser) errf(t token, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if t.kind == 0 {
		return fmt.Errorf("%d:%d: unexpected end of input: %s", t.line, t.col, msg)
	}
	return fmt.Errorf("%d:%d: at %q: %s", t.line, t.col, t.s, msg)
}

// is reports whether t is the punctuation or keyword s (not a string).
func (t token) is(s string) bool { return t.s == s && t.kind != 's' && t.kind != 0 }

func (p *parser) expect(s string) error {
	if t := p.next(); !t.is(s) {
		return p.errf(t, "expected %q", s)
	}
	return nil
}

func (p *parser) ident() (string, error) {
	t := p.next()
	if t.kind != 'i' {
		return "", p.errf(t, "expected an identifier")
	}
	return t.s, nil
}

// simpleName reads a declaration's name: an identifier without dots.
func (p *parser) simpleName() (string, error) {
	t := p.next()
	if t.kind != 'i' || strings.Contains(t.s, ".") {
		return "", p.errf(t, "expected a name")
	}
	return t.s, nil
}

func (p *parser) str() (string, error) {
	t := p.next()
	if t.kind != 's' {
		return "", p.errf(t, "expected a string")
	}
	s, err := unquote(t.s)
	if err != nil {
		return "", p.errf(t, "%v", err)
	}
	// Adjacent strings concatenate.
	for p.peek().kind == 's' {
		t = p.next()
		more, err := unquote(t.s)
		if err != nil {
			return "", p.errf(t, "%v", err)
		}
		s += more
	}
	return s, nil
}

func (p *parser) enter(t token) error {
	p.depth++
	if p.depth > p.lim.MaxDepth {
		return limitErr("%d:%d: nested deeper than %d levels", t.line, t.col, p.lim.MaxDepth)
	}
	return nil
}

func (p *parser) checkName(t token, full string) error {
	if len(full) > p.lim.MaxNameLen {
		return limitErr("%d:%d: the full name of %s is longer than %d bytes", t.line, t.col, t.s, p.lim.MaxNameLen)
	}
	return nil
}

func (p *parser) file() error {
	f := p.f
	sawPackage := false
	for first := true; p.peek().kind != 0; first = false {
		t := p.next()
		if t.is(";") {
			continue
		}
		if t.kind != 'i' {
			return p.errf(t, "expected a declaration")
		}
		switch t.s {
		case "syntax", "edition":
			if !first {
				return p.errf(t, "%s must come first", t.s)
			}
			if err := p.expect("="); err != nil {
				return err
			}
			vt := p.peek()
			s, err := p.str()
			if err != nil {
				return err
			}
			if t.s == "syntax" {
				if s != "proto2" && s != "proto3" {
					return p.errf(vt, "unknown syntax %q", s)
				}
				f.Syntax = s
			} else {
				if _, ok := editionNumbers[s]; !ok {
					return p.errf(vt, "unknown edition %q", s)
				}
				f.Syntax, f.Edition = "editions", s
			}
			if err := p.expect(";"); err != nil {
				return err
			}
		case "package":
			name, err := p.ident()
			if err != nil {
				return err
			}
			if sawPackage {
				return p.errf(t, "duplicate package")
			}
			sawPackage = true
			f.Package = strings.TrimPrefix(name, ".")
			if err := p.expect(";"); err != nil {
				return err
			}
		case "import":
			imp := Import{}
			if v := p.peek(); v.kind == 'i' && (v.s == "public" || v.s == "weak") {
				p.next()
				imp.Public, imp.Weak = v.s == "public", v.s == "weak"
			}
			s, err := p.str()
			if err != nil {
				return err
			}
			imp.Path = s
			f.Imports = append(f.Imports, imp)
			if err := p.expect(";"); err != nil {
				return err
			}
		case "option":
			o, err := p.optionStmt(fileOptions)
			if err != nil {
				return err
			}
			f.Options = append(f.Options, o)
		case "message":
			m, err := p.message(f.Package, t)
			if err != nil {
				return err
			}
			f.Messages = append(f.Messages, m)
		case "enum":
			e, err := p.enum(f.Package)
			if err != nil {
				return err
			}
			f.Enums = append(f.Enums, e)
		case "service":
			s, err := p.service()
			if err != nil {
				return err
			}
			f.Services = append(f.Services, s)
		case "extend":
			xs, err := p.extend(f.Package, nil)
			if err != nil {
				return err
			}
			f.Extensions = append(f.Extensions, xs...)
		default:
			return p.errf(t, "unknown declaration")
		}
	}
	f.Options = mergeOptions(f.Options, fileOptions)
	f.Tags = metaTags(f.Options, "(confluent.file_meta)")
	return nil
}

// optionStmt reads "NAME = VALUE ;" after the option keyword.
func (p *parser) optionStmt(m *optMsg) (Option, error) {
	o, err := p.optionAssign(m)
	if err != nil {
		return Option{}, err
	}
	return o, p.expect(";")
}

// optionAssign reads "NAME = VALUE": a name such as java_package,
// (confluent.field_meta) or (confluent.field_meta).tags, and a value.
func (p *parser) optionAssign(m *optMsg) (Option, error) {
	start := p.peek()
	var parts []string
	for {
		t := p.next()
		switch {
		case t.is("("):
			name, err := p.ident()
			if err != nil {
				return Option{}, err
			}
			if err := p.expect(")"); err != nil {
				return Option{}, err
			}
			parts = append(parts, extName(name))
		case t.kind == 'i':
			for _, s := range strings.Split(strings.TrimPrefix(t.s, "."), ".") {
				if s == "" {
					return Option{}, p.errf(t, "invalid option name")
				}
				parts = append(parts, s)
			}
		default:
			return Option{}, p.errf(t, "expected an option name")
		}
		n := p.peek()
		if n.is(".") {
			p.next()
			continue
		}
		if n.kind == 'i' && strings.HasPrefix(n.s, ".") {
			continue
		}
		break
	}
	if err := p.expect("="); err != nil {
		return Option{}, err
	}
	v, err := p.value()
	if err != nil {
		return Option{}, err
	}
	for i := len(parts) - 1; i >= 1; i-- {
		v = Value{Kind: MessageValue, Fields: []Option{{Name: parts[i], Value: v}}}
	}
	o := Option{Name: parts[0], Value: v}
	if err := checkOption(mergeOptions([]Option{o}, m)[0], m); err != nil {
		return Option{}, p.errf(start, "%v", err)
	}
	return o, nil
}

// value reads an option value: a string, a number, an identifier, or a
// message in text format ({ ... }).
func (p *parser) value() (Value, error) {
	t := p.peek()
	switch {
	case t.kind == 's':
		s, err := p.str()
		return Value{Kind: StringValue, Text: s}, err
	case t.is("-") || t.is("+"):
		p.next()
		n := p.next()
		neg := t.s == "-"
		if n.kind == 'i' && (n.s == "inf" || n.s == "infinity" || n.s == "nan") {
			s := n.s
			if s == "infinity" {
				s = "inf"
			}
			if neg && s == "inf" {
				s = "-inf"
			}
			return Value{Kind: IdentValue, Text: s}, nil
		}
		if n.kind != 'n' {
			return Value{}, p.errf(n, "expected a number")
		}
		s, err := normNumber(n.s, neg)
		if err != nil {
			return Value{}, p.errf(n, "%v", err)
		}
		return Value{Kind: NumberValue, Text: s}, nil
	case t.kind == 'n':
		p.next()
		s, err := normNumber(t.s, false)
		if err != nil {
			return Value{}, p.errf(t, "%v", err)
		}
		return Value{Kind: NumberValue, Text: s}, nil
	case t.kind == 'i':
		p.next()
		s := t.s
		if s == "infinity" {
			s = "inf"
		}
		return Value{Kind: IdentValue, Text: s}, nil
	case t.is("{") || t.is("<"):
		return p.aggregate()
	}
	p.next()
	return Value{}, p.errf(t, "expected an option value")
}

// aggregate reads a message value in protobuf text format.
func (p *parser) aggregate() (Value, error) {
	open := p.next()
	if err := p.enter(open); err != nil {
		return Value{}, err
	}
	defer func() { p.depth-- }()
	closer := "}"
	if open.s == "<" {
		closer = ">"
	}
	v := Value{Kind: MessageValue}
	for {
		t := p.peek()
		switch {
		case t.is(closer):
			p.next()
			return v, nil
		case t.is(",") || t.is(";"):
			p.next()
			continue
		case t.kind == 0:
			return Value{}, p.errf(t, "missing %q", closer)
		}
		var name string
		if t.is("[") {
			p.next()
			n, err := p.ident()
			if err != nil {
				return Value{}, err
			}
			if p.peek().is("/") { // an Any's type URL
				for !p.peek().is("]") && p.peek().kind != 0 {
					n += p.next().s
				}
			}
			if err := p.expect("]"); err != nil {
				return Value{}, err
			}
			name = extName(n)
		} else {
			n, err := p.simpleName()
			if err != nil {
				return Value{}, err
			}
			name = n
		}
		colon := false
		if p.peek().is(":") {
			p.next()
			colon = true
		}
		if p.peek().is("[") {
			if !colon {
				return Value{}, p.errf(p.peek(), "expected \":\" before a list")
			}
			p.next()
			for !p.peek().is("]") {
				if p.peek().kind == 0 {
					return Value{}, p.errf(p.peek(), "missing \"]\"")
				}
				el, err := p.value()
				if err != nil {
					return Value{}, err
				}
				v.Fields = append(v.Fields, Option{Name: name, Value: el})
				if p.peek().is(",") {
					p.next()
				} else if !p.peek().is("]") {
					return Value{}, p.errf(p.peek(), "expected \",\" or \"]\"")
				}
			}
			p.next()
			continue
		}
		if !colon && !p.peek().is("{") && !p.peek().is("<") {
			return Value{}, p.errf(p.peek(), "expected \":\"")
		}
		el, err := p.value()
		if err != nil {
			return Value{}, err
		}
		v.Fields = append(v.Fields, Option{Name: name, Value: el})
	}
}

func (p *parser) message(scope string, kw token) (*Message, error) {
	if err := p.enter(kw); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	nt := p.peek()
	name, err := p.simpleName()
	if err != nil {
		return nil, err
	}
	m := &Message{Name: name, FullName: qualify(scope, name)}
	if err := p.checkName(nt, m.FullName); err != nil {
		return nil, err
	}
	if err := p.expect("{"); err != nil {
		return nil, err
	}
	if err := p.body(m, -1); err != nil {
		return nil, err
	}
	p.finishMessage(m)
	return m, nil
}

// finishMessage merges the message's options, reads its tags and adds the
// synthetic oneofs of proto3 optional fields, after the real ones as protoc
// does.
func (p *parser) finishMessage(m *Message) {
	m.Options = mergeOptions(m.Options, messageOptions)
	m.Tags = metaTags(m.Options, "(confluent.message_meta)")
	for _, f := range m.Fields {
		if f.Proto3Optional {
			f.Oneof = len(m.Oneofs)
			m.Oneofs = append(m.Oneofs, &Oneof{Name: "_" + f.Name, Synthetic: true})
		}
	}
}

// body reads a message's declarations (oneof < 0) or a oneof's members up to
// the closing brace.
func (p *parser) body(m *Message, oneof int) error {
	for {
		t := p.peek()
		if t.kind == 0 {
			return p.errf(t, "missing \"}\"")
		}
		if t.is("}") {
			p.next()
			return nil
		}
		if t.is(";") {
			p.next()
			continue
		}
		if t.kind != 'i' {
			return p.errf(t, "expected a field or declaration")
		}
		switch t.s {
		case "option":
			p.next()
			if oneof >= 0 {
				o, err := p.optionStmt(oneofOptions)
				if err != nil {
					return err
				}
				m.Oneofs[oneof].Options = append(m.Oneofs[oneof].Options, o)
				continue
			}
			o, err := p.optionStmt(messageOptions)
			if err != nil {
				return err
			}
			m.Options = append(m.Options, o)
			continue
		case "reserved":
			if oneof >= 0 {
				break
			}
			p.next()
			rs, names, err := p.ranges(true, maxFieldNumber)
			if err != nil {
				return err
			}
			m.ReservedRanges = append(m.ReservedRanges, rs...)
			m.ReservedNames = append(m.ReservedNames, names...)
			continue
		case "extensions":
			if oneof >= 0 {
				break
			}
			p.next()
			rs, _, err := p.ranges(false, maxFieldNumber)
			if err != nil {
				return err
			}
			m.ExtensionRanges = append(m.ExtensionRanges, rs...)
			continue
		case "message":
			if oneof >= 0 {
				break
			}
			p.next()
			sub, err := p.message(m.FullName, t)
			if err != nil {
				return err
			}
			m.Messages = append(m.Messages, sub)
			continue
		case "enum":
			if oneof >= 0 {
				break
			}
			p.next()
			e, err := p.enum(m.FullName)
			if err != nil {
				return err
			}
			m.Enums = append(m.Enums, e)
			continue
		case "extend":
			if oneof >= 0 {
				break
			}
			p.next()
			xs, err := p.extend(m.FullName, m)
			if err != nil {
				return err
			}
			m.Extensions = append(m.Extensions, xs...)
			continue
		case "oneof":
			if oneof >= 0 {
				break
			}
			p.next()
			name, err := p.simpleName()
			if err != nil {
				return err
			}
			if err := p.expect("{"); err != nil {
				return err
			}
			m.Oneofs = append(m.Oneofs, &Oneof{Name: name})
			if err := p.enter(t); err != nil {
				return err
			}
			err = p.body(m, len(m.Oneofs)-1)
			p.depth--
			if err != nil {
				return err
			}
			o := m.Oneofs[len(m.Oneofs)-1]
			o.Options = mergeOptions(o.Options, oneofOptions)
			continue
		}
		f, err := p.field(m, m.FullName, oneof)
		if err != nil {
			return err
		}
		m.Fields = append(m.Fields, f)
	}
}

// ranges reads "reserved" or "extensions" ranges up to ';': numbers, "a to
// b", "a to max", or (reserved only) quoted or bare names.
func (p *parser) ranges(names bool, max int32) ([]Range, []string, error) {
	var rs []Range
	var ns []string
	for {
		t := p.peek()
		switch {
		case names && t.kind == 's':
			s, err := p.str()
			if err != nil {
				return nil, nil, err
			}
			ns = append(ns, s)
		case names && t.kind == 'i' && !strings.Contains(t.s, "."):
			p.next()
			ns = append(ns, t.s)
		default:
			lo, err := p.rangeNumber(0)
			if err != nil {
				return nil, nil, err
			}
			hi := lo
			if p.peek().is("to") {
				p.next()
				if hi, err = p.rangeNumber(max); err != nil {
					return nil, nil, err
				}
			}
			if hi < lo {
				return nil, nil, p.errf(t, "range end before its start")
			}
			rs = append(rs, Range{lo, hi})
		}
		n := p.next()
		if n.is(",") {
			continue
		}
		if n.is("[") {
			p.pos--
			if err := p.skipBrackets(); err != nil {
				return nil, nil, err
			}
			n = p.next()
		}
		if n.is(";") {
			return rs, ns, nil
		}
		return nil, nil, p.errf(n, "expected \",\" or \";\"")
	}
}

// rangeNumber reads a number of a range, or "max" (standing for max) when
// max is not 0.
func (p *parser) rangeNumber(max int32) (int32, error) {
	t := p.next()
	if max != 0 && t.is("max") {
		return max, nil
	}
	neg := false
	if t.is("-") {
		neg = true
		t = p.next()
	}
	if t.kind != 'n' {
		return 0, p.errf(t, "expected a number")
	}
	n, err := strconv.ParseInt(t.s, 0, 64)
	if neg {
		n = -n
	}
	if err != nil || n < -1<<31 || n > 1<<31-1 {
		return 0, p.errf(t, "number out of range")
	}
	return int32(n), nil
}

// skipBrackets skips a balanced [ ... ]; the '[' is next.
func (p *parser) skipBrackets() error {
	depth := 0
	for {
		t := p.next()
		switch {
		case t.kind == 0:
			return p.errf(t, "missing \"]\"")
		case t.is("["):
			depth++
			if depth > p.lim.MaxDepth {
				return limitErr("%d:%d: brackets nested deeper than %d levels", t.line, t.col, p.lim.MaxDepth)
			}
		case t.is("]"):
			depth--
			if depth == 0 {
				return nil
			}
		}
	}
}

func (p *parser) field(m *Message, scope string, oneof int) (*Field, error) {
	f := &Field{Label: Optional, Oneof: oneof}
	t := p.next()
	explicit := ""
	if t.kind == 'i' && (t.s == "optional" || t.s == "required" || t.s == "repeated") {
		if oneof >= 0 {
			return nil, p.errf(t, "oneof fields have no label")
		}
		explicit = t.s
		t = p.next()
	}
	switch explicit {
	case "required":
		f.Label = Required
		if p.f.Syntax == "proto3" {
			return nil, p.errf(t, "required fields are not allowed in proto3")
		}
	case "repeated":
		f.Label = Repeated
	case "optional":
		f.Proto3Optional = p.f.Syntax == "proto3"
	}
	if t.kind != 'i' {
		return nil, p.errf(t, "expected a field type")
	}
	switch {
	case t.s == "map" && p.peek().is("<"):
		if explicit != "" || oneof >= 0 {
			return nil, p.errf(t, "map fields have no label and cannot be in a oneof")
		}
		return p.mapField(m, scope, f)
	case t.s == "group" && p.peek().kind == 'i' && !p.peek().is("="):
		return p.group(m, scope, f, t)
	}
	if k, ok := scalarNames[t.s]; ok {
		f.Kind = k
	} else {
		f.Kind, f.TypeName = Named, t.s
	}
	nt := p.peek()
	name, err := p.simpleName()
	if err != nil {
		return nil, err
	}
	f.Name = name
	if err := p.checkName(nt, qualify(scope, name)); err != nil {
		return nil, err
	}
	if err := p.expect("="); err != nil {
		return nil, err
	}
	if f.Number, err = p.fieldNumber(); err != nil {
		return nil, err
	}
	if err := p.fieldOptions(f); err != nil {
		return nil, err
	}
	return f, p.expect(";")
}

// entryName is the name protoc gives a map field's entry type:
// "attrs_by_id" becomes "AttrsByIdEntry".
func entryName(field string) string {
	var b strings.Builder
	up := true
	for i := 0; i < len(field); i++ {
		c := field[i]
		switch {
		case c == '_':
			up = true
		case up:
			b.WriteString(strings.ToUpper(string(c)))
			up = false
		default:
			b.WriteByte(c)
		}
	}
	return b.String() + "Entry"
}

func (p *parser) mapField(m *Message, scope string, f *Field) (*Field, error) {
	p.next() // <
	kt := p.next()
	kk, ok := scalarNames[kt.s]
	if !ok || kk == Double || kk == Float || kk == Bytes {
		return nil, p.errf(kt, "map keys must be an integer type, bool or string")
	}
	if err := p.expect(","); err != nil {
		return nil, err
	}
	vt, err := p.ident()
	if err != nil {
		return nil, err
	}
	if err := p.expect(">"); err != nil {
		return nil, err
	}
	nt := p.peek()
	name, err := p.simpleName()
	if err != nil {
		return nil, err
	}
	if err := p.checkName(nt, qualify(scope, name)); err != nil {
		return nil, err
	}
	f.Name, f.Label, f.Kind = name, Repeated, MessageK
	if err := p.expect("="); err != nil {
		return nil, err
	}
	if f.Number, err = p.fieldNumber(); err != nil {
		return nil, err
	}
	if err := p.fieldOptions(f); err != nil {
		return nil, err
	}
	entry := &Message{Name: entryName(name), FullName: qualify(scope, entryName(name)), MapEntry: true,
		Options: []Option{{Name: "map_entry", Value: Value{Kind: IdentValue, Text: "true"}}}}
	key := &Field{Name: "key", Number: 1, Label: Optional, Kind: kk, Oneof: -1}
	val := &Field{Name: "value", Number: 2, Label: Optional, Oneof: -1}
	if k, ok := scalarNames[vt]; ok {
		val.Kind = k
	} else {
		val.Kind, val.TypeName = Named, vt
	}
	entry.Fields = []*Field{key, val}
	f.TypeName = entry.Name
	if m != nil {
		m.Messages = append(m.Messages, entry)
	}
	return f, p.expect(";")
}

// group reads a proto2 group: a field and the nested message it declares.
func (p *parser) group(m *Message, scope string, f *Field, kw token) (*Field, error) {
	nt := p.peek()
	name, err := p.simpleName()
	if err != nil {
		return nil, err
	}
	if name[0] < 'A' || name[0] > 'Z' {
		return nil, p.errf(nt, "group names must start with a capital letter")
	}
	f.Name, f.Kind, f.TypeName = strings.ToLower(name), Group, name
	if err := p.expect("="); err != nil {
		return nil, err
	}
	if f.Number, err = p.fieldNumber(); err != nil {
		return nil, err
	}
	if err := p.fieldOptions(f); err != nil {
		return nil, err
	}
	if err := p.expect("{"); err != nil {
		return nil, err
	}
	if err := p.enter(kw); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	g := &Message{Name: name, FullName: qualify(scope, name)}
	if err := p.checkName(nt, g.FullName); err != nil {
		return nil, err
	}
	if err := p.body(g, -1); err != nil {
		return nil, err
	}
	p.finishMessage(g)
	if m != nil {
		m.Messages = append(m.Messages, g)
	}
	return f, nil
}

func (p *parser) fieldNumber() (int32, error) {
	t := p.next()
	if t.kind != 'n' {
		return 0, p.errf(t, "expected a field number")
	}
	n, err := strconv.ParseInt(t.s, 0, 64)
	if err != nil || n < 1 || n > maxFieldNumber {
		return 0, p.errf(t, "field number must be 1..%d", maxFieldNumber)
	}
	return int32(n), nil
}

// fieldOptions reads an optional [ ... ] list of field options.
func (p *parser) fieldOptions(f *Field) error {
	if !p.peek().is("[") {
		return nil
	}
	p.next()
	for {
		t := p.peek()
		switch {
		case t.kind == 'i' && (t.s == "default" || t.s == "json_name") && p.pos+1 < len(p.toks) && p.toks[p.pos+1].is("="):
			p.next()
			p.next()
			v, err := p.value()
			if err != nil {
				return err
			}
			if t.s == "json_name" {
				if v.Kind != StringValue {
					return p.errf(t, "json_name must be a string")
				}
				f.JSONName = v.Text
			} else {
				if v.Kind == MessageValue {
					return p.errf(t, "a default must be a scalar")
				}
				f.Default, f.HasDefault = v.Text, true
			}
		default:
			o, err := p.optionAssign(fieldOptions)
			if err != nil {
				return err
			}
			f.Options = append(f.Options, o)
		}
		n := p.next()
		if n.is(",") {
			continue
		}
		if n.is("]") {
			break
		}
		return p.errf(n, "expected \",\" or \"]\"")
	}
	f.Options = mergeOptions(f.Options, fieldOptions)
	f.Tags = metaTags(f.Options, "(confluent.field_meta)")
	for _, o := range f.Options {
		if o.Name == "packed" {
			b := o.Value.Text == "true"
			f.packed = &b
		}
	}
	return nil
}

func (p *parser) enum(scope string) (*Enum, error) {
	nt := p.peek()
	name, err := p.simpleName()
	if err != nil {
		return nil, err
	}
	e := &Enum{Name: name, FullName: qualify(scope, name)}
	if err := p.checkName(nt, e.FullName); err != nil {
		return nil, err
	}
	if err := p.expect("{"); err != nil {
		return nil, err
	}
	for {
		t := p.next()
		switch {
		case t.kind == 0:
			return nil, p.errf(t, "missing \"}\"")
		case t.is("}"):
			e.Options = mergeOptions(e.Options, enumOptions)
			return e, nil
		case t.is(";"):
		case t.is("option"):
			o, err := p.optionStmt(enumOptions)
			if err != nil {
				return nil, err
			}
			e.Options = append(e.Options, o)
		case t.is("reserved"):
			rs, names, err := p.ranges(true, 1<<31-1)
			if err != nil {
				return nil, err
			}
			e.ReservedRanges = append(e.ReservedRanges, rs...)
			e.ReservedNames = append(e.ReservedNames, names...)
		case t.kind == 'i' && !strings.Contains(t.s, "."):
			if err := p.expect("="); err != nil {
				return nil, err
			}
			n, err := p.rangeNumber(0)
			if err != nil {
				return nil, err
			}
			ev := EnumValue{Name: t.s, Number: n}
			if p.peek().is("[") {
				p.next()
				for {
					o, err := p.optionAssign(enumValueOptions)
					if err != nil {
						return nil, err
					}
					ev.Options = append(ev.Options, o)
					n := p.next()
					if n.is("]") {
						break
					}
					if !n.is(",") {
						return nil, p.errf(n, "expected \",\" or \"]\"")
					}
				}
				ev.Options = mergeOptions(ev.Options, enumValueOptions)
			}
			e.Values = append(e.Values, ev)
			if err := p.expect(";"); err != nil {
				return nil, err
			}
		default:
			return nil, p.errf(t, "expected an enum value")
		}
	}
}

func (p *parser) service() (*Service, error) {
	name, err := p.simpleName()
	if err != nil {
		return nil, err
	}
	s := &Service{Name: name}
	if err := p.expect("{"); err != nil {
		return nil, err
	}
	for {
		t := p.next()
		switch {
		case t.kind == 0:
			return nil, p.errf(t, "missing \"}\"")
		case t.is("}"):
			s.Options = mergeOptions(s.Options, serviceOptions)
			return s, nil
		case t.is(";"):
		case t.is("option"):
			o, err := p.optionStmt(serviceOptions)
			if err != nil {
				return nil, err
			}
			s.Options = append(s.Options, o)
		case t.is("rpc"):
			m, err := p.method()
			if err != nil {
				return nil, err
			}
			s.Methods = append(s.Methods, m)
		default:
			return nil, p.errf(t, "expected rpc or option")
		}
	}
}

func (p *parser) method() (Method, error) {
	var m Method
	var err error
	if m.Name, err = p.simpleName(); err != nil {
		return m, err
	}
	typ := func() (string, bool, error) {
		if err := p.expect("("); err != nil {
			return "", false, err
		}
		stream := false
		if t := p.peek(); t.is("stream") && p.pos+1 < len(p.toks) && p.toks[p.pos+1].kind == 'i' {
			p.next()
			stream = true
		}
		name, err := p.ident()
		if err != nil {
			return "", false, err
		}
		return name, stream, p.expect(")")
	}
	if m.Input, m.ClientStreaming, err = typ(); err != nil {
		return m, err
	}
	if err := p.expect("returns"); err != nil {
		return m, err
	}
	if m.Output, m.ServerStreaming, err = typ(); err != nil {
		return m, err
	}
	t := p.next()
	if t.is(";") {
		return m, nil
	}
	if !t.is("{") {
		return m, p.errf(t, "expected \";\" or \"{\"")
	}
	for {
		t := p.next()
		switch {
		case t.kind == 0:
			return m, p.errf(t, "missing \"}\"")
		case t.is("}"):
			m.Options = mergeOptions(m.Options, methodOptions)
			return m, nil
		case t.is(";"):
		case t.is("option"):
			o, err := p.optionStmt(methodOptions)
			if err != nil {
				return m, err
			}
			m.Options = append(m.Options, o)
		default:
			return m, p.errf(t, "expected option")
		}
	}
}

// extend reads an extend block's fields. Groups declared in it become
// messages of parent (or of the file, at top level).
func (p *parser) extend(scope string, parent *Message) ([]*Field, error) {
	target, err := p.ident()
	if err != nil {
		return nil, err
	}
	if err := p.expect("{"); err != nil {
		return nil, err
	}
	holder := parent
	if holder == nil {
		holder = &Message{}
	}
	var out []*Field
	for {
		t := p.peek()
		switch {
		case t.kind == 0:
			return nil, p.errf(t, "missing \"}\"")
		case t.is("}"):
			p.next()
			if parent == nil {
				p.f.Messages = append(p.f.Messages, holder.Messages...)
			}
			return out, nil
		case t.is(";"):
			p.next()
			continue
		}
		f, err := p.field(holder, scope, -1)
		if err != nil {
			return nil, err
		}
		f.Extendee = target
		out = append(out, f)
	}
}
