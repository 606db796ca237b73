package registry

import (
	"fmt"
	"strconv"
	"strings"
)

// This file holds a small .proto parser: enough of the language to validate a
// schema's structure and to compare message definitions for compatibility. It
// does not resolve imports or check that referenced types exist (doc.go).

type protoFile struct {
	syntax   string // "proto2", "proto3" or "editions"
	pkg      string
	imports  []string
	messages []*protoMessage // top level
	enums    []*protoEnum
	byName   map[string]*protoMessage // full name (without leading dot)
	enumSet  map[string]bool          // full names of enums
}

type protoMessage struct {
	name, full string
	fields     []*protoField
	messages   []*protoMessage
	enums      []*protoEnum
	oneofs     []string
}

type protoField struct {
	name   string
	number int
	label  string // "", "optional", "required", "repeated"
	typ    string // as written; "map<K,V>" for maps
	oneof  string
	scope  string // full name of the enclosing message, for type resolution
	mapKV  [2]string
	isMap  bool
}

type protoEnum struct {
	name, full string
	values     map[string]int
}

type protoTok struct {
	s    string
	kind byte // 'i' identifier, 'n' number, 's' string, 'p' punctuation
	line int
}

func lexProto(src string) ([]protoTok, error) {
	var toks []protoTok
	line := 1
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '/' && i+1 < len(src) && src[i+1] == '/':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(src) && src[i+1] == '*':
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				return nil, fmt.Errorf("line %d: unterminated comment", line)
			}
			line += strings.Count(src[i:i+2+end], "\n")
			i += end + 4
		case isIdentStart(c):
			j := i + 1
			for j < len(src) && (isIdentStart(src[j]) || isDigit(src[j]) || src[j] == '.') {
				j++
			}
			toks = append(toks, protoTok{src[i:j], 'i', line})
			i = j
		case c == '.' && i+1 < len(src) && isIdentStart(src[i+1]):
			j := i + 1
			for j < len(src) && (isIdentStart(src[j]) || isDigit(src[j]) || src[j] == '.') {
				j++
			}
			toks = append(toks, protoTok{src[i:j], 'i', line})
			i = j
		case isDigit(c) || (c == '.' && i+1 < len(src) && isDigit(src[i+1])):
			j := i + 1
			for j < len(src) && (isIdentStart(src[j]) || isDigit(src[j]) || src[j] == '.' ||
				((src[j] == '+' || src[j] == '-') && (src[j-1] == 'e' || src[j-1] == 'E'))) {
				j++
			}
			toks = append(toks, protoTok{src[i:j], 'n', line})
			i = j
		case c == '"' || c == '\'':
			j := i + 1
			for j < len(src) && src[j] != c {
				if src[j] == '\\' {
					j++
				}
				if j < len(src) && src[j] == '\n' {
					return nil, fmt.Errorf("line %d: newline in string", line)
				}
				j++
			}
			if j >= len(src) {
				return nil, fmt.Errorf("line %d: unterminated string", line)
			}
			toks = append(toks, protoTok{src[i : j+1], 's', line})
			i = j + 1
		case strings.IndexByte("{}[]()<>;=,:-+/", c) >= 0:
			toks = append(toks, protoTok{string(c), 'p', line})
			i++
		default:
			return nil, fmt.Errorf("line %d: unexpected character %q", line, c)
		}
	}
	return toks, nil
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

type protoParser struct {
	toks []protoTok
	pos  int
	f    *protoFile
}

// parseProto parses a .proto file; it returns the file and its tokens (the
// whitespace- and comment-free form used as the canonical text).
func parseProto(src string) (*protoFile, []string, error) {
	toks, err := lexProto(src)
	if err != nil {
		return nil, nil, err
	}
	p := &protoParser{toks: toks, f: &protoFile{syntax: "proto2", byName: map[string]*protoMessage{}, enumSet: map[string]bool{}}}
	if err := p.file(); err != nil {
		return nil, nil, err
	}
	strs := make([]string, len(toks))
	for i, t := range toks {
		strs[i] = t.s
	}
	return p.f, strs, nil
}

func (p *protoParser) peek() protoTok {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return protoTok{kind: 0, line: p.lastLine()}
}

func (p *protoParser) lastLine() int {
	if len(p.toks) == 0 {
		return 1
	}
	return p.toks[len(p.toks)-1].line
}

func (p *protoParser) next() protoTok {
	t := p.peek()
	if p.pos < len(p.toks) {
		p.pos++
	}
	return t
}

func (p *protoParser) errf(t protoTok, format string, args ...any) error {
	if t.kind == 0 {
		return fmt.Errorf("line %d: unexpected end of input: %s", t.line, fmt.Sprintf(format, args...))
	}
	return fmt.Errorf("line %d: at %q: %s", t.line, t.s, fmt.Sprintf(format, args...))
}

func (p *protoParser) expect(s string) error {
	t := p.next()
	if t.s != s || t.kind == 's' {
		return p.errf(t, "expected %q", s)
	}
	return nil
}

func (p *protoParser) ident() (string, error) {
	t := p.next()
	if t.kind != 'i' {
		return "", p.errf(t, "expected an identifier")
	}
	return t.s, nil
}

// skipStatement skips to the ';' ending a statement, over balanced brackets.
func (p *protoParser) skipStatement() error {
	depth := 0
	for {
		t := p.next()
		switch {
		case t.kind == 0:
			return p.errf(t, "missing ';'")
		case t.kind == 'p' && (t.s == "{" || t.s == "[" || t.s == "("):
			depth++
		case t.kind == 'p' && (t.s == "}" || t.s == "]" || t.s == ")"):
			depth--
			if depth < 0 {
				return p.errf(t, "unbalanced %q", t.s)
			}
		case t.kind == 'p' && t.s == ";" && depth == 0:
			return nil
		}
	}
}

// skipBlock skips a balanced { ... } block; the '{' is next.
func (p *protoParser) skipBlock() error {
	if err := p.expect("{"); err != nil {
		return err
	}
	depth := 1
	for depth > 0 {
		t := p.next()
		switch {
		case t.kind == 0:
			return p.errf(t, "missing '}'")
		case t.kind == 'p' && t.s == "{":
			depth++
		case t.kind == 'p' && t.s == "}":
			depth--
		}
	}
	return nil
}

func (p *protoParser) file() error {
	for p.peek().kind != 0 {
		t := p.next()
		if t.kind == 'p' && t.s == ";" {
			continue
		}
		if t.kind != 'i' {
			return p.errf(t, "expected a declaration")
		}
		switch t.s {
		case "syntax", "edition":
			if err := p.expect("="); err != nil {
				return err
			}
			v := p.next()
			if v.kind != 's' {
				return p.errf(v, "expected a string")
			}
			s, _ := strconv.Unquote(`"` + v.s[1:len(v.s)-1] + `"`)
			if t.s == "syntax" && s != "proto2" && s != "proto3" {
				return p.errf(v, "unknown syntax %q", s)
			}
			if t.s == "edition" {
				s = "editions"
			}
			p.f.syntax = s
			if err := p.expect(";"); err != nil {
				return err
			}
		case "package":
			name, err := p.ident()
			if err != nil {
				return err
			}
			if p.f.pkg != "" {
				return p.errf(t, "duplicate package")
			}
			p.f.pkg = name
			if err := p.expect(";"); err != nil {
				return err
			}
		case "import":
			v := p.next()
			if v.kind == 'i' && (v.s == "public" || v.s == "weak") {
				v = p.next()
			}
			if v.kind != 's' {
				return p.errf(v, "expected an import path")
			}
			p.f.imports = append(p.f.imports, v.s[1:len(v.s)-1])
			if err := p.expect(";"); err != nil {
				return err
			}
		case "option":
			if err := p.skipStatement(); err != nil {
				return err
			}
		case "message":
			m, err := p.message(p.f.pkg)
			if err != nil {
				return err
			}
			p.f.messages = append(p.f.messages, m)
		case "enum":
			e, err := p.enum(p.f.pkg)
			if err != nil {
				return err
			}
			p.f.enums = append(p.f.enums, e)
		case "service", "extend":
			if _, err := p.ident(); err != nil {
				return err
			}
			if err := p.skipBlock(); err != nil {
				return err
			}
		default:
			return p.errf(t, "unknown declaration")
		}
	}
	return nil
}

func qualify(scope, name string) string {
	if scope == "" {
		return name
	}
	return scope + "." + name
}

func (p *protoParser) message(scope string) (*protoMessage, error) {
	name, err := p.ident()
	if err != nil {
		return nil, err
	}
	m := &protoMessage{name: name, full: qualify(scope, name)}
	if _, dup := p.f.byName[m.full]; dup {
		return nil, fmt.Errorf("line %d: duplicate message %s", p.peek().line, m.full)
	}
	p.f.byName[m.full] = m
	if err := p.expect("{"); err != nil {
		return nil, err
	}
	if err := p.body(m, ""); err != nil {
		return nil, err
	}
	numbers := map[int]string{}
	names := map[string]bool{}
	for _, f := range m.fields {
		if prev, dup := numbers[f.number]; dup {
			return nil, fmt.Errorf("message %s: fields %s and %s share number %d", m.full, prev, f.name, f.number)
		}
		if names[f.name] {
			return nil, fmt.Errorf("message %s: duplicate field %s", m.full, f.name)
		}
		numbers[f.number] = f.name
		names[f.name] = true
	}
	return m, nil
}

// body parses message (oneof != "") or oneof members up to the closing '}'.
func (p *protoParser) body(m *protoMessage, oneof string) error {
	for {
		t := p.peek()
		if t.kind == 0 {
			return p.errf(t, "missing '}'")
		}
		if t.kind == 'p' && t.s == "}" {
			p.next()
			return nil
		}
		if t.kind == 'p' && t.s == ";" {
			p.next()
			continue
		}
		if t.kind != 'i' {
			return p.errf(t, "expected a field or declaration")
		}
		switch t.s {
		case "option", "reserved", "extensions":
			p.next()
			if err := p.skipStatement(); err != nil {
				return err
			}
			continue
		case "message":
			if oneof != "" {
				break
			}
			p.next()
			sub, err := p.message(m.full)
			if err != nil {
				return err
			}
			m.messages = append(m.messages, sub)
			continue
		case "enum":
			if oneof != "" {
				break
			}
			p.next()
			e, err := p.enum(m.full)
			if err != nil {
				return err
			}
			m.enums = append(m.enums, e)
			continue
		case "extend":
			p.next()
			if _, err := p.ident(); err != nil {
				return err
			}
			if err := p.skipBlock(); err != nil {
				return err
			}
			continue
		case "oneof":
			if oneof != "" {
				break
			}
			p.next()
			name, err := p.ident()
			if err != nil {
				return err
			}
			if err := p.expect("{"); err != nil {
				return err
			}
			m.oneofs = append(m.oneofs, name)
			if err := p.body(m, name); err != nil {
				return err
			}
			continue
		}
		if err := p.field(m, oneof); err != nil {
			return err
		}
	}
}

func (p *protoParser) field(m *protoMessage, oneof string) error {
	f := &protoField{oneof: oneof, scope: m.full}
	t := p.next()
	if t.s == "optional" || t.s == "required" || t.s == "repeated" {
		f.label = t.s
		t = p.next()
	}
	if t.kind != 'i' {
		return p.errf(t, "expected a field type")
	}
	switch {
	case t.s == "map" && p.peek().s == "<":
		p.next()
		k, err := p.ident()
		if err != nil {
			return err
		}
		if err := p.expect(","); err != nil {
			return err
		}
		v, err := p.ident()
		if err != nil {
			return err
		}
		if err := p.expect(">"); err != nil {
			return err
		}
		f.isMap, f.mapKV = true, [2]string{k, v}
		f.typ = "map<" + k + "," + v + ">"
	case t.s == "group":
		name, err := p.ident()
		if err != nil {
			return err
		}
		f.typ = name
		f.name = strings.ToLower(name)
		if err := p.expect("="); err != nil {
			return err
		}
		n, err := p.fieldNumber()
		if err != nil {
			return err
		}
		f.number = n
		if p.peek().s == "[" {
			if err := p.skipBrackets(); err != nil {
				return err
			}
		}
		if err := p.expect("{"); err != nil {
			return err
		}
		g := &protoMessage{name: name, full: qualify(m.full, name)}
		p.f.byName[g.full] = g
		if err := p.body(g, ""); err != nil {
			return err
		}
		m.messages = append(m.messages, g)
		m.fields = append(m.fields, f)
		return nil
	default:
		f.typ = t.s
	}
	name, err := p.ident()
	if err != nil {
		return err
	}
	f.name = name
	if err := p.expect("="); err != nil {
		return err
	}
	n, err := p.fieldNumber()
	if err != nil {
		return err
	}
	f.number = n
	if p.peek().s == "[" {
		if err := p.skipBrackets(); err != nil {
			return err
		}
	}
	if err := p.expect(";"); err != nil {
		return err
	}
	m.fields = append(m.fields, f)
	return nil
}

func (p *protoParser) fieldNumber() (int, error) {
	t := p.next()
	if t.kind != 'n' {
		return 0, p.errf(t, "expected a field number")
	}
	n, err := strconv.ParseInt(t.s, 0, 64)
	if err != nil || n < 1 || n > 536870911 {
		return 0, p.errf(t, "field number must be 1..536870911")
	}
	return int(n), nil
}

func (p *protoParser) skipBrackets() error {
	depth := 0
	for {
		t := p.next()
		switch {
		case t.kind == 0:
			return p.errf(t, "missing ']'")
		case t.kind == 'p' && t.s == "[":
			depth++
		case t.kind == 'p' && t.s == "]":
			depth--
			if depth == 0 {
				return nil
			}
		}
	}
}

func (p *protoParser) enum(scope string) (*protoEnum, error) {
	name, err := p.ident()
	if err != nil {
		return nil, err
	}
	e := &protoEnum{name: name, full: qualify(scope, name), values: map[string]int{}}
	p.f.enumSet[e.full] = true
	if err := p.expect("{"); err != nil {
		return nil, err
	}
	for {
		t := p.next()
		switch {
		case t.kind == 0:
			return nil, p.errf(t, "missing '}'")
		case t.kind == 'p' && t.s == "}":
			if len(e.values) == 0 {
				return nil, fmt.Errorf("enum %s has no values", e.full)
			}
			return e, nil
		case t.kind == 'p' && t.s == ";":
		case t.kind == 'i' && (t.s == "option" || t.s == "reserved"):
			if err := p.skipStatement(); err != nil {
				return nil, err
			}
		case t.kind == 'i':
			if err := p.expect("="); err != nil {
				return nil, err
			}
			neg := false
			if p.peek().s == "-" {
				p.next()
				neg = true
			}
			v := p.next()
			n, err := strconv.ParseInt(v.s, 0, 32)
			if v.kind != 'n' || err != nil {
				return nil, p.errf(v, "expected an enum value number")
			}
			if neg {
				n = -n
			}
			e.values[t.s] = int(n)
			if p.peek().s == "[" {
				if err := p.skipBrackets(); err != nil {
					return nil, err
				}
			}
			if err := p.expect(";"); err != nil {
				return nil, err
			}
		default:
			return nil, p.errf(t, "expected an enum value")
		}
	}
}

// resolve returns the full name of a type reference made from scope,
// following protobuf's innermost-scope-first lookup among the types declared
// in this file; a name it cannot find is returned as written (an imported
// type).
func (f *protoFile) resolve(scope, name string) string {
	if strings.HasPrefix(name, ".") {
		return name[1:]
	}
	for s := scope; ; {
		cand := qualify(s, name)
		if _, ok := f.byName[cand]; ok || f.enumSet[cand] {
			return cand
		}
		if s == "" {
			return name
		}
		if i := strings.LastIndexByte(s, '.'); i >= 0 {
			s = s[:i]
		} else {
			s = ""
		}
	}
}
